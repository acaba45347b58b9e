//! What the disk sees: an ext4 image on a loop device (as root) whose block
//! device counts the bytes written, else `/proc/<pid>/io`; fsyncs counted by
//! `strace`, which can also stall them.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding the daemon's state, and how its writes are counted.
pub struct Disk {
    pub dir: PathBuf,
    /// `loopN` when the directory is an ext4 image mounted on it.
    device: Option<String>,
    mount: Option<PathBuf>,
    image: Option<PathBuf>,
}

fn run(prog: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(prog).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Disk {
    /// A fresh 256 MiB ext4 image mounted under `base`, or `base` itself.
    pub fn open(base: &Path) -> Disk {
        let plain = Disk {
            dir: base.to_path_buf(),
            device: None,
            mount: None,
            image: None,
        };
        let image = base.join("ext4.img");
        let mount = base.join("mnt");
        let img = image.to_string_lossy().to_string();
        let mnt = mount.to_string_lossy().to_string();
        let _ = std::fs::create_dir_all(&mount);
        if run("truncate", &["-s", "256M", &img]).is_none()
            || run("mkfs.ext4", &["-q", "-F", &img]).is_none()
        {
            return plain;
        }
        let Some(dev) = run("losetup", &["-f", "--show", &img]) else {
            return plain;
        };
        if run("mount", &[&dev, &mnt]).is_none() {
            let _ = run("losetup", &["-d", &dev]);
            return plain;
        }
        Disk {
            dir: mount.join("state"),
            device: Some(dev.trim_start_matches("/dev/").to_string()),
            mount: Some(mount),
            image: Some(image),
        }
    }

    /// How the bytes are counted, for the report.
    pub fn how(&self) -> String {
        match &self.device {
            Some(d) => format!("block device /dev/{d} (ext4 image, default mount options)"),
            None => "/proc/<pid>/io write_bytes (no loop device here)".into(),
        }
    }

    /// Bytes written so far: at the block device after flushing what the
    /// file system still holds, else by process `pid`.
    pub fn written(&self, pid: u32) -> u64 {
        match (&self.device, &self.mount) {
            (Some(dev), Some(mnt)) => {
                let _ = run("sync", &["-f", &mnt.to_string_lossy()]);
                let stat =
                    std::fs::read_to_string(format!("/sys/block/{dev}/stat")).unwrap_or_default();
                let sectors: u64 = stat
                    .split_whitespace()
                    .nth(6)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                sectors * 512
            }
            _ => {
                let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
                io.lines()
                    .find_map(|l| l.strip_prefix("write_bytes:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            }
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let (Some(dev), Some(mnt)) = (&self.device, &self.mount) {
            // Lazily: a daemon still dying must not leave the mount behind.
            let _ = run("umount", &["-l", &mnt.to_string_lossy()]);
            let _ = run("losetup", &["-d", &format!("/dev/{dev}")]);
        }
        if let Some(img) = &self.image {
            let _ = std::fs::remove_file(img);
        }
    }
}

/// Whether `strace` with seccomp filtering works here.
pub fn strace_works() -> bool {
    Command::new("strace")
        .args([
            "-f",
            "--seccomp-bpf",
            "-e",
            "trace=fsync",
            "-o",
            "/dev/null",
            "true",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `strace` counting fsync/fdatasync into `log`, optionally delaying each by `delay_ms`.
pub fn strace_wrapper(log: &Path, delay_ms: Option<u64>) -> Vec<String> {
    let mut w: Vec<String> = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "signal=none"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    w.extend(["-e".into(), "trace=fsync,fdatasync".into()]);
    if let Some(ms) = delay_ms {
        w.extend([
            "-e".into(),
            format!("inject=fsync,fdatasync:delay_exit={}", ms * 1000),
        ]);
    }
    w.extend(["-o".into(), log.to_string_lossy().to_string(), "--".into()]);
    w
}

/// fsync and fdatasync calls in a strace log so far.
pub fn syncs(log: &Path) -> u64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
        .count() as u64
}
