//! Sending text (contract §2 `send`, §3 `sent`/`send_failed`, §4 sending): targets, exactly-once, order, errors.
use crate::harness;
use crate::support;
use harness::stack::{Stack, T};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::fake_rc::{DupIdMode, FakeRcOptions, RestFault, BOT_ID};
use support::wait::{assert_never, wait_until};

/// Long enough for a retry the daemon should not make to show up.
const QUIET: Duration = Duration::from_secs(3);

/// The bot's own messages stored in a room, oldest first (system messages left out).
fn bot_messages(s: &Stack, rid: &str) -> Vec<Value> {
    s.rc.messages(rid)
        .into_iter()
        .filter(|m| m["u"]["_id"] == BOT_ID && m["t"].is_null())
        .collect()
}

fn count_sent(s: &Stack, reference: &str) -> usize {
    let all = s.jeedom.events_of_type("sent");
    all.iter().filter(|e| e["ref"] == reference).count()
}

/// `chat.sendMessage` requests received by the fake.
fn send_attempts(s: &Stack) -> usize {
    let reqs = s.rc.rest_requests();
    reqs.iter()
        .filter(|(_, p)| p == "/api/v1/chat.sendMessage")
        .count()
}

#[test]
fn text_to_a_channel_by_name_and_by_id_never_sends_ts() {
    let s = Stack::start("send-general");
    s.wait_connected();
    s.send(json!({"room": "#general", "message": "by name", "ref": "a"}));
    let a = s.sent("a");
    s.send(json!({"room": "GENERAL", "message": "by id", "ref": "b"}));
    let b = s.sent("b");
    let posted = bot_messages(&s, "GENERAL");
    let texts: Vec<&str> = posted.iter().map(|m| m["msg"].as_str().unwrap()).collect();
    assert_eq!(texts, ["by name", "by id"]);
    for (ev, m) in [(&a, &posted[0]), (&b, &posted[1])] {
        assert_eq!(ev["message_id"], m["_id"], "{ev}");
        assert_eq!(
            ev["room"],
            json!({"id": "GENERAL", "name": "general", "kind": "channel"})
        );
    }
    let bodies = s.rc.rest_bodies("chat.sendMessage");
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    for (body, m) in bodies.iter().zip(&posted) {
        let msg = body["message"].as_object().expect("a message object");
        assert!(!msg.contains_key("ts"), "ts must never be sent: {body}");
        assert_eq!(msg["_id"], m["_id"], "the client's own _id is kept");
        assert_eq!(msg["rid"], "GENERAL");
    }
    assert!(s.jeedom.events_of_type("send_failed").is_empty());
}

#[test]
fn mention_prefixes_the_text() {
    let s = Stack::start("send-mention");
    s.wait_connected();
    let req =
        json!({"room": "#general", "message": "the door is open", "mention": "bob", "ref": "m"});
    s.send(req);
    let ev = s.sent("m");
    let m = s.rc.message(ev["message_id"].as_str().unwrap()).unwrap();
    assert_eq!(m["msg"], "@bob the door is open");
    let req = json!({"room": "#general", "message": "ok", "mention": "@alice", "ref": "m2"});
    s.send(req);
    let ev = s.sent("m2");
    let m = s.rc.message(ev["message_id"].as_str().unwrap()).unwrap();
    assert_eq!(m["msg"], "@alice ok");
}

#[test]
fn direct_message_to_a_user_without_one_opens_it() {
    let s = Stack::start("send-dm");
    s.wait_connected();
    let rid = format!("bobid{BOT_ID}");
    assert!(s.rc.messages(&rid).is_empty());
    s.send(json!({"room": "@bob", "message": "hello Bob", "ref": "dm"}));
    let ev = s.sent("dm");
    let reqs = s.rc.rest_requests();
    assert!(
        reqs.iter()
            .any(|(m, p)| m == "POST" && p == "/api/v1/im.create"),
        "{reqs:?}"
    );
    assert_eq!(s.rc.rest_bodies("im.create"), [json!({"username": "bob"})]);
    let posted = bot_messages(&s, &rid);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["msg"], "hello Bob");
    assert_eq!(ev["message_id"], posted[0]["_id"]);
    assert_eq!(ev["room"]["id"], rid.as_str());
    assert_eq!(ev["room"]["kind"], "direct");
    // The new room reaches Jeedom's list, and the next message goes there without im.create.
    s.jeedom.wait_event(T, "rooms", |e| {
        e["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == rid.as_str())
    });
    s.send(json!({"room": "@bob", "message": "again", "ref": "dm2"}));
    s.sent("dm2");
    assert_eq!(bot_messages(&s, &rid).len(), 2);
}

#[test]
fn private_group_by_name() {
    let s = Stack::start("send-group");
    s.wait_connected();
    let gid = s.rc.add_room('p', "family", &["jeedombot", "alice"]);
    s.jeedom.wait_event(T, "rooms", |e| {
        e["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == gid.as_str())
    });
    s.send(json!({"room": "#family", "message": "dinner is ready", "ref": "g"}));
    let ev = s.sent("g");
    assert_eq!(
        ev["room"],
        json!({"id": gid, "name": "family", "kind": "group"})
    );
    let posted = bot_messages(&s, &gid);
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["msg"], "dinner is ready");
    assert_eq!(ev["message_id"], posted[0]["_id"]);
}

/// The response of the first `chat.sendMessage` is lost after the insert: the retry
/// reuses the `_id` and the server keeps one message.
fn exactly_once_after_a_dropped_response(name: &str, mode: DupIdMode) {
    let opts = FakeRcOptions {
        dup_id_mode: mode,
        ..FakeRcOptions::default()
    };
    let s = Stack::start_with(name, opts, &[]);
    s.wait_connected();
    s.rc.rest_fault("chat.sendMessage", RestFault::DropAfterInsert, 1);
    s.send(json!({"room": "#general", "message": "only once", "ref": "once"}));
    let ev = s.sent("once");
    assert!(send_attempts(&s) >= 2, "the daemon retried");
    let posted = bot_messages(&s, "GENERAL");
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(ev["message_id"], posted[0]["_id"]);
    assert_never(QUIET, "a second sent event or message", || {
        count_sent(&s, "once") > 1 || bot_messages(&s, "GENERAL").len() > 1
    });
    assert!(s.jeedom.events_of_type("send_failed").is_empty());
}

#[test]
fn exactly_once_when_the_response_is_lost_old_server() {
    exactly_once_after_a_dropped_response("send-drop-200", DupIdMode::Ok200NoMessage);
}

#[test]
fn exactly_once_when_the_response_is_lost_duplicate_key_race() {
    exactly_once_after_a_dropped_response("send-drop-400", DupIdMode::Error400);
}

#[test]
fn exactly_once_when_the_response_is_lost_node14_server() {
    exactly_once_after_a_dropped_response("send-drop-node14", DupIdMode::StarredTypeErrorNode14);
}

/// A request of two text parts and a file, for the retries below.
fn two_parts_and_a_file(s: &Stack, reference: &str) -> Value {
    let file = s.daemon.dir.join("snap.jpg");
    std::fs::write(&file, b"\xff\xd8 a snapshot").unwrap();
    let text = format!("{}\n{}", "a".repeat(4000), "b".repeat(4000));
    json!({"room": "#general", "message": text, "ref": reference,
           "files": [file.to_str().unwrap()]})
}

/// Each part posted once, in order, the file last; one `sent`, no `send_failed`.
fn assert_whole_request_once(s: &Stack, reference: &str) {
    let ev = s.sent(reference);
    let posted = bot_messages(s, "GENERAL");
    let shapes: Vec<(usize, bool)> = posted
        .iter()
        .map(|m| (m["msg"].as_str().unwrap_or("").len(), m["file"].is_object()))
        .collect();
    assert_eq!(
        shapes,
        [(4000, false), (4000, false), (0, true)],
        "{posted:?}"
    );
    assert_eq!(ev["message_id"], posted[0]["_id"]);
    assert_eq!(s.rc.uploads().len(), 1);
    assert_never(QUIET, "a second sent event or message", || {
        count_sent(s, reference) > 1 || bot_messages(s, "GENERAL").len() > 3
    });
    assert!(s.jeedom.events_of_type("send_failed").is_empty());
}

/// The default server crashes with a 400 on the retried `_id`: the daemon
/// finds the message there and goes on with the second part and the file.
#[test]
fn a_lost_answer_then_the_servers_400_on_the_retry_posts_the_rest_once() {
    let s = Stack::start("send-drop-starred");
    s.wait_connected();
    s.rc.rest_fault("chat.sendMessage", RestFault::DropAfterInsert, 1);
    s.send(two_parts_and_a_file(&s, "lost"));
    assert_whole_request_once(&s, "lost");
    let lookups = s.rc.rest_requests();
    assert!(
        lookups
            .iter()
            .any(|(_, p)| p.starts_with("/api/v1/chat.getMessage")),
        "{lookups:?}"
    );
}

/// Killed while the first part's answer was on its way: the restarted
/// daemon retries the same `_id`, gets the 400, finds the message, and
/// posts the rest of the request.
#[test]
fn a_kill_9_between_the_post_and_its_answer_posts_the_rest_once() {
    let mut s = Stack::start("send-kill-starred");
    s.wait_connected();
    s.rc.rest_fault("chat.sendMessage", RestFault::HangAfterInsert, 1);
    s.send(two_parts_and_a_file(&s, "killed"));
    wait_until(T, "the first part at the server", || {
        bot_messages(&s, "GENERAL").len() == 1
    });
    s.daemon.kill9();
    s.daemon.restart();
    s.daemon.wait_ready();
    assert_whole_request_once(&s, "killed");
}

#[test]
fn exactly_once_across_kill_9_right_after_ok() {
    let mut s = Stack::start("send-kill");
    s.wait_connected();
    s.send(json!({"room": "#general", "message": "survives a crash", "ref": "k1"}));
    s.daemon.kill9();
    s.daemon.restart();
    s.daemon.wait_ready();
    s.sent("k1");
    wait_until(T, "an empty outbox", || {
        s.request(json!({"action": "status"}))["queues"]["outbox"] == 0
    });
    // Posted, the answer lost, the daemon killed before it could retry: the
    // restarted daemon posts the same `_id` again, the server keeps one.
    s.rc.rest_fault("chat.sendMessage", RestFault::DropAfterInsert, 1);
    s.rc.rest_fault("chat.sendMessage", RestFault::Hang, 1);
    let before = send_attempts(&s);
    s.send(json!({"room": "#general", "message": "inserted then killed", "ref": "k2"}));
    wait_until(T, "the retry to hang", || send_attempts(&s) >= before + 2);
    s.daemon.kill9();
    s.daemon.restart();
    s.daemon.wait_ready();
    s.sent("k2");
    let texts: Vec<Value> = bot_messages(&s, "GENERAL")
        .iter()
        .map(|m| m["msg"].clone())
        .collect();
    assert_eq!(
        texts,
        [json!("survives a crash"), json!("inserted then killed")]
    );
    assert_never(QUIET, "a message posted twice", || {
        bot_messages(&s, "GENERAL").len() > 2
    });
    assert_eq!(count_sent(&s, "k2"), 1);
}

#[test]
fn two_hundred_sends_across_an_outage_in_order_once() {
    let s = Stack::start_with(
        "send-outage",
        FakeRcOptions::default(),
        &["--cycle", "0.02"],
    );
    s.wait_connected();
    s.rc.set_down(true);
    s.jeedom
        .wait_event(T, "status", |e| e["connected"] == false);
    for i in 0..200 {
        let text = format!("reading {i:03}");
        s.send(json!({"room": "#general", "message": text, "ref": format!("r{i}")}));
    }
    assert!(bot_messages(&s, "GENERAL").is_empty());
    s.rc.set_down(false);
    let long = Duration::from_secs(90);
    s.jeedom.wait_events(long, "200 sent events", |ev| {
        ev.iter().filter(|e| e["type"] == "sent").count() >= 200
    });
    let texts: Vec<String> = bot_messages(&s, "GENERAL")
        .iter()
        .map(|m| m["msg"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (0..200).map(|i| format!("reading {i:03}")).collect();
    assert_eq!(texts, want);
    let refs: Vec<Value> = s
        .jeedom
        .events_of_type("sent")
        .iter()
        .map(|e| e["ref"].clone())
        .collect();
    let want: Vec<Value> = (0..200).map(|i| json!(format!("r{i}"))).collect();
    assert_eq!(refs, want);
}

#[test]
fn unauthorized_once_logs_in_again_and_posts_once() {
    let s = Stack::start("send-401");
    s.wait_connected();
    let logins = s.rc.logins().len();
    s.rc.rest_fault("chat.sendMessage", RestFault::Status(401), 1);
    s.send(json!({"room": "#general", "message": "after relogin", "ref": "u"}));
    let ev = s.sent("u");
    assert!(s.rc.logins().len() > logins, "{:?}", s.rc.logins());
    let posted = bot_messages(&s, "GENERAL");
    assert_eq!(posted.len(), 1);
    assert_eq!(ev["message_id"], posted[0]["_id"]);
    assert!(s.jeedom.events_of_type("send_failed").is_empty());
}

#[test]
fn rate_limited_waits_for_the_reset_then_posts_once() {
    let s = Stack::start("send-429");
    s.wait_connected();
    let reset = RestFault::RateLimit {
        reset_ms_from_now: 2500,
    };
    s.rc.rest_fault("chat.sendMessage", reset, 1);
    let start = Instant::now();
    s.send(json!({"room": "#general", "message": "slowly", "ref": "rl"}));
    s.sent("rl");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(2), "posted after {waited:?}");
    assert_eq!(send_attempts(&s), 2);
    assert_eq!(bot_messages(&s, "GENERAL").len(), 1);
    assert!(s.jeedom.events_of_type("send_failed").is_empty());
}

#[test]
fn refused_with_400_fails_at_once_without_retry() {
    let s = Stack::start("send-400");
    s.wait_connected();
    s.rc.rest_fault("chat.sendMessage", RestFault::Status(400), 1);
    let start = Instant::now();
    s.send(json!({"room": "#general", "message": "refused", "ref": "bad"}));
    let ev = s.jeedom.wait_event(T, "send_failed", |e| e["ref"] == "bad");
    assert!(start.elapsed() < Duration::from_secs(5));
    let error = ev["error"].as_str().unwrap();
    assert!(error.contains("injected fault: HTTP 400"), "{ev}");
    assert_never(QUIET, "a retry or a sent event", || {
        send_attempts(&s) > 1 || count_sent(&s, "bad") > 0
    });
    assert!(bot_messages(&s, "GENERAL").is_empty());
    // The queue goes on with the next request.
    s.send(json!({"room": "#general", "message": "next", "ref": "next"}));
    s.sent("next");
}

#[test]
fn unknown_room_fails_with_a_reason() {
    let s = Stack::start("send-unknown");
    s.wait_connected();
    s.send(json!({"room": "#nowhere", "message": "lost", "ref": "nw"}));
    let ev = s.jeedom.wait_event(T, "send_failed", |e| e["ref"] == "nw");
    assert!(ev["error"].as_str().unwrap().contains("#nowhere"), "{ev}");
    assert_eq!(send_attempts(&s), 0);
}

/// A fresh login that is refused too (a proxy in front of the REST API, say)
/// must not turn into a login per attempt: each login adds a token to the
/// bot's account on the server.
#[test]
fn a_401_that_persists_backs_off_without_a_login_per_attempt() {
    let s = Stack::start("send-401-loop");
    s.wait_connected();
    let logins = s.rc.logins().len();
    s.rc.rest_fault("chat.sendMessage", RestFault::Status(401), 3);
    s.send(json!({"room": "#general", "message": "finally", "ref": "u"}));
    s.sent("u");
    assert_eq!(send_attempts(&s), 4);
    assert_eq!(s.rc.logins().len(), logins + 1, "{:?}", s.rc.logins());
    assert_eq!(bot_messages(&s, "GENERAL").len(), 1);
}

#[test]
fn a_long_text_is_split_in_order_under_the_size_limit() {
    let s = Stack::start("send-long");
    s.wait_connected();
    let words: Vec<String> = (0..2000).map(|i| format!("w{i:04}")).collect();
    let text = words.join(" ");
    s.send(json!({"room": "#general", "message": text, "ref": "long"}));
    let ev = s.sent("long");
    let parts: Vec<String> = bot_messages(&s, "GENERAL")
        .iter()
        .map(|m| m["msg"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert!(parts.iter().all(|p| p.chars().count() <= 5000));
    assert_eq!(parts.join(" "), text, "cut at spaces, nothing lost");
    assert_eq!(ev["message_id"], bot_messages(&s, "GENERAL")[0]["_id"]);
    assert_eq!(count_sent(&s, "long"), 1);
}

#[test]
fn a_reply_in_a_thread_carries_tmid() {
    let s = Stack::start("send-thread");
    s.wait_connected();
    let root = s.rc.post("GENERAL", "alice", "@jeedombot temperature?");
    let m = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == root.as_str());
    s.send(json!({"room": m["room"]["id"], "message": "21 °C", "thread": m["id"], "ref": "t"}));
    let ev = s.sent("t");
    let reply = s.rc.message(ev["message_id"].as_str().unwrap()).unwrap();
    assert_eq!(reply["tmid"], root.as_str());
    assert_eq!(reply["msg"], "21 °C");
    let parent = s.rc.message(&root).unwrap();
    assert_eq!(parent["tcount"], 1, "{parent}");
}

#[test]
fn an_unknown_user_fails_without_retry() {
    let s = Stack::start("send-nobody");
    s.wait_connected();
    s.send(json!({"room": "@nobody", "message": "hi", "ref": "nb"}));
    let ev = s.jeedom.wait_event(T, "send_failed", |e| e["ref"] == "nb");
    assert!(
        ev["error"].as_str().unwrap().contains("error-invalid-user"),
        "{ev}"
    );
    assert_never(QUIET, "another im.create", || {
        s.rc.rest_bodies("im.create").len() > 1
    });
    assert_eq!(send_attempts(&s), 0);
}

/// An ask whose question was posted but whose answer was lost: one question,
/// one `sent` with its id, and the question still takes the answer.
#[test]
fn an_ask_whose_answer_was_lost_is_posted_once_and_still_answered() {
    let s = Stack::start("send-drop-ask");
    s.wait_connected();
    s.rc.rest_fault("chat.sendMessage", RestFault::DropAfterInsert, 1);
    let req = json!({"action": "ask", "room": "#general", "question": "Open the gate?",
                     "answers": ["Yes", "No"], "ask_id": "g1"});
    assert_eq!(s.request(req)["ok"], true);
    let ev = s.jeedom.wait_event(T, "sent", |e| e["ask_id"] == "g1");
    let posted = bot_messages(&s, "GENERAL");
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(ev["message_id"], posted[0]["_id"]);
    s.rc.post("GENERAL", "alice", "yes");
    s.jeedom
        .wait_event(T, "ask_answer", |e| e["ask_id"] == "g1");
    s.rc.wait_message(T, "the question closed", |m| {
        m["_id"] == posted[0]["_id"] && m["editedAt"].is_object()
    });
    assert!(s.jeedom.events_of_type("send_failed").is_empty());
}
