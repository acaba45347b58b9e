//! Forwarding throughput: bursts of messages posted as fast as the fake takes them, timed to the last event at Jeedom.
use crate::common::{all_seen, dur, next_seqs, Fakes};
use crate::daemon::Daemon;
use crate::report::{num, Row};
use crate::Config;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The times of a run, over its bursts.
struct Run {
    t0: Instant,
    /// Time spent in `post()`.
    posting: Duration,
    /// Last message at Jeedom, last frame handed to the daemon.
    last_jd: Instant,
    last_down: Instant,
    /// Jeedom's `dropped` events before the run: any new one fails it.
    dropped0: usize,
}

pub fn forward_throughput(
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
    f.reset();
    let (posts0, events0, dropped0) = counters(f);
    let t0 = Instant::now();
    let mut run = Run {
        t0,
        posting: Duration::ZERO,
        last_jd: t0,
        last_down: t0,
        dropped0,
    };
    let mut done = 0usize;
    while done < n {
        let k = burst.min(n - done);
        one_burst(f, d, k, &mut run);
        f.trim();
        done += k;
    }
    let (posts, events, _) = counters(f);
    report(
        n,
        burst,
        &run,
        posts - posts0,
        events - events0,
        rows,
        details,
    );
    f.reset();
}

/// Callback POSTs, `message` events and `dropped` events Jeedom got so far.
fn counters(f: &Fakes) -> (usize, usize, usize) {
    let g = f.marks.lock();
    (
        g.jeedom_posts,
        g.jeedom_message_events,
        g.jeedom_dropped_events,
    )
}

/// Posts `k` messages, waits until all are at Jeedom and forgets their marks.
fn one_burst(f: &Fakes, d: &Daemon, k: usize, run: &mut Run) {
    let base = next_seqs(k);
    let tb = Instant::now();
    for i in 0..k as u64 {
        f.rc.post(
            "GENERAL",
            "alice",
            &format!("@jeedombot load ~{}!", base + i),
        );
    }
    run.posting += tb.elapsed();
    let mut next = base;
    let ok = f.marks.wait(Duration::from_secs(120), |x| {
        all_seen(&x.msg_to_jeedom, base, k, &mut next) || x.jeedom_dropped_events > run.dropped0
    });
    let mut g = f.marks.lock();
    if !ok || g.jeedom_dropped_events > run.dropped0 {
        let dropped = g.jeedom_dropped_events - run.dropped0;
        drop(g);
        panic!(
            "{} of {k} messages of a burst reached Jeedom, {dropped} dropped events; log:\n{}",
            next - base,
            d.log_tail()
        );
    }
    let max = |m: &HashMap<u64, Instant>| m.values().copied().max().unwrap_or(run.t0);
    run.last_jd = run.last_jd.max(max(&g.msg_to_jeedom));
    run.last_down = run.last_down.max(max(&g.msg_to_daemon));
    g.msg_to_jeedom.clear();
    g.msg_to_daemon.clear();
    g.msg_acked.clear();
}

fn report(
    n: usize,
    burst: usize,
    run: &Run,
    posts: usize,
    events: usize,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let secs = run.last_jd.duration_since(run.t0).as_secs_f64();
    let rate = n as f64 / secs;
    let post_rate = n as f64 / run.posting.as_secs_f64();
    let feed_rate = n as f64 / run.last_down.duration_since(run.t0).as_secs_f64();
    // Of the last burst.
    let lag = dur(run.last_down, run.last_jd);
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
    push_row(n, rate, bottleneck, feed_rate, batch, rows);
    details.insert(
        "forward_throughput".into(),
        json!({"n": n, "forwarded_per_s": rate, "fake_post_per_s": post_rate,
               "fake_feed_per_s": feed_rate, "lag_after_last_frame_ms": lag,
               "posts": posts, "message_events": events, "events_per_post": batch}),
    );
}

fn push_row(
    n: usize,
    rate: f64,
    bottleneck: &str,
    feed_rate: f64,
    batch: f64,
    rows: &mut Vec<Row>,
) {
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
}
