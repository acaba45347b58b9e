//! The real server's limits: DDP rate limiter (catch-up, closing edits), REST history on 3.x..9.0, ids not times.
use crate::harness;
use crate::support;
use harness::stack::{Stack, T};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use support::fake_rc::{ejson_date, FakeRcOptions, FakeRocketChat, RestFault};
use support::wait::{assert_never, wait_until};

/// Long enough for a catch-up of many rooms under the rate limiters.
const LONG: Duration = Duration::from_secs(90);

/// Messages posted per room, in order.
type Posted = BTreeMap<String, Vec<String>>;

fn rooms_known(s: &Stack) -> u64 {
    let st = s.request(json!({"action": "status"}));
    st["rooms"].as_u64().unwrap_or(0)
}

/// Cuts Rocket.Chat off, lets `during` post, brings it back.
fn outage(s: &Stack, during: impl FnOnce()) {
    s.rc.set_down(true);
    wait_until(T, "the daemon to see the outage", || {
        s.request(json!({"action": "status"}))["connected"] == false
    });
    during();
    s.rc.set_down(false);
    s.rc.wait_bot_listening(T);
}

/// Every posted message reached Jeedom once, in each room's order.
fn assert_all_once_in_order(s: &Stack, posted: &Posted) {
    let n: usize = posted.values().map(Vec::len).sum();
    s.jeedom.wait_events(LONG, "every message", |ev| {
        ev.iter().filter(|e| e["type"] == "message").count() >= n
    });
    assert_never(Duration::from_millis(800), "a duplicate", || {
        s.messages().len() > n
    });
    let mut got: Posted = BTreeMap::new();
    for m in s.messages() {
        let rid = m["room"]["id"].as_str().unwrap_or_default().to_string();
        got.entry(rid)
            .or_default()
            .push(m["id"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(&got, posted, "every message exactly once, in order");
}

/// The case: 18 rooms (channels, groups, direct messages), two
/// outages, 72 messages posted while the daemon was cut off.
#[test]
fn eighteen_rooms_and_two_outages_lose_nothing_under_the_rate_limiters() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let mut rooms = Vec::new();
    for i in 0..7 {
        rooms.push(rc.add_room('c', &format!("chan-{i}"), &["jeedombot", "alice"]));
    }
    for i in 0..6 {
        rooms.push(rc.add_room('p', &format!("group-{i}"), &["jeedombot", "alice"]));
    }
    let mut authors = Vec::new();
    for i in 0..4 {
        let who = format!("person{i}");
        rc.add_user(&who, &format!("Person {i}"));
        rooms.push(rc.open_direct(&who, "jeedombot"));
        authors.push(who);
    }
    rooms.push("GENERAL".into());
    let s = Stack::start_on("cu-18rooms", rc, &[]);
    s.wait_connected();
    wait_until(T, "the 18 rooms known", || rooms_known(&s) == 18);
    let author = |i: usize| match i {
        13..=16 => authors[i - 13].clone(),
        _ => "alice".to_string(),
    };
    let mut posted = Posted::new();
    for round in 0..2 {
        outage(&s, || {
            for k in 0..2 {
                for (i, rid) in rooms.iter().enumerate() {
                    let text = format!("round {round} msg {k} room {i}");
                    let id = s.rc.post(rid, &author(i), &text);
                    posted.entry(rid.clone()).or_default().push(id);
                }
            }
        });
        // A live message during the catch-up must not move a room past its gap.
        let id = s.rc.post(&rooms[0], "alice", "live right after the outage");
        posted.entry(rooms[0].clone()).or_default().push(id);
        assert_all_once_in_order(&s, &posted);
    }
    assert_eq!(posted.values().map(Vec::len).sum::<usize>(), 74);
    assert!(s.rc.ddp_method_calls("loadMissedMessages").is_empty());
}

/// 3.x (before the 4.0 changes) and 9.0 (where `loadMissedMessages` is gone)
/// are caught up the same way.
#[test]
fn catch_up_works_on_an_old_3x_server_and_on_9_0() {
    for version in ["3.18.7", "9.0.0"] {
        let opts = FakeRcOptions {
            version: version.into(),
            ..FakeRcOptions::default()
        };
        let rc = FakeRocketChat::start(opts);
        let home = rc.add_room('p', "home", &["jeedombot", "alice"]);
        let dm = rc.open_direct("bob", "jeedombot");
        let s = Stack::start_on(&format!("cu-v{version}"), rc, &[]);
        s.wait_connected();
        wait_until(T, "the rooms known", || rooms_known(&s) == 3);
        let mut posted = Posted::new();
        outage(&s, || {
            for (rid, who) in [
                ("GENERAL", "alice"),
                (home.as_str(), "alice"),
                (dm.as_str(), "bob"),
            ] {
                for k in 0..3 {
                    let id = s.rc.post(rid, who, &format!("{version} {k}"));
                    posted.entry(rid.to_string()).or_default().push(id);
                }
            }
        });
        assert_all_once_in_order(&s, &posted);
        let used = s.rc.rest_requests();
        for ep in ["channels.history", "groups.history", "im.history"] {
            assert!(
                used.iter().any(|(_, p)| p.ends_with(ep)),
                "{version}: {ep} not used"
            );
        }
    }
}

/// The REST rate limiter (bots without `api-bypass-rate-limit`): the
/// catch-up waits until `X-RateLimit-Reset` and loses nothing.
#[test]
fn a_rate_limited_history_read_is_retried_after_the_reset() {
    let s = Stack::start("cu-429");
    s.wait_connected();
    let mut posted = Posted::new();
    outage(&s, || {
        let id = s.rc.post("GENERAL", "alice", "while away");
        posted.entry("GENERAL".into()).or_default().push(id);
        let reset = RestFault::RateLimit {
            reset_ms_from_now: 1500,
        };
        s.rc.rest_fault("channels.history", reset, 2);
    });
    // Held back by the 429: the live message waits for its room's catch-up.
    let live = s.rc.post("GENERAL", "alice", "live");
    posted.entry("GENERAL".into()).or_default().push(live);
    assert_all_once_in_order(&s, &posted);
    let reads = s.rc.rest_requests();
    let reads = reads
        .iter()
        .filter(|(_, p)| p.ends_with("channels.history"));
    assert!(reads.count() >= 3, "two refusals, then the read");
}

/// Jeedom has acknowledged every event: the rooms' watermarks have moved.
fn all_acknowledged(s: &Stack) {
    wait_until(T, "Jeedom's acknowledgement", || {
        s.request(json!({"action": "status"}))["queues"]["events"] == 0
    });
}

/// A message stamped 1 ms before the last one delivered (another server
/// instance) still arrives; one stamped an hour ahead neither silences the
/// room nor becomes the saved watermark. Each odd message comes once the
/// one before was acknowledged (the watermark moved), as a time rule would
/// then drop it.
#[test]
fn ids_not_server_times_decide_what_was_delivered() {
    let s = Stack::start("cu-ids");
    s.wait_connected();
    let first = s.rc.post("GENERAL", "alice", "first");
    let m = s.wait_messages(1);
    all_acknowledged(&s);
    let ts = s.rc.message(&first).unwrap()["ts"]["$date"]
        .as_u64()
        .unwrap();
    assert_eq!(m[0]["id"], first.as_str());
    let earlier =
        s.rc.post_message(json!({"rid": "GENERAL", "msg": "stamped 1 ms earlier",
        "u": {"username": "bob"}, "ts": ejson_date(ts - 1)}));
    s.wait_messages(2);
    let hour = 3_600_000;
    let ahead =
        s.rc.post_message(json!({"rid": "GENERAL", "msg": "an hour ahead",
        "u": {"username": "bob"}, "ts": ejson_date(ts + hour)}));
    s.wait_messages(3);
    all_acknowledged(&s);
    let after = s.rc.post("GENERAL", "alice", "after the odd one");
    let got: Vec<Value> = s.wait_messages(4).iter().map(|m| m["id"].clone()).collect();
    assert_eq!(
        got,
        [json!(first), json!(earlier), json!(ahead), json!(after)]
    );
    all_acknowledged(&s);
    let after_ts = s.rc.message(&after).unwrap()["ts"]["$date"]
        .as_u64()
        .unwrap();
    let mark = s.daemon.state()["rooms"]["GENERAL"]["watermark_ms"]
        .as_u64()
        .unwrap();
    assert!(
        (after_ts..ts + hour).contains(&mark),
        "watermark {mark}: not the last real stamp {after_ts}, or the future one"
    );
    // After an outage, the catch-up finds what was posted meanwhile, also a
    // message stamped before the watermark and one stamped ahead of the
    // server's clock (the history lists only messages up to `latest`, by
    // default the server's now), and repeats nothing.
    let mut during = Vec::new();
    outage(&s, || {
        during.push(
            s.rc.post_message(json!({"rid": "GENERAL", "msg": "stamped before the mark",
            "u": {"username": "bob"}, "ts": ejson_date(mark - 1)})),
        );
        during.push(s.rc.post("GENERAL", "alice", "during the outage"));
        let ahead = support::fake_rc::util::wall_ms() + hour;
        during.push(
            s.rc.post_message(json!({"rid": "GENERAL", "msg": "stamped an hour ahead",
            "u": {"username": "bob"}, "ts": ejson_date(ahead)})),
        );
    });
    s.wait_messages(7);
    assert_never(Duration::from_millis(800), "a duplicate", || {
        s.messages().len() > 7
    });
    let caught: Vec<Value> = s.messages()[4..].iter().map(|m| m["id"].clone()).collect();
    assert_eq!(
        caught,
        during.iter().map(|id| json!(id)).collect::<Vec<_>>()
    );
}

/// Fifteen questions expiring together need fifteen `updateMessage` calls:
/// more than the server allows one connection in 10 s. They are paced, not
/// refused, and every question is closed.
#[test]
fn fifteen_questions_closing_at_once_stay_under_the_ddp_rate_limiter() {
    let s = Stack::start("lim-asks");
    s.wait_connected();
    let mut questions = Vec::new();
    for i in 0..15 {
        let ask_id = format!("q{i}");
        let req = json!({"action": "ask", "room": "#general", "question": format!("Question {i}?"),
            "answers": ["Yes", "No"], "ask_id": ask_id, "timeout": 1});
        assert_eq!(s.request(req)["ok"], true);
        let sent = s
            .jeedom
            .wait_event(T, "sent", |e| e["ask_id"] == ask_id.as_str());
        questions.push(sent["message_id"].as_str().unwrap().to_string());
    }
    for id in &questions {
        s.rc.wait_message(LONG, "the question closed", |m| {
            m["_id"] == id.as_str()
                && m["msg"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("No answer in time"))
        });
    }
    assert_eq!(s.rc.ddp_method_calls("updateMessage").len(), 15);
    assert!(s.rc.rate_limited().is_empty(), "{:?}", s.rc.rate_limited());
}

/// More messages than one page of history (100): the catch-up reads them
/// page by page, and Jeedom gets all of them, in order.
#[test]
fn a_long_outage_is_caught_up_page_by_page() {
    let s = Stack::start("lim-pages");
    s.wait_connected();
    let mut posted = Posted::new();
    outage(&s, || {
        for i in 0..250 {
            let id = s.rc.post("GENERAL", "alice", &format!("while away {i}"));
            posted.entry("GENERAL".into()).or_default().push(id);
        }
    });
    assert_all_once_in_order(&s, &posted);
    let pages = s.rc.rest_requests();
    let pages = pages
        .iter()
        .filter(|(_, p)| p.ends_with("channels.history"));
    assert!(pages.count() >= 3, "250 messages need 3 pages of 100");
}

/// The per-user limit (20 calls of a method in 10 s) is shared with the bot
/// account's other sessions: when another one spent it, the daemon's
/// `rooms/get` and `updateMessage` are refused, and sent again after the
/// server's `timeToReset`. Nothing is lost.
#[test]
fn calls_refused_by_the_rate_limiter_are_made_again() {
    let s = Stack::start("lim-refused");
    s.wait_connected();
    spend_the_users_allowance(&s.rc);
    let theirs = s.rc.rate_limited().len();
    let req = json!({"action": "ask", "room": "#general", "question": "Lights?",
        "answers": ["Yes", "No"], "ask_id": "r1", "timeout": 1});
    assert_eq!(s.request(req)["ok"], true);
    let sent = s.jeedom.wait_event(T, "sent", |e| e["ask_id"] == "r1");
    let question = sent["message_id"].as_str().unwrap().to_string();
    // A rename makes the daemon ask for the room list.
    s.rc.rename_room("GENERAL", "lobby");
    s.jeedom.wait_event(LONG, "rooms", |e| {
        e["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "lobby")
    });
    s.rc.wait_message(LONG, "the question closed", |m| {
        m["_id"] == question.as_str()
            && m["msg"]
                .as_str()
                .is_some_and(|t| t.ends_with("No answer in time"))
    });
    // The daemon's calls were refused at first (the sessions above spent
    // the allowance), then made again.
    let refused = s.rc.rate_limited()[theirs..].to_vec();
    assert!(refused.iter().any(|m| m == "updateMessage"), "{refused:?}");
    assert!(refused.iter().any(|m| m == "rooms/get"), "{refused:?}");
}

/// A reconnection while the bot's other sessions have spent its allowance
/// of `rooms/get` and of `stream-room-messages` subscriptions: the session
/// set-up is refused, waits for the server's `timeToReset` on the same
/// connection and completes; a message posted meanwhile arrives once.
#[test]
fn a_reconnection_refused_by_the_rate_limiter_completes_after_the_reset() {
    let s = Stack::start("lim-reconnect");
    s.wait_connected();
    spend_the_users_subscriptions(&s.rc);
    spend_the_users_allowance(&s.rc);
    let (theirs, conns) = (s.rc.rate_limited().len(), s.rc.ddp_connections_total());
    s.rc.drop_connections();
    let id = s.rc.post("GENERAL", "alice", "around the reconnection");
    let ev = s
        .jeedom
        .wait_event(LONG, "message", |e| e["id"] == id.as_str());
    assert_eq!(ev["text"], "around the reconnection");
    wait_until(LONG, "connected again", || {
        s.request(json!({"action": "status"}))["connected"] == true
    });
    let refused = s.rc.rate_limited()[theirs..].to_vec();
    for call in ["rooms/get", "stream-room-messages"] {
        assert!(refused.iter().any(|m| m == call), "{call}: {refused:?}");
    }
    assert_eq!(
        s.rc.ddp_connections_total(),
        conns + 1,
        "the refusals were waited out, not answered by reconnecting\n{}",
        s.daemon.log_text()
    );
    // Subscribed again: a live message arrives too.
    let live = s.rc.post("GENERAL", "alice", "live again");
    s.jeedom
        .wait_event(T, "message", |e| e["id"] == live.as_str());
    assert_never(Duration::from_millis(800), "a duplicate", || {
        s.messages().len() > 2
    });
}

/// Other sessions of the bot (40 subscriptions per connection) spend the
/// user's allowance of `stream-room-messages` (80 in the server's 40 s
/// window), early enough in a window to leave at least 6 s of it.
fn spend_the_users_subscriptions(rc: &FakeRocketChat) {
    use support::ddp_client::DdpClient;
    let my_messages = json!(["__my_messages__", false]);
    for _ in 0..3 {
        let mut left = 0;
        for _ in 0..3 {
            let mut other = DdpClient::connect(&rc.ws_url(), None);
            assert!(other.login("jeedombot", "s3cret").get("error").is_none());
            for _ in 0..40 {
                let r = other.sub("stream-room-messages", my_messages.clone());
                left = r["error"]["details"]["timeToReset"].as_u64().unwrap_or(0);
            }
        }
        if left >= 6000 {
            return;
        }
        let next = std::time::Instant::now() + Duration::from_millis(left + 100);
        wait_until(LONG, "the server's rate limit window to pass", || {
            std::time::Instant::now() >= next
        });
    }
    panic!("could not spend the subscriptions early in a window");
}

/// Other sessions of the bot (10 calls per connection) spend the user's
/// allowance of `updateMessage` and `rooms/get` (20 in the server's 10 s
/// window), early enough in a window to leave the daemon at least 6 s of it.
fn spend_the_users_allowance(rc: &FakeRocketChat) {
    use support::ddp_client::DdpClient;
    for _ in 0..3 {
        let mut left = 0;
        for _ in 0..3 {
            let mut other = DdpClient::connect(&rc.ws_url(), None);
            assert!(other.login("jeedombot", "s3cret").get("error").is_none());
            for _ in 0..10 {
                let edit = json!([{"_id": "none", "rid": "GENERAL", "msg": "x"}]);
                other.call("updateMessage", edit);
                let r = other.call("rooms/get", json!([]));
                left = r["error"]["details"]["timeToReset"].as_u64().unwrap_or(0);
            }
        }
        if left >= 6000 {
            return;
        }
        // Too late in the server's window: spend the next one instead.
        let next = std::time::Instant::now() + Duration::from_millis(left + 100);
        wait_until(T, "the server's rate limit window to pass", || {
            std::time::Instant::now() >= next
        });
    }
    panic!("could not spend the allowance early in a window");
}

/// Settings a custom OAuth provider adds, all public (one set per provider).
const OAUTH_FIELDS: [&str; 6] = [
    "url",
    "token_path",
    "identity_path",
    "authorize_path",
    "scope",
    "button_label_text",
];

/// `Message_MaxAllowedSize` set to 300 on a server with more public
/// settings sorted before it than a default page holds: 6.x ignores `_id`
/// and answers 50 a page, 7.x filters on it. Either way a text of 900
/// characters goes in parts within 300, in order (the fake refuses a longer
/// one, as the real `sendMessage` does).
#[test]
fn a_long_text_is_split_at_the_server_s_own_max_size_on_every_version() {
    for version in ["6.10.0", "7.4.1"] {
        let opts = FakeRcOptions {
            version: version.into(),
            ..Default::default()
        };
        let rc = FakeRocketChat::start(opts);
        rc.set_setting("Message_MaxAllowedSize", json!(300));
        for i in 0..20 {
            for f in OAUTH_FIELDS {
                rc.set_setting(&format!("Accounts_OAuth_Custom-Provider{i}-{f}"), json!(""));
            }
        }
        let s = Stack::start_on(&format!("max-size-{version}"), rc, &[]);
        s.wait_connected();
        let words: Vec<String> = (0..100).map(|i| format!("word{i:04}")).collect();
        let text = words.join(" ");
        let reply = s.request(json!({"action": "send", "room": "#general", "message": text}));
        assert_eq!(reply["ok"], true, "{reply}");
        let parts = || -> Vec<String> {
            s.rc.messages("GENERAL")
                .iter()
                .filter(|m| m["u"]["_id"] == support::fake_rc::BOT_ID && m["t"].is_null())
                .map(|m| m["msg"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        wait_until(T, "every word posted", || {
            parts().join(" ").split_whitespace().count() >= words.len()
        });
        let parts = parts();
        let log = s.daemon.log_text();
        assert!(parts.len() >= 3, "{version}: {parts:?}\n{log}");
        assert!(
            parts.iter().all(|p| p.encode_utf16().count() <= 300),
            "{version}: {parts:?}"
        );
        assert_eq!(parts.join(" "), text, "{version}: in order, nothing lost");
    }
}
