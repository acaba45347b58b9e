//! The bot's round trip: a message, its event at Jeedom, Jeedom's `send` on the socket, the reply at the server.
use crate::common::{
    accepted, dur, jeedom_send, must, next_seqs, ping, read_reply, send_body, take, Fakes, T,
};
use crate::daemon::Daemon;
use crate::report::{num, Row, Spread};
use crate::Config;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::net::TcpStream;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A request holds its connection until the next state write (up to
/// --cycle), and the socket serves 32 at once: so one interaction every
/// PERIOD at most.
const PERIOD: Duration = Duration::from_millis(25);

/// Reads the replies Jeedom never reads, to count refusals.
struct Refusals {
    refused: Arc<Mutex<HashSet<u64>>>,
    tx: Sender<(u64, TcpStream)>,
    reader: JoinHandle<()>,
}

impl Refusals {
    fn start() -> Refusals {
        let refused = Arc::new(Mutex::new(HashSet::new()));
        let (tx, rx) = channel::<(u64, TcpStream)>();
        let seen = refused.clone();
        let reader = std::thread::spawn(move || {
            for (s, mut c) in rx {
                if !accepted(&read_reply(&mut c)) {
                    seen.lock().unwrap().insert(s);
                }
            }
        });
        Refusals {
            refused,
            tx,
            reader,
        }
    }

    fn watch(&self, s: u64, c: TcpStream) {
        let _ = self.tx.send((s, c));
    }

    fn contains(&self, s: u64) -> bool {
        self.refused.lock().unwrap().contains(&s)
    }

    /// Waits for the last reply; the number refused.
    fn finish(self) -> usize {
        drop(self.tx);
        let _ = self.reader.join();
        let n = self.refused.lock().unwrap().len();
        n
    }
}

/// The four spans of one interaction, in ms.
#[derive(Default)]
struct Spans {
    /// Message frame at the daemon -> reply at the server.
    daemon: Vec<f64>,
    /// `post()` -> reply at the server.
    fakes: Vec<f64>,
    /// Message frame at the daemon -> POST at Jeedom.
    inbound: Vec<f64>,
    /// Send request written -> reply at the server.
    outbound: Vec<f64>,
}

pub fn round_trip(
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
    let mut v = Spans::default();
    let refusals = Refusals::start();
    for i in 0..n as u64 {
        let Some(t) = interaction(f, d, base + i, &refusals, &mut v) else {
            continue;
        };
        if i % 1000 == 999 {
            f.trim();
        }
        std::thread::sleep(PERIOD.saturating_sub(t.elapsed()));
    }
    let refused = refusals.finish();
    report(n, refused, &mut v, rows, details);
}

/// One message and Jeedom's answer to it; returns when the message was
/// posted, or None when the daemon refused the `send`.
fn interaction(
    f: &Fakes,
    d: &Daemon,
    s: u64,
    refusals: &Refusals,
    v: &mut Spans,
) -> Option<Instant> {
    let t = ping(f, s);
    must(f, d, &format!("message {s} at Jeedom"), |x| {
        x.msg_to_jeedom.contains_key(&s)
    });
    // As Jeedom's PHP does: write the request, close, never read the reply
    // (the daemon holds its `ok` until the next state write, up to --cycle).
    let sent = jeedom_send(d.port, &send_body("pong", s));
    sent.written.expect("write the request");
    refusals.watch(s, sent.conn);
    let ok = f.marks.wait(T, |x| {
        x.reply_to_rc.contains_key(&s)
            && x.sent_acked.contains_key(&s)
            && x.msg_acked.contains_key(&s)
    });
    if !ok && refusals.contains(s) {
        return None;
    }
    must(f, d, &format!("reply {s} and its sent event"), |x| {
        x.reply_to_rc.contains_key(&s)
    });
    let (down, jd, rc) = take_interaction(f, s);
    v.daemon.push(dur(down, rc));
    v.fakes.push(dur(t, rc));
    v.inbound.push(dur(down, jd));
    v.outbound.push(dur(sent.writing, rc));
    Some(t)
}

/// Takes every mark of interaction `s` out of the maps: (message frame at
/// the daemon, message at Jeedom, reply at the server).
fn take_interaction(f: &Fakes, s: u64) -> (Instant, Instant, Instant) {
    let mut g = f.marks.lock();
    let down = take(&mut g.msg_to_daemon, s);
    let jd = take(&mut g.msg_to_jeedom, s);
    let rc = take(&mut g.reply_to_rc, s);
    g.msg_acked.remove(&s);
    g.reply_acked.remove(&s);
    g.sent_to_jeedom.remove(&s);
    g.sent_acked.remove(&s);
    (down, jd, rc)
}

fn report(
    n: usize,
    refused: usize,
    v: &mut Spans,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let daemon = Spread::of(&mut v.daemon);
    let fakes = Spread::of(&mut v.fakes);
    let outbound = Spread::of(&mut v.outbound);
    let inbound = Spread::of(&mut v.inbound);
    println!(
        "  daemon:     {} (frame at the daemon -> reply at the server)",
        daemon.text()
    );
    println!("  with fakes: {}", fakes.text());
    println!(
        "  send request -> reply at the server: {}; {refused} sends refused",
        outbound.text()
    );
    push_rows(n, refused, &daemon, &fakes, rows);
    details.insert(
        "round_trip".into(),
        json!({"n": n, "daemon_ms": daemon.json(), "with_fakes_ms": fakes.json(),
               "send_request_to_server_ms": outbound.json(), "inbound_ms": inbound.json(),
               "refused": refused, "period_ms": 25}),
    );
}

fn push_rows(n: usize, refused: usize, daemon: &Spread, fakes: &Spread, rows: &mut Vec<Row>) {
    rows.push(
        Row::new("round_trip_p50_ms", "bot round trip p50 (daemon)", daemon.p50, "ms").note(format!(
            "{n} times, one per 25 ms at most; message frame at the daemon -> reply request at the server, Jeedom's send included; {refused} sends refused"
        )),
    );
    rows.push(Row::new(
        "round_trip_p99_ms",
        "bot round trip p99 (daemon)",
        daemon.p99,
        "ms",
    ));
    rows.push(Row::new(
        "round_trip_max_ms",
        "bot round trip max (daemon)",
        daemon.max,
        "ms",
    ));
    rows.push(
        Row::new(
            "round_trip_fakes_p50_ms",
            "bot round trip p50 (with fakes)",
            fakes.p50,
            "ms",
        )
        .note(format!("p99 {}, max {}", num(fakes.p99), num(fakes.max))),
    );
}
