//! Self tests of the fake Rocket.Chat over DDP: connect, login, streams, faults, notifications.
use super::rc_common::*;
use crate::support::ddp_client::DdpClient;
use crate::support::fake_rc::LoginMode;
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn ddp_connect_login_sub_receive() {
    let rc = fake();
    let mut c = DdpClient::open(&rc.ws_url(), None);
    assert_eq!(
        c.expect(T, |f| f.get("server_id").is_some())["server_id"],
        "0"
    );
    c.send(json!({"msg": "connect", "version": "1", "support": ["1"]}));
    c.expect(T, |f| f["msg"] == "connected");
    c.send(json!({"msg": "ping", "id": "p1"}));
    c.expect(T, |f| f["msg"] == "pong" && f["id"] == "p1");
    c.expect(T, |f| f["msg"] == "ping");
    let bad = c.login("jeedombot", "nope");
    assert_eq!(bad["error"]["reason"], "Incorrect password");
    assert_eq!(bad["error"]["message"], "Incorrect password [403]");
    assert_eq!(c.login("nobody", "x")["error"]["reason"], "User not found");
    assert_eq!(
        c.call("rooms/get", json!([]))["error"]["error"],
        "error-invalid-user"
    );
    let ok = c.login("jeedombot", "s3cret");
    assert_eq!(ok["result"]["id"], "botid");
    c.expect(T, |f| f["msg"] == "added" && f["collection"] == "users");
    assert_eq!(
        c.sub(
            "stream-room-messages",
            json!(["__my_messages__", {"useCollection": false, "args": []}])
        )["msg"],
        "ready"
    );
    assert_eq!(
        c.sub("stream-notify-user", json!(["botid/rooms-changed", false]))["msg"],
        "ready"
    );
    assert_eq!(
        c.sub(
            "stream-notify-user",
            json!(["aliceid/rooms-changed", false])
        )["msg"],
        "nosub"
    );
    assert_eq!(c.sub("nope", json!([]))["error"]["error"], 404);
    let id = rc.post("GENERAL", "alice", "@jeedombot turn on the radio");
    let f = c.expect(T, |f| is_msg(f, "@jeedombot turn on the radio"));
    let (m, extra) = (&f["fields"]["args"][0], &f["fields"]["args"][1]);
    assert_eq!(
        (m["_id"].as_str(), m["u"]["username"].as_str()),
        (Some(id.as_str()), Some("alice"))
    );
    assert_eq!(m["mentions"][0]["username"], "jeedombot");
    assert!(m["ts"]["$date"].is_u64());
    assert_eq!(
        extra,
        &json!({"roomParticipant": true, "roomType": "c", "roomName": "general"})
    );
    let rooms = c.call("rooms/get", json!([]))["result"].clone();
    assert_eq!(rooms[0]["_id"], "GENERAL");
    let since = c.call("rooms/get", json!([{"$date": 0}]))["result"].clone();
    assert!(since["update"].is_array() && since["remove"].is_array());
    let subs = c.call("subscriptions/get", json!([]))["result"].clone();
    assert_eq!(subs[0]["rid"], "GENERAL");
    assert_eq!(rc.logins(), vec!["password"]);
    assert_eq!(rc.ddp_connections(), 1);
}

#[test]
fn ddp_resume_missed_and_login_modes() {
    let rc = fake();
    let mut c = bot(&rc);
    let token = bot_token(&mut c);
    let a = rc.post("GENERAL", "alice", "one");
    let b = rc.post("GENERAL", "alice", "two");
    let ts_a = rc.message(&a).unwrap()["ts"].clone();
    let missed = c.call("loadMissedMessages", json!(["GENERAL", ts_a]))["result"].clone();
    assert_eq!(missed.as_array().unwrap().len(), 1);
    assert_eq!(missed[0]["_id"], b.as_str());
    let mut d = DdpClient::connect(&rc.ws_url(), None);
    assert_eq!(
        d.call("login", json!([{"resume": token}]))["result"]["type"],
        "resume"
    );
    rc.invalidate_tokens();
    let e = DdpClient::connect(&rc.ws_url(), None).call("login", json!([{"resume": token}]));
    assert_eq!(e["error"]["error"], 403);
    rc.set_login(LoginMode::Totp);
    let t = d.login("jeedombot", "s3cret");
    assert_eq!(
        (
            t["error"]["error"].as_str(),
            t["error"]["details"]["method"].as_str()
        ),
        (Some("totp-required"), Some("totp"))
    );
    rc.set_login(LoginMode::Ok);
    rc.set_bot_password("new");
    assert!(d.login("jeedombot", "new")["result"]["token"].is_string());
}

#[test]
fn connection_faults() {
    let rc = fake();
    let mut c = bot(&rc);
    rc.drop_connections();
    assert!(c.is_closed(T));
    let mut c = bot(&rc);
    rc.set_silent(true);
    c.send(json!({"msg": "ping", "id": "s"}));
    assert!(c
        .next_matching(Duration::from_millis(400), |f| f["msg"] == "pong"
            || f["msg"] == "ping")
        .is_none());
    rc.set_silent(false);
    rc.restart();
    assert!(c.is_closed(T));
    rc.set_down(true);
    assert!(std::net::TcpStream::connect(("127.0.0.1", rc.port())).is_err());
    let id = rc.post("GENERAL", "alice", "while down");
    rc.set_down(false);
    let mut c = bot(&rc);
    let missed = c.call("loadMissedMessages", json!(["GENERAL", {"$date": 0}]));
    assert_eq!(missed["result"][0]["_id"], id.as_str());
    assert_eq!(rc.ddp_connections_total(), 3);
}

#[test]
fn room_notifications() {
    let rc = fake();
    let mut c = bot(&rc);
    for ev in ["rooms-changed", "subscriptions-changed"] {
        assert_eq!(
            c.sub("stream-notify-user", json!([format!("botid/{ev}"), false]))["msg"],
            "ready"
        );
    }
    let notified = |f: &Value, ev: &str, action: &str| {
        f["fields"]["eventName"] == format!("botid/{ev}") && f["fields"]["args"][0] == action
    };
    let rid = rc.add_room('p', "secret", &["jeedombot", "bob"]);
    let f = c.expect(T, |f| notified(f, "rooms-changed", "inserted"));
    assert_eq!(
        (
            f["fields"]["args"][1]["_id"].as_str(),
            f["fields"]["args"][1]["t"].as_str()
        ),
        (Some(rid.as_str()), Some("p"))
    );
    c.expect(T, |f| notified(f, "subscriptions-changed", "inserted"));
    rc.rename_room(&rid, "hidden");
    c.expect(T, |f| {
        notified(f, "rooms-changed", "updated") && f["fields"]["args"][1]["name"] == "hidden"
    });
    let r = c.expect(T, |f| f["fields"]["args"][0]["t"] == "r");
    assert_eq!(r["fields"]["args"][1]["roomType"], "p");
    rc.remove_member(&rid, "jeedombot");
    c.expect(T, |f| notified(f, "subscriptions-changed", "removed"));
    let dm = rc.open_direct("alice", "jeedombot");
    let f = c.expect(T, |f| notified(f, "rooms-changed", "inserted"));
    assert_eq!(
        f["fields"]["args"][1]["usernames"],
        json!(["alice", "jeedombot"])
    );
    rc.post(&dm, "alice", "psst");
    let f = c.expect(T, |f| is_msg(f, "psst"));
    assert_eq!(
        f["fields"]["args"][1],
        json!({"roomParticipant": true, "roomType": "d"})
    );
}
