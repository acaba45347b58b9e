//! A scratch directory for unit tests, fresh when made and removed when dropped.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `rcd-<name>-<pid>-<n>` under the system's temporary directory, resolved.
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rcd-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make the test directory");
        // Resolved (a temporary directory behind a symlink): the file rules
        // compare resolved paths.
        TestDir(std::fs::canonicalize(&dir).unwrap_or(dir))
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
