//! Jeedom's `send` requests: one at a time, a burst, and a backlog while Rocket.Chat is down, then how fast it drains.
use crate::common::{
    accepted, all_seen, dur, jeedom_send, next_seqs, read_reply, send_body, Fakes, T,
};
use crate::daemon::Daemon;
use crate::report::{num, percentiles, Row};
use crate::Config;
use serde_json::{json, Map, Value};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connections the backlog keeps open at once: the daemon serves 32, and
/// the bench measures the daemon's pace, not its refusals of a 33rd.
const OPEN: usize = 31;

pub fn send_throughput(
    cfg: &Config,
    f: &Fakes,
    d: &Daemon,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let one = one_at_a_time(f, d);
    let burst = burst(f, d, rows);
    let backlog = backlog(cfg, f, d);
    let drain = drain(f, d, &backlog);
    push_rows(&one, &backlog, &drain, rows);
    details.insert(
        "send_throughput".into(),
        json!({"one_at_a_time_ok_ms": {"p50": one.p50, "max": one.max, "n": one.n},
               "burst": {"n": burst.n, "accepted": burst.ok.len(), "refused": burst.refused.len()},
               "backlog": backlog.n, "accepted": backlog.ok, "refused": backlog.refused.len(),
               "accepted_per_s": backlog.rate, "posted": drain.wanted.len(),
               "posted_per_s": drain.rate, "fake_ms_per_request": drain.server_each,
               "daemon_ms_per_request": drain.daemon_each}),
    );
    // Let the `sent` events drain.
    let _ = f.marks.wait(Duration::from_secs(60), |x| {
        drain.wanted.iter().all(|s| x.sent_acked.contains_key(s))
    });
    f.reset();
}

/// Waits for each `ok`: ms from the request to its reply.
struct OneAtATime {
    n: usize,
    p50: f64,
    max: f64,
}

fn one_at_a_time(f: &Fakes, d: &Daemon) -> OneAtATime {
    let k = 10usize;
    println!("\n== send requests: {k} one after the other, each waiting for its ok");
    let base = next_seqs(k);
    let mut waits = Vec::new();
    for i in 0..k as u64 {
        let t = Instant::now();
        let reply = d.request(send_body("one", base + i));
        assert_eq!(reply["ok"], true, "send refused: {reply}");
        waits.push(dur(t, Instant::now()));
    }
    let (p50, _, max) = percentiles(&mut waits);
    println!("  send -> ok: p50 {p50:.1} ms, max {max:.1} ms");
    let mut next = base;
    let _ = f
        .marks
        .wait(T, |x| all_seen(&x.sent_acked, base, k, &mut next));
    OneAtATime { n: k, p50, max }
}

struct Burst {
    n: usize,
    /// Markers of the accepted requests.
    ok: Vec<u64>,
    /// Replies of the refused ones.
    refused: Vec<String>,
}

/// 64 requests 2 ms apart, Jeedom-style (write, close, never read), as a
/// scenario loop sending one message per device would.
fn burst(f: &Fakes, d: &Daemon, rows: &mut Vec<Row>) -> Burst {
    let n = 64usize;
    let base = next_seqs(n);
    let conns: Vec<TcpStream> = (0..n as u64)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(2));
            jeedom_send(d.port, &send_body("burst", base + i)).conn
        })
        .collect();
    let mut b = Burst {
        n,
        ok: Vec::new(),
        refused: Vec::new(),
    };
    for (i, mut c) in conns.into_iter().enumerate() {
        let out = read_reply(&mut c);
        if accepted(&out) {
            b.ok.push(base + i as u64);
        } else {
            b.refused.push(out.trim().to_string());
        }
    }
    let mut next_ok = 0usize;
    let _ = f.marks.wait(T, |x| {
        while next_ok < b.ok.len() && x.sent_acked.contains_key(&b.ok[next_ok]) {
            next_ok += 1;
        }
        next_ok == b.ok.len()
    });
    push_burst_row(&b, rows);
    b
}

fn push_burst_row(b: &Burst, rows: &mut Vec<Row>) {
    let first_refusal = b.refused.first().cloned().unwrap_or_default();
    println!(
        "  burst of {}, 2 ms apart: {} accepted, {} refused {}",
        b.n,
        b.ok.len(),
        b.refused.len(),
        first_refusal
    );
    rows.push(
        Row::new(
            "send_burst_refused",
            &format!("send burst of {}, 2 ms apart: refused", b.n),
            b.refused.len() as f64,
            "req",
        )
        .note(format!(
            "the socket serves 32 connections and each waits for the state write; \
             Jeedom's PHP never reads the reply {first_refusal}"
        )),
    );
}

/// Counts the backlog's open connections, to keep them at [`OPEN`].
#[derive(Default)]
struct Gate {
    open: Mutex<usize>,
    cv: Condvar,
}

impl Gate {
    fn enter(&self) {
        let mut g = self.open.lock().unwrap();
        while *g >= OPEN {
            g = self.cv.wait(g).unwrap();
        }
        *g += 1;
    }

    fn leave(&self) {
        *self.open.lock().unwrap() -= 1;
        self.cv.notify_all();
    }
}

struct Backlog {
    n: usize,
    base: u64,
    ok: usize,
    /// Markers of the refused requests.
    refused: Vec<u64>,
    /// Accepted per second, up to the last reply.
    rate: f64,
}

/// `cfg.sends` requests while Rocket.Chat is down, as Jeedom sends them.
fn backlog(cfg: &Config, f: &Fakes, d: &Daemon) -> Backlog {
    let n = cfg.sends;
    println!(
        "  {n} sends while Rocket.Chat is down, Jeedom-style (no wait for the reply), <= 31 open"
    );
    f.rc.set_down(true);
    let base = next_seqs(n);
    let (tx, rx) = channel::<(u64, TcpStream)>();
    let gate = Arc::new(Gate::default());
    let reader = read_replies(rx, gate.clone());
    let t0 = Instant::now();
    for i in 0..n as u64 {
        gate.enter();
        let s = base + i;
        // Jeedom never reads the reply; it is read by other threads, which
        // changes nothing for the daemon and tells refused requests apart.
        let _ = tx.send((s, jeedom_send(d.port, &send_body("bulk", s)).conn));
    }
    drop(tx);
    let (ok, refused, last_reply) = reader.join().expect("reply reader");
    let accept_secs = last_reply.duration_since(t0).as_secs_f64();
    let rate = ok as f64 / accept_secs;
    println!(
        "  accepted {ok} in {accept_secs:.1} s ({rate:.0}/s), refused {}",
        refused.len()
    );
    Backlog {
        n,
        base,
        ok,
        refused,
        rate,
    }
}

/// Reads every reply: (accepted, refused markers, moment of the last reply).
fn read_replies(
    rx: Receiver<(u64, TcpStream)>,
    gate: Arc<Gate>,
) -> JoinHandle<(usize, Vec<u64>, Instant)> {
    std::thread::spawn(move || {
        let (mut ok, mut refused) = (0usize, Vec::new());
        let mut last = Instant::now();
        let (rtx, rrx) = channel::<(u64, bool)>();
        let hs = reply_workers(rx, &gate, &rtx);
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
    })
}

/// Replies come in commit groups, one state write answering many: one
/// reading thread per connection the daemon serves.
fn reply_workers(
    rx: Receiver<(u64, TcpStream)>,
    gate: &Arc<Gate>,
    rtx: &Sender<(u64, bool)>,
) -> Vec<JoinHandle<()>> {
    let pending = Arc::new(Mutex::new(rx));
    (0..32)
        .map(|_| {
            let (pending, rtx, gate) = (pending.clone(), rtx.clone(), gate.clone());
            std::thread::spawn(move || loop {
                let got = pending.lock().unwrap().recv();
                let Ok((s, mut c)) = got else { break };
                let good = accepted(&read_reply(&mut c));
                gate.leave();
                let _ = rtx.send((s, good));
            })
        })
        .collect()
}

/// The accepted backlog posted once Rocket.Chat is back.
struct Drain {
    wanted: Vec<u64>,
    rate: f64,
    /// ms per `chat.sendMessage` in the fake, and in the daemon between two.
    server_each: f64,
    daemon_each: f64,
}

fn drain(f: &Fakes, d: &Daemon, b: &Backlog) -> Drain {
    let t_up = Instant::now();
    f.rc.set_down(false);
    let wanted: Vec<u64> = (b.base..b.base + b.n as u64)
        .filter(|s| !b.refused.contains(s))
        .collect();
    let ok_all = f.marks.wait(Duration::from_secs(600), |x| {
        wanted.iter().all(|s| x.reply_acked.contains_key(s))
    });
    assert!(
        ok_all,
        "not every accepted send was posted; log:\n{}",
        d.log_tail()
    );
    let (first, last, server_ms) = posted_span(f, &wanted, t_up);
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
    Drain {
        wanted,
        rate,
        server_each,
        daemon_each,
    }
}

/// First and last request at the server, and the ms the fake spent on all.
fn posted_span(f: &Fakes, wanted: &[u64], t_up: Instant) -> (Instant, Instant, f64) {
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
}

fn push_rows(one: &OneAtATime, b: &Backlog, dr: &Drain, rows: &mut Vec<Row>) {
    rows.push(
        Row::new(
            "send_ok_wait_ms",
            "socket send -> ok, one at a time",
            one.p50,
            "ms",
        )
        .note(format!(
            "median of {}: the ok waits for the next state write, at most one per --cycle (0.5 s)",
            one.n
        )),
    );
    rows.push(
        Row::new(
            "send_accept_per_s",
            "send requests accepted, <= 31 open",
            b.rate,
            "req/s",
        )
        .note(format!(
            "{} accepted, {} refused; one state write per cycle answers a group",
            b.ok,
            b.refused.len()
        )),
    );
    rows.push(
        Row::new(
            "sends_per_s",
            "send requests posted to the server",
            dr.rate,
            "req/s",
        )
        .note(format!(
            "backlog of {}, one in flight at a time; fake {} ms + daemon {} ms per request",
            dr.wanted.len(),
            num(dr.server_each),
            num(dr.daemon_each)
        )),
    );
}
