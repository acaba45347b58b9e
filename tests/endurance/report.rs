//! The end of a run: the results printed, then asserted.
use super::checks::Checks;
use super::drain::Drained;
use super::faults::Injected;
use super::traffic::Record;
use super::Run;
use crate::harness::Daemon;

/// Largest RSS accepted at any time (the daemon's targets are 4 and 8 MiB
/// with far more traffic; this is a bound, not a target).
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// Everything a run is judged on.
pub struct Outcome {
    pub seed: u64,
    pub run: Run,
    pub faults: Injected,
    pub traffic: Record,
    pub drained: Drained,
    /// Exit code of the final SIGTERM.
    pub exit: Option<i32>,
    pub checks: Checks,
}

pub fn print(o: &Outcome, daemon: &Daemon) {
    println!("---- endurance results (seed {}, {} s)", o.seed, o.run.secs);
    let injected = &o.faults.counts;
    let faults_total: usize = injected.values().sum();
    println!("faults injected: {faults_total} {injected:?}");
    print_messages(o);
    print_sends(o);
    print_daemon(o);
    print_details(o, daemon);
}

fn print_messages(o: &Outcome) {
    let m = &o.checks.messages;
    println!(
        "messages person -> Jeedom: posted {}, handled {}, lost {}, duplicated {}, \
         out of order {}, unexpected {}; re-delivered as replays after kill -9 (skipped by id) {}, \
         replays without a kill {}",
        o.traffic.posted.len(),
        m.handled,
        m.lost.len(),
        m.dup.len(),
        m.out_of_order.len(),
        m.unexpected,
        m.replays.len(),
        m.bad_replays.len()
    );
    for d in &m.replays {
        println!("  replay: {d}");
    }
}

fn print_sends(o: &Outcome) {
    let s = &o.checks.sends;
    println!(
        "sends Jeedom -> Rocket.Chat: tried {}, accepted {}, posted {} (of which {} without an ok), \
         lost {}, duplicated {}, out of order {}; sent events duplicated {} (and {} replays skipped)",
        s.tried,
        s.accepted.len(),
        s.posted,
        s.posted_unacked,
        s.lost.len(),
        s.dup.len(),
        s.out_of_order,
        s.sent_dup,
        s.sent_replays
    );
    println!("  not accepted: {:?}", s.refused);
}

fn print_daemon(o: &Outcome) {
    println!(
        "daemon: {} kill -9, final SIGTERM exit {:?}, max RSS {} KiB, drained in {:.1} s{}",
        o.faults.kills.len(),
        o.exit,
        o.traffic.max_rss,
        o.drained.took.as_secs_f64(),
        if o.drained.done { "" } else { " (NOT drained)" }
    );
    let st = &o.checks.state;
    println!(
        "state file: {} bytes, valid {}, outbox {}, undelivered events {}",
        st.text.len(),
        st.ok,
        st.outbox,
        st.events
    );
}

/// What helps find the cause of a failure: losses with the faults near them,
/// disorder, and on demand the daemon's log and the faults' timeline.
fn print_details(o: &Outcome, daemon: &Daemon) {
    for p in &o.checks.messages.lost {
        println!(
            "  lost: e{} in {} posted at {:.2} s, near: {}",
            p.n,
            p.rid,
            p.at,
            o.faults.near(p.at)
        );
    }
    for d in &o.checks.messages.out_of_order {
        println!("  out of order: {d}");
    }
    if std::env::var_os("RCD_ENDURANCE_LOG").is_some() {
        println!("---- daemon log (last incarnation)\n{}", daemon.log_text());
    }
    if std::env::var_os("RCD_ENDURANCE_TIMELINE").is_some() {
        for (a, b, f) in &o.faults.timeline {
            println!("  fault {f:?} {a:.2}-{b:.2} s");
        }
    }
}

/// Fails the test on the first broken promise.
pub fn judge(o: &Outcome, daemon: &Daemon) {
    judge_messages(o);
    judge_sends(o);
    judge_daemon(o, daemon);
}

fn judge_messages(o: &Outcome) {
    let m = &o.checks.messages;
    assert!(
        m.lost.is_empty(),
        "lost messages: {:?}",
        m.lost
            .iter()
            .map(|p| format!("e{} in {}", p.n, p.rid))
            .collect::<Vec<_>>()
    );
    assert!(
        m.dup.is_empty(),
        "duplicates (not marked as replays): {:?}",
        m.dup
    );
    assert!(
        m.bad_replays.is_empty(),
        "marked as replays with no kill -9 before: {:?}",
        m.bad_replays
    );
    assert!(
        m.out_of_order.is_empty(),
        "out of order: {:?}",
        m.out_of_order
    );
    assert_eq!(m.unexpected, 0, "message events nobody posted");
}

fn judge_sends(o: &Outcome) {
    let s = &o.checks.sends;
    assert!(
        s.lost.is_empty(),
        "accepted sends never posted: {:?}",
        s.lost
    );
    assert!(s.dup.is_empty(), "sends posted twice: {:?}", s.dup);
    assert_eq!(s.out_of_order, 0, "sends posted out of order");
    assert_eq!(
        s.sent_dup, 0,
        "`sent` events repeated without the replay mark"
    );
}

fn judge_daemon(o: &Outcome, daemon: &Daemon) {
    assert_eq!(
        o.exit,
        Some(0),
        "final SIGTERM exit; log:\n{}",
        daemon.log_text()
    );
    let st = &o.checks.state;
    assert!(st.ok, "state file invalid: {}", st.text);
    assert_eq!((st.outbox, st.events), (0, 0), "state not drained");
    assert!(
        o.traffic.max_rss <= RSS_BOUND_KIB,
        "RSS went over {RSS_BOUND_KIB} KiB"
    );
    assert!(o.drained.done, "not drained within {:?}", o.run.drain);
    assert!(
        !o.checks.sends.accepted.is_empty() && !o.traffic.posted.is_empty(),
        "no traffic at all"
    );
}
