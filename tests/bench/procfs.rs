//! Memory and CPU of a process from /proc.
use std::fs;
use std::process::Command;

/// The number after `name` on the first line starting with it (`status`
/// and `smaps_rollup` both write `Name:   1234 kB`); 0 when absent.
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Voluntary plus involuntary context switches in a thread's `status`.
fn switches(status: &str) -> u64 {
    status
        .lines()
        .filter(|l| l.contains("ctxt_switches:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// `VmRSS` and `VmHWM` in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (field(&text, "VmRSS:"), field(&text, "VmHWM:"))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
pub fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of the whole process, in seconds (tick resolution).
pub fn cpu_ticks_secs(pid: u32) -> f64 {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name is in parentheses and may hold spaces: count after ')'.
    let after = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / clk_tck()
}

/// On-CPU time of the live threads in seconds (nanosecond resolution, from
/// `/proc/<pid>/task/*/schedstat`), and their voluntary + involuntary context switches.
pub fn cpu_precise(pid: u32) -> (f64, u64) {
    let mut ns = 0u64;
    let mut total = 0u64;
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0.0, 0);
    };
    for t in dir.flatten() {
        let p = t.path();
        if let Ok(s) = fs::read_to_string(p.join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(s) = fs::read_to_string(p.join("status")) {
            total += switches(&s);
        }
    }
    (ns as f64 / 1e9, total)
}

/// Per-thread context switches: (thread name, switches).
pub fn thread_switches(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in dir.flatten() {
        let p = t.path();
        let name = fs::read_to_string(p.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let s = fs::read_to_string(p.join("status")).unwrap_or_default();
        out.push((name, switches(&s)));
    }
    out.sort();
    out
}

/// Number of threads.
pub fn threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// From `/proc/<pid>/smaps_rollup`: (anonymous RSS, file-backed RSS) in KiB.
pub fn rss_split_kib(pid: u32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let rss = field(&text, "Rss:");
    let anon = field(&text, "Anonymous:");
    (anon, rss.saturating_sub(anon))
}
