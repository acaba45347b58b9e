//! One full session over loopback (used for the ARM binaries under qemu too):
//! connect, a message to Jeedom, a `send` back to the server.
use crate::harness;
use harness::stack::Stack;
use serde_json::json;
use std::time::Duration;

/// qemu makes everything slower: a generous deadline, never a measure.
const SLOW: Duration = Duration::from_secs(90);

#[test]
fn message_in_and_send_out() {
    let s = Stack::start("session");
    s.rc.wait_bot_listening(SLOW);
    s.jeedom.wait_event(SLOW, "rooms", |_| true);
    let id =
        s.rc.post("GENERAL", "alice", "@jeedombot what is the temperature?");
    let m = s
        .jeedom
        .wait_event(SLOW, "message", |e| e["id"] == id.as_str());
    assert_eq!(m["query"], "what is the temperature?");
    let reply = s.request(
        json!({"action": "send", "room": "#general", "message": "It is 21 °C", "ref": "t1"}),
    );
    assert_eq!(reply["ok"], true, "{reply}");
    let sent = s.jeedom.wait_event(SLOW, "sent", |e| e["ref"] == "t1");
    let posted =
        s.rc.wait_message(SLOW, "the bot's answer", |m| m["msg"] == "It is 21 °C");
    assert_eq!(posted["u"]["username"], "jeedombot");
    assert_eq!(sent["message_id"], posted["_id"]);
}
