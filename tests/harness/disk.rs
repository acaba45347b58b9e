//! A small tmpfs mounted for a test (a full disk on demand), unmounted when dropped.
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size mounted at a directory.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// `None` without the right to mount (CAP_SYS_ADMIN: a developer's
    /// account, a locked-down container); CI runs as root on a machine of
    /// its own, where a failed mount fails the test.
    pub fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        if !may_mount() {
            eprintln!("SKIPPED: mounting a small tmpfs needs CAP_SYS_ADMIN (root)");
            return None;
        }
        let opts = format!("size={size},mode=0700");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(at)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -t tmpfs on {}", at.display());
        Some(SmallDisk(at.to_path_buf()))
    }
}

/// True when this process holds CAP_SYS_ADMIN (bit 21 of `CapEff`).
fn may_mount() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    caps & (1 << 21) != 0
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
