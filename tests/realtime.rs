//! Receiving: login, rooms and messages from the fake Rocket.Chat to the fake Jeedom.
use crate::harness;
use crate::support;
use harness::stack::{Stack, T};
use serde_json::json;
use support::wait::wait_until;

#[test]
fn connects_and_forwards_a_mention() {
    let s = Stack::start("rt-mention");
    s.wait_connected();
    let status = s.jeedom.wait_event(T, "status", |e| e["connected"] == true);
    assert_eq!(status["user"]["username"], "jeedombot");
    assert_eq!(status["server_version"], "7.4.1");
    let rooms = s.jeedom.wait_event(T, "rooms", |_| true);
    assert!(
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "GENERAL" && r["kind"] == "channel"),
        "{rooms}"
    );
    let id =
        s.rc.post("GENERAL", "alice", "@jeedombot turn on the radio");
    let m = &s.wait_messages(1)[0];
    assert_eq!(m["id"], id.as_str());
    assert_eq!(m["user"]["username"], "alice");
    assert_eq!(m["user"]["name"], "Alice A.");
    assert_eq!(
        m["room"],
        json!({"id": "GENERAL", "name": "general", "kind": "channel"})
    );
    assert_eq!(
        (
            m["mentioned"].as_bool(),
            m["direct"].as_bool(),
            m["interaction"].as_bool()
        ),
        (Some(true), Some(false), Some(true))
    );
    assert_eq!(m["query"], "turn on the radio");
    assert!(m["ts"].as_str().unwrap().ends_with('Z'));
}

/// The bot added to many rooms while Jeedom is away: Jeedom gets the final
/// list when it is back, not a growing copy per room.
#[test]
fn room_changes_while_jeedom_is_away_arrive_as_the_final_list() {
    let s = Stack::start("rt-roomstorm");
    s.wait_connected();
    let before = s.jeedom.events_of_type("rooms").len();
    s.jeedom.set_down(true);
    let status = || s.request(json!({"action": "status"}));
    for i in 0..30 {
        s.rc.add_room('c', &format!("storm-{i:02}"), &["jeedombot", "alice"]);
        // One change at a time, as over an afternoon with Jeedom down.
        wait_until(T, "the new room known to the daemon", || {
            status()["rooms"] == i + 2
        });
    }
    s.jeedom.set_down(false);
    s.jeedom.wait_event(T, "rooms", |e| {
        e["rooms"].as_array().is_some_and(|r| r.len() == 31)
    });
    // The list being retried when the changes came, and the final one.
    let lists = s.jeedom.events_of_type("rooms").len() - before;
    assert!(lists <= 2, "{lists} rooms events for 30 changes");
}

#[test]
fn rooms_event_follows_room_changes() {
    let s = Stack::start("rt-rooms");
    s.wait_connected();
    let has = |e: &serde_json::Value, name: &str| {
        e["rooms"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["name"] == name))
    };
    let home = s.rc.add_room('p', "home", &["jeedombot", "alice"]);
    let ev = s.jeedom.wait_event(T, "rooms", |e| has(e, "home"));
    let room = ev["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == home.as_str())
        .unwrap()
        .clone();
    assert_eq!(room["kind"], "group");
    s.rc.rename_room(&home, "house");
    s.jeedom
        .wait_event(T, "rooms", |e| has(e, "house") && !has(e, "home"));
    let dm = s.rc.open_direct("bob", "jeedombot");
    let ev = s.jeedom.wait_event(T, "rooms", |e| {
        e["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == dm.as_str())
    });
    let d = ev["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == dm.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (d["kind"].as_str(), d["name"].as_str()),
        (Some("direct"), Some("bob"))
    );
    s.rc.remove_member(&home, "jeedombot");
    s.jeedom.wait_event(T, "rooms", |e| {
        !has(e, "house")
            && e["rooms"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == dm.as_str())
    });
    // New messages also change the rooms (last message), but Jeedom is not told again.
    let n = s.jeedom.events_of_type("rooms").len();
    s.rc.post("GENERAL", "alice", "hello");
    s.wait_messages(1);
    support::wait::assert_never(
        std::time::Duration::from_millis(500),
        "a rooms event for a new message",
        || s.jeedom.events_of_type("rooms").len() > n,
    );
    // The `rooms` action sends the list again.
    assert_eq!(s.request(json!({"action": "rooms"}))["ok"], true);
    s.jeedom.wait_events(T, "rooms event on request", |e| {
        e.iter().filter(|e| e["type"] == "rooms").count() > n
    });
}

#[test]
fn only_new_messages_from_people_become_events() {
    let s = Stack::start("rt-kinds");
    s.wait_connected();
    let first = s.rc.post("GENERAL", "alice", "first");
    s.wait_messages(1);
    // None of these may reach Jeedom as a message.
    s.rc.post("GENERAL", "jeedombot", "the bot's own message");
    s.rc.post_message(json!({"rid": "GENERAL", "t": "uj", "msg": "bob", "u": {"_id": "bobid", "username": "bob"}}));
    s.rc.edit(&first, "first, edited");
    s.rc.react(&first, ":thumbsup:");
    s.rc.add_url_preview(&first);
    s.rc.post_message(json!({"rid": "GENERAL", "msg": "a reply in a thread", "tmid": first, "u": {"_id": "aliceid", "username": "alice"}}));
    s.rc.bump_thread_count(&first);
    s.rc.delete(&first);
    let other = s.rc.add_room('c', "elsewhere", &["alice", "bob"]);
    s.rc.post(&other, "alice", "not a room of the bot");
    let last = s.rc.post("GENERAL", "alice", "last");
    let msgs = s.wait_messages(3);
    support::wait::assert_never(
        std::time::Duration::from_millis(500),
        "an extra message event",
        || s.messages().len() > 3,
    );
    let texts: Vec<&str> = msgs.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["first", "a reply in a thread", "last"]);
    assert_eq!(
        msgs[1]["thread"],
        first.as_str(),
        "thread replies carry their root"
    );
    assert_eq!(msgs[2]["id"], last.as_str());
}

#[test]
fn mention_direct_and_query_flags() {
    let s = Stack::start("rt-flags");
    s.wait_connected();
    let dm = s.rc.open_direct("alice", "jeedombot");
    s.jeedom.wait_event(T, "rooms", |e| {
        e["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == dm.as_str())
    });
    let cases = [
        (
            "GENERAL",
            "@jeedombot turn on the radio",
            false,
            true,
            "turn on the radio",
        ),
        (
            "GENERAL",
            "@JeedomBot: lights off",
            false,
            true,
            "lights off",
        ),
        (
            "GENERAL",
            "hey @jeedombot, what time is it",
            false,
            true,
            "hey @jeedombot, what time is it",
        ),
        (
            "GENERAL",
            "@all dinner is ready",
            false,
            false,
            "@all dinner is ready",
        ),
        ("GENERAL", "@here anyone?", false, false, "@here anyone?"),
        (
            "GENERAL",
            "@jeedombotx is someone else",
            false,
            false,
            "@jeedombotx is someone else",
        ),
        (
            "GENERAL",
            "mail me at x@jeedombot.org",
            false,
            false,
            "mail me at x@jeedombot.org",
        ),
        (
            dm.as_str(),
            "turn on the radio",
            true,
            false,
            "turn on the radio",
        ),
        (dm.as_str(), "@jeedombot lights on", true, true, "lights on"),
    ];
    for (room, text, _, _, _) in &cases {
        s.rc.post(room, "alice", text);
    }
    let msgs = s.wait_messages(cases.len());
    for (m, (_, text, direct, mentioned, query)) in msgs.iter().zip(cases.iter()) {
        assert_eq!(m["text"], *text);
        assert_eq!(m["direct"], *direct, "{text}");
        assert_eq!(m["mentioned"], *mentioned, "{text}");
        assert_eq!(m["interaction"], *direct || *mentioned, "{text}");
        assert_eq!(m["query"], *query, "{text}");
    }
}

#[test]
fn jeedom_down_then_up_gets_messages_once_in_order() {
    use support::fake_jeedom::JeedomMode;
    let s = Stack::start("rt-jeedom500");
    s.wait_connected();
    s.jeedom.set_mode(JeedomMode::Status(500));
    let ids: Vec<String> = (0..30)
        .map(|i| s.rc.post("GENERAL", "alice", &format!("m{i}")))
        .collect();
    support::wait::wait_until(T, "refused POSTs", || s.jeedom.post_attempts() >= 4);
    s.jeedom.set_mode(JeedomMode::Ok);
    let msgs = s.wait_messages(30);
    support::wait::assert_never(std::time::Duration::from_millis(800), "a duplicate", || {
        s.messages().len() > 30
    });
    let got: Vec<&str> = msgs.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids, "every message once, in order");
}

#[test]
fn status_action_reports_the_connection() {
    let s = Stack::start("rt-status");
    s.wait_connected();
    let st = s.request(json!({"action": "status"}));
    assert_eq!(st["connected"], true, "{st}");
    assert_eq!(st["server_version"], "7.4.1");
    assert_eq!(st["user"]["username"], "jeedombot");
    assert_eq!(st["rooms"], 1);
    assert!(st["queues"]["events"].is_number() && st["queues"]["outbox"].is_number());
    s.rc.set_down(true);
    support::wait::wait_until(T, "disconnected status", || {
        let st = s.request(json!({"action": "status"}));
        st["connected"] == false && st["last_error"].is_string()
    });
}

/// A person's first message to the bot creates the direct room and posts in
/// one call; its frame comes before the room's notifications. It still
/// reaches Jeedom as a direct message Jeedom's interaction engine answers.
#[test]
fn the_first_message_of_a_new_direct_message_is_direct() {
    let s = Stack::start("rt-first-dm");
    s.wait_connected();
    s.rc.add_user("carol", "Carol C.");
    // Carol's client: REST `chat.postMessage` with `channel:"@jeedombot"`.
    let m =
        s.rc.rest_post_as("carol", "@jeedombot", "turn on the radio");
    let (dm, id) = (
        m["rid"].as_str().unwrap().to_string(),
        m["_id"].as_str().unwrap().to_string(),
    );
    let ev = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
    assert_eq!(ev["room"]["id"], dm.as_str());
    assert_eq!(ev["room"]["kind"], "direct");
    assert_eq!(ev["room"]["name"], "carol");
    assert_eq!(
        (ev["direct"].as_bool(), ev["interaction"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(ev["query"], "turn on the radio");
    // Jeedom learns of the room (its device) before the message.
    let events = s.jeedom.events();
    let room_at =
        events.iter().position(|e| {
            e["type"] == "rooms"
                && e["rooms"].as_array().unwrap().iter().any(|r| {
                    r["id"] == dm.as_str() && r["kind"] == "direct" && r["name"] == "carol"
                })
        });
    let msg_at = events.iter().position(|e| e["id"] == id.as_str());
    assert!(room_at.is_some() && room_at < msg_at, "{events:?}");
    let next = s.rc.post(&dm, "carol", "and the lights");
    let ev = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == next.as_str());
    assert_eq!(ev["interaction"], true);
}

/// A discussion is named `Random.id()`, titled in `fname`: Jeedom sees the
/// title, and `#Title` (spaces and all) sends there.
#[test]
fn a_discussion_is_known_by_its_title() {
    let s = Stack::start("rt-discussion");
    s.wait_connected();
    let d =
        s.rc.add_discussion("GENERAL", "Front door", &["jeedombot", "alice"]);
    let ev = s.jeedom.wait_event(T, "rooms", |e| {
        e["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == d.as_str())
    });
    let room = ev["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == d.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (room["name"].as_str(), room["kind"].as_str()),
        (Some("Front door"), Some("group"))
    );
    let id = s.rc.post(&d, "alice", "someone rang");
    let ev = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
    assert_eq!(ev["room"]["name"], "Front door");
    s.send(json!({"room": "#Front door", "message": "I saw them", "ref": "d1"}));
    let sent = s.sent("d1");
    assert_eq!(sent["room"]["id"], d.as_str());
    let posted = s.rc.message(sent["message_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        (posted["rid"].as_str(), posted["msg"].as_str()),
        (Some(d.as_str()), Some("I saw them"))
    );
}

/// 3.x servers before PR #20801 send `__my_messages__` as `[[msg], info]`.
#[test]
fn messages_of_an_old_3x_server_in_the_legacy_frame_shape() {
    let opts = support::fake_rc::FakeRcOptions {
        version: "3.9.7".into(),
        legacy_my_messages: true,
        ..Default::default()
    };
    let s = Stack::start_with("rt-legacy", opts, &[]);
    s.wait_connected();
    let id =
        s.rc.post("GENERAL", "alice", "@jeedombot turn on the radio");
    let ev = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
    assert_eq!(ev["text"], "@jeedombot turn on the radio");
    assert_eq!(ev["interaction"], true);
    s.rc.add_user("carol", "Carol C.");
    let (_, first) = s.rc.post_to_user("carol", "jeedombot", "hello");
    let ev = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == first.as_str());
    assert_eq!(ev["direct"], true);
}

/// An end-to-end encrypted message cannot be read by the bot: Jeedom is told
/// of it, without text, so that it can tell the person why nothing happens.
#[test]
fn an_encrypted_message_is_an_event_without_text() {
    let s = Stack::start("rt-e2e");
    s.wait_connected();
    let dm = s.rc.open_direct("alice", "jeedombot");
    s.jeedom.wait_event(T, "rooms", |e| {
        e["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == dm.as_str())
    });
    let id =
        s.rc.post_message(json!({"rid": dm, "t": "e2e", "e2e": "pending",
        "msg": "bXlzZWNyZXRjaXBoZXJ0ZXh0", "u": {"username": "alice"}}));
    let ev = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
    assert_eq!(ev["encrypted"], true);
    assert_eq!(ev["text"], "");
    assert_eq!(ev["query"], "");
    assert_eq!(ev["direct"], true);
    assert_eq!(
        ev["interaction"], false,
        "nothing for the interaction engine"
    );
    let plain = s.rc.post(&dm, "alice", "in clear");
    let ev = s
        .jeedom
        .wait_event(T, "message", |e| e["id"] == plain.as_str());
    assert!(ev.get("encrypted").is_none());
}

/// A frame larger than the websocket's read buffer (16 KiB) and than one
/// read of the socket arrives whole: a long report pasted by a person.
#[test]
fn a_message_larger_than_the_read_buffer_arrives_whole() {
    let s = Stack::start("rt-large-frame");
    s.wait_connected();
    let text: String = (0..9000).map(|i| format!("{i:05} ")).collect();
    assert!(text.len() > 50_000);
    let id = s.rc.post("GENERAL", "alice", &text);
    let after = s.rc.post("GENERAL", "bob", "and a short one after it");
    let got = s.wait_messages(2);
    assert_eq!(got[0]["id"], id.as_str());
    assert_eq!(got[0]["text"].as_str(), Some(text.as_str()));
    assert_eq!(got[1]["id"], after.as_str());
}
