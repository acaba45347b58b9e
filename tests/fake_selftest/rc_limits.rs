//! Self tests of the fake Rocket.Chat's real-server defaults: DDP rate limiter, 9.0 without loadMissedMessages, frame shapes.
use super::rc_common::*;
use crate::support::ddp_client::DdpClient;
use crate::support::fake_rc::{ejson_date, FakeRcOptions, FakeRocketChat};
use serde_json::json;

fn logged_in(rc: &FakeRocketChat) -> DdpClient {
    let mut c = DdpClient::connect(&rc.ws_url(), None);
    assert!(c.login("jeedombot", "s3cret")["result"]["id"].is_string());
    c
}

#[test]
fn the_ddp_rate_limiter_refuses_the_11th_call_of_a_method_in_10_s() {
    let rc = fake();
    let mut c = logged_in(&rc);
    for i in 0..10 {
        let r = c.call("rooms/get", json!([]));
        assert!(r.get("error").is_none(), "call {i}: {r}");
    }
    let refused = c.call("rooms/get", json!([]));
    let e = &refused["error"];
    assert_eq!(e["error"], "too-many-requests");
    assert_eq!(e["errorType"], "Meteor.Error");
    let ms = e["details"]["timeToReset"].as_u64().expect("timeToReset");
    assert!(ms > 0 && ms <= 10_000, "{ms}");
    assert!(e["reason"]
        .as_str()
        .unwrap()
        .starts_with("Error, too many requests. Please slow down. You must wait"));
    // Another method has its own count.
    assert!(c
        .call("subscriptions/get", json!([]))
        .get("error")
        .is_none());
    assert_eq!(rc.rate_limited(), ["rooms/get"]);
}

#[test]
fn stream_subscriptions_get_four_times_the_allowance() {
    let rc = fake();
    let mut c = logged_in(&rc);
    for i in 0..40 {
        let r = c.sub("stream-notify-user", json!(["botid/rooms-changed", false]));
        assert_eq!(r["msg"], "ready", "sub {i}: {r}");
    }
    let r = c.sub("stream-notify-user", json!(["botid/rooms-changed", false]));
    assert_eq!(r["msg"], "nosub");
    assert_eq!(r["error"]["error"], "too-many-requests");
}

#[test]
fn the_user_limit_spans_connections_and_can_be_turned_off() {
    let rc = fake();
    let (mut a, mut b) = (logged_in(&rc), logged_in(&rc));
    for _ in 0..10 {
        assert!(a.call("rooms/get", json!([])).get("error").is_none());
        assert!(b.call("rooms/get", json!([])).get("error").is_none());
    }
    let mut c = logged_in(&rc);
    assert_eq!(
        c.call("rooms/get", json!([]))["error"]["error"],
        "too-many-requests",
        "21st call of the user in 10 s"
    );
    let off = FakeRocketChat::start(FakeRcOptions {
        ddp_rate_limit: false,
        ..FakeRcOptions::default()
    });
    let mut c = logged_in(&off);
    for _ in 0..30 {
        assert!(c.call("rooms/get", json!([])).get("error").is_none());
    }
}

/// `DDP_Rate_Limit_Connection`: 600 calls of any names together in 60 s.
#[test]
fn a_connection_gets_600_calls_a_minute_whatever_the_methods() {
    let rc = fake();
    let mut c = logged_in(&rc);
    // The login was the first call; 599 more, none over its method's 10.
    for i in 0..599 {
        let r = c.call(&format!("method{}", i / 10), json!([]));
        assert_ne!(r["error"]["error"], "too-many-requests", "call {i}: {r}");
    }
    let r = c.call("rooms/get", json!([]));
    assert_eq!(r["error"]["error"], "too-many-requests", "{r}");
    let ms = r["error"]["details"]["timeToReset"].as_u64().unwrap();
    assert!(ms > 10_000 && ms <= 60_000, "{ms}");
    // Another connection of the same user has its own count.
    assert!(logged_in(&rc)
        .call("rooms/get", json!([]))
        .get("error")
        .is_none());
}

#[test]
fn a_9_0_server_has_no_load_missed_messages() {
    for (version, gone) in [("8.2.0", false), ("9.0.0", true)] {
        let rc = FakeRocketChat::start(FakeRcOptions {
            version: version.into(),
            ..FakeRcOptions::default()
        });
        let mut c = logged_in(&rc);
        let r = c.call("loadMissedMessages", json!(["GENERAL", ejson_date(0)]));
        if gone {
            assert_eq!(r["error"]["error"], 404, "{r}");
            assert_eq!(
                r["error"]["reason"],
                "Method 'loadMissedMessages' not found"
            );
        } else {
            assert!(r.get("error").is_none(), "{version}: {r}");
        }
    }
}

#[test]
fn legacy_frames_wrap_the_message_and_a_first_dm_message_comes_before_its_room() {
    let rc = FakeRocketChat::start(FakeRcOptions {
        legacy_my_messages: true,
        ..FakeRcOptions::default()
    });
    let mut c = logged_in(&rc);
    c.sub("stream-room-messages", json!(["__my_messages__", false]));
    c.sub(
        "stream-notify-user",
        json!(["botid/subscriptions-changed", false]),
    );
    rc.add_user("carol", "Carol C.");
    let m = rc.rest_post_as("carol", "@jeedombot", "hello bot");
    let (rid, mid) = (m["rid"].as_str().unwrap(), m["_id"].as_str().unwrap());
    let frames = c.drain(std::time::Duration::from_millis(500));
    let msg_at = frames
        .iter()
        .position(|f| f["fields"]["args"][0][0]["_id"] == mid)
        .expect("the message, wrapped in an array");
    assert_eq!(frames[msg_at]["fields"]["args"][1]["roomType"], "d");
    let sub_at = frames
        .iter()
        .position(|f| f["fields"]["args"][0] == "inserted" && f["fields"]["args"][1]["rid"] == rid)
        .expect("the subscription notification");
    assert!(msg_at < sub_at, "message first, room after");
}
