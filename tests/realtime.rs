//! Receiving: login, rooms and messages from the fake Rocket.Chat to the fake Jeedom.
mod harness;
mod support;

use harness::stack::{Stack, T};
use serde_json::json;

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
