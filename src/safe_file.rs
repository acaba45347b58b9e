//! Creating the daemon's own files without following a symlink planted at their path.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Opens `path` for writing, mode 0600, never through a symlink.
fn open_nofollow(path: &Path, new: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).mode(0o600).custom_flags(libc::O_NOFOLLOW);
    if new {
        o.create_new(true);
    } else {
        o.read(true).create(true);
    }
    o.open(path)
}

/// Creates `path` afresh (0600) as a new file: `O_EXCL` and `O_NOFOLLOW`,
/// so a symlink planted there by another local user is never followed and
/// its target never overwritten. Whatever already sits at the path (a
/// leftover of a crash, or that symlink) is unlinked first: unlinking a
/// symlink removes the link, not its target.
///
/// Any writer of a temporary file that is then renamed over the real one
/// (the state, the pid file) creates it with this.
pub fn create_temp(path: &Path) -> io::Result<File> {
    match open_nofollow(path, true) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open_nofollow(path, true)
        }
        other => other,
    }
}

/// Opens (creating if needed, 0600) a file kept across runs, such as a
/// lock file, refusing a symlink at its path (`ELOOP`).
pub fn open_kept(path: &Path) -> io::Result<File> {
    open_nofollow(path, false)
}

/// `path` with `suffix` appended to its last component.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Replaces `path` with `bytes` atomically: a safe temporary file beside it,
/// fsync, rename. The rename replaces a symlink at `path` itself, never the
/// file it points to.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = beside(path, ".tmp");
    let write = || -> io::Result<()> {
        let mut f = create_temp(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rcd-safe-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let d = dir("link");
        let victim = d.join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = d.join("daemon.pid");
        symlink(&victim, beside(&path, ".tmp")).unwrap();
        symlink(&victim, &path).unwrap();
        replace(&path, b"42\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(fs::read_to_string(&path).unwrap(), "42\n");
        assert!(!fs::symlink_metadata(&path).unwrap().is_symlink());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_kept_file_refuses_a_symlink() {
        let d = dir("kept");
        let victim = d.join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = d.join("state.json.lock");
        symlink(&victim, &path).unwrap();
        assert!(open_kept(&path).is_err());
        fs::remove_file(&path).unwrap();
        assert!(open_kept(&path).is_ok());
        fs::remove_dir_all(&d).unwrap();
    }
}
