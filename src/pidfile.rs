//! The pid file Jeedom polls: written first thing, removed on every way out.
use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Removes the pid file when dropped.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes our pid (decimal + newline), creating the directory if needed.
    pub fn create(path: &Path) -> Result<PidFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        }
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(path)?;
            writeln!(f, "{}", std::process::id())?;
            f.sync_all()
        };
        write().map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed() {
        let p = std::env::temp_dir().join(format!("rcd-pid-{}/sub/d.pid", std::process::id()));
        let pid = PidFile::create(&p).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pid);
        assert!(!p.exists());
    }
}
