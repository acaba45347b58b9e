//! The pid file Jeedom polls: written once the start can no longer fail on another daemon, removed on the way out.
use crate::error::{Error, Result};
use crate::safe_file;
use std::fs;
use std::path::{Path, PathBuf};

/// Removes the pid file when dropped, if it still holds our pid.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes our pid (decimal + newline), creating the directory if needed.
    /// The file is written beside and renamed into place: a symlink planted
    /// at the path is replaced, its target never written.
    pub fn create(path: &Path) -> Result<PidFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        }
        safe_file::replace(path, own_pid().as_bytes())
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

fn own_pid() -> String {
    format!("{}\n", std::process::id())
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Another daemon may have written its own pid here since: its file stays.
        if fs::read_to_string(&self.path).is_ok_and(|t| t == own_pid()) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed() {
        let dir = crate::test_dir::TestDir::new("pid");
        let p = dir.join("sub/d.pid");
        let pid = PidFile::create(&p).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pid);
        assert!(!p.exists());
    }

    #[test]
    fn another_pid_is_left_in_place() {
        let dir = crate::test_dir::TestDir::new("pid2");
        let p = dir.join("d.pid");
        let pid = PidFile::create(&p).unwrap();
        fs::write(&p, "1\n").unwrap();
        drop(pid);
        assert_eq!(fs::read_to_string(&p).unwrap(), "1\n");
    }
}
