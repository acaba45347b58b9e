//! Cold starts: from the exec to the pid file, the login, the subscriptions and the first rooms event at Jeedom.
use crate::common::{dur, Fakes, T};
use crate::daemon::Daemon;
use crate::marks::Moment;
use crate::report::{num, percentiles, Row};
use crate::Config;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

pub fn startup(cfg: &Config, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    println!(
        "\n== start-up ({} cold starts, first run: no state)",
        cfg.starts
    );
    let f = Fakes::start();
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..cfg.starts {
        for (v, t) in times.iter_mut().zip(one_start(cfg, &f)) {
            v.push(t);
        }
    }
    let figures = [
        ("start_to_pid_file_ms", "start -> pid file", Some(1000.0)),
        ("start_to_logged_in_ms", "start -> logged in", None),
        ("start_to_subscribed_ms", "start -> subscribed", Some(50.0)),
        (
            "start_to_rooms_event_ms",
            "start -> first rooms event at Jeedom",
            None,
        ),
    ];
    for ((key, label, target), v) in figures.into_iter().zip(&mut times) {
        push_median(rows, details, key, label, v, target);
    }
}

/// One cold start, stopped once connected: ms from the exec to the pid
/// file, the login, the subscriptions and the rooms event.
fn one_start(cfg: &Config, f: &Fakes) -> [f64; 4] {
    let d = f.daemon(cfg, "bench-start");
    let t0 = d.started;
    let pid_at = wait_pid_file(&d);
    f.wait_connected(&d, t0);
    let (l, s, r) = first_moments(f, t0);
    let t = [
        dur(t0, pid_at),
        dur(t0, l.expect("login seen")),
        dur(t0, s.expect("three subscriptions ready")),
        dur(t0, r.expect("rooms event")),
    ];
    println!(
        "  pid file {:.1} ms, logged in {:.1} ms, subscribed {:.1} ms, rooms event {:.1} ms",
        t[0], t[1], t[2], t[3]
    );
    d.stop();
    t
}

/// Polled every 0.1 ms: the file comes within milliseconds. It counts once
/// its line is complete.
fn wait_pid_file(d: &Daemon) -> Instant {
    let pid_path = d.pid_path();
    loop {
        if std::fs::read_to_string(&pid_path).is_ok_and(|s| s.ends_with('\n')) {
            return Instant::now();
        }
        assert!(
            d.started.elapsed() < T,
            "no pid file; log:\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The login, the third `ready` (the daemon subscribes three times, so the
/// third means all are accepted) and the rooms event after `t0`.
fn first_moments(f: &Fakes, t0: Instant) -> (Option<Instant>, Option<Instant>, Option<Instant>) {
    let g = f.marks.lock();
    let first = |m: Moment, nth: usize| {
        g.moments
            .iter()
            .filter(|(t, x)| *t >= t0 && *x == m)
            .nth(nth)
            .map(|(t, _)| *t)
    };
    (
        first(Moment::LoggedIn, 0),
        first(Moment::Ready, 2),
        first(Moment::RoomsEvent, 0),
    )
}

/// The median: a handful of starts make no p99. Every start is kept in
/// the details, in order.
fn push_median(
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
    key: &str,
    label: &str,
    v: &mut [f64],
    target: Option<f64>,
) {
    let raw = v.to_vec();
    let (p50, _, max) = percentiles(v);
    let mut r =
        Row::new(key, label, p50, "ms").note(format!("median of {}, max {}", raw.len(), num(max)));
    if let Some(t) = target {
        r = r.at_most(t);
    }
    rows.push(r);
    details.insert(key.into(), json!(raw));
}
