//! One daemon per state file: the `--state` path checked, writable and locked before anything else.
use crate::error::{Error, Result};
use crate::safe_file;
use std::fs::{self, File, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Held for the daemon's whole life; the kernel releases the lock when the
/// process ends, however it ends.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
    /// This start created the lock file: a failed start removes it again.
    created: bool,
    /// The start succeeded: the file stays, as after every run.
    kept: bool,
    /// Directories this start made for the state, deepest first.
    made: Vec<PathBuf>,
}

impl StateLock {
    /// The daemon started: the lock file stays after it.
    pub fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for StateLock {
    /// A failed start leaves the state directory as it found it. Only the
    /// holder removes the file, while still holding it: a daemon refused
    /// because another holds it never does.
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if self.created {
            let _ = fs::remove_file(&self.path);
        }
        remove_dirs(&self.made);
    }
}

/// Checks `--state` and takes its lock, or says why not (exit 1). Touches
/// nothing of a daemon already running on the same state.
pub fn lock_state(path: &Path) -> Result<StateLock> {
    let bad = |reason: String| Error::startup("state", format!("{}: {reason}", path.display()));
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(bad("is a directory, not a file".into())),
        Ok(m) if !m.is_file() => return Err(bad("is not a regular file".into())),
        Ok(_) => {}
        // A missing directory, or a file where one should be: said below.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
        Err(e) => return Err(bad(e.to_string())),
    }
    let made = make_dir(&dir_of(path)).map_err(&bad)?;
    match probe_and_lock(path) {
        Ok(mut lock) => {
            lock.made = made;
            Ok(lock)
        }
        Err(reason) => {
            remove_dirs(&made);
            Err(bad(reason))
        }
    }
}

/// Makes `dir` and its missing parents (Jeedom's plugin relies on it for
/// its data folder); those made, deepest first. Refused: names `dir`, and
/// the parent it could not be made in.
fn make_dir(dir: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    // One that cannot be looked at (no search permission) is not called
    // missing: the write check below says what is wrong with it.
    let absent = |d: &Path| {
        fs::symlink_metadata(d)
            .is_err_and(|e| matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory))
    };
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && absent(d))
        .collect();
    let mut made = Vec::new();
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => made.insert(0, d.to_path_buf()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                remove_dirs(&made);
                let (dir, parent) = (dir.display(), dir_of(d));
                let parent = parent.display();
                return Err(format!(
                    "directory {dir} does not exist and cannot be made in {parent}: {e}"
                ));
            }
        }
    }
    Ok(made)
}

/// Removes directories made by a start that failed, deepest first; one no
/// longer empty stays.
fn remove_dirs(made: &[PathBuf]) {
    for d in made {
        let _ = fs::remove_dir(d);
    }
}

/// Checks that the state's directory takes files, and locks the state.
fn probe_and_lock(path: &Path) -> std::result::Result<StateLock, String> {
    // The state is saved through a temporary file beside it: a directory
    // that refuses one would lose every save, so it is refused now.
    let probe = safe_file::beside(path, ".tmp");
    safe_file::create_temp(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(|e| format!("cannot write in {}: {e}", dir_of(path).display()))?;
    // The lock is on a file of its own: the state file is replaced by a
    // rename at every save, which would drop a lock held on it.
    let lock_path = safe_file::beside(path, ".lock");
    // A failed start removes the file it created: one opened just before
    // is then locked but no longer at the path, and is opened again.
    for _ in 0..3 {
        if let Some(lock) = try_lock_at(&lock_path)? {
            return Ok(lock);
        }
    }
    Err(format!("{} keeps being removed", lock_path.display()))
}

/// Opens and locks `lock_path`; `None` if the file locked is no longer the
/// one at the path.
fn try_lock_at(lock_path: &Path) -> std::result::Result<Option<StateLock>, String> {
    let shown = lock_path.display();
    let created = fs::symlink_metadata(lock_path).is_err();
    let file = safe_file::open_kept(lock_path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err("in use by another rocketchatd (give each daemon its own --state)".into())
        }
        Err(TryLockError::Error(e)) => return Err(format!("cannot lock {shown}: {e}")),
    }
    let same = match (fs::symlink_metadata(lock_path), file.metadata()) {
        (Ok(at_path), Ok(held)) => at_path.dev() == held.dev() && at_path.ino() == held.ino(),
        _ => false,
    };
    Ok(same.then(|| StateLock {
        _file: file,
        path: lock_path.to_path_buf(),
        created,
        kept: false,
        made: Vec::new(),
    }))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_state_is_refused() {
        let d = std::env::temp_dir().join(format!("rcd-lock-{}", std::process::id()));
        let path = d.join("sub/state.json");
        fs::create_dir_all(d.join("sub")).unwrap();
        let held = lock_state(&path).unwrap();
        let e = lock_state(&path).unwrap_err().to_string();
        assert!(
            e.starts_with("invalid --state: ") && e.contains("another rocketchatd"),
            "{e}"
        );
        drop(held);
        assert!(lock_state(&path).is_ok());
        let e = lock_state(&d).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }

    /// The lock file a start created goes when that start fails (the lock
    /// dropped unkept); a refused start, a kept lock and a file that was
    /// there before stay.
    #[test]
    fn only_a_failed_start_removes_the_lock_file_it_created() {
        let d = std::env::temp_dir().join(format!("rcd-lock-kept-{}", std::process::id()));
        let path = d.join("state.json");
        let lock_path = d.join("state.json.lock");
        drop(lock_state(&path).unwrap());
        assert!(!lock_path.exists(), "created, start failed: removed");
        let mut held = lock_state(&path).unwrap();
        assert!(lock_state(&path).is_err());
        assert!(lock_path.exists(), "refused: the holder's file stays");
        held.keep();
        drop(held);
        assert!(lock_path.exists(), "kept after a run");
        drop(lock_state(&path).unwrap());
        assert!(lock_path.exists(), "there before: stays");
        fs::remove_dir_all(&d).unwrap();
    }

    /// Missing directories are made; a failed start removes them again,
    /// one that got other files meanwhile stays.
    #[test]
    fn a_failed_start_removes_the_directories_it_made() {
        let d = std::env::temp_dir().join(format!("rcd-lock-made-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        drop(lock_state(&d.join("a/b/state.json")).unwrap());
        assert!(!d.join("a").exists());
        let lock = lock_state(&d.join("a/b/state.json")).unwrap();
        fs::write(d.join("a/other"), "x").unwrap();
        drop(lock);
        assert!(!d.join("a/b").exists() && d.join("a/other").exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
