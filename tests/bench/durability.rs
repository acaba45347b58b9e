//! Durability without waiting (issue 12): latencies with a normal disk and
//! with every fsync stalled 300 ms, Jeedom's 200-send loop under the stall,
//! what reaches the disk per message, per send and during a Jeedom outage,
//! and RSS with 10,000 queued events.
use crate::common::{dur, jeedom_send, mib, next_seqs, ping, send_body, settle, Fakes, T};
use crate::daemon::{Daemon, Launch};
use crate::disk::{self, Disk};
use crate::report::{num, Row, Spread};
use crate::{harness, procfs, Config};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The stall of every durable write, as on a slow SD card.
const STALL_MS: u64 = 300;
/// Messages posted per second during the outage.
const OUTAGE_RATE: u64 = 10;
/// Queued events of the outage.
const QUEUED: usize = 10_000;

pub fn durability(cfg: &Config, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let f = Fakes::start();
    let strace = disk::strace_works();
    let base = harness::temp_dir("bench-durability");
    let how = if strace {
        "strace -e inject=fsync,fdatasync:delay_exit=300000"
    } else {
        "RCD_TEST_SYNC_DELAY_MS=300 (strace unavailable)"
    };
    println!("\n== durability: normal disk, then every fsync stalled {STALL_MS} ms ({how})");
    let n = if cfg.quick { 100 } else { 500 };
    let normal = latencies(&f, &spawn(cfg, &f, &base.join("normal"), None), n);
    let stalled_d = spawn(cfg, &f, &base.join("stalled"), Some(strace));
    let stalled = latencies(&f, &stalled_d, n);
    let looped = send_loop(&f, &stalled_d, 200);
    drop(stalled_d);
    f.reset();
    latency_rows(&normal, &stalled, looped, how, rows);
    details.insert(
        "durability_latency".into(),
        json!({"n": n, "stall": how, "normal": normal.json(), "stalled": stalled.json(),
               "loop_posted": looped.0, "loop_in_order": looped.1}),
    );
    writes(cfg, &f, &base, strace, rows, details);
}

/// A connected daemon with its state in `dir`; `stall`: Some(use strace).
fn spawn(cfg: &Config, f: &Fakes, dir: &Path, stall: Option<bool>) -> Daemon {
    let _ = std::fs::create_dir_all(dir);
    let mut how = Launch::default();
    match stall {
        Some(true) => how.wrapper = disk::strace_wrapper(&dir.join("strace.log"), Some(STALL_MS)),
        Some(false) => how
            .env
            .push(("RCD_TEST_SYNC_DELAY_MS".into(), STALL_MS.to_string())),
        None => {}
    }
    f.daemon_in(cfg, dir, &how)
}

/// Spans of the round trips, in ms.
struct Latencies {
    /// Message frame at the daemon -> event handed to Jeedom.
    inbound: Spread,
    /// Send request written -> post handed to the server.
    outbound: Spread,
    /// The same from the client's `connect` (as the bench measured until
    /// 2026-12-06: the TCP handshake and the client's own work included).
    from_connect: Spread,
    /// The daemon's part: the two above added up.
    daemon: Spread,
}

impl Latencies {
    fn json(&self) -> Value {
        json!({"inbound_ms": self.inbound.json(), "send_to_server_ms": self.outbound.json(),
               "send_to_server_from_connect_ms": self.from_connect.json(),
               "daemon_part_ms": self.daemon.json()})
    }
}

/// `n` bot round trips, one per 10 ms at most: message, event at Jeedom,
/// Jeedom's `send` (PHP-style, reply never read), post at the server.
fn latencies(f: &Fakes, d: &Daemon, n: usize) -> Latencies {
    let base = next_seqs(n);
    let (mut inbound, mut outbound, mut daemon) = (Vec::new(), Vec::new(), Vec::new());
    let mut from_connect = Vec::new();
    for s in base..base + n as u64 {
        let t = ping(f, s);
        wait(f, d, "message at Jeedom", |x| {
            x.msg_to_jeedom.contains_key(&s)
        });
        let sent = jeedom_send(d.port, &send_body("pong", s));
        sent.written.expect("write the request");
        drop(sent.conn);
        // The next round trip starts once Jeedom has acknowledged both
        // events, so that it never waits behind a POST, and once the reply's
        // echo and its room notification reached the daemon: the fake sends
        // its frames on 5 ms ticks, and would otherwise hand them over in one
        // chunk with the next message, whose figure would then include the
        // parsing of two frames a real server sends right away.
        wait(f, d, "reply at the server, events acknowledged", |x| {
            x.reply_to_rc.contains_key(&s)
                && x.msg_acked.contains_key(&s)
                && x.sent_acked.contains_key(&s)
                && x.reply_echoed.contains_key(&s)
        });
        let mut g = f.marks.lock();
        let down = g.msg_to_daemon.remove(&s).unwrap_or(t);
        let jd = g.msg_to_jeedom.remove(&s).unwrap_or(t);
        let rc = g.reply_to_rc.remove(&s).unwrap_or(t);
        g.reply_echoed.remove(&s);
        drop(g);
        inbound.push(dur(down, jd));
        outbound.push(dur(sent.writing, rc));
        from_connect.push(dur(sent.connecting, rc));
        daemon.push(dur(down, jd) + dur(sent.writing, rc));
        std::thread::sleep(Duration::from_millis(10).saturating_sub(t.elapsed()));
    }
    let l = Latencies {
        inbound: Spread::of(&mut inbound),
        outbound: Spread::of(&mut outbound),
        from_connect: Spread::of(&mut from_connect),
        daemon: Spread::of(&mut daemon),
    };
    println!(
        "  message -> Jeedom {}\n  send -> server {} (from connect: {})\n  daemon part {}",
        l.inbound.text(),
        l.outbound.text(),
        l.from_connect.text(),
        l.daemon.text()
    );
    f.reset();
    l
}

fn wait(f: &Fakes, d: &Daemon, what: &str, cond: impl FnMut(&crate::marks::Seen) -> bool) {
    if !f.marks.wait(T, cond) {
        panic!("timed out waiting for {what}; log:\n{}", d.log_tail());
    }
}

/// Jeedom's scenario loop: `n` sends back to back, one connection each,
/// replies never read. Returns (posted, posted in order).
fn send_loop(f: &Fakes, d: &Daemon, n: usize) -> (usize, bool) {
    let base = next_seqs(n);
    for s in base..base + n as u64 {
        let sent = jeedom_send(d.port, &send_body("loop", s));
        sent.written.expect("write the request");
        drop(sent.conn);
    }
    let all =
        |x: &crate::marks::Seen| (base..base + n as u64).all(|s| x.reply_to_rc.contains_key(&s));
    let _ = f.marks.wait(Duration::from_secs(120), all);
    let g = f.marks.lock();
    let mut posted: Vec<(Instant, u64)> = (base..base + n as u64)
        .filter_map(|s| g.reply_to_rc.get(&s).map(|t| (*t, s)))
        .collect();
    drop(g);
    posted.sort();
    let in_order = posted.windows(2).all(|w| w[0].1 < w[1].1);
    println!(
        "  loop of {n} sends under the stall: {} posted, in order: {in_order}",
        posted.len()
    );
    (posted.len(), in_order)
}

fn latency_rows(
    n: &Latencies,
    s: &Latencies,
    looped: (usize, bool),
    how: &str,
    rows: &mut Vec<Row>,
) {
    rows.push(
        Row::new(
            "dur_round_trip_daemon_p50_ms",
            "round trip, daemon part p50 (normal disk)",
            n.daemon.p50,
            "ms",
        )
        .at_most(1.0)
        .note(format!(
            "message -> Jeedom p50 {} + send -> server p50 {}",
            num(n.inbound.p50),
            num(n.outbound.p50)
        )),
    );
    rows.push(
        Row::new(
            "dur_round_trip_daemon_p50_stalled_ms",
            "round trip, daemon part p50 (fsync stalled 300 ms)",
            s.daemon.p50,
            "ms",
        )
        .note(format!("p99 {}; {how}", num(s.daemon.p99))),
    );
    rows.push(
        Row::new(
            "dur_send_to_server_p50_ms",
            "send -> server p50 (normal disk)",
            n.outbound.p50,
            "ms",
        )
        .note(format!(
            "p99 {}, max {}; from the client's connect: p50 {}",
            num(n.outbound.p99),
            num(n.outbound.max),
            num(n.from_connect.p50)
        )),
    );
    rows.push(
        Row::new(
            "dur_send_to_server_stalled_ms",
            "send -> server p50 (fsync stalled 300 ms)",
            s.outbound.p50,
            "ms",
        )
        .at_most(50.0)
        .note(format!(
            "p99 {}, max {}",
            num(s.outbound.p99),
            num(s.outbound.max)
        )),
    );
    rows.push(
        Row::new(
            "dur_loop_posted",
            "200-send loop under the stall: posted",
            looped.0 as f64,
            "",
        )
        .at_least(200.0)
        .note(format!(
            "back to back, one connection each, replies never read; in order: {}",
            looped.1
        )),
    );
}

/// What the write phases measured.
struct Writes {
    how: String,
    k: usize,
    strace: bool,
    message: (u64, u64),
    send: (u64, u64),
    /// KiB/s, fsyncs/s, note.
    outage: (f64, f64, String),
    rss_queued_kib: u64,
}

impl Writes {
    fn per(&self, v: u64) -> f64 {
        v as f64 / self.k as f64
    }

    /// fsync counts need strace.
    fn syncs(&self, v: f64) -> f64 {
        if self.strace {
            v
        } else {
            f64::NAN
        }
    }

    fn json(&self) -> Value {
        json!({"counted_at": self.how, "messages": self.k, "sends": self.k,
               "message_bytes": self.message.0, "message_fsyncs": self.message.1,
               "send_bytes": self.send.0, "send_fsyncs": self.send.1,
               "outage_kib_per_s": self.outage.0, "outage_fsyncs_per_s": self.outage.1,
               "outage_note": self.outage.2, "rss_queued_kib": self.rss_queued_kib,
               "rss_during_64mib_upload": "measured by the upload work"})
    }
}

/// Bytes and fsyncs per message, per send, and per second of an outage;
/// RSS with 10,000 queued events.
fn writes(
    cfg: &Config,
    f: &Fakes,
    base: &Path,
    strace: bool,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let disk = Disk::open(base);
    let _ = std::fs::create_dir_all(&disk.dir);
    let log = disk.dir.join("strace.log");
    let mut how = Launch::default();
    if strace {
        how.wrapper = disk::strace_wrapper(&log, None);
    }
    println!("\n== durability: writes, counted at the {}", disk.how());
    let d = f.daemon_in(cfg, &disk.dir, &how);
    let pid = d.daemon_pid();
    let k = if cfg.quick { 8 } else { 30 };
    let counter = |what: &mut dyn FnMut()| {
        let (b0, s0) = (disk.written(pid), disk::syncs(&log));
        what();
        (disk.written(pid) - b0, disk::syncs(&log) - s0)
    };
    let message = counter(&mut || incoming(f, &d, k));
    let send = counter(&mut || sends(f, &d, k));
    fill_queue(f, &d);
    let rss_queued_kib = procfs::rss_kib(pid).0;
    println!("  10,000 events queued: RSS {rss_queued_kib} KiB");
    let outage = outage(cfg, f, &disk, &log, pid);
    d.stop();
    let w = Writes {
        how: disk.how(),
        k,
        strace,
        message,
        send,
        outage,
        rss_queued_kib,
    };
    write_rows(&w, rows);
    details.insert("durability_writes".into(), w.json());
}

fn write_rows(w: &Writes, rows: &mut Vec<Row>) {
    let kib = |b: u64| w.per(b) / 1024.0;
    let (k, how) = (w.k, &w.how);
    println!(
        "  per message: {} KiB, {} fsyncs; per send: {} KiB, {} fsyncs",
        num(kib(w.message.0)),
        num(w.syncs(w.per(w.message.1))),
        num(kib(w.send.0)),
        num(w.syncs(w.per(w.send.1)))
    );
    let row = Row::new;
    rows.push(
        row(
            "dur_kib_per_message",
            "disk writes per incoming message (1 s apart)",
            kib(w.message.0),
            "KiB",
        )
        .at_most(8.0)
        .note(format!("{k} messages, each acknowledged by Jeedom; {how}")),
    );
    let syncs = w.syncs(w.per(w.message.1));
    rows.push(row(
        "dur_fsyncs_per_message",
        "fsyncs per incoming message",
        syncs,
        "",
    ));
    rows.push(
        row(
            "dur_kib_per_send",
            "disk writes per isolated send",
            kib(w.send.0),
            "KiB",
        )
        .at_most(16.0)
        .note(format!("{k} sends, 1 s apart, each waiting for its ok")),
    );
    let syncs = w.syncs(w.per(w.send.1));
    rows.push(row(
        "dur_fsyncs_per_send",
        "fsyncs per isolated send",
        syncs,
        "",
    ));
    rows.push(
        row(
            "dur_outage_kib_per_s",
            "disk writes per second, Jeedom down, 10,000 queued",
            w.outage.0,
            "KiB/s",
        )
        .at_most(64.0)
        .note(w.outage.2.clone()),
    );
    let syncs = w.syncs(w.outage.1);
    rows.push(row(
        "dur_outage_fsyncs_per_s",
        "fsyncs per second, Jeedom down",
        syncs,
        "/s",
    ));
    let rss = mib(w.rss_queued_kib);
    rows.push(
        row(
            "rss_queued_10000_mib",
            "RSS with 10,000 queued events",
            rss,
            "MiB",
        )
        .at_most(16.0),
    );
}

/// `k` messages 1 s apart, each acknowledged by Jeedom.
fn incoming(f: &Fakes, d: &Daemon, k: usize) {
    let base = next_seqs(k);
    for s in base..base + k as u64 {
        let t = ping(f, s);
        wait(f, d, "message acknowledged", |x| {
            x.msg_acked.contains_key(&s)
        });
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    f.reset();
}

/// `k` sends 1 s apart, each waiting for its ok and its `sent` event.
fn sends(f: &Fakes, d: &Daemon, k: usize) {
    let base = next_seqs(k);
    for s in base..base + k as u64 {
        let t = Instant::now();
        let r = d.request(send_body("isolated", s));
        assert_eq!(r["ok"], true, "{r}");
        wait(f, d, "sent acknowledged", |x| x.sent_acked.contains_key(&s));
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    f.reset();
}

/// Jeedom goes down and 10,000 messages are queued.
fn fill_queue(f: &Fakes, d: &Daemon) {
    f.jeedom.set_down(true);
    let base = next_seqs(QUEUED);
    let seqs: Vec<u64> = (base..base + QUEUED as u64).collect();
    for chunk in seqs.chunks(500) {
        for s in chunk {
            f.rc.post("GENERAL", "alice", &format!("outage ~{s}!"));
        }
        let last = chunk[chunk.len() - 1];
        wait(f, d, "messages at the daemon", |x| {
            x.msg_to_daemon.contains_key(&last)
        });
        f.trim();
    }
    let queued = || {
        let status = d.request(json!({"action": "status"}));
        status["queues"]["events"].as_u64().unwrap_or(0)
    };
    let deadline = Instant::now() + T;
    while queued() < QUEUED as u64 && Instant::now() < deadline {
        settle(Duration::from_millis(50));
    }
    settle(Duration::from_secs(2));
}

/// Size of the journal files in `dir`.
fn journal_len(dir: &Path) -> u64 {
    ["state.json.journal", "state.json.journal.new"]
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).map_or(0, |m| m.len()))
        .sum()
}

/// Messages at [`OUTAGE_RATE`]/s while Jeedom is down: (KiB/s, fsyncs/s, note).
fn outage(cfg: &Config, f: &Fakes, disk: &Disk, log: &Path, pid: u32) -> (f64, f64, String) {
    let secs = if cfg.quick { 15 } else { 60 };
    let (b0, s0, j0) = (disk.written(pid), disk::syncs(log), journal_len(&disk.dir));
    let t0 = Instant::now();
    let mut i = 0u32;
    while t0.elapsed() < Duration::from_secs(secs) {
        f.rc.post("GENERAL", "alice", &format!("during the outage {i}"));
        i += 1;
        let next = Duration::from_millis(1000 / OUTAGE_RATE) * i;
        std::thread::sleep(next.saturating_sub(t0.elapsed()));
    }
    let el = t0.elapsed().as_secs_f64();
    let (b1, s1, j1) = (disk.written(pid), disk::syncs(log), journal_len(&disk.dir));
    let state = std::fs::metadata(disk.dir.join("state.json")).map_or(0, |m| m.len());
    let kib_s = (b1 - b0) as f64 / 1024.0 / el;
    let syncs_s = (s1 - s0) as f64 / el;
    let note = format!(
        "{OUTAGE_RATE} messages/s for {secs} s; journal grew {} KiB/s, state file {} KiB: \
         a fold (the state written whole) comes when the journal outgrows it, about as much \
         again amortized",
        num(j1.saturating_sub(j0) as f64 / 1024.0 / el),
        state / 1024
    );
    println!(
        "  outage: {} KiB/s, {} fsyncs/s; {note}",
        num(kib_s),
        num(syncs_s)
    );
    f.jeedom.set_down(false);
    (kib_s, syncs_s, note)
}
