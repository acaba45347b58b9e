//! The spool: copies of files to post, taken when their request is accepted.
use crate::error::{Error, Result};
use crate::jeedom::request::RequestError;
use crate::model::SpooledFile;
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The spool directory, next to the state file.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Creates the directory (mode 0700: snapshots can be private).
    pub fn open(dir: PathBuf) -> Result<Spool> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Ok(Spool { dir })
    }

    /// Copies every file now, because Jeedom deletes some right after the
    /// command returns; on any failure the copies made are removed.
    pub fn store(&self, key: &str, sources: &[String]) -> Result<Vec<SpooledFile>, RequestError> {
        let mut done = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            match self.copy_one(key, i, src) {
                Ok(f) => done.push(f),
                Err(e) => {
                    self.remove(&done);
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    fn copy_one(&self, key: &str, i: usize, src: &str) -> Result<SpooledFile, RequestError> {
        let invalid = |reason: String| RequestError::Invalid {
            field: "files",
            reason: format!("{src}: {reason}"),
        };
        let meta = fs::metadata(src).map_err(|e| invalid(e.to_string()))?;
        if meta.is_dir() {
            return Err(invalid("is a directory".into()));
        }
        let name = Path::new(src)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let dest = self.dir.join(format!("{key}-{i}-{name}"));
        fs::copy(src, &dest).map_err(|e| {
            let _ = fs::remove_file(&dest);
            invalid(e.to_string())
        })?;
        Ok(SpooledFile {
            path: dest.to_string_lossy().into_owned(),
            name,
        })
    }

    /// Deletes spooled copies (after a confirmed upload or a failed request).
    pub fn remove(&self, files: &[SpooledFile]) {
        for f in files {
            let _ = fs::remove_file(&f.path);
        }
    }

    /// Deletes copies no queued request refers to (left by a crash mid-accept).
    pub fn sweep(&self, keep: &HashSet<String>) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path().to_string_lossy().into_owned();
            if !keep.contains(&p) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rcd-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn copies_survive_deletion_of_the_original() {
        let d = tmp("copy");
        let spool = Spool::open(d.join("spool")).unwrap();
        let src = d.join("snap shot.jpg");
        fs::write(&src, b"jpegbytes").unwrap();
        let files = spool
            .store("k1", &[src.to_string_lossy().into_owned()])
            .unwrap();
        fs::remove_file(&src).unwrap();
        assert_eq!(files[0].name, "snap shot.jpg");
        assert_eq!(fs::read(&files[0].path).unwrap(), b"jpegbytes");
        spool.remove(&files);
        assert!(!Path::new(&files[0].path).exists());
    }

    #[test]
    fn missing_file_or_directory_leaves_nothing_behind() {
        let d = tmp("missing");
        let spool = Spool::open(d.join("spool")).unwrap();
        let ok = d.join("ok.txt");
        fs::write(&ok, b"x").unwrap();
        let srcs = [
            ok.to_string_lossy().into_owned(),
            "/nonexistent/x.jpg".to_string(),
        ];
        let e = spool.store("k2", &srcs).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/x.jpg"), "{e}");
        let e = spool
            .store("k3", &[d.to_string_lossy().into_owned()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a directory"), "{e}");
        assert_eq!(fs::read_dir(d.join("spool")).unwrap().count(), 0);
    }
}
