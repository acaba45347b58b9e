//! What the measuring sections share: the fakes behind their taps, marker numbers, Jeedom-style requests.
use crate::daemon::{Daemon, Launch};
use crate::harness;
use crate::marks::{Marks, Moment, Seen, Side};
use crate::report::ms;
use crate::support::fake_jeedom::{FakeJeedom, CALLBACK_PATH};
use crate::support::fake_rc::{FakeRcOptions, FakeRocketChat};
use crate::tap::Tap;
use crate::Config;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deadline for anything that should take milliseconds.
pub const T: Duration = Duration::from_secs(30);
pub const MIB: f64 = 1024.0;

/// Marker numbers are unique over the whole run.
static SEQ: AtomicU64 = AtomicU64::new(1);

pub fn next_seqs(n: usize) -> u64 {
    SEQ.fetch_add(n as u64, Ordering::SeqCst)
}

/// `<target dir>`, found from the bench's own scratch dir because Cargo
/// passes no other hint of it to a bench.
pub fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// A fake Rocket.Chat and a fake Jeedom, each behind a tap.
pub struct Fakes {
    pub rc: FakeRocketChat,
    pub jeedom: FakeJeedom,
    pub marks: Arc<Marks>,
    rc_tap: Tap,
    jd_tap: Tap,
}

impl Fakes {
    pub fn start() -> Fakes {
        let opts = FakeRcOptions::default();
        let rc = FakeRocketChat::start(opts);
        let jeedom = FakeJeedom::start(harness::APIKEY);
        let marks = Marks::new();
        let rc_tap = Tap::start(rc.port(), marks.scanner(Side::Rc));
        let jd_tap = Tap::start(jeedom_port(&jeedom), marks.scanner(Side::Jeedom));
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

    pub fn daemon(&self, cfg: &Config, name: &str) -> Daemon {
        let dir = harness::temp_dir(name);
        Daemon::start(&dir, &self.rc_url(), &self.callback(), &cfg.loglevel)
    }

    /// A daemon with its state in `dir`, started as `how` says, once connected.
    pub fn daemon_in(&self, cfg: &Config, dir: &Path, how: &Launch) -> Daemon {
        let d = Daemon::launch(dir, &self.rc_url(), &self.callback(), &cfg.loglevel, how);
        self.wait_connected(&d, d.started);
        settle(Duration::from_secs(2));
        d
    }

    /// A daemon that has connected and then had 2 s to settle, so that
    /// start-up work is not counted in a steady-state figure.
    pub fn connected_daemon(&self, cfg: &Config, name: &str) -> Daemon {
        let d = self.daemon(cfg, name);
        self.wait_connected(&d, d.started);
        settle(Duration::from_secs(2));
        d
    }

    /// Waits for the `rooms` event after `since` (the daemon is logged in and subscribed).
    pub fn wait_connected(&self, d: &Daemon, since: Instant) {
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
    pub fn trim(&self) {
        {
            let mut w = self.rc.shared().world();
            w.messages.clear();
            w.log.frames.clear();
            w.log.rest.clear();
            w.log.rest_bodies.clear();
        }
        self.jeedom.clear();
    }

    /// [`Fakes::trim`] and the marks too, between phases, so that the
    /// bench's own memory stays flat.
    pub fn reset(&self) {
        self.marks.clear_marks();
        self.trim();
    }
}

/// The fake Jeedom only tells its URL; its tap needs the port.
fn jeedom_port(jeedom: &FakeJeedom) -> u16 {
    jeedom
        .url()
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("fake Jeedom port")
}

pub fn settle(d: Duration) {
    std::thread::sleep(d);
}

/// Waits for one condition on the marks or panics with the daemon's log.
pub fn must(f: &Fakes, d: &Daemon, what: &str, cond: impl FnMut(&Seen) -> bool) {
    if !f.marks.wait(T, cond) {
        panic!("timed out waiting for {what}; {}", stuck(f, d));
    }
}

/// Where the traffic stopped: the last markers each tap saw, the daemon's
/// own view and its log.
fn stuck(f: &Fakes, d: &Daemon) -> String {
    let status = harness::request_on(
        d.port,
        &json!({"apikey": harness::APIKEY, "action": "status"}).to_string(),
        harness::REQUEST_TIMEOUT,
    )
    .map(|v| v.to_string())
    .unwrap_or_else(|e| e.to_string());
    let g = f.marks.lock();
    let last = |m: &HashMap<u64, Instant>| m.keys().max().copied();
    format!(
        "last markers seen: to the daemon {:?}, to Jeedom {:?}, \
         answered {:?}, replies {:?}; Jeedom POSTs {}; fake RC connections {}; \
         daemon status {status}; daemon log:\n{}",
        last(&g.msg_to_daemon),
        last(&g.msg_to_jeedom),
        last(&g.msg_acked),
        last(&g.reply_to_rc),
        g.jeedom_posts,
        f.rc.ddp_connections(),
        d.log_tail()
    )
}

pub fn dur(a: Instant, b: Instant) -> f64 {
    ms(b.saturating_duration_since(a))
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / MIB
}

/// Takes the marks of message `s` out of the maps.
pub fn take(map: &mut HashMap<u64, Instant>, s: u64) -> Instant {
    map.remove(&s)
        .unwrap_or_else(|| panic!("marker {s} not seen"))
}

/// Advances `next` over the markers present in `map`; true when all `n` from `base` are.
pub fn all_seen(map: &HashMap<u64, Instant>, base: u64, n: usize, next: &mut u64) -> bool {
    while *next < base + n as u64 && map.contains_key(next) {
        *next += 1;
    }
    *next == base + n as u64
}

/// Posts a person's message to the bot carrying marker `~s!`; returns the
/// moment of the call, where the "with fakes" latencies start.
pub fn ping(f: &Fakes, s: u64) -> Instant {
    let t = Instant::now();
    f.rc.post("GENERAL", "alice", &format!("@jeedombot ping ~{s}!"));
    t
}

/// A `send` to GENERAL whose text and `ref` carry marker `^s!`, so that the
/// taps see it in the request to Rocket.Chat and in the `sent` event.
pub fn send_body(word: &str, s: u64) -> Value {
    json!({"apikey": harness::APIKEY, "action": "send", "room": "GENERAL",
        "message": format!("{word} ^{s}!"), "ref": format!("^{s}!")})
}

/// Writes one request and half-closes, as Jeedom's PHP does: it never reads
/// the reply. The body is serialized before connecting (PHP builds its
/// string first), and the instant just before the write is returned: a
/// `send` -> server span starts when the request is written, as its
/// definition says. The connection is returned so that the bench can read
/// the reply, and the write's outcome for the callers that must not go on
/// without it.
pub fn jeedom_send(port: u16, body: &Value) -> Sent {
    let line = body.to_string();
    let connecting = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect to the command socket");
    let _ = c.set_nodelay(true);
    let writing = Instant::now();
    let written = c.write_all(line.as_bytes());
    let _ = c.shutdown(std::net::Shutdown::Write);
    Sent {
        conn: c,
        connecting,
        writing,
        written,
    }
}

/// What [`jeedom_send`] did.
pub struct Sent {
    pub conn: TcpStream,
    /// Just before `connect`.
    pub connecting: Instant,
    /// Just before the request's `write`.
    pub writing: Instant,
    pub written: std::io::Result<()>,
}

/// The reply to a [`jeedom_send`]; it comes at the daemon's next state
/// write, so the wait is long.
pub fn read_reply(c: &mut TcpStream) -> String {
    let mut out = String::new();
    let _ = c.set_read_timeout(Some(T));
    let _ = c.read_to_string(&mut out);
    out
}

pub fn accepted(reply: &str) -> bool {
    reply.contains("\"ok\":true")
}
