//! Events to Jeedom through the real callback: retries, order, batching, key check.
use crate::harness;
use crate::support;
use harness::stack::Stack;
use harness::{Daemon, APIKEY};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::fake_jeedom::{FakeJeedom, JeedomMode};
use support::wait::{assert_never, wait_until};

const T: Duration = Duration::from_secs(20);

fn start(name: &str, jeedom: &FakeJeedom) -> Daemon {
    let dir = harness::temp_dir(name);
    let url = format!("http://127.0.0.1:{}", harness::free_port());
    let cb = jeedom.url();
    let d = Daemon::start_in(
        &dir,
        &[
            "--url",
            &url,
            "--user",
            "jeedombot",
            "--password",
            "pw",
            "--callback",
            &cb,
        ],
    );
    d.wait_ready();
    d
}

/// `rooms` events Jeedom accepted (the unreachable server adds `status` events).
fn rooms(jeedom: &FakeJeedom) -> usize {
    jeedom.events_of_type("rooms").len()
}

/// `rooms` events waiting in the state file.
fn rooms_on_disk(d: &Daemon) -> usize {
    let st = d.state();
    st["events"].as_array().map_or(0, |e| {
        e.iter().filter(|e| e["event"]["type"] == "rooms").count()
    })
}

fn rooms_events(d: &Daemon, n: usize) {
    for _ in 0..n {
        assert_eq!(
            d.request(&json!({"apikey": APIKEY, "action": "rooms"}))["ok"],
            true
        );
    }
}

#[test]
fn startup_test_succeeds_with_the_right_key() {
    let jeedom = FakeJeedom::start(APIKEY);
    let d = start("cbtest-ok", &jeedom);
    wait_until(T, "startup test GET", || jeedom.test_requests() >= 1);
    assert!(!d.log_text().contains("rejected"), "{}", d.log_text());
}

#[test]
fn wrong_key_is_logged_as_a_key_problem() {
    let jeedom = FakeJeedom::start("another-key-entirely");
    let d = start("cbtest-wrongkey", &jeedom);
    d.wait_log("API key", T);
    let log = d.log_text();
    let line = log.lines().find(|l| l.contains("API key")).unwrap();
    assert!(line.contains("ERROR"), "{line}");
    assert!(!log.contains(APIKEY), "the key itself is never logged");
}

#[test]
fn jeedom_failing_then_healthy_gets_every_event_exactly_once() {
    let jeedom = FakeJeedom::start(APIKEY);
    jeedom.set_mode(JeedomMode::Status(500));
    let d = start("cb500", &jeedom);
    // Each `rooms` request queues one event; status requests in between make them distinct in time.
    rooms_events(&d, 5);
    wait_until(T, "several refused POSTs", || jeedom.post_attempts() >= 3);
    assert!(
        jeedom.events().is_empty(),
        "nothing accepted while Jeedom fails"
    );
    jeedom.set_mode(JeedomMode::Ok);
    wait_until(T, "5 events delivered", || rooms(&jeedom) >= 5);
    assert_never(Duration::from_millis(1500), "a duplicate event", || {
        rooms(&jeedom) > 5
    });
    let status = d.request(&json!({"apikey": APIKEY, "action": "status"}));
    assert_eq!(status["queues"]["events"], 0, "{status}");
}

#[test]
fn hanging_or_closing_jeedom_loses_nothing() {
    for mode in [JeedomMode::Hang, JeedomMode::Close] {
        let jeedom = FakeJeedom::start(APIKEY);
        jeedom.set_mode(mode);
        let d = start("cbhang", &jeedom);
        rooms_events(&d, 3);
        wait_until(T, "a POST attempt", || jeedom.post_attempts() >= 1);
        jeedom.set_mode(JeedomMode::Ok);
        wait_until(Duration::from_secs(40), "3 events after recovery", || {
            rooms(&jeedom) >= 3
        });
        assert_never(Duration::from_millis(1000), "a duplicate event", || {
            rooms(&jeedom) > 3
        });
    }
}

#[test]
fn batches_hold_at_most_100_events() {
    let jeedom = FakeJeedom::start(APIKEY);
    jeedom.set_down(true);
    let d = start("cbbatch", &jeedom);
    rooms_events(&d, 250);
    jeedom.set_down(false);
    wait_until(Duration::from_secs(60), "250 events", || {
        rooms(&jeedom) >= 250
    });
    let sizes: Vec<usize> = jeedom.batches().iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|&n| n <= 100), "batch sizes {sizes:?}");
    assert_eq!(rooms(&jeedom), 250);
}

#[test]
fn sigterm_while_jeedom_hangs_exits_quickly_and_keeps_the_events() {
    let jeedom = FakeJeedom::start(APIKEY);
    jeedom.set_mode(JeedomMode::Hang);
    let mut d = start("cbhangstop", &jeedom);
    rooms_events(&d, 2);
    wait_until(T, "a POST in flight", || jeedom.post_attempts() >= 1);
    let t = Instant::now();
    d.sigterm();
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(rooms_on_disk(&d), 2, "undelivered events kept in the state");
}

#[test]
fn events_queued_before_a_restart_are_delivered_after_it() {
    let jeedom = FakeJeedom::start(APIKEY);
    jeedom.set_mode(JeedomMode::Status(503));
    let mut d = start("cbrestart", &jeedom);
    rooms_events(&d, 4);
    wait_until(T, "events on disk", || rooms_on_disk(&d) == 4);
    d.kill9();
    jeedom.set_mode(JeedomMode::Ok);
    d.restart();
    d.wait_ready();
    wait_until(T, "4 events after restart", || rooms(&jeedom) >= 4);
}

/// A slow Jeedom: it acts on a batch, but its answer comes after the
/// daemon's callback timeout. The retry carries `"replay": true` (an event
/// without it is always new), so Jeedom skips the message it has handled.
#[test]
fn a_batch_retried_after_a_timeout_is_marked_replay() {
    let s = Stack::start("cb-slow");
    s.wait_connected();
    s.jeedom.set_mode(JeedomMode::SlowOnce);
    let id = s.rc.post("GENERAL", "alice", "turn on the radio");
    let copies = |s: &Stack| -> Vec<Value> {
        let all = s.jeedom.events_of_type("message");
        all.into_iter().filter(|e| e["id"] == id.as_str()).collect()
    };
    wait_until(
        Duration::from_secs(40),
        "the message delivered twice",
        || copies(&s).len() >= 2,
    );
    let got = copies(&s);
    assert!(got[0].get("replay").is_none(), "{:?}", got[0]);
    assert_eq!(got[1]["replay"], true, "{:?}", got[1]);
    assert_never(Duration::from_secs(2), "a third copy", || {
        copies(&s).len() > 2
    });
    // A sure refusal (HTTP 500) is retried without the flag.
    s.jeedom.set_mode(JeedomMode::Status(500));
    let before = s.jeedom.post_attempts();
    let id2 = s.rc.post("GENERAL", "alice", "and the lights");
    wait_until(T, "a refused POST", || s.jeedom.post_attempts() > before);
    s.jeedom.set_mode(JeedomMode::Ok);
    let ev = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == id2.as_str());
    assert!(ev.get("replay").is_none(), "{ev}");
}

/// An ask has no `ref`: its `sent` and `send_failed` say `"ref": null` and
/// carry its `ask_id`, exactly as the README shows them.
#[test]
fn an_ask_ends_in_sent_or_send_failed_with_its_ask_id_and_ref_null() {
    let s = Stack::start("cb-ask-ids");
    s.wait_connected();
    for (room, ask_id) in [("#general", "q1"), ("#nowhere", "q2")] {
        let req = json!({"action": "ask", "room": room, "question": "Lights off?",
            "answers": ["Yes", "No"], "ask_id": ask_id});
        assert_eq!(s.request(req)["ok"], true);
    }
    let sent = s.jeedom.wait_event(T, "sent", |e| e["ask_id"] == "q1");
    let keys: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["ask_id", "message_id", "ref", "room", "type"],
        "{sent}"
    );
    assert_eq!(
        (&sent["ref"], &sent["room"]["id"]),
        (&Value::Null, &json!("GENERAL"))
    );
    let failed = s
        .jeedom
        .wait_event(T, "send_failed", |e| e["ask_id"] == "q2");
    let keys: Vec<&str> = failed
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["ask_id", "error", "ref", "type"], "{failed}");
    assert_eq!(failed["ref"], Value::Null);
    assert!(
        failed["error"].as_str().unwrap().contains("nowhere"),
        "{failed}"
    );
}
