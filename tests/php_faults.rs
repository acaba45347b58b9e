//! The PHP callback when things go wrong: a failed ask, a refused closing edit, a lost server, crash replays, a long Jeedom outage.
use crate::harness;
use crate::php::{http_get, php, PhpJeedom, PASSWORD};
use crate::support;
use harness::stack::T;
use serde_json::json;
use std::time::Duration;
use support::fake_rc::{FakeRcOptions, FakeRocketChat};
use support::wait::wait_until;

/// The events of things going wrong, read by the same PHP: an ask that
/// cannot be posted, a closing edit the server refuses, the server lost.
#[test]
fn php_reads_a_failed_ask_a_refused_closing_edit_and_a_lost_server() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = PhpJeedom::start("php-failures", &rc);
    jeedom.plugin_ok(&["start"]);
    jeedom.wait("status", |h| h["status"] == "connected");
    rc.wait_bot_listening(T);

    jeedom.plugin_ok(&["ask", "#nowhere", "Anyone?", "Yes;No", "q0", "60"]);
    let failed = jeedom.wait("send_failed", |h| h["ask_id"] == "q0");
    assert!(failed["send_failed"].is_null(), "ref null: {failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("nowhere"),
        "{failed}"
    );

    rc.set_allow_editing(false); // Message_AllowEditing off
    jeedom.plugin_ok(&[
        "ask",
        "#general",
        "Close the shutters?",
        "Yes;No",
        "q3",
        "120",
    ]);
    jeedom.wait("sent", |h| h["ask_id"] == "q3");
    rc.post("GENERAL", "alice", "no");
    jeedom.wait("ask_answer", |h| h["ask_answer"] == "q3");
    let close = jeedom.wait("ask_close_failed", |h| h["ask_close_failed"] == "q3");
    assert!(
        close["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{close}"
    );
    let notice = close["notice_id"].as_str().expect("the notice was posted");
    assert!(rc.message(notice).is_some(), "{close}");

    rc.set_down(true);
    let down = jeedom.wait("status", |h| h["status"] == "disconnected");
    assert!(
        down["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    rc.set_down(false);
    wait_until(T, "connected again, at PHP", || {
        let handled = jeedom.handled();
        let last = handled.iter().rev().find(|h| h.get("status").is_some());
        last.is_some_and(|h| h["status"] == "connected")
    });
    assert!(jeedom.handled().iter().all(|h| h.get("unknown").is_none()));
}

/// Holds back the PHP callback's answer (tests/php/hold_router.php) while
/// `f` runs, then lets it go: the daemon never gets it.
fn holding<T>(jeedom: &PhpJeedom, f: impl FnOnce() -> T) -> T {
    // `php -S` serves one request at a time: once this one is answered, the
    // batch PHP may still be answering is answered too, and is not held.
    let idle = http_get(&format!(
        "{}?test=1&apikey={}",
        jeedom.callback,
        harness::APIKEY
    ));
    assert!(idle.ends_with("OK"), "{idle}");
    let hold = jeedom.dir.join("hold");
    std::fs::write(&hold, "").unwrap();
    let out = f();
    std::fs::remove_file(&hold).unwrap();
    out
}

#[test]
fn php_skips_the_replays_of_a_crash_it_has_already_handled() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = PhpJeedom::start_with("php-replay", &rc, "hold_router.php");
    // Started by the harness for its kill -9.
    let (url, cb) = (rc.url(), jeedom.callback.clone());
    let args = [
        "--url",
        &url,
        "--user",
        "jeedombot",
        "--password",
        PASSWORD,
        "--callback",
        &cb,
    ];
    let mut daemon = harness::Daemon::start_in(&jeedom.dir, &args);
    jeedom.wait("status", |h| h["status"] == "connected");
    jeedom.wait("rooms", |_| true); // nothing else to deliver: the hold is for what comes
    rc.wait_bot_listening(T);

    // A crash while Jeedom's answer to a batch it handled is on its way:
    // after the restart the batch comes again, marked, and PHP skips it.
    let id = holding(&jeedom, || {
        let id = rc.post("GENERAL", "alice", "are you there?");
        jeedom.wait("message", |h| h["message"] == id.as_str());
        daemon.kill9();
        id
    });
    daemon.restart();
    let message_key = format!("message:{id}");
    jeedom.wait("skipped", |h| h["skipped"] == message_key.as_str());
    wait_until(T, "the restart's rooms event at PHP", || {
        jeedom
            .handled()
            .iter()
            .filter(|h| h.get("rooms").is_some())
            .count()
            == 2
    });

    let send = json!({"apikey": harness::APIKEY, "action": "send", "room": "#general", "message": "hello", "ref": "r1"});
    holding(&jeedom, || {
        assert_eq!(daemon.request(&send)["ok"], true);
        jeedom.wait("sent", |h| h["sent"] == "r1");
        daemon.kill9();
    });
    daemon.restart();
    jeedom.wait("skipped", |h| h["skipped"] == "sent:ref:r1");

    let handled = jeedom.handled();
    assert_eq!(jeedom.count("message", &json!(id)), 1, "{handled:#?}");
    assert_eq!(jeedom.count("sent", &json!("r1")), 1, "{handled:#?}");
    let posted = rc.messages("GENERAL");
    assert_eq!(
        posted.iter().filter(|m| m["msg"] == "hello").count(),
        1,
        "posted once"
    );
}

/// The longest PHP test, run in CI too so that PHP reads every event type:
/// 19 to 23 s in a debug build on the 2-core build machine (10,000 messages
/// queued, the callback's grown retry delay, 10,000 events through PHP).
#[test]
fn php_reads_the_dropped_count_after_a_long_outage() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let mut jeedom = PhpJeedom::start("php-dropped", &rc);
    jeedom.plugin_ok(&["start"]);
    jeedom.wait("status", |h| h["status"] == "connected");
    jeedom.wait("rooms", |_| true);
    rc.wait_bot_listening(T);
    // The flood may overlap the first catch-up (in CI it did, and before the
    // fix 118 messages reached Jeedom twice: tests/catchup.rs).
    jeedom.stop_server();
    // Past 10,000 waiting events the oldest messages give way to one
    // `dropped` event that counts them.
    let n = 10_050;
    for i in 0..n {
        rc.post("GENERAL", "alice", &format!("flood {i}"));
    }
    let last = rc.post("GENERAL", "alice", "the last one");
    let long = Duration::from_secs(180);
    wait_until(long, "the daemon to queue the last message", || {
        jeedom.daemon_log().contains(&last)
    });
    jeedom.restart_server();
    // The callback's retry delay has grown during the outage (up to 30 s).
    wait_until(long, "the last message handled by PHP", || {
        jeedom
            .handled()
            .iter()
            .any(|h| h["message"] == last.as_str())
    });
    let handled = jeedom.handled();
    let delivered = handled
        .iter()
        .filter(|h| h.get("message").is_some())
        .count();
    let dropped: u64 = handled.iter().filter_map(|h| h["dropped"].as_u64()).sum();
    assert!(
        dropped > 0,
        "no dropped event; {delivered} messages delivered"
    );
    assert_eq!(
        delivered as u64 + dropped,
        n + 1,
        "every message delivered or counted"
    );
}
