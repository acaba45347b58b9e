//! Which files a request may post: allowed directories only, never the daemon's own, regular files only.
use crate::error::Error;
use std::fmt;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Where Jeedom and its camera plugin leave the files they send (README
/// "Which files can be sent"); `--files-dir` replaces the whole list.
pub const DEFAULT_DIRS: &[&str] = &[
    // Camera plugin: captures and videos under its `recordDir`, by default
    // `plugins/camera/data/records` below Jeedom's root (jeedom/plugin-camera:
    // core/config/camera.config.ini, takeSnapshot() in core/class/camera.class.php).
    "/var/www/html/plugins/camera/data",
    // Jeedom core: the scenario `report` action writes data/report/
    // (jeedom/core: core/class/report.class.php).
    "/var/www/html/data",
    // Jeedom core: the scenario `exportHistory` action writes
    // /tmp/jeedom/history_export/<name>.csv (core/class/scenarioExpression.class.php;
    // folder::tmp = /tmp/jeedom in core/config/default.config.ini). Not all of
    // /tmp/jeedom: Jeedom's file cache lives in /tmp/jeedom/cache.
    "/tmp/jeedom/history_export",
];

/// Default largest file admitted to the spool.
pub const DEFAULT_MAX_SIZE: u64 = 50 * 1024 * 1024;

/// Trees never read, whatever the allow-list says: they hold the daemon's
/// environment and command line (password, API key) and devices.
const SYSTEM_TREES: &[&str] = &["/proc", "/sys", "/dev"];

/// The rules, built once at start-up.
#[derive(Clone, Debug)]
pub struct FileRules {
    allowed: Vec<PathBuf>,
    /// The daemon's own files (config, password, pid, state), resolved.
    own: Vec<PathBuf>,
    /// Directories of the daemon's own (the spool).
    own_dirs: Vec<PathBuf>,
    /// The state file: its siblings `state.json.*` (temporary copy, lock) too.
    state: PathBuf,
    max_size: u64,
}

/// Why a file was refused; shown to the client with the path.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    SystemTree,
    Outside(String),
    OwnFile,
    NotRegular(&'static str),
    TooLarge { size: u64, limit: u64 },
    DiskFull(String),
    Unreadable(String),
}

/// A refused file: its path as given, and the rule.
#[derive(Debug, PartialEq)]
pub struct FileError {
    pub path: String,
    pub refusal: Refusal,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Escaped: the path comes from the request and goes to the log too.
        write!(f, "file \"{}\": ", self.path.escape_debug())?;
        match &self.refusal {
            Refusal::SystemTree => f.write_str("files in /proc, /sys and /dev are never sent"),
            Refusal::Outside(dirs) => {
                write!(f, "outside the allowed directories (--files-dir): {dirs}")
            }
            Refusal::OwnFile => f.write_str(
                "one of the daemon's own files (config, password, state, spool, pid), never sent",
            ),
            Refusal::NotRegular(kind) => write!(f, "not a regular file ({kind})"),
            Refusal::TooLarge { size, limit } => write!(
                f,
                "{} is over the limit of {} (--max-file-size)",
                mib(*size),
                mib(*limit)
            ),
            Refusal::DiskFull(dir) => {
                write!(f, "not enough free disk space to copy it into {dir}")
            }
            Refusal::Unreadable(e) => f.write_str(e),
        }
    }
}

fn mib(bytes: u64) -> String {
    let m = bytes as f64 / (1024.0 * 1024.0);
    if m.fract() == 0.0 {
        format!("{m} MiB")
    } else {
        format!("{m:.1} MiB ({bytes} bytes)")
    }
}

impl FileRules {
    /// `allowed` empty means [`DEFAULT_DIRS`]; `own` are the daemon's own
    /// files, `state` the state file (its `state.json.*` siblings are refused too).
    pub fn new(allowed: &[PathBuf], own: &[PathBuf], state: &Path, max_size: u64) -> FileRules {
        let allowed = match allowed.is_empty() {
            true => DEFAULT_DIRS.iter().map(PathBuf::from).collect(),
            false => allowed.to_vec(),
        };
        FileRules {
            allowed,
            own: own.iter().map(|p| resolve(p)).collect(),
            own_dirs: Vec::new(),
            state: resolve(state),
            max_size,
        }
    }

    /// Adds a directory of the daemon's own (the spool).
    pub fn forbid_dir(&mut self, dir: &Path) {
        self.own_dirs.push(resolve(dir));
    }

    /// Largest file admitted.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Opens `path` for reading if the rules allow it: checked on the path
    /// resolved before opening (so that a device is never even opened), then
    /// on the file actually opened (a symlink swapped in between is caught).
    pub fn open(&self, path: &str) -> Result<(File, u64), Refusal> {
        let real = fs::canonicalize(path).map_err(|e| {
            // Outside the allowed directories, say so: not whether it exists.
            let lexically = self.check(&lexical(Path::new(path)));
            lexically.err().unwrap_or(unreadable(e))
        })?;
        self.check(&real)?;
        // Opening a device can act on it: a device node in an allowed
        // directory is refused by its type before any open.
        if let Some(kind) = fs::metadata(&real).ok().as_ref().and_then(not_regular) {
            return Err(Refusal::NotRegular(kind));
        }
        let file = open_without_symlinks(&real).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        self.check_opened(&file, &meta, real)?;
        Ok((file, meta.len()))
    }

    /// The rules again on what was opened (`fstat`, and its path as the
    /// kernel knows it), then the size.
    fn check_opened(&self, file: &File, meta: &Metadata, real: PathBuf) -> Result<(), Refusal> {
        if let Some(kind) = not_regular(meta) {
            return Err(Refusal::NotRegular(kind));
        }
        let opened = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or(real);
        self.check(&opened)?;
        if self.is_own_inode(meta) {
            return Err(Refusal::OwnFile);
        }
        if meta.len() > self.max_size {
            return Err(Refusal::TooLarge {
                size: meta.len(),
                limit: self.max_size,
            });
        }
        Ok(())
    }

    /// The rules on a resolved path: system trees, own files, then the allow-list.
    fn check(&self, p: &Path) -> Result<(), Refusal> {
        if SYSTEM_TREES.iter().any(|t| p.starts_with(t)) {
            return Err(Refusal::SystemTree);
        }
        if self.is_own_path(p) {
            return Err(Refusal::OwnFile);
        }
        let inside = self
            .allowed
            .iter()
            .any(|d| p.starts_with(d) || p.starts_with(resolve(d)));
        if !inside {
            return Err(Refusal::Outside(self.allowed_list()));
        }
        Ok(())
    }

    /// The state's siblings include its journal (`state.json.journal`,
    /// `.journal.new`); an own file's `.tmp` is the pid file's temporary copy.
    fn is_own_path(&self, p: &Path) -> bool {
        let own_or_tmp = |o: &PathBuf| o == p || crate::safe_file::beside(o, ".tmp") == p;
        if self.own.iter().any(own_or_tmp) || self.own_dirs.iter().any(|d| p.starts_with(d)) {
            return true;
        }
        let s = &self.state;
        let name = s.file_name().unwrap_or_default().to_string_lossy();
        let theirs = p.file_name().unwrap_or_default().to_string_lossy();
        p.parent() == s.parent() && theirs.starts_with(name.as_ref())
    }

    /// Same inode as one of the daemon's own files (a hard link to it).
    fn is_own_inode(&self, meta: &Metadata) -> bool {
        let own = self.own.iter().chain([&self.state]);
        own.filter_map(|p| fs::metadata(p).ok())
            .any(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    }

    /// The allowed directories, as shown in refusals and at start-up.
    pub fn allowed_list(&self) -> String {
        let dirs: Vec<String> = self
            .allowed
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        dirs.join(", ")
    }
}

/// Opens a resolved path one component at a time, none of them followed
/// if it is a symlink: a directory swapped for a symlink after the checks
/// fails here (ENOTDIR, ELOOP) instead of leading the open to a device. Each step
/// opens `/proc/self/fd/<previous>/<name>`, an `openat` without unsafe code.
fn open_without_symlinks(real: &Path) -> io::Result<File> {
    let step = |flags: i32| {
        let mut o = OpenOptions::new();
        o.read(true).custom_flags(flags | libc::O_NOFOLLOW);
        o
    };
    if !Path::new("/proc/self/fd").is_dir() {
        // No /proc (a bare chroot): the last component at least.
        return step(libc::O_NONBLOCK | libc::O_NOCTTY).open(real);
    }
    let mut names = real.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n),
        _ => None,
    });
    let mut at = step(libc::O_PATH | libc::O_DIRECTORY).open("/")?;
    let mut name = names.next().ok_or(io::ErrorKind::InvalidInput)?;
    for next in names {
        let via = Path::new(&format!("/proc/self/fd/{}", at.as_raw_fd())).join(name);
        at = step(libc::O_PATH | libc::O_DIRECTORY).open(via)?;
        name = next;
    }
    let via = Path::new(&format!("/proc/self/fd/{}", at.as_raw_fd())).join(name);
    // A FIFO opens at once instead of waiting for a writer; a terminal
    // never becomes ours.
    step(libc::O_NONBLOCK | libc::O_NOCTTY).open(via)
}

/// `--files-dir` values: absolute paths.
pub fn parse_dirs(dirs: &[String]) -> crate::error::Result<Vec<PathBuf>> {
    dirs.iter()
        .map(|d| match d.starts_with('/') {
            true => Ok(PathBuf::from(d)),
            false => Err(Error::usage(
                "files-dir",
                format!("\"{d}\" is not an absolute path"),
            )),
        })
        .collect()
}

/// `--max-file-size` in MiB (fractions allowed), as bytes.
pub fn parse_max_size(v: Option<&str>) -> crate::error::Result<u64> {
    let Some(v) = v else {
        return Ok(DEFAULT_MAX_SIZE);
    };
    match v.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 4096.0 => Ok((x * 1024.0 * 1024.0) as u64),
        _ => Err(Error::usage(
            "max-file-size",
            format!("\"{v}\" is not a number of MiB in 0..4096"),
        )),
    }
}

/// Why a file that is not a regular file is refused.
fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    match () {
        _ if t.is_file() => None,
        _ if t.is_dir() => Some("a directory"),
        _ if t.is_fifo() => Some("a FIFO"),
        _ if t.is_socket() => Some("a socket"),
        _ if t.is_char_device() || t.is_block_device() => Some("a device"),
        _ => Some("not a plain file"),
    }
}

/// The path with its directory resolved (the file itself may not exist yet).
fn resolve(p: &Path) -> PathBuf {
    if let Ok(real) = fs::canonicalize(p) {
        return real;
    }
    let p = lexical(p);
    match (p.parent().map(fs::canonicalize), p.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => p,
    }
}

/// `.` and `..` removed without touching the disk.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn unreadable(e: io::Error) -> Refusal {
    Refusal::Unreadable(e.to_string())
}

/// True when a write failed because the disk (or the quota) is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

#[cfg(test)]
mod tests;
