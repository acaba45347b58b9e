//! One daemon per state file: the `--state` path checked, writable and locked before anything else.
use crate::error::{Error, Result};
use crate::safe_file;
use std::fs::{self, File, TryLockError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Held for the daemon's whole life; the kernel releases the lock when the
/// process ends, however it ends.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Checks `--state` and takes its lock, or says why not (exit 1). Touches
/// nothing of a daemon already running on the same state.
pub fn lock_state(path: &Path) -> Result<StateLock> {
    let bad = |reason: String| Error::startup("state", format!("{}: {reason}", path.display()));
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(bad("is a directory, not a file".into())),
        Ok(m) if !m.is_file() => return Err(bad("is not a regular file".into())),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(bad(e.to_string())),
    }
    let dir = dir_of(path);
    let shown = dir.display();
    fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create {shown}: {e}")))?;
    // The state is saved through a temporary file beside it: a directory
    // that refuses one would lose every save, so it is refused now.
    let probe = safe_file::beside(path, ".tmp");
    safe_file::create_temp(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(|e| bad(format!("cannot write in {shown}: {e}")))?;
    // The lock is on a file of its own: the state file is replaced by a
    // rename at every save, which would drop a lock held on it.
    let lock_path = safe_file::beside(path, ".lock");
    let file = safe_file::open_kept(&lock_path)
        .map_err(|e| bad(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(StateLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(bad(
            "in use by another rocketchatd (give each daemon its own --state)".into(),
        )),
        Err(TryLockError::Error(e)) => {
            Err(bad(format!("cannot lock {}: {e}", lock_path.display())))
        }
    }
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
}
