//! Endurance (issue 6): for a set time, messages flow both ways while faults
//! are injected at random: the Rocket.Chat connection dropped or silenced,
//! the fake server restarted or down, Jeedom failing, hanging or closing,
//! the daemon killed with `kill -9` and restarted. At the end: every message
//! posted by a person reached Jeedom exactly once and in order per room,
//! every accepted `send` was posted exactly once (and in order), the state
//! file is valid, RSS stayed bounded.
//!
//! - `cargo test --test endurance` runs the short version (about 20 s), also
//!   part of `cargo test`.
//! - `RCD_ENDURANCE_SECS=300 cargo test --release --test endurance -- --ignored --nocapture`
//!   runs the long one (default 300 s).
//! - `RCD_SEED=<n>` replays a run (the seed is printed at the start).
//!
//! After a `kill -9`, messages Jeedom acknowledged after the daemon's last
//! state write (at most one `--cycle`) are delivered again marked
//! `"replay": true`; Jeedom skips a replay whose id it has handled, and so
//! does this test's Jeedom. Any re-delivery without the mark, or a mark with
//! no kill before it, fails the test.
mod harness;
mod support;

use harness::{Daemon, APIKEY};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::fake_jeedom::{FakeJeedom, JeedomMode};
use support::fake_rc::{FakeRcOptions, FakeRocketChat, BOT_ID};

/// Largest RSS accepted at any time (the daemon's targets are 4 and 8 MiB
/// with far more traffic; this is a bound, not a target).
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// xorshift64*: small, seeded, good enough to pick faults.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    DropConnections,
    Silence,
    RestartServer,
    ServerDown,
    JeedomStatus500,
    JeedomHang,
    JeedomClose,
    Kill9,
}

const FAULTS: [Fault; 8] = [
    Fault::DropConnections,
    Fault::Silence,
    Fault::RestartServer,
    Fault::ServerDown,
    Fault::JeedomStatus500,
    Fault::JeedomHang,
    Fault::JeedomClose,
    Fault::Kill9,
];

/// A message posted by a person.
#[derive(Debug, Clone)]
struct Posted {
    id: String,
    rid: String,
    n: u64,
    /// Seconds since the start of the run.
    at: f64,
}

/// The outcome of a `send` request on the command socket.
#[derive(Debug, Clone)]
struct SendTry {
    n: u64,
    accepted: bool,
    error: String,
}

/// Where the daemon was killed in Jeedom's record.
#[derive(Debug, Clone)]
struct KillMark {
    /// Batches Jeedom had accepted at that moment.
    batches: usize,
}

/// Room targets of the `send` requests and the room id each resolves to.
const SEND_ROOMS: [&str; 3] = ["GENERAL", "#ops", "@alice"];

fn seed() -> u64 {
    match std::env::var("RCD_SEED") {
        Ok(s) => s.trim().parse().expect("RCD_SEED must be a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One `send` request as Jeedom would (we read the reply to know if it was accepted).
fn send_request(port: u16, room: &str, n: u64) -> Result<Value, String> {
    let body = json!({"apikey": APIKEY, "action": "send", "room": room,
        "message": format!("reply s{n}"), "ref": format!("s{n}")});
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(body.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    serde_json::from_str(out.trim()).map_err(|e| format!("reply {out:?}: {e}"))
}

/// `{"$date": ms}` or a number.
fn ts_ms(v: &Value) -> i64 {
    v["$date"].as_i64().or_else(|| v.as_i64()).unwrap_or(0)
}

struct Run {
    secs: u64,
    /// Pause between two faults, ms.
    gap: (u64, u64),
    /// How long a timed fault lasts, ms.
    hold: (u64, u64),
    /// Pause between two posts of a person, ms.
    post_gap: (u64, u64),
    /// Pause between two `send` requests, ms.
    send_gap: (u64, u64),
    /// Longest wait for everything to arrive once the faults stop.
    drain: Duration,
}

fn endurance(run: Run) {
    let seed = seed();
    println!(
        "endurance: {} s, seed {seed} (replay with RCD_SEED={seed})",
        run.secs
    );
    let mut rng = Rng::new(seed);
    let rc = Arc::new(FakeRocketChat::start(FakeRcOptions::default()));
    let jeedom = Arc::new(FakeJeedom::start(APIKEY));
    let ops = rc.add_room('c', "ops", &["jeedombot", "alice", "bob"]);
    let dm = rc.open_direct("alice", "jeedombot");
    let rooms = [
        ("GENERAL".to_string(), "alice"),
        (ops.clone(), "bob"),
        (dm.clone(), "alice"),
    ];

    let dir = harness::temp_dir("endurance");
    let (url, cb) = (rc.url(), jeedom.url());
    let mut daemon = Daemon::start_in(
        &dir,
        &[
            "--url",
            &url,
            "--callback",
            &cb,
            "--user",
            "jeedombot",
            "--password",
            "s3cret",
            "--heartbeat",
            "1",
        ],
    );
    let port = daemon.port;
    let state_path = daemon.state_path.clone();
    rc.wait_bot_listening(Duration::from_secs(20));
    jeedom.wait_event(Duration::from_secs(20), "rooms", |e| {
        e["rooms"].as_array().is_some_and(|r| r.len() >= 3)
    });

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let pid = Arc::new(AtomicU32::new(daemon.pid()));
    let max_rss = Arc::new(AtomicU64::new(0));
    let posted: Arc<Mutex<Vec<Posted>>> = Arc::default();
    let sends: Arc<Mutex<Vec<SendTry>>> = Arc::default();

    // People post, at random, in the three rooms.
    let poster = {
        let (rc, stop, posted) = (rc.clone(), stop.clone(), posted.clone());
        let mut r = Rng::new(rng.next());
        let rooms = rooms.clone();
        let gap = run.post_gap;
        let t0 = started;
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let (rid, who) = &rooms[r.range(0, 2) as usize];
                n += 1;
                let text = if *rid == rooms[2].0 {
                    format!("e{n}")
                } else {
                    format!("@jeedombot e{n}")
                };
                let id = rc.post(rid, who, &text);
                posted.lock().unwrap().push(Posted {
                    id,
                    rid: rid.clone(),
                    n,
                    at: t0.elapsed().as_secs_f64(),
                });
                thread::sleep(r.ms(gap.0, gap.1));
            }
        })
    };
    // Jeedom sends, one request at a time, like a scenario.
    let sender = {
        let (stop, sends) = (stop.clone(), sends.clone());
        let mut r = Rng::new(rng.next());
        let gap = run.send_gap;
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let room = SEND_ROOMS[r.range(0, 2) as usize];
                let (accepted, error) = match send_request(port, room, n) {
                    Ok(v) if v["ok"] == true => (true, String::new()),
                    Ok(v) => (false, v.to_string()),
                    Err(e) => (false, e),
                };
                sends.lock().unwrap().push(SendTry { n, accepted, error });
                thread::sleep(r.ms(gap.0, gap.1));
            }
        })
    };
    // RSS of whichever daemon runs.
    let sampler = {
        let (stop, pid, max_rss) = (stop.clone(), pid.clone(), max_rss.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                max_rss.fetch_max(rss_kib(pid.load(Ordering::SeqCst)), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // Faults: a shuffled deck of every kind, dealt again when empty, so that
    // even a short run injects each kind.
    let mut injected: BTreeMap<String, usize> = BTreeMap::new();
    let mut timeline: Vec<(f64, f64, Fault)> = Vec::new();
    let mut kills: Vec<KillMark> = Vec::new();
    let mut deck: Vec<Fault> = Vec::new();
    let end = Instant::now() + Duration::from_secs(run.secs);
    while Instant::now() < end {
        thread::sleep(rng.ms(run.gap.0, run.gap.1));
        if deck.is_empty() {
            deck = FAULTS.to_vec();
            for i in (1..deck.len()).rev() {
                let j = rng.range(0, i as u64) as usize;
                deck.swap(i, j);
            }
        }
        let fault = deck.pop().unwrap_or(Fault::DropConnections);
        let hold = rng.ms(run.hold.0, run.hold.1);
        *injected.entry(format!("{fault:?}")).or_default() += 1;
        let fault_start = started.elapsed().as_secs_f64();
        match fault {
            Fault::DropConnections => rc.drop_connections(),
            Fault::Silence => {
                // Long enough for the daemon's heartbeat (1 s, then 1 s more) to
                // declare the link dead. The fake drops the frames it does not
                // send while silent, and holds HTTP requests (a reconnection's
                // handshake) forever; a real server cannot drop frames on a live
                // connection, and answers once it is back: so no connection
                // survives the silence (else a message dropped while the link
                // stayed up would be lost for good, and a held handshake costs
                // the daemon its 10 s connect timeout).
                rc.set_silent(true);
                thread::sleep(hold.max(Duration::from_millis(2500)));
                rc.restart();
                rc.set_silent(false);
            }
            Fault::RestartServer => rc.restart(),
            Fault::ServerDown => {
                rc.set_down(true);
                thread::sleep(hold);
                rc.set_down(false);
            }
            Fault::JeedomStatus500 | Fault::JeedomHang | Fault::JeedomClose => {
                let mode = match fault {
                    Fault::JeedomStatus500 => JeedomMode::Status(500),
                    Fault::JeedomHang => JeedomMode::Hang,
                    _ => JeedomMode::Close,
                };
                jeedom.set_mode(mode);
                thread::sleep(hold);
                jeedom.set_mode(JeedomMode::Ok);
            }
            Fault::Kill9 => {
                daemon.kill9();
                // A POST the daemon finished sending is recorded by the fake within
                // a few ms (its accept loop polls every 5 ms): count it before the kill.
                thread::sleep(Duration::from_millis(100));
                kills.push(KillMark {
                    batches: jeedom.batches().len(),
                });
                thread::sleep(rng.ms(0, 500));
                daemon.restart();
                pid.store(daemon.pid(), Ordering::SeqCst);
            }
        }
        timeline.push((fault_start, started.elapsed().as_secs_f64(), fault));
    }
    stop.store(true, Ordering::SeqCst);
    poster.join().expect("poster");
    sender.join().expect("sender");
    sampler.join().expect("sampler");
    rc.set_silent(false);
    rc.set_down(false);
    jeedom.set_mode(JeedomMode::Ok);

    // Drain: every posted message at Jeedom, every accepted send posted.
    let posted = posted.lock().unwrap().clone();
    let sends = sends.lock().unwrap().clone();
    let accepted: Vec<u64> = sends.iter().filter(|s| s.accepted).map(|s| s.n).collect();
    let bot_replies = |rc: &FakeRocketChat| -> Vec<(u64, String, i64)> {
        let w = rc.shared().world();
        w.messages
            .iter()
            .filter(|m| m["u"]["_id"] == BOT_ID)
            .filter_map(|m| {
                let n = m["msg"].as_str()?.strip_prefix("reply s")?.parse().ok()?;
                Some((n, m["_id"].as_str()?.to_string(), ts_ms(&m["ts"])))
            })
            .collect()
    };
    let want_ids: HashSet<&str> = posted.iter().map(|p| p.id.as_str()).collect();
    let drain_start = Instant::now();
    let drained = loop {
        let got: HashSet<String> = jeedom
            .events_of_type("message")
            .iter()
            .filter_map(|e| e["id"].as_str().map(String::from))
            .collect();
        let replies: HashSet<u64> = bot_replies(&rc).iter().map(|r| r.0).collect();
        let msgs_done = want_ids.iter().all(|id| got.contains(*id));
        let sends_done = accepted.iter().all(|n| replies.contains(n));
        if msgs_done && sends_done {
            break true;
        }
        if std::env::var_os("RCD_ENDURANCE_TIMELINE").is_some() {
            println!(
                "  drain {:.1} s: messages {msgs_done}, sends {sends_done}",
                drain_start.elapsed().as_secs_f64()
            );
        }
        if drain_start.elapsed() > run.drain {
            break false;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let drain_took = drain_start.elapsed();
    // Let the last `sent` events and the state settle, then a clean stop.
    thread::sleep(Duration::from_millis(700));
    daemon.sigterm();
    let status = daemon.wait_exit(Duration::from_secs(5));

    // ---- checks
    let events = jeedom.events();
    let batches = jeedom.batches();
    // Batch index of each event, to place deliveries relative to the kills.
    let mut batch_of = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        batch_of.extend(std::iter::repeat_n(i, b.len()));
    }
    let by_id: HashMap<&str, &Posted> = posted.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut deliveries: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut unexpected = 0usize;
    for (i, e) in events.iter().enumerate() {
        if e["type"] != "message" {
            continue;
        }
        let id = e["id"].as_str().unwrap_or_default();
        match by_id.get(id) {
            Some(p) => deliveries.entry(p.id.as_str()).or_default().push(i),
            None => unexpected += 1,
        }
    }
    let lost: Vec<&Posted> = posted
        .iter()
        .filter(|p| !deliveries.contains_key(p.id.as_str()))
        .collect();
    // Jeedom handles each message once: a re-delivery marked `replay` (the
    // daemon crashed before writing down what Jeedom acknowledged) is skipped
    // because its id was handled. A re-delivery without the mark is a
    // duplicate; a mark with no kill -9 in between is a daemon bug.
    let (mut replays, mut dup, mut bad_replays) = (Vec::new(), Vec::new(), Vec::new());
    for (id, at) in &deliveries {
        for pair in at.windows(2) {
            let (first, again) = (batch_of[pair[0]], batch_of[pair[1]]);
            let p = by_id[id];
            let marked = events[pair[1]]["replay"] == true;
            let kill = kills
                .iter()
                .position(|k| first < k.batches && k.batches <= again);
            let text = format!("e{} in {}", p.n, p.rid);
            match (marked, kill) {
                (true, Some(k)) => replays.push(format!("{text} after kill -9 #{}", k + 1)),
                (true, None) => bad_replays.push(text),
                (false, _) => dup.push(text),
            }
        }
    }
    // Order per room, on first deliveries.
    let mut first_at: Vec<(usize, &Posted)> = deliveries
        .iter()
        .map(|(id, at)| (at[0], by_id[id]))
        .collect();
    first_at.sort_by_key(|(i, _)| *i);
    let mut last_n: HashMap<&str, u64> = HashMap::new();
    let mut out_of_order = Vec::new();
    for (_, p) in &first_at {
        let last = last_n.entry(p.rid.as_str()).or_insert(0);
        if p.n < *last {
            out_of_order.push(format!("e{} after e{} in {}", p.n, last, p.rid));
        }
        *last = (*last).max(p.n);
    }
    // Sends.
    let replies = bot_replies(&rc);
    let mut posted_count: HashMap<u64, usize> = HashMap::new();
    for (n, _, _) in &replies {
        *posted_count.entry(*n).or_default() += 1;
    }
    let sends_lost: Vec<u64> = accepted
        .iter()
        .copied()
        .filter(|n| !posted_count.contains_key(n))
        .collect();
    let sends_dup: Vec<u64> = posted_count
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| *n)
        .collect();
    let accepted_set: HashSet<u64> = accepted.iter().copied().collect();
    let posted_unacked = posted_count
        .keys()
        .filter(|n| !accepted_set.contains(n))
        .count();
    let mut in_order = replies.clone();
    in_order.sort_by_key(|r| r.2);
    let sends_out_of_order = in_order.windows(2).filter(|w| w[1].0 < w[0].0).count();
    // `sent` events: Jeedom skips a marked one whose ref it has handled.
    let mut sent_refs: HashSet<String> = HashSet::new();
    let (mut sent_dup, mut sent_replays) = (0usize, 0usize);
    for e in events.iter().filter(|e| e["type"] == "sent") {
        let fresh = sent_refs.insert(e["ref"].as_str().unwrap_or_default().to_string());
        match (fresh, e["replay"] == true) {
            (true, _) => {}
            (false, true) => sent_replays += 1,
            (false, false) => sent_dup += 1,
        }
    }
    let refused: BTreeMap<String, usize> =
        sends
            .iter()
            .filter(|s| !s.accepted)
            .fold(BTreeMap::new(), |mut m, s| {
                let e: String = s.error.chars().take(60).collect();
                *m.entry(e).or_default() += 1;
                m
            });
    // State file.
    let state_text = std::fs::read_to_string(&state_path).unwrap_or_default();
    let state: Result<rocketchatd::state::State, _> = serde_json::from_str(&state_text);
    let state_ok = match &state {
        Ok(s) => {
            let (_, loaded) = rocketchatd::state::load(
                &state_path,
                &s.server_url,
                s.login.as_deref().unwrap_or(""),
            );
            loaded == rocketchatd::state::Loaded::Resumed
        }
        Err(_) => false,
    };
    let (outbox_left, events_left) = state
        .as_ref()
        .map(|s| (s.outbox.len(), s.events.len()))
        .unwrap_or((usize::MAX, usize::MAX));
    let faults_total: usize = injected.values().sum();

    println!("---- endurance results (seed {seed}, {} s)", run.secs);
    println!("faults injected: {faults_total} {injected:?}");
    println!(
        "messages person -> Jeedom: posted {}, handled {}, lost {}, duplicated {}, \
         out of order {}, unexpected {}; re-delivered as replays after kill -9 (skipped by id) {}, \
         replays without a kill {}",
        posted.len(),
        deliveries.len(),
        lost.len(),
        dup.len(),
        out_of_order.len(),
        unexpected,
        replays.len(),
        bad_replays.len()
    );
    for d in &replays {
        println!("  replay: {d}");
    }
    println!(
        "sends Jeedom -> Rocket.Chat: tried {}, accepted {}, posted {} (of which {} without an ok), \
         lost {}, duplicated {}, out of order {}; sent events duplicated {} (and {} replays skipped)",
        sends.len(),
        accepted.len(),
        posted_count.len(),
        posted_unacked,
        sends_lost.len(),
        sends_dup.len(),
        sends_out_of_order,
        sent_dup,
        sent_replays
    );
    println!("  not accepted: {refused:?}");
    println!(
        "daemon: {} kill -9, final SIGTERM exit {:?}, max RSS {} KiB, drained in {:.1} s{}",
        kills.len(),
        status.code(),
        max_rss.load(Ordering::SeqCst),
        drain_took.as_secs_f64(),
        if drained { "" } else { " (NOT drained)" }
    );
    println!(
        "state file: {} bytes, valid {state_ok}, outbox {outbox_left}, undelivered events {events_left}",
        state_text.len()
    );

    let during = |at: f64| -> String {
        let f: Vec<String> = timeline
            .iter()
            .filter(|(a, b, _)| at >= a - 0.5 && at <= b + 2.0)
            .map(|(a, b, f)| format!("{f:?} {a:.2}-{b:.2}s"))
            .collect();
        f.join(", ")
    };
    for p in &lost {
        println!(
            "  lost: e{} in {} posted at {:.2} s, near: {}",
            p.n,
            p.rid,
            p.at,
            during(p.at)
        );
    }
    for o in &out_of_order {
        println!("  out of order: {o}");
    }
    if std::env::var_os("RCD_ENDURANCE_LOG").is_some() {
        println!("---- daemon log (last incarnation)\n{}", daemon.log_text());
    }
    if std::env::var_os("RCD_ENDURANCE_TIMELINE").is_some() {
        for (a, b, f) in &timeline {
            println!("  fault {f:?} {a:.2}-{b:.2} s");
        }
    }
    let log = || daemon.log_text();
    assert!(
        lost.is_empty(),
        "lost messages: {:?}",
        lost.iter()
            .map(|p| format!("e{} in {}", p.n, p.rid))
            .collect::<Vec<_>>()
    );
    assert!(
        dup.is_empty(),
        "duplicates (not marked as replays): {dup:?}"
    );
    assert!(
        bad_replays.is_empty(),
        "marked as replays with no kill -9 before: {bad_replays:?}"
    );
    assert!(out_of_order.is_empty(), "out of order: {out_of_order:?}");
    assert_eq!(unexpected, 0, "message events nobody posted");
    assert!(
        sends_lost.is_empty(),
        "accepted sends never posted: {sends_lost:?}"
    );
    assert!(sends_dup.is_empty(), "sends posted twice: {sends_dup:?}");
    assert_eq!(sends_out_of_order, 0, "sends posted out of order");
    assert_eq!(
        sent_dup, 0,
        "`sent` events repeated without the replay mark"
    );
    assert_eq!(
        status.code(),
        Some(0),
        "final SIGTERM exit; log:\n{}",
        log()
    );
    assert!(state_ok, "state file invalid: {state_text}");
    assert_eq!((outbox_left, events_left), (0, 0), "state not drained");
    assert!(
        max_rss.load(Ordering::SeqCst) <= RSS_BOUND_KIB,
        "RSS went over {RSS_BOUND_KIB} KiB"
    );
    assert!(drained, "not drained within {:?}", run.drain);
    assert!(
        !accepted.is_empty() && !posted.is_empty(),
        "no traffic at all"
    );
}

/// Short version for CI (about 20 s): every fault kind at least once.
#[test]
fn endurance_short() {
    endurance(Run {
        secs: 14,
        gap: (200, 700),
        hold: (300, 1200),
        post_gap: (20, 120),
        send_gap: (50, 250),
        drain: Duration::from_secs(30),
    });
}

/// Long version: `RCD_ENDURANCE_SECS` (default 300).
#[test]
#[ignore = "long: RCD_ENDURANCE_SECS=300 cargo test --release --test endurance -- --ignored --nocapture"]
fn endurance_long() {
    let secs = std::env::var("RCD_ENDURANCE_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(300);
    endurance(Run {
        secs,
        gap: (500, 4000),
        hold: (500, 5000),
        post_gap: (10, 200),
        send_gap: (50, 500),
        drain: Duration::from_secs(120),
    });
}
