//! Receiving: login, rooms and messages from the fake Rocket.Chat to the fake Jeedom.
mod harness;
mod support;

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
