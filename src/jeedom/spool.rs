//! The spool: copies of files to post, taken when their request is accepted.
use crate::error::{Error, Result};
use crate::jeedom::files::{self, FileError, FileRules, Refusal};
use crate::model::SpooledFile;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The spool directory, next to the state file, and the rules of what enters it.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
    rules: FileRules,
}

impl Spool {
    /// Creates the directory (mode 0700: snapshots can be private); its
    /// files become the daemon's own, never sent as a request's file.
    pub fn open(dir: PathBuf, mut rules: FileRules) -> Result<Spool> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        rules.forbid_dir(&dir);
        Ok(Spool { dir, rules })
    }

    /// Copies every file now, because Jeedom deletes some right after the
    /// command returns; on any failure the copies made are removed.
    pub fn store(&self, key: &str, sources: &[String]) -> Result<Vec<SpooledFile>, FileError> {
        let mut done = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            match self.copy_one(key, i, src) {
                Ok(f) => done.push(f),
                Err(refusal) => {
                    self.remove(&done);
                    let path = src.clone();
                    return Err(FileError { path, refusal });
                }
            }
        }
        Ok(done)
    }

    /// One file, checked by the rules, then copied.
    fn copy_one(&self, key: &str, i: usize, src: &str) -> Result<SpooledFile, Refusal> {
        let (mut file, _) = self.rules.open(src)?;
        let name = Path::new(src)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let dest = self.dir.join(format!("{key}-{i}-{name}"));
        let size = self.copy_bounded(&mut file, &dest).inspect_err(|_| {
            let _ = fs::remove_file(&dest);
        })?;
        Ok(SpooledFile {
            path: dest.to_string_lossy().into_owned(),
            name,
            size: Some(size),
        })
    }

    /// Copies at most `--max-file-size` bytes (the file may grow while
    /// copied); returns the bytes copied. There is no free-space check before
    /// (std has no statvfs): a full disk fails the copy, and the caller deletes it.
    ///
    /// The copy is not synced here, on the connection's thread: that would
    /// put an fsync (up to 500 ms on an SD card) between Jeedom's request and
    /// its post, and make the connections after it wait too. The saver syncs
    /// it instead, with the journal write that accepts its request, before
    /// the `ok` (core/saver.rs).
    fn copy_bounded(&self, file: &mut File, dest: &Path) -> Result<u64, Refusal> {
        let limit = self.rules.max_size();
        let copied = create(dest).and_then(|mut out| {
            let mut bounded = io::Read::take(&mut *file, limit + 1);
            io::copy(&mut bounded, &mut out)
        });
        match copied {
            Ok(n) if n > limit => {
                let size = file.metadata().map_or(n, |m| m.len().max(n));
                Err(Refusal::TooLarge { size, limit })
            }
            Ok(n) => Ok(n),
            Err(e) if files::is_disk_full(&e) => {
                Err(Refusal::DiskFull(self.dir.display().to_string()))
            }
            Err(e) => Err(Refusal::Unreadable(e.to_string())),
        }
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

/// A new spool file, private, never an existing one (nor a planted symlink).
fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    fn tmp(name: &str) -> TestDir {
        TestDir::new(&format!("spool-{name}"))
    }

    fn spool_in(d: &Path, max: u64) -> Spool {
        let rules = FileRules::new(&[d.to_path_buf()], &[], &d.join("state.json"), max);
        Spool::open(d.join("spool"), rules).unwrap()
    }

    #[test]
    fn copies_survive_deletion_of_the_original() {
        let d = tmp("copy");
        let spool = spool_in(&d, 1000);
        let src = d.join("snap shot.jpg");
        fs::write(&src, b"jpegbytes").unwrap();
        let files = spool
            .store("k1", &[src.to_string_lossy().into_owned()])
            .unwrap();
        fs::remove_file(&src).unwrap();
        assert_eq!(files[0].name, "snap shot.jpg");
        assert_eq!(files[0].size, Some(9), "the size copied, checked at upload");
        assert_eq!(fs::read(&files[0].path).unwrap(), b"jpegbytes");
        spool.remove(&files);
        assert!(!Path::new(&files[0].path).exists());
    }

    #[test]
    fn missing_file_or_directory_leaves_nothing_behind() {
        let d = tmp("missing");
        let spool = spool_in(&d, 1000);
        let ok = d.join("ok.txt");
        fs::write(&ok, b"x").unwrap();
        let missing = d.join("never.jpg").to_string_lossy().into_owned();
        let srcs = [ok.to_string_lossy().into_owned(), missing];
        let e = spool.store("k2", &srcs).unwrap_err().to_string();
        assert!(e.contains("never.jpg"), "{e}");
        let sub = d.join("sub");
        fs::create_dir_all(&sub).unwrap();
        let e = spool
            .store("k3", &[sub.to_string_lossy().into_owned()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file (a directory)"), "{e}");
        assert_eq!(fs::read_dir(d.join("spool")).unwrap().count(), 0);
    }

    #[test]
    fn the_size_limit_is_checked_before_copying() {
        let d = tmp("limit");
        let spool = spool_in(&d, 1000);
        let big = d.join("big.bin");
        // Sparse: a copy would write it all, the check reads only its size.
        File::create(&big).unwrap().set_len(300_000_000).unwrap();
        let e = spool
            .store("k4", &[big.to_string_lossy().into_owned()])
            .unwrap_err();
        assert!(
            matches!(
                e.refusal,
                Refusal::TooLarge {
                    size: 300_000_000,
                    limit: 1000
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("--max-file-size"), "{e}");
        assert_eq!(fs::read_dir(d.join("spool")).unwrap().count(), 0);
        fs::write(&big, vec![7u8; 1000]).unwrap();
        let files = spool
            .store("k5", &[big.to_string_lossy().into_owned()])
            .unwrap();
        assert_eq!(
            fs::read(&files[0].path).unwrap().len(),
            1000,
            "at the limit: admitted"
        );
    }

    #[test]
    fn spooled_copies_are_never_sent_again() {
        let d = tmp("own");
        let spool = spool_in(&d, 1000);
        let src = d.join("a.jpg");
        fs::write(&src, b"a").unwrap();
        let files = spool
            .store("k6", &[src.to_string_lossy().into_owned()])
            .unwrap();
        let e = spool.store("k7", &[files[0].path.clone()]).unwrap_err();
        assert_eq!(e.refusal, Refusal::OwnFile);
    }
}
