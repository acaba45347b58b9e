//! The measurements: binary sizes, start-up, traffic (idle CPU, latencies,
//! throughput) and memory.
use crate::daemon::Daemon;
use crate::harness;
use crate::marks::{Marks, Moment, Seen};
use crate::procfs;
use crate::report::{ms, num, percentiles, Row};
use crate::support::fake_jeedom::{FakeJeedom, CALLBACK_PATH};
use crate::support::fake_rc::{FakeRcOptions, FakeRocketChat};
use crate::tap::Tap;
use crate::Config;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deadline for anything that should take milliseconds.
const T: Duration = Duration::from_secs(30);
const MIB: f64 = 1024.0;

/// Marker numbers are unique over the whole run.
static SEQ: AtomicU64 = AtomicU64::new(1);

fn next_seqs(n: usize) -> u64 {
    SEQ.fetch_add(n as u64, Ordering::SeqCst)
}

/// A fake Rocket.Chat and a fake Jeedom, each behind a tap.
struct Fakes {
    rc: FakeRocketChat,
    jeedom: FakeJeedom,
    marks: Arc<Marks>,
    rc_tap: Tap,
    jd_tap: Tap,
}

impl Fakes {
    fn start() -> Fakes {
        let opts = FakeRcOptions::default();
        let rc = FakeRocketChat::start(opts);
        let jeedom = FakeJeedom::start(harness::APIKEY);
        let marks = Marks::new();
        let rc_tap = Tap::start(rc.port(), marks.scanner(crate::marks::Side::Rc));
        let jd_port = jeedom
            .url()
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("fake Jeedom port");
        let jd_tap = Tap::start(jd_port, marks.scanner(crate::marks::Side::Jeedom));
        Fakes {
            rc,
            jeedom,
            marks,
            rc_tap,
            jd_tap,
        }
    }

    fn rc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rc_tap.port())
    }

    fn callback(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.jd_tap.port())
    }

    fn daemon(&self, cfg: &Config, name: &str) -> Daemon {
        let dir = harness::temp_dir(name);
        Daemon::start(&dir, &self.rc_url(), &self.callback(), &cfg.loglevel)
    }

    /// Waits for the `rooms` event after `since` (the daemon is logged in and subscribed).
    fn wait_connected(&self, d: &Daemon, since: Instant) {
        let ok = self.marks.wait(T, |s| {
            s.moments
                .iter()
                .any(|(t, m)| *t >= since && *m == Moment::RoomsEvent)
        });
        assert!(ok, "the daemon did not connect; log:\n{}", d.log_tail());
    }

    /// Empties what the fakes keep for assertions (messages, frame logs,
    /// events): housekeeping of the bench process, so that the fake's
    /// linear searches (`chat.sendMessage` looks the `_id` up among every
    /// stored message) do not slow down as the run goes. The daemon is not
    /// touched.
    fn trim(&self) {
        {
            let mut w = self.rc.shared().world();
            w.messages.clear();
            w.log.frames.clear();
            w.log.rest.clear();
            w.log.rest_bodies.clear();
        }
        self.jeedom.clear();
    }
}

fn settle(d: Duration) {
    std::thread::sleep(d);
}

/// Waits for one condition on the marks or panics with the daemon's log.
fn must(f: &Fakes, d: &Daemon, what: &str, cond: impl FnMut(&Seen) -> bool) {
    if !f.marks.wait(T, cond) {
        let status = crate::daemon::request_on(
            d.port,
            &json!({"apikey": harness::APIKEY, "action": "status"}).to_string(),
        )
        .map(|v| v.to_string())
        .unwrap_or_else(|e| e.to_string());
        let g = f.marks.lock();
        let last = |m: &HashMap<u64, Instant>| m.keys().max().copied();
        panic!(
            "timed out waiting for {what}; last markers seen: to the daemon {:?}, to Jeedom {:?}, \
             answered {:?}, replies {:?}; Jeedom POSTs {}; fake RC connections {}; \
             daemon status {status}; daemon log:\n{}",
            last(&g.msg_to_daemon),
            last(&g.msg_to_jeedom),
            last(&g.msg_acked),
            last(&g.reply_to_rc),
            g.jeedom_posts,
            f.rc.ddp_connections(),
            d.log_tail()
        );
    }
}

fn dur(a: Instant, b: Instant) -> f64 {
    ms(b.saturating_duration_since(a))
}

// ---------------------------------------------------------------- sizes

/// "static" or "dynamic" (has a `PT_INTERP` program header), from the ELF header.
pub fn linkage(path: &Path) -> &'static str {
    let Ok(b) = std::fs::read(path) else {
        return "?";
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return "?"; // only 64-bit little-endian is read here
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 <= b.len() && u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3 {
            return "dynamic";
        }
    }
    "static"
}

pub fn binary_sizes(bin: &Path, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let mut found: Vec<(String, std::path::PathBuf)> = vec![("measured".into(), bin.to_path_buf())];
    // Other builds of this tree: <target>/<triple>/release/rocketchatd (cargo
    // --target), target/cross/<triple>/release/rocketchatd and
    // target/dist/rocketchatd-<version>-<triple> (cross/build.sh).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target_dir = tmp.parent().unwrap_or(tmp).to_path_buf();
    let host = target_dir.join("release").join("rocketchatd");
    if host != bin {
        found.push(("host".into(), host));
    }
    for dir in [
        target_dir.clone(),
        target_dir.join("cross"),
        root.join("target").join("cross"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let triple = e.file_name().to_string_lossy().to_string();
            let p = e.path().join("release").join("rocketchatd");
            if triple.matches('-').count() >= 2 && p.is_file() {
                found.push((triple, p));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(target_dir.join("dist")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(rest) = name.strip_prefix("rocketchatd-") {
                if !name.ends_with(".deb") && e.path().is_file() {
                    let triple = rest.split_once('-').map(|(_, t)| t).unwrap_or(rest);
                    found.push((format!("{triple} (dist)"), e.path()));
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut list = Vec::new();
    for (what, p) in found {
        let canon = p.canonicalize().unwrap_or(p.clone());
        if !seen.insert(canon) {
            continue;
        }
        let Ok(m) = std::fs::metadata(&p) else {
            continue;
        };
        let kind = linkage(&p);
        let label = if what == "measured" {
            format!("binary size, measured binary ({kind})")
        } else if what == "host" {
            format!("binary size, host build ({kind})")
        } else {
            format!("binary size, {what} ({kind})")
        };
        let key = format!(
            "binary_size_{}",
            what.split(' ').next().unwrap_or(&what).replace('-', "_")
        );
        rows.push(
            Row::new(&key, &label, m.len() as f64 / 1024.0, "KiB").note(p.display().to_string()),
        );
        list.push(json!({"what": what, "path": p.display().to_string(), "bytes": m.len(), "linkage": kind}));
    }
    details.insert("binaries".into(), json!(list));
}

// ------------------------------------------------------------ the relay

/// What a tap adds to one hop: a loopback server timed directly and through
/// a tap, for a new connection (callback POSTs, REST calls: one connection
/// each) and for a chunk on an open connection (DDP frames). Returns the
/// extra p50 in ms for each.
pub fn calibrate(rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    use std::net::TcpListener;
    let n = 500;
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        for c in server.incoming() {
            let Ok(mut c) = c else { break };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(k) = c.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    let _ = tx.send(Instant::now());
                    let _ = c.write_all(b"ok");
                }
            });
        }
    });
    let tap = Tap::start(port, Arc::new(|_, _, _, _, _| {}));
    let payload = vec![b'x'; 300];
    let time = |p: u16, fresh: bool| -> f64 {
        let mut v = Vec::new();
        let mut keep: Option<TcpStream> = None;
        for _ in 0..n {
            if fresh || keep.is_none() {
                let c = TcpStream::connect(("127.0.0.1", p)).expect("connect");
                let _ = c.set_nodelay(true);
                keep = Some(c);
            }
            let c = keep.as_mut().expect("connection");
            let t = Instant::now();
            c.write_all(&payload).expect("write");
            let got = rx.recv_timeout(T).expect("server read");
            let mut ok = [0u8; 2];
            let _ = c.read_exact(&mut ok);
            v.push(dur(t, got));
            if fresh {
                keep = None;
            }
        }
        percentiles(&mut v).0
    };
    let direct_new = time(port, true);
    let tap_new = time(tap.port(), true);
    let direct_open = time(port, false);
    let tap_open = time(tap.port(), false);
    let (extra_new, extra_open) = (tap_new - direct_new, tap_open - direct_open);
    println!(
        "\n== relay overhead (p50 of {n}): new connection +{extra_new:.3} ms, open connection +{extra_open:.3} ms"
    );
    rows.push(
        Row::new(
            "relay_overhead_ms",
            "relay overhead per hop, new connection",
            extra_new,
            "ms",
        )
        .note(format!(
            "p50; {} ms on an open connection; counted in the daemon's latencies",
            num(extra_open)
        )),
    );
    details.insert(
        "relay_overhead_ms".into(),
        json!({"new_connection": extra_new, "open_connection": extra_open,
               "direct_new": direct_new, "tap_new": tap_new,
               "direct_open": direct_open, "tap_open": tap_open}),
    );
}

// -------------------------------------------------------------- start-up

pub fn startup(cfg: &Config, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    println!(
        "\n== start-up ({} cold starts, first run: no state)",
        cfg.starts
    );
    let f = Fakes::start();
    let mut pid = Vec::new();
    let mut login = Vec::new();
    let mut subscribed = Vec::new();
    let mut rooms = Vec::new();
    for _ in 0..cfg.starts {
        let d = f.daemon(cfg, "bench-start");
        let t0 = d.started;
        let pid_path = d.pid_path();
        let pid_at = loop {
            if std::fs::read_to_string(&pid_path).is_ok_and(|s| s.ends_with('\n')) {
                break Instant::now();
            }
            assert!(t0.elapsed() < T, "no pid file; log:\n{}", d.log_tail());
            std::thread::sleep(Duration::from_micros(100));
        };
        f.wait_connected(&d, t0);
        let (l, s, r) = {
            let g = f.marks.lock();
            let after: Vec<&(Instant, Moment)> =
                g.moments.iter().filter(|(t, _)| *t >= t0).collect();
            let first = |m: Moment, nth: usize| {
                after
                    .iter()
                    .filter(|(_, x)| *x == m)
                    .nth(nth)
                    .map(|(t, _)| *t)
            };
            (
                first(Moment::LoggedIn, 0),
                first(Moment::Ready, 2),
                first(Moment::RoomsEvent, 0),
            )
        };
        pid.push(dur(t0, pid_at));
        login.push(dur(t0, l.expect("login seen")));
        subscribed.push(dur(t0, s.expect("three subscriptions ready")));
        rooms.push(dur(t0, r.expect("rooms event")));
        println!(
            "  pid file {:.1} ms, logged in {:.1} ms, subscribed {:.1} ms, rooms event {:.1} ms",
            pid.last().unwrap(),
            login.last().unwrap(),
            subscribed.last().unwrap(),
            rooms.last().unwrap()
        );
        d.stop();
    }
    let mut push = |key: &str, label: &str, v: &mut Vec<f64>, target: Option<f64>| {
        let raw = v.clone();
        let (p50, _, max) = percentiles(v);
        let mut r = Row::new(key, label, p50, "ms").note(format!(
            "median of {}, max {}",
            raw.len(),
            num(max)
        ));
        if let Some(t) = target {
            r = r.at_most(t);
        }
        rows.push(r);
        details.insert(key.into(), json!(raw));
    };
    push(
        "start_to_pid_file_ms",
        "start -> pid file",
        &mut pid,
        Some(1000.0),
    );
    push(
        "start_to_logged_in_ms",
        "start -> logged in",
        &mut login,
        None,
    );
    push(
        "start_to_subscribed_ms",
        "start -> subscribed",
        &mut subscribed,
        Some(50.0),
    );
    push(
        "start_to_rooms_event_ms",
        "start -> first rooms event at Jeedom",
        &mut rooms,
        None,
    );
}

// --------------------------------------------------------------- traffic

pub fn traffic(
    cfg: &Config,
    want: &dyn Fn(&str) -> bool,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let f = Fakes::start();
    let d = f.daemon(cfg, "bench-traffic");
    f.wait_connected(&d, d.started);
    settle(Duration::from_secs(2));
    let pid = d.pid();
    let (rss, hwm) = procfs::rss_kib(pid);
    let (anon, file) = procfs::rss_split_kib(pid);
    println!(
        "\n== idle after start: RSS {rss} KiB (anonymous {anon}, file-backed {file}), peak {hwm} KiB, {} threads",
        procfs::threads(pid)
    );
    details.insert(
        "idle_rss_split_kib".into(),
        json!({"anonymous": anon, "file": file}),
    );
    details.insert("threads".into(), json!(procfs::threads(pid)));
    rows.push(
        Row::new(
            "idle_rss_mib",
            "RSS idle after start",
            rss as f64 / MIB,
            "MiB",
        )
        .at_most(4.0)
        .note(format!(
            "peak (VmHWM) {} MiB; anonymous {} MiB, file-backed (code) {} MiB",
            num(hwm as f64 / MIB),
            num(anon as f64 / MIB),
            num(file as f64 / MIB)
        )),
    );
    details.insert("idle_rss_kib".into(), json!(rss));
    details.insert("idle_hwm_kib".into(), json!(hwm));

    if want("idle") {
        idle_cpu(cfg, pid, rows, details);
    }
    if want("latency") {
        latency(cfg, &f, &d, rows, details);
    }
    if want("roundtrip") {
        round_trip(cfg, &f, &d, rows, details);
    }
    if want("throughput") {
        forward_throughput(cfg, &f, &d, rows, details);
    }
    if want("sends") {
        send_throughput(cfg, &f, &d, rows, details);
    }
    let (rss, hwm) = procfs::rss_kib(pid);
    details.insert("traffic_end_rss_kib".into(), json!(rss));
    details.insert("traffic_end_hwm_kib".into(), json!(hwm));
    d.stop();
}

fn idle_cpu(cfg: &Config, pid: u32, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    println!(
        "\n== idle CPU over {} s (connected, heartbeat 30 s, server ping 25 s)",
        cfg.idle_secs
    );
    let ticks0 = procfs::cpu_ticks_secs(pid);
    let (cpu0, sw0) = procfs::cpu_precise(pid);
    let th0 = procfs::thread_switches(pid);
    let t0 = Instant::now();
    settle(Duration::from_secs(cfg.idle_secs));
    let secs = t0.elapsed().as_secs_f64();
    let ticks1 = procfs::cpu_ticks_secs(pid);
    let (cpu1, sw1) = procfs::cpu_precise(pid);
    let th1 = procfs::thread_switches(pid);
    let per_min = (cpu1 - cpu0) * 60.0 / secs;
    let ticks_per_min = (ticks1 - ticks0) * 60.0 / secs;
    let wakeups = (sw1 - sw0) as f64 / secs;
    let mut by_name: HashMap<String, (u64, u64)> = HashMap::new();
    for (n, v) in &th0 {
        by_name.entry(n.clone()).or_default().0 += v;
    }
    for (n, v) in &th1 {
        by_name.entry(n.clone()).or_default().1 += v;
    }
    let mut wake_by_thread: Vec<(String, f64)> = by_name
        .into_iter()
        .map(|(n, (a, b))| (n, b.saturating_sub(a) as f64 / secs))
        .collect();
    wake_by_thread.sort_by(|a, b| b.1.total_cmp(&a.1));
    let shown: Vec<String> = wake_by_thread
        .iter()
        .filter(|(_, w)| *w > 0.0)
        .map(|(n, w)| format!("{n} {w:.1}/s"))
        .collect();
    println!(
        "  CPU {:.4} s/min (ticks: {:.3} s/min), {:.1} wake-ups/s: {}",
        per_min,
        ticks_per_min,
        wakeups,
        shown.join(", ")
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
            "over {} s; utime+stime {} s/min; {:.1} wake-ups/s ({})",
            cfg.idle_secs,
            num(ticks_per_min),
            wakeups,
            shown.join(", ")
        )),
    );
    details.insert(
        "idle_cpu".into(),
        json!({"seconds": secs, "cpu_s": cpu1 - cpu0, "ticks_s": ticks1 - ticks0,
               "per_min": per_min, "ticks_per_min": ticks_per_min, "wakeups_per_s": wakeups,
               "wakeups_per_s_by_thread": wake_by_thread}),
    );
}

/// Takes the marks of message `s` out of the maps.
fn take(map: &mut HashMap<u64, Instant>, s: u64) -> Instant {
    map.remove(&s)
        .unwrap_or_else(|| panic!("marker {s} not seen"))
}

fn latency(
    cfg: &Config,
    f: &Fakes,
    d: &Daemon,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let n = cfg.latency_messages;
    println!("\n== message -> Jeedom, {n} messages one at a time");
    let base = next_seqs(n);
    let (mut daemon, mut fakes, mut answered, mut fake_rc) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n as u64 {
        let s = base + i;
        let t = Instant::now();
        f.rc.post("GENERAL", "alice", &format!("@jeedombot ping ~{s}!"));
        must(f, d, &format!("message {s} at Jeedom"), |x| {
            x.msg_acked.contains_key(&s)
        });
        let mut g = f.marks.lock();
        let down = take(&mut g.msg_to_daemon, s);
        let jd = take(&mut g.msg_to_jeedom, s);
        let ack = take(&mut g.msg_acked, s);
        drop(g);
        daemon.push(dur(down, jd));
        fakes.push(dur(t, jd));
        answered.push(dur(t, ack));
        fake_rc.push(dur(t, down));
        if i % 1000 == 999 {
            f.trim();
        }
    }
    let (p50, p99, max) = percentiles(&mut daemon);
    let (f50, f99, fmax) = percentiles(&mut fakes);
    let (a50, a99, amax) = percentiles(&mut answered);
    let (r50, r99, rmax) = percentiles(&mut fake_rc);
    println!("  daemon:     p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms");
    println!("  with fakes: p50 {f50:.3} ms, p99 {f99:.3} ms, max {fmax:.3} ms (post() -> POST at Jeedom)");
    println!("  fake RC:    p50 {r50:.3} ms, p99 {r99:.3} ms, max {rmax:.3} ms (post() -> frame at the daemon's socket)");
    println!("  answered:   p50 {a50:.3} ms, p99 {a99:.3} ms, max {amax:.3} ms (post() -> Jeedom's 200 back)");
    let note = format!("{n} messages; frame at the daemon's socket -> POST at Jeedom's");
    rows.push(
        Row::new(
            "msg_to_jeedom_p50_ms",
            "message -> Jeedom p50 (daemon)",
            p50,
            "ms",
        )
        .at_most(2.0)
        .note(note.clone()),
    );
    rows.push(
        Row::new(
            "msg_to_jeedom_p99_ms",
            "message -> Jeedom p99 (daemon)",
            p99,
            "ms",
        )
        .at_most(10.0)
        .note(note),
    );
    rows.push(Row::new(
        "msg_to_jeedom_max_ms",
        "message -> Jeedom max (daemon)",
        max,
        "ms",
    ));
    rows.push(
        Row::new(
            "msg_to_jeedom_fakes_p50_ms",
            "message -> Jeedom p50 (with fakes)",
            f50,
            "ms",
        )
        .note(format!(
            "from FakeRocketChat::post; p99 {}, max {}; the fake alone takes p50 {} ms (it polls every 5 ms)",
            num(f99),
            num(fmax),
            num(r50)
        )),
    );
    details.insert(
        "msg_to_jeedom".into(),
        json!({"n": n, "daemon_ms": {"p50": p50, "p99": p99, "max": max},
               "with_fakes_ms": {"p50": f50, "p99": f99, "max": fmax},
               "answered_ms": {"p50": a50, "p99": a99, "max": amax},
               "fake_rc_ms": {"p50": r50, "p99": r99, "max": rmax}}),
    );
}

fn round_trip(
    cfg: &Config,
    f: &Fakes,
    d: &Daemon,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let n = cfg.latency_messages;
    println!(
        "\n== round trip: message -> event -> send on the socket -> reply at the server, {n} times"
    );
    let base = next_seqs(n);
    let (mut daemon, mut fakes, mut inbound, mut outbound) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The replies Jeedom never reads, read here to count refusals: a request
    // holds its connection until the next state write (up to --cycle), and
    // the socket serves 32 at once, so one interaction every PERIOD at most.
    const PERIOD: Duration = Duration::from_millis(25);
    let refused = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let (rtx, rrx) = std::sync::mpsc::channel::<(u64, TcpStream)>();
    let reader = {
        let refused = refused.clone();
        std::thread::spawn(move || {
            for (s, mut c) in rrx {
                let mut out = String::new();
                let _ = c.set_read_timeout(Some(T));
                let _ = c.read_to_string(&mut out);
                if !out.contains("\"ok\":true") {
                    refused.lock().unwrap().insert(s);
                }
            }
        })
    };
    for i in 0..n as u64 {
        let s = base + i;
        let t = Instant::now();
        f.rc.post("GENERAL", "alice", &format!("@jeedombot ping ~{s}!"));
        must(f, d, &format!("message {s} at Jeedom"), |x| {
            x.msg_to_jeedom.contains_key(&s)
        });
        // As Jeedom's PHP does: write the request, close, never read the reply
        // (the daemon holds its `ok` until the next state write, up to --cycle).
        let t_req = Instant::now();
        let c = jeedom_send(
            d.port,
            &json!({"apikey": harness::APIKEY, "action": "send", "room": "GENERAL",
                "message": format!("pong ^{s}!"), "ref": format!("^{s}!")}),
        );
        let _ = rtx.send((s, c));
        let ok = f.marks.wait(T, |x| {
            x.reply_to_rc.contains_key(&s)
                && x.sent_acked.contains_key(&s)
                && x.msg_acked.contains_key(&s)
        });
        if !ok && refused.lock().unwrap().contains(&s) {
            continue;
        }
        must(f, d, &format!("reply {s} and its sent event"), |x| {
            x.reply_to_rc.contains_key(&s)
        });
        let mut g = f.marks.lock();
        let down = take(&mut g.msg_to_daemon, s);
        let jd = take(&mut g.msg_to_jeedom, s);
        let rc = take(&mut g.reply_to_rc, s);
        g.msg_acked.remove(&s);
        g.reply_acked.remove(&s);
        g.sent_to_jeedom.remove(&s);
        g.sent_acked.remove(&s);
        drop(g);
        daemon.push(dur(down, rc));
        fakes.push(dur(t, rc));
        inbound.push(dur(down, jd));
        outbound.push(dur(t_req, rc));
        if i % 1000 == 999 {
            f.trim();
        }
        std::thread::sleep(PERIOD.saturating_sub(t.elapsed()));
    }
    drop(rtx);
    let _ = reader.join();
    let refused = refused.lock().unwrap().len();
    let (p50, p99, max) = percentiles(&mut daemon);
    let (f50, f99, fmax) = percentiles(&mut fakes);
    let (o50, o99, omax) = percentiles(&mut outbound);
    let (i50, i99, imax) = percentiles(&mut inbound);
    println!("  daemon:     p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms (frame at the daemon -> reply at the server)");
    println!("  with fakes: p50 {f50:.3} ms, p99 {f99:.3} ms, max {fmax:.3} ms");
    println!(
        "  send request -> reply at the server: p50 {o50:.3} ms, p99 {o99:.3} ms, max {omax:.3} ms; {refused} sends refused"
    );
    rows.push(
        Row::new("round_trip_p50_ms", "bot round trip p50 (daemon)", p50, "ms").note(format!(
            "{n} times, one per 25 ms at most; message frame at the daemon -> reply request at the server, Jeedom's send included; {refused} sends refused"
        )),
    );
    rows.push(Row::new(
        "round_trip_p99_ms",
        "bot round trip p99 (daemon)",
        p99,
        "ms",
    ));
    rows.push(Row::new(
        "round_trip_max_ms",
        "bot round trip max (daemon)",
        max,
        "ms",
    ));
    rows.push(
        Row::new(
            "round_trip_fakes_p50_ms",
            "bot round trip p50 (with fakes)",
            f50,
            "ms",
        )
        .note(format!("p99 {}, max {}", num(f99), num(fmax))),
    );
    details.insert(
        "round_trip".into(),
        json!({"n": n, "daemon_ms": {"p50": p50, "p99": p99, "max": max},
               "with_fakes_ms": {"p50": f50, "p99": f99, "max": fmax},
               "send_request_to_server_ms": {"p50": o50, "p99": o99, "max": omax},
               "inbound_ms": {"p50": i50, "p99": i99, "max": imax},
               "refused": refused, "period_ms": 25}),
    );
}

/// Advances `next` over the markers present in `map`; true when all `n` from `base` are.
fn all_seen(map: &HashMap<u64, Instant>, base: u64, n: usize, next: &mut u64) -> bool {
    while *next < base + n as u64 && map.contains_key(next) {
        *next += 1;
    }
    *next == base + n as u64
}

fn forward_throughput(
    cfg: &Config,
    f: &Fakes,
    d: &Daemon,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let n = cfg.throughput_messages;
    // Bursts below the daemon's queue limit (10,000 events, then it drops the
    // oldest messages): each burst is posted as fast as the fake takes it,
    // the next one once the burst has reached Jeedom.
    let burst = crate::env_num("RCD_BENCH_BURST", 5000).max(1) as usize;
    println!(
        "\n== forwarding throughput: {n} messages in bursts of {burst}, posted as fast as the fake takes them"
    );
    f.trim();
    f.marks.clear_marks();
    let (posts0, events0, dropped0) = {
        let g = f.marks.lock();
        (
            g.jeedom_posts,
            g.jeedom_message_events,
            g.jeedom_dropped_events,
        )
    };
    let t0 = Instant::now();
    let mut posting = Duration::ZERO;
    let (mut last_jd, mut last_down) = (t0, t0);
    let mut done = 0usize;
    while done < n {
        let k = burst.min(n - done);
        let base = next_seqs(k);
        let tb = Instant::now();
        for i in 0..k as u64 {
            f.rc.post(
                "GENERAL",
                "alice",
                &format!("@jeedombot load ~{}!", base + i),
            );
        }
        posting += tb.elapsed();
        let mut next = base;
        let ok = f.marks.wait(Duration::from_secs(120), |x| {
            all_seen(&x.msg_to_jeedom, base, k, &mut next) || x.jeedom_dropped_events > dropped0
        });
        let mut g = f.marks.lock();
        if !ok || g.jeedom_dropped_events > dropped0 {
            let dropped = g.jeedom_dropped_events - dropped0;
            drop(g);
            panic!(
                "{} of {k} messages of a burst reached Jeedom, {dropped} dropped events; log:\n{}",
                next - base,
                d.log_tail()
            );
        }
        let max = |m: &HashMap<u64, Instant>| m.values().copied().max().unwrap_or(t0);
        last_jd = last_jd.max(max(&g.msg_to_jeedom));
        last_down = last_down.max(max(&g.msg_to_daemon));
        g.msg_to_jeedom.clear();
        g.msg_to_daemon.clear();
        g.msg_acked.clear();
        drop(g);
        f.trim();
        done += k;
    }
    let (posts, events) = {
        let g = f.marks.lock();
        (g.jeedom_posts - posts0, g.jeedom_message_events - events0)
    };
    let secs = last_jd.duration_since(t0).as_secs_f64();
    let rate = n as f64 / secs;
    let post_rate = n as f64 / posting.as_secs_f64();
    let feed_rate = n as f64 / last_down.duration_since(t0).as_secs_f64();
    // Of the last burst.
    let lag = dur(last_down, last_jd);
    let batch = events as f64 / posts.max(1) as f64;
    println!(
        "  forwarded {rate:.0}/s; fake posted {post_rate:.0}/s, fed the daemon {feed_rate:.0}/s; \
         last event at Jeedom {lag:.1} ms after the last frame; {posts} POSTs, {batch:.1} events each"
    );
    // The daemon kept up when its last event left shortly after the fake's last frame.
    let burst_ms = burst.min(n) as f64 / rate * 1000.0;
    let bottleneck = if lag < 0.1 * burst_ms {
        "the fake's feed (the daemon kept up)"
    } else {
        "the daemon (it fell behind the fake's feed)"
    };
    rows.push(
        Row::new(
            "forward_msgs_per_s",
            "messages forwarded to Jeedom",
            rate,
            "msg/s",
        )
        .at_least(5000.0)
        .note(format!(
            "{n} messages; limited by {bottleneck}; fake fed {}/s; {} events per POST",
            num(feed_rate),
            num(batch)
        )),
    );
    details.insert(
        "forward_throughput".into(),
        json!({"n": n, "forwarded_per_s": rate, "fake_post_per_s": post_rate,
               "fake_feed_per_s": feed_rate, "lag_after_last_frame_ms": lag,
               "posts": posts, "message_events": events, "events_per_post": batch}),
    );
    f.marks.clear_marks();
    f.trim();
}

/// Writes one request and half-closes, as Jeedom's PHP does (it never reads
/// the reply; the connection is returned so that the bench can).
fn jeedom_send(port: u16, body: &Value) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect to the command socket");
    let _ = c.set_nodelay(true);
    c.write_all(body.to_string().as_bytes())
        .expect("write the request");
    let _ = c.shutdown(std::net::Shutdown::Write);
    c
}

/// A `send` request as Jeedom's PHP sends it: write, half-close, the reply
/// is read by another thread (PHP never reads it; reading it here changes
/// nothing for the daemon and tells refused requests apart).
fn fire_send(port: u16, s: u64, replies: &std::sync::mpsc::Sender<(u64, TcpStream)>) {
    let body = json!({"apikey": harness::APIKEY, "action": "send", "room": "GENERAL",
        "message": format!("bulk ^{s}!"), "ref": format!("^{s}!")});
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect to the command socket");
    let _ = c.write_all(body.to_string().as_bytes());
    let _ = c.shutdown(std::net::Shutdown::Write);
    let _ = replies.send((s, c));
}

fn send_throughput(
    cfg: &Config,
    f: &Fakes,
    d: &Daemon,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    // 1. One at a time, waiting for each `ok`.
    let k = 10usize;
    println!("\n== send requests: {k} one after the other, each waiting for its ok");
    let base = next_seqs(k);
    let mut waits = Vec::new();
    for i in 0..k as u64 {
        let t = Instant::now();
        let reply = d.request(json!({"action": "send", "room": "GENERAL",
            "message": format!("one ^{}!", base + i), "ref": format!("^{}!", base + i)}));
        assert_eq!(reply["ok"], true, "send refused: {reply}");
        waits.push(dur(t, Instant::now()));
    }
    let (w50, _, wmax) = percentiles(&mut waits);
    println!("  send -> ok: p50 {w50:.1} ms, max {wmax:.1} ms");
    let mut next = base;
    let _ = f
        .marks
        .wait(T, |x| all_seen(&x.sent_acked, base, k, &mut next));

    // 1b. A burst: 64 requests 2 ms apart, Jeedom-style (write, close, never
    //     read), as a scenario loop sending one message per device would.
    let burst = 64usize;
    let base_b = next_seqs(burst);
    let conns: Vec<TcpStream> = (0..burst as u64)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(2));
            let s = base_b + i;
            let body = json!({"apikey": harness::APIKEY, "action": "send", "room": "GENERAL",
                "message": format!("burst ^{s}!"), "ref": format!("^{s}!")});
            let mut c = TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
            let _ = c.write_all(body.to_string().as_bytes());
            let _ = c.shutdown(std::net::Shutdown::Write);
            c
        })
        .collect();
    let mut burst_ok = Vec::new();
    let mut burst_refused = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        let mut out = String::new();
        let _ = c.set_read_timeout(Some(T));
        let _ = c.read_to_string(&mut out);
        if out.contains("\"ok\":true") {
            burst_ok.push(base_b + i as u64);
        } else {
            burst_refused.push(out.trim().to_string());
        }
    }
    let mut next_ok = 0usize;
    let _ = f.marks.wait(T, |x| {
        while next_ok < burst_ok.len() && x.sent_acked.contains_key(&burst_ok[next_ok]) {
            next_ok += 1;
        }
        next_ok == burst_ok.len()
    });
    let first_refusal = burst_refused.first().cloned().unwrap_or_default();
    println!(
        "  burst of {burst}, 2 ms apart: {} accepted, {} refused {}",
        burst_ok.len(),
        burst_refused.len(),
        first_refusal
    );
    rows.push(
        Row::new(
            "send_burst_refused",
            &format!("send burst of {burst}, 2 ms apart: refused"),
            burst_refused.len() as f64,
            "req",
        )
        .note(format!(
            "the socket serves 32 connections and each waits for the state write; \
             Jeedom's PHP never reads the reply {first_refusal}"
        )),
    );

    // 2. A backlog while Rocket.Chat is down: requests as Jeedom sends them,
    //    at most 31 connections open (the daemon serves 32 at once).
    let n = cfg.sends;
    println!(
        "  {n} sends while Rocket.Chat is down, Jeedom-style (no wait for the reply), <= 31 open"
    );
    f.rc.set_down(true);
    let base = next_seqs(n);
    let (tx, rx) = std::sync::mpsc::channel::<(u64, TcpStream)>();
    let open = Arc::new((std::sync::Mutex::new(0usize), std::sync::Condvar::new()));
    let open2 = open.clone();
    let reader = std::thread::spawn(move || {
        let (mut ok, mut refused) = (0usize, Vec::new());
        let mut last = Instant::now();
        // Replies come in commit groups: read them from a few threads.
        let (rtx, rrx) = std::sync::mpsc::channel::<(u64, bool)>();
        let pending = Arc::new(std::sync::Mutex::new(rx));
        let mut hs = Vec::new();
        for _ in 0..32 {
            let (pending, rtx, open) = (pending.clone(), rtx.clone(), open2.clone());
            hs.push(std::thread::spawn(move || loop {
                let got = pending.lock().unwrap().recv();
                let Ok((s, mut c)) = got else { break };
                let mut out = String::new();
                let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = c.read_to_string(&mut out);
                let good = out.contains("\"ok\":true");
                let (m, cv) = &*open;
                *m.lock().unwrap() -= 1;
                cv.notify_all();
                let _ = rtx.send((s, good));
            }));
        }
        drop(rtx);
        for (s, good) in rrx {
            last = Instant::now();
            if good {
                ok += 1;
            } else {
                refused.push(s);
            }
        }
        for h in hs {
            let _ = h.join();
        }
        (ok, refused, last)
    });
    let t0 = Instant::now();
    for i in 0..n as u64 {
        {
            let (m, cv) = &*open;
            let mut g = m.lock().unwrap();
            while *g >= 31 {
                g = cv.wait(g).unwrap();
            }
            *g += 1;
        }
        fire_send(d.port, base + i, &tx);
    }
    drop(tx);
    let (ok, refused, last_reply) = reader.join().expect("reply reader");
    let accept_secs = last_reply.duration_since(t0).as_secs_f64();
    let accept_rate = ok as f64 / accept_secs;
    println!(
        "  accepted {ok} in {accept_secs:.1} s ({accept_rate:.0}/s), refused {}",
        refused.len()
    );

    // 3. Rocket.Chat back: the daemon drains its outbox.
    let t_up = Instant::now();
    f.rc.set_down(false);
    let wanted: Vec<u64> = (base..base + n as u64)
        .filter(|s| !refused.contains(s))
        .collect();
    let ok_all = f.marks.wait(Duration::from_secs(600), |x| {
        wanted.iter().all(|s| x.reply_acked.contains_key(s))
    });
    assert!(
        ok_all,
        "not every accepted send was posted; log:\n{}",
        d.log_tail()
    );
    let (first, last, server_ms) = {
        let g = f.marks.lock();
        let times: Vec<Instant> = wanted.iter().map(|s| g.reply_to_rc[s]).collect();
        let server: f64 = wanted
            .iter()
            .map(|s| dur(g.reply_to_rc[s], g.reply_acked[s]))
            .sum();
        (
            times.iter().copied().min().unwrap_or(t_up),
            times.iter().copied().max().unwrap_or(t_up),
            server,
        )
    };
    let m = wanted.len();
    let secs = last.duration_since(first).as_secs_f64();
    let rate = (m.saturating_sub(1)) as f64 / secs;
    let server_each = server_ms / m.max(1) as f64;
    let daemon_each = (secs * 1000.0 - server_ms) / m.max(1) as f64;
    println!(
        "  posted {m} in {secs:.2} s after the server came back: {rate:.0}/s; \
         the fake took {server_each:.2} ms per chat.sendMessage (accept loop polls every 5 ms), \
         the daemon {daemon_each:.2} ms between two"
    );
    rows.push(
        Row::new(
            "send_ok_wait_ms",
            "socket send -> ok, one at a time",
            w50,
            "ms",
        )
        .note(format!(
            "median of {k}: the ok waits for the next state write, at most one per --cycle (0.5 s)"
        )),
    );
    rows.push(
        Row::new(
            "send_accept_per_s",
            "send requests accepted, <= 31 open",
            accept_rate,
            "req/s",
        )
        .note(format!(
            "{ok} accepted, {} refused; one state write per cycle answers a group",
            refused.len()
        )),
    );
    rows.push(
        Row::new(
            "sends_per_s",
            "send requests posted to the server",
            rate,
            "req/s",
        )
        .note(format!(
            "backlog of {m}, one in flight at a time; fake {} ms + daemon {} ms per request",
            num(server_each),
            num(daemon_each)
        )),
    );
    details.insert(
        "send_throughput".into(),
        json!({"one_at_a_time_ok_ms": {"p50": w50, "max": wmax, "n": k},
               "burst": {"n": burst, "accepted": burst_ok.len(), "refused": burst_refused.len()},
               "backlog": n, "accepted": ok, "refused": refused.len(), "accepted_per_s": accept_rate,
               "posted": m, "posted_per_s": rate, "fake_ms_per_request": server_each,
               "daemon_ms_per_request": daemon_each}),
    );
    // Let the `sent` events drain.
    let _ = f.marks.wait(Duration::from_secs(60), |x| {
        wanted.iter().all(|s| x.sent_acked.contains_key(s))
    });
    f.marks.clear_marks();
    f.trim();
}

// ---------------------------------------------------------------- memory

/// RSS after a flood, and how it moved.
struct Flood {
    after: (u64, u64),
    split: (u64, u64),
    rate: f64,
    samples: Vec<Value>,
    /// RSS change (KiB) from the second sample to the end.
    growth: f64,
    growth_from: u64,
}

/// Posts `n` messages round-robin over `rids` in bursts of 1,000, each burst
/// delivered to Jeedom before the next; samples RSS ten times.
fn flood(f: &Fakes, d: &Daemon, rids: &[String], n: usize) -> Flood {
    let pid = d.pid();
    let chunk = 1000usize;
    let mut samples = Vec::new();
    let t0 = Instant::now();
    let mut done = 0usize;
    while done < n {
        let k = chunk.min(n - done);
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
        f.marks.clear_marks();
        f.trim();
        done += k;
        if done % (n / 10).max(chunk) == 0 || done == n {
            let (rss, hwm) = procfs::rss_kib(pid);
            samples.push(json!({"messages": done, "rss_kib": rss, "hwm_kib": hwm}));
            println!("    {done:>7} messages: RSS {rss} KiB, peak {hwm} KiB");
        }
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    settle(Duration::from_secs(3));
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
    }
}

fn signed(v: f64) -> String {
    if v >= 0.0 {
        format!("+{v:.0}")
    } else {
        format!("{v:.0}")
    }
}

pub fn memory(cfg: &Config, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let f = Fakes::start();
    let d = f.daemon(cfg, "bench-memory");
    f.wait_connected(&d, d.started);
    settle(Duration::from_secs(2));
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
    let state_one = std::fs::metadata(d.dir.join("state.json"))
        .map(|m| m.len())
        .unwrap_or(0);

    // 2. 500 more rooms.
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

    // 3. Messages over every room.
    println!("  {n} messages over the {want} rooms");
    let many = flood(&f, &d, &rids, n);
    let state_many = std::fs::metadata(d.dir.join("state.json"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "  state file: {} KiB after the one-room flood, {} KiB after the {want}-room one",
        state_one / 1024,
        state_many / 1024
    );

    rows.push(
        Row::new(
            "one_room_rss_mib",
            &format!("RSS after {n} messages (1 room)"),
            one.after.0 as f64 / MIB,
            "MiB",
        )
        .at_most(8.0)
        .note(format!(
            "{} KiB from message {} to the end; peak {} MiB",
            signed(one.growth),
            one.growth_from,
            num(one.after.1 as f64 / MIB)
        )),
    );
    rows.push(
        Row::new(
            "rooms_rss_mib",
            &format!("RSS with {want} rooms"),
            rooms.0 as f64 / MIB,
            "MiB",
        )
        .note(format!("peak {} MiB", num(rooms.1 as f64 / MIB))),
    );
    rows.push(
        Row::new(
            "after_messages_rss_mib",
            &format!("RSS after {n} more messages over {want} rooms"),
            many.after.0 as f64 / MIB,
            "MiB",
        )
        .at_most(8.0)
        .note(format!(
            "{} KiB from message {} to the end; state file {} KiB",
            signed(many.growth),
            many.growth_from,
            state_many / 1024
        )),
    );
    rows.push(Row::new(
        "after_messages_peak_mib",
        "peak RSS (VmHWM) over the whole memory run",
        many.after.1 as f64 / MIB,
        "MiB",
    ));
    let flood_json = |x: &Flood, state: u64| {
        json!({"rss_kib": x.after.0, "hwm_kib": x.after.1, "anonymous_kib": x.split.0,
               "file_kib": x.split.1, "messages_per_s": x.rate, "samples": x.samples,
               "growth_kib": x.growth, "growth_from_message": x.growth_from,
               "state_file_bytes": state})
    };
    details.insert(
        "memory".into(),
        json!({"idle_kib": {"rss": idle.0, "hwm": idle.1, "anonymous": idle_split.0, "file": idle_split.1},
               "messages": n,
               "one_room": flood_json(&one, state_one),
               "rooms": want, "rooms_kib": {"rss": rooms.0, "hwm": rooms.1},
               "many_rooms": flood_json(&many, state_many)}),
    );
    d.stop();
}
