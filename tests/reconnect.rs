//! Outages: 20 disconnects of each kind with messages posted meanwhile; kill -9 before the ack.
use crate::harness;
use crate::support;
use harness::stack::{Stack, T};
use serde_json::Value;
use std::time::Duration;
use support::fake_jeedom::JeedomMode;
use support::fake_rc::FakeRcOptions;
use support::wait::{assert_never, wait_until};

const ROUNDS: usize = 20;

/// Posts one message now, checks at the end that Jeedom got all, once, in order.
struct Ledger {
    ids: Vec<String>,
}

impl Ledger {
    fn post(&mut self, s: &Stack, text: &str) {
        self.ids.push(s.rc.post("GENERAL", "alice", text));
    }

    fn check(&self, s: &Stack) {
        let n = self.ids.len();
        s.jeedom
            .wait_events(Duration::from_secs(60), "every message", |ev| {
                ev.iter().filter(|e| e["type"] == "message").count() >= n
            });
        assert_never(Duration::from_millis(800), "a duplicate", || {
            s.messages().len() > n
        });
        let got: Vec<String> = s
            .messages()
            .iter()
            .map(|m| m["id"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(got, self.ids, "every message exactly once, in order");
    }
}

fn stack(name: &str, heartbeat: &str) -> Stack {
    let opts = FakeRcOptions {
        ping_interval: Duration::from_secs(3600),
        ..FakeRcOptions::default()
    };
    let s = Stack::start_with(name, opts, &["--heartbeat", heartbeat]);
    s.wait_connected();
    s
}

fn logins(s: &Stack) -> usize {
    s.rc.logins().len()
}

#[test]
fn twenty_closed_connections() {
    let s = stack("rc-close", "5");
    let mut ledger = Ledger { ids: vec![] };
    for i in 0..ROUNDS {
        let before = logins(&s);
        ledger.post(&s, &format!("before close {i}"));
        s.rc.drop_connections();
        ledger.post(&s, &format!("during outage {i}"));
        wait_until(T, "the bot logged in again", || {
            logins(&s) > before && s.rc.bot_listening()
        });
    }
    ledger.check(&s);
}

#[test]
fn twenty_silent_servers() {
    // The server keeps TCP open but says nothing: only the heartbeat can tell.
    let s = stack("rc-silent", "0.3");
    let mut ledger = Ledger { ids: vec![] };
    for i in 0..ROUNDS {
        wait_until(T, "the daemon connected", || daemon_connected(&s));
        ledger.post(&s, &format!("before silence {i}"));
        s.rc.set_silent(true);
        ledger.post(&s, &format!("during silence {i}"));
        wait_until(T, "the daemon gave up the silent link", || {
            !daemon_connected(&s)
        });
        s.rc.set_silent(false);
    }
    ledger.check(&s);
}

fn daemon_connected(s: &Stack) -> bool {
    s.request(serde_json::json!({"action": "status"}))["connected"] == true
}

#[test]
fn twenty_server_restarts() {
    let s = stack("rc-restart", "5");
    let mut ledger = Ledger { ids: vec![] };
    for i in 0..ROUNDS {
        let before = logins(&s);
        ledger.post(&s, &format!("before restart {i}"));
        s.rc.set_down(true);
        ledger.post(&s, &format!("while down {i}"));
        ledger.post(&s, &format!("while down, again {i}"));
        s.rc.set_down(false);
        wait_until(T, "the bot logged in again", || {
            logins(&s) > before && s.rc.bot_listening()
        });
    }
    ledger.check(&s);
}

#[test]
fn kill_9_before_jeedom_acknowledges_delivers_once_after_restart() {
    let mut s = stack("rc-kill9", "5");
    s.jeedom.set_mode(JeedomMode::Status(500));
    let id = s.rc.post("GENERAL", "alice", "@jeedombot are you there?");
    wait_until(T, "the daemon tried to deliver", || {
        s.jeedom.post_attempts() >= 2
    });
    s.daemon.kill9();
    s.jeedom.set_mode(JeedomMode::Ok);
    s.daemon.restart();
    let m = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
    assert_eq!(m["text"], "@jeedombot are you there?");
    // Once Jeedom's acknowledgement is on disk, a message posted while the
    // daemon is dead is caught up, and the first one is not replayed.
    wait_until(T, "the acknowledgement on disk", || acked_on_disk(&s));
    s.daemon.kill9();
    let id2 = s.rc.post("GENERAL", "alice", "while the daemon was dead");
    s.daemon.restart();
    s.jeedom
        .wait_event(T, "message", |e| e["id"] == id2.as_str());
    assert_never(Duration::from_secs(1), "a duplicate", || {
        s.messages().len() > 2
    });
    let got: Vec<Value> = s.messages().iter().map(|m| m["id"].clone()).collect();
    assert_eq!(got, vec![Value::from(id), Value::from(id2)]);
}

/// The state file has no undelivered event and a watermark for GENERAL.
fn acked_on_disk(s: &Stack) -> bool {
    let st = s.daemon.state();
    st["events"].as_array().is_some_and(|e| e.is_empty())
        && st["rooms"]["GENERAL"]["watermark_ms"].as_i64().unwrap_or(0) > 0
}

#[test]
fn first_run_replays_nothing() {
    let rc = support::fake_rc::FakeRocketChat::start(FakeRcOptions::default());
    rc.post("GENERAL", "alice", "history 1");
    rc.post("GENERAL", "alice", "history 2");
    // A server with history, a daemon without state.
    let s = Stack::start_on("rc-firstrun", rc, &[]);
    s.wait_connected();
    let id = s.rc.post("GENERAL", "alice", "new");
    let m = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
    assert_eq!(m["text"], "new");
    assert_never(Duration::from_millis(500), "a replayed message", || {
        s.messages().len() > 1
    });
}

#[test]
fn kill_9_replays_only_what_was_in_flight_marked_and_a_clean_stop_replays_nothing() {
    let mut s = Stack::start_with("rc-replay", FakeRcOptions::default(), &["--cycle", "9"]);
    s.wait_connected();
    // Acknowledged by Jeedom: the journal has it at once, a kill -9 loses nothing.
    let first = s.rc.post("GENERAL", "alice", "turn on the radio");
    s.jeedom
        .wait_event(T, "message", |e| e["id"] == first.as_str());
    wait_until(T, "Jeedom's acknowledgement taken", || {
        s.request(serde_json::json!({"action": "status"}))["queues"]["events"] == 0
    });
    // In flight when the daemon dies: Jeedom may have handled it.
    s.jeedom.set_mode(JeedomMode::Hang);
    let inflight = s.rc.post("GENERAL", "alice", "turn off the radio");
    let attempts = s.jeedom.post_attempts();
    wait_until(T, "the message posted to Jeedom", || {
        s.jeedom.post_attempts() > attempts
    });
    s.daemon.kill9();
    s.jeedom.set_mode(JeedomMode::Ok);
    s.daemon.restart();
    let m = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == inflight.as_str());
    assert_eq!(m["replay"], true, "delivered after kill -9: {m}");
    // Until the room is caught up, its messages may be replays.
    s.daemon.wait_log("room GENERAL caught up", T);
    let a = inflight;
    // New messages are not replays, and a clean stop replays nothing.
    let b = s.rc.post("GENERAL", "alice", "live after the restart");
    let m = s.jeedom.wait_event(T, "message", |e| e["id"] == b.as_str());
    assert!(m.get("replay").is_none(), "{m}");
    wait_until(T, "b acknowledged", || {
        s.request(serde_json::json!({"action": "status"}))["queues"]["events"] == 0
    });
    s.daemon.sigterm();
    s.daemon.wait_exit(T);
    let c = s.rc.post("GENERAL", "alice", "while stopped");
    s.daemon.restart();
    let m = s.jeedom.wait_event(T, "message", |e| e["id"] == c.as_str());
    assert!(m.get("replay").is_none(), "{m}");
    assert_never(Duration::from_secs(1), "another delivery", || {
        s.messages().len() > 4
    });
    let ids: Vec<Value> = s.messages().iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, [&first, &a, &b, &c].map(|x| Value::from(x.as_str())));
}
