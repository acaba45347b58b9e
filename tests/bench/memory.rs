//! Memory: RSS idle, after a flood in one room, with 500 more rooms, and after a flood over all of them.
use crate::common::{all_seen, mib, next_seqs, settle, Fakes};
use crate::daemon::Daemon;
use crate::report::{num, Row};
use crate::{procfs, Config};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// Messages per burst of a flood: each burst reaches Jeedom before the next,
/// so the daemon's queue stays far below its limit.
const CHUNK: usize = 1000;

/// RSS after a flood, and how it moved.
struct Flood {
    after: (u64, u64),
    split: (u64, u64),
    rate: f64,
    samples: Vec<Value>,
    /// RSS change (KiB) from the second sample to the end.
    growth: f64,
    growth_from: u64,
    /// Size of the state file once the flood is over.
    state: u64,
}

impl Flood {
    fn json(&self) -> Value {
        json!({"rss_kib": self.after.0, "hwm_kib": self.after.1, "anonymous_kib": self.split.0,
               "file_kib": self.split.1, "messages_per_s": self.rate, "samples": self.samples,
               "growth_kib": self.growth, "growth_from_message": self.growth_from,
               "state_file_bytes": self.state})
    }
}

/// Posts `n` messages round-robin over `rids` in bursts of [`CHUNK`];
/// samples RSS ten times.
fn flood(f: &Fakes, d: &Daemon, rids: &[String], n: usize) -> Flood {
    let pid = d.pid();
    let mut samples = Vec::new();
    let t0 = Instant::now();
    let mut done = 0usize;
    while done < n {
        let k = CHUNK.min(n - done);
        flood_chunk(f, d, rids, done, k);
        done += k;
        if done.is_multiple_of((n / 10).max(CHUNK)) || done == n {
            let (rss, hwm) = procfs::rss_kib(pid);
            samples.push(json!({"messages": done, "rss_kib": rss, "hwm_kib": hwm}));
            println!("    {done:>7} messages: RSS {rss} KiB, peak {hwm} KiB");
        }
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    settle(Duration::from_secs(3));
    settled(d, n, rate, samples)
}

/// Messages `done..done + k` of a flood, delivered to Jeedom.
fn flood_chunk(f: &Fakes, d: &Daemon, rids: &[String], done: usize, k: usize) {
    let base = next_seqs(k);
    for i in 0..k {
        let rid = &rids[(done + i) % rids.len()];
        f.rc.post(rid, "alice", &format!("hello ~{}!", base + i as u64));
    }
    let mut next = base;
    if !f.marks.wait(Duration::from_secs(120), |x| {
        all_seen(&x.msg_to_jeedom, base, k, &mut next)
    }) {
        panic!("messages lost in the memory run; log:\n{}", d.log_tail());
    }
    f.reset();
}

/// The figures once the flood has settled. Growth is counted from the
/// second sample: the first still holds the start-up of the flood.
fn settled(d: &Daemon, n: usize, rate: f64, samples: Vec<Value>) -> Flood {
    let pid = d.pid();
    let after = procfs::rss_kib(pid);
    let split = procfs::rss_split_kib(pid);
    let pick = samples.get(1).or(samples.first());
    let first = pick.and_then(|s| s["rss_kib"].as_u64()).unwrap_or(0);
    let growth_from = pick.and_then(|s| s["messages"].as_u64()).unwrap_or(0);
    println!(
        "  {n} messages at {rate:.0}/s; 3 s later RSS {} KiB (anonymous {}, file-backed {}), peak {} KiB",
        after.0, split.0, split.1, after.1
    );
    Flood {
        after,
        split,
        rate,
        samples,
        growth: after.0 as f64 - first as f64,
        growth_from,
        state: state_bytes(d),
    }
}

fn state_bytes(d: &Daemon) -> u64 {
    std::fs::metadata(d.dir.join("state.json"))
        .map(|m| m.len())
        .unwrap_or(0)
}

fn signed(v: f64) -> String {
    if v >= 0.0 {
        format!("+{v:.0}")
    } else {
        format!("{v:.0}")
    }
}

/// What the memory run saw, phase by phase.
struct Run {
    n: usize,
    /// Rooms of the second flood, GENERAL included.
    rooms: usize,
    idle: (u64, u64),
    idle_split: (u64, u64),
    one: Flood,
    with_rooms: (u64, u64),
    many: Flood,
}

pub fn memory(cfg: &Config, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let f = Fakes::start();
    let d = f.connected_daemon(cfg, "bench-memory");
    let pid = d.pid();
    let idle = procfs::rss_kib(pid);
    let idle_split = procfs::rss_split_kib(pid);
    let n = cfg.memory_messages;
    println!(
        "\n== memory: idle RSS {} KiB (anonymous {}, file-backed {}), peak {} KiB",
        idle.0, idle_split.0, idle_split.1, idle.1
    );
    // 1. The default world: one room.
    println!("  {n} messages in one room");
    let one = flood(&f, &d, &["GENERAL".to_string()], n);
    // 2. 500 more rooms.
    let (rids, with_rooms) = add_rooms(cfg, &f, pid);
    let rooms = rids.len();
    // 3. Messages over every room.
    println!("  {n} messages over the {rooms} rooms");
    let many = flood(&f, &d, &rids, n);
    println!(
        "  state file: {} KiB after the one-room flood, {} KiB after the {rooms}-room one",
        one.state / 1024,
        many.state / 1024
    );
    let run = Run {
        n,
        rooms,
        idle,
        idle_split,
        one,
        with_rooms,
        many,
    };
    push_rows(&run, rows);
    details.insert("memory".into(), run_json(&run));
    d.stop();
}

/// Adds `cfg.rooms` rooms and waits for the daemon to report them all;
/// returns every room id, GENERAL first, and the RSS 3 s later.
fn add_rooms(cfg: &Config, f: &Fakes, pid: u32) -> (Vec<String>, (u64, u64)) {
    let mut rids = vec!["GENERAL".to_string()];
    for i in 0..cfg.rooms {
        rids.push(f.rc.add_room('c', &format!("bench-{i:03}"), &["jeedombot", "alice"]));
    }
    let want = cfg.rooms + 1;
    f.jeedom.wait_event(Duration::from_secs(120), "rooms", |e| {
        e["rooms"].as_array().is_some_and(|r| r.len() >= want)
    });
    settle(Duration::from_secs(3));
    let rooms = procfs::rss_kib(pid);
    println!(
        "  with {want} rooms: RSS {} KiB (peak {} KiB)",
        rooms.0, rooms.1
    );
    f.trim();
    (rids, rooms)
}

fn push_rows(r: &Run, rows: &mut Vec<Row>) {
    let (n, want) = (r.n, r.rooms);
    let peak = format!("peak {} MiB", num(mib(r.one.after.1)));
    let label = format!("RSS after {n} messages (1 room)");
    rows.push(flood_row("one_room_rss_mib", &label, &r.one, &peak));
    rows.push(
        Row::new(
            "rooms_rss_mib",
            &format!("RSS with {want} rooms"),
            mib(r.with_rooms.0),
            "MiB",
        )
        .note(format!("peak {} MiB", num(mib(r.with_rooms.1)))),
    );
    let state = format!("state file {} KiB", r.many.state / 1024);
    let label = format!("RSS after {n} more messages over {want} rooms");
    rows.push(flood_row("after_messages_rss_mib", &label, &r.many, &state));
    rows.push(Row::new(
        "after_messages_peak_mib",
        "peak RSS (VmHWM) over the whole memory run",
        mib(r.many.after.1),
        "MiB",
    ));
}

/// A flood's RSS against the 8 MiB target, with how much of it came after
/// the flood's start-up.
fn flood_row(key: &str, label: &str, fl: &Flood, more: &str) -> Row {
    Row::new(key, label, mib(fl.after.0), "MiB")
        .at_most(8.0)
        .note(format!(
            "{} KiB from message {} to the end; {more}",
            signed(fl.growth),
            fl.growth_from
        ))
}

fn run_json(r: &Run) -> Value {
    let (idle, split) = (r.idle, r.idle_split);
    json!({"idle_kib": {"rss": idle.0, "hwm": idle.1, "anonymous": split.0, "file": split.1},
           "messages": r.n,
           "one_room": r.one.json(),
           "rooms": r.rooms, "rooms_kib": {"rss": r.with_rooms.0, "hwm": r.with_rooms.1},
           "many_rooms": r.many.json()})
}
