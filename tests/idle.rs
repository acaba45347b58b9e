//! Idle: a connected daemon with nothing to do sleeps instead of polling.
use crate::harness;
use crate::support;
use harness::stack::{Stack, T};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::fake_rc::FakeRcOptions;

/// Context switches (voluntary and not) of each live thread of `pid`, by
/// thread id and name: each one is a wake-up.
fn switches(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in dir.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        let count: u64 = ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
            .iter()
            .filter_map(|f| field(f).parse::<u64>().ok())
            .sum();
        let id = task.file_name().to_string_lossy().into_owned();
        out.insert(format!("{} {id}", field("Name:")), count);
    }
    out
}

/// Wake-ups per thread over one second (threads present at both ends).
fn one_second(pid: u32) -> BTreeMap<String, u64> {
    let before = switches(pid);
    std::thread::sleep(Duration::from_secs(1));
    let after = switches(pid);
    before
        .iter()
        .filter_map(|(t, b)| Some((t.clone(), after.get(t)?.saturating_sub(*b))))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn a_connected_idle_daemon_does_not_poll() {
    // Heartbeat 30 s and the fake's pings every 25 s: nothing is due for a while.
    let s = Stack::start_with("idle", FakeRcOptions::default(), &["--heartbeat", "30"]);
    s.wait_connected();
    // The start-up work (first deliveries to Jeedom, the state write) ends
    // within moments; then whole seconds must pass with at most one wake-up
    // (a timer of the core, a ping of the server). Polling threads wake up
    // several times every second and never get there.
    let deadline = Instant::now() + T;
    let mut last = BTreeMap::new();
    while Instant::now() < deadline {
        last = one_second(s.daemon.pid());
        if last.values().sum::<u64>() <= 1 {
            return;
        }
    }
    panic!("the idle daemon keeps waking up, per thread over the last second: {last:?}");
}
