//! CPU time and wake-ups of the connected daemon left idle, the cost it puts on a Jeedom box all day.
use crate::common::settle;
use crate::report::{num, Row};
use crate::{procfs, Config};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The process's counters at one moment.
struct Counters {
    /// utime + stime, 10 ms ticks.
    ticks: f64,
    /// schedstat, ns resolution.
    cpu: f64,
    switches: u64,
    by_thread: Vec<(String, u64)>,
}

impl Counters {
    fn read(pid: u32) -> Counters {
        let ticks = procfs::cpu_ticks_secs(pid);
        let (cpu, switches) = procfs::cpu_precise(pid);
        let by_thread = procfs::thread_switches(pid);
        Counters {
            ticks,
            cpu,
            switches,
            by_thread,
        }
    }
}

/// Wake-ups per second of each thread name, busiest first.
fn wakeups_by_thread(before: &Counters, after: &Counters, secs: f64) -> Vec<(String, f64)> {
    let mut by_name: HashMap<String, (u64, u64)> = HashMap::new();
    for (n, v) in &before.by_thread {
        by_name.entry(n.clone()).or_default().0 += v;
    }
    for (n, v) in &after.by_thread {
        by_name.entry(n.clone()).or_default().1 += v;
    }
    let mut out: Vec<(String, f64)> = by_name
        .into_iter()
        .map(|(n, (a, b))| (n, b.saturating_sub(a) as f64 / secs))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// What the idle wait showed.
struct Idle {
    secs: f64,
    cpu_s: f64,
    ticks_s: f64,
    switches: u64,
    by_thread: Vec<(String, f64)>,
}

impl Idle {
    fn per_min(&self) -> f64 {
        self.cpu_s * 60.0 / self.secs
    }

    fn ticks_per_min(&self) -> f64 {
        self.ticks_s * 60.0 / self.secs
    }

    fn wakeups(&self) -> f64 {
        self.switches as f64 / self.secs
    }
}

fn measure(pid: u32, idle_secs: u64) -> Idle {
    let before = Counters::read(pid);
    let t0 = Instant::now();
    settle(Duration::from_secs(idle_secs));
    let secs = t0.elapsed().as_secs_f64();
    let after = Counters::read(pid);
    Idle {
        secs,
        cpu_s: after.cpu - before.cpu,
        ticks_s: after.ticks - before.ticks,
        switches: after.switches - before.switches,
        by_thread: wakeups_by_thread(&before, &after, secs),
    }
}

pub fn idle_cpu(cfg: &Config, pid: u32, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    println!(
        "\n== idle CPU over {} s (connected, heartbeat 30 s, server ping 25 s)",
        cfg.idle_secs
    );
    let m = measure(pid, cfg.idle_secs);
    let (per_min, ticks_per_min, wakeups) = (m.per_min(), m.ticks_per_min(), m.wakeups());
    let shown: Vec<String> = m
        .by_thread
        .iter()
        .filter(|(_, w)| *w > 0.0)
        .map(|(n, w)| format!("{n} {w:.1}/s"))
        .collect();
    let shown = shown.join(", ");
    println!(
        "  CPU {per_min:.4} s/min (ticks: {ticks_per_min:.3} s/min), {wakeups:.1} wake-ups/s: {shown}"
    );
    rows.push(
        Row::new(
            "idle_cpu_s_per_min",
            "CPU idle while connected",
            per_min,
            "s/min",
        )
        .at_most(0.05)
        .note(format!(
            "over {} s; utime+stime {} s/min; {wakeups:.1} wake-ups/s ({shown})",
            cfg.idle_secs,
            num(ticks_per_min),
        )),
    );
    details.insert(
        "idle_cpu".into(),
        json!({"seconds": m.secs, "cpu_s": m.cpu_s, "ticks_s": m.ticks_s,
               "per_min": per_min, "ticks_per_min": ticks_per_min, "wakeups_per_s": wakeups,
               "wakeups_per_s_by_thread": m.by_thread}),
    );
}
