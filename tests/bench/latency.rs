//! Message -> Jeedom latency, one message at a time, timed at the relays and at the fakes' API.
use crate::common::{dur, must, next_seqs, ping, take, Fakes};
use crate::daemon::Daemon;
use crate::report::{num, Row, Spread};
use crate::Config;
use serde_json::{json, Map, Value};

/// The four spans of one message, in ms.
#[derive(Default)]
struct Spans {
    /// Frame at the daemon's socket -> POST at Jeedom's.
    daemon: Vec<f64>,
    /// `post()` -> POST at Jeedom.
    fakes: Vec<f64>,
    /// `post()` -> Jeedom's 200 back.
    answered: Vec<f64>,
    /// `post()` -> frame at the daemon's socket: the fake alone.
    fake_rc: Vec<f64>,
}

pub fn latency(
    cfg: &Config,
    f: &Fakes,
    d: &Daemon,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let n = cfg.latency_messages;
    println!("\n== message -> Jeedom, {n} messages one at a time");
    let base = next_seqs(n);
    let mut v = Spans::default();
    for i in 0..n as u64 {
        let s = base + i;
        let t = ping(f, s);
        must(f, d, &format!("message {s} at Jeedom"), |x| {
            x.msg_acked.contains_key(&s)
        });
        let mut g = f.marks.lock();
        let down = take(&mut g.msg_to_daemon, s);
        let jd = take(&mut g.msg_to_jeedom, s);
        let ack = take(&mut g.msg_acked, s);
        drop(g);
        v.daemon.push(dur(down, jd));
        v.fakes.push(dur(t, jd));
        v.answered.push(dur(t, ack));
        v.fake_rc.push(dur(t, down));
        if i % 1000 == 999 {
            f.trim();
        }
    }
    report(n, &mut v, rows, details);
}

fn report(n: usize, v: &mut Spans, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let daemon = Spread::of(&mut v.daemon);
    let fakes = Spread::of(&mut v.fakes);
    let answered = Spread::of(&mut v.answered);
    let fake_rc = Spread::of(&mut v.fake_rc);
    println!("  daemon:     {}", daemon.text());
    println!("  with fakes: {} (post() -> POST at Jeedom)", fakes.text());
    println!(
        "  fake RC:    {} (post() -> frame at the daemon's socket)",
        fake_rc.text()
    );
    println!(
        "  answered:   {} (post() -> Jeedom's 200 back)",
        answered.text()
    );
    push_rows(n, &daemon, &fakes, fake_rc.p50, rows);
    details.insert(
        "msg_to_jeedom".into(),
        json!({"n": n, "daemon_ms": daemon.json(), "with_fakes_ms": fakes.json(),
               "answered_ms": answered.json(), "fake_rc_ms": fake_rc.json()}),
    );
}

fn push_rows(n: usize, daemon: &Spread, fakes: &Spread, fake_rc_p50: f64, rows: &mut Vec<Row>) {
    let note = format!("{n} messages; frame at the daemon's socket -> POST at Jeedom's");
    rows.push(
        Row::new(
            "msg_to_jeedom_p50_ms",
            "message -> Jeedom p50 (daemon)",
            daemon.p50,
            "ms",
        )
        .at_most(2.0)
        .note(note.clone()),
    );
    rows.push(
        Row::new(
            "msg_to_jeedom_p99_ms",
            "message -> Jeedom p99 (daemon)",
            daemon.p99,
            "ms",
        )
        .at_most(10.0)
        .note(note),
    );
    rows.push(Row::new(
        "msg_to_jeedom_max_ms",
        "message -> Jeedom max (daemon)",
        daemon.max,
        "ms",
    ));
    rows.push(
        Row::new(
            "msg_to_jeedom_fakes_p50_ms",
            "message -> Jeedom p50 (with fakes)",
            fakes.p50,
            "ms",
        )
        .note(format!(
            "from FakeRocketChat::post; p99 {}, max {}; the fake alone takes p50 {} ms (it polls every 5 ms)",
            num(fakes.p99),
            num(fakes.max),
            num(fake_rc_p50)
        )),
    );
}
