//! The catch-up under a flood: history read while the room grows, the server's stream behind its database.
use crate::harness;
use crate::support;
use harness::stack::{Stack, T};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use support::fake_rc::{FakeRcOptions, FakeRocketChat};
use support::wait::{assert_never, wait_until};

/// Long enough for thousands of messages through a debug build on a busy machine.
const LONG: Duration = Duration::from_secs(180);

/// The CI fault (tests/README.md): Jeedom away, a flood posted while the
/// first catch-up reads the room's history, and the stream's frames of those
/// messages arriving after the history's answer (the real server broadcasts
/// a message after saving it; a busy daemon reads its frames late). Every
/// message reaches Jeedom once, without `replay`, in order, or is counted in
/// `dropped`.
fn flood_during_the_first_catch_up(name: &str, n: usize) {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    rc.hold_history(true);
    let s = Stack::start_on(name, rc, &[]);
    s.wait_connected();
    wait_until(T, "the first catch-up to ask for the history", || {
        let asked = s.rc.rest_requests();
        asked.iter().any(|(_, p)| p.ends_with("channels.history"))
    });
    s.jeedom.set_down(true);
    s.rc.hold_stream(true);
    let mut posted: Vec<String> = (0..n)
        .map(|i| s.rc.post("GENERAL", "alice", &format!("flood {i}")))
        .collect();
    s.rc.hold_history(false);
    // The history read, the stream's frames of the same messages after it.
    wait_until(LONG, "the room's history read", || {
        let log = s.daemon.log_text();
        log.contains("catch-up done") || log.contains("waiting for the stream")
    });
    s.rc.hold_stream(false);
    // After the held frames on the same stream: once it is queued, they all are.
    let last = s.rc.post("GENERAL", "alice", "the last one");
    posted.push(last.clone());
    s.daemon.wait_log(&format!("message {last} "), LONG);
    s.jeedom.set_down(false);
    each_once_ending_with(&s, &last, &posted);
}

/// No message twice without `replay`, none unknown, in the server's order,
/// and what did not reach Jeedom is counted in `dropped`.
fn assert_each_once(events: &[Value], posted: &[String]) {
    let mut times: HashMap<&str, usize> = HashMap::new();
    for e in events.iter().filter(|e| e["type"] == "message") {
        assert_ne!(e["replay"], true, "a first run marks nothing: {e}");
        *times
            .entry(e["id"].as_str().unwrap_or_default())
            .or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} of {} messages reached Jeedom twice, e.g. {:?}",
        twice.len(),
        posted.len(),
        twice.iter().take(3).collect::<Vec<_>>()
    );
    assert!(times.keys().all(|id| posted.iter().any(|p| p == id)));
    let order: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["id"].as_str().unwrap_or_default())
        .collect();
    let expected: Vec<&str> = posted
        .iter()
        .map(String::as_str)
        .filter(|id| times.contains_key(id))
        .collect();
    let first = order.iter().zip(&expected).position(|(a, b)| a != b);
    assert!(
        first.is_none(),
        "not in the server's order from the {first:?}th delivered message: \
         posted #{:?} came there",
        first.and_then(|i| posted.iter().position(|p| p == order[i]))
    );
    let dropped: u64 = events.iter().filter_map(|e| e["count"].as_u64()).sum();
    assert_eq!(
        times.len() as u64 + dropped,
        posted.len() as u64,
        "every message delivered or counted in `dropped`"
    );
}

/// Fewer messages than the queue holds: none dropped, none twice.
#[test]
fn a_flood_during_the_first_catch_up_reaches_jeedom_once() {
    flood_during_the_first_catch_up("cu-flood", 1_200);
}

/// The CI run's size: more than the queue holds (10,000), so the oldest
/// give way to `dropped`; a message delivered twice would also have pushed
/// another one out.
#[test]
fn a_flood_past_the_queue_during_the_first_catch_up_is_delivered_or_counted_once() {
    flood_during_the_first_catch_up("cu-flood-full", 10_300);
}

/// History pages answered each after 100 more messages were posted: by
/// `offset` alone the pages shifted (the newest 100 came three times) and
/// the oldest messages missed during the outage were never read, though
/// only 400 messages were to be read in all. Every message reaches Jeedom
/// once, in order.
#[test]
fn history_pages_read_while_the_room_grows_miss_nothing() {
    let s = Stack::start("cu-pages");
    s.wait_connected();
    s.rc.set_down(true);
    wait_until(T, "the daemon to see the outage", || {
        s.request(json!({"action": "status"}))["connected"] == false
    });
    let mut posted: Vec<String> = (0..300)
        .map(|i| s.rc.post("GENERAL", "alice", &format!("while away {i}")))
        .collect();
    let asked = || {
        let rest = s.rc.rest_requests();
        rest.iter().filter(|(_, p)| p.ends_with(".history")).count()
    };
    let before = asked();
    s.rc.hold_history(true);
    s.rc.set_down(false);
    for page in 1..=3 {
        wait_until(T, "the next page asked for", || asked() >= before + page);
        for i in 0..100 {
            let text = format!("before page {page}: {i}");
            posted.push(s.rc.post("GENERAL", "alice", &text));
        }
        s.rc.pass_history();
    }
    s.rc.hold_history(false);
    let last = posted.last().cloned().unwrap_or_default();
    each_once_ending_with(&s, &last, &posted);
}

/// A reply in a thread posted while the daemon was cut off: the REST
/// history lists thread replies only when asked (`showThreadMessages`).
#[test]
fn a_thread_reply_missed_during_an_outage_is_caught_up() {
    let s = Stack::start("cu-thread");
    s.wait_connected();
    let root = s.rc.post("GENERAL", "alice", "the thread's start");
    s.wait_messages(1);
    s.rc.set_down(true);
    wait_until(T, "the daemon to see the outage", || {
        s.request(json!({"action": "status"}))["connected"] == false
    });
    let reply =
        s.rc.post_message(json!({"rid": "GENERAL", "msg": "a reply while away",
        "tmid": root, "u": {"_id": "aliceid", "username": "alice"}}));
    s.rc.set_down(false);
    let got = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == reply.as_str());
    assert_eq!(got["thread"], root.as_str(), "{got}");
    assert_never(Duration::from_millis(500), "a message twice", || {
        s.messages().len() > 2
    });
}

/// Waits for `last` at Jeedom, checks nothing comes after it, then that
/// every message of `posted` reached Jeedom once.
fn each_once_ending_with(s: &Stack, last: &str, posted: &[String]) {
    s.jeedom
        .wait_events(LONG, "the last message at Jeedom", |ev| {
            ev.iter().any(|e| e["id"] == last)
        });
    assert_never(
        Duration::from_millis(800),
        "an event after the last",
        || s.jeedom.events().last().is_some_and(|e| e["id"] != last),
    );
    assert_each_once(&s.jeedom.events(), posted);
}
