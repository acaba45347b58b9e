//! Shared helpers of the fake Rocket.Chat self tests.
use super::agent;
use crate::support::ddp_client::DdpClient;
use crate::support::fake_rc::{FakeRcOptions, FakeRocketChat};
use serde_json::{json, Value};
use std::time::Duration;

pub const T: Duration = Duration::from_secs(5);

pub fn fake() -> FakeRocketChat {
    let o = FakeRcOptions {
        ping_interval: Duration::from_millis(200),
        ..Default::default()
    };
    FakeRocketChat::start(o)
}

/// A DDP client logged in as the bot and subscribed to its messages.
pub fn bot(rc: &FakeRocketChat) -> DdpClient {
    let mut c = DdpClient::connect(&rc.ws_url(), None);
    assert_eq!(c.login("jeedombot", "s3cret")["result"]["type"], "password");
    assert_eq!(
        c.sub("stream-room-messages", json!(["__my_messages__", false]))["msg"],
        "ready"
    );
    c
}

/// Logs the bot in again on `c`: its REST token.
pub fn bot_token(c: &mut DdpClient) -> String {
    c.login("jeedombot", "s3cret")["result"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn rest(
    rc: &FakeRocketChat,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", rc.url());
    let req = match method {
        "GET" => agent()
            .get(&url)
            .header("X-User-Id", "botid")
            .header("X-Auth-Token", token)
            .call(),
        _ => agent()
            .post(&url)
            .header("X-User-Id", "botid")
            .header("X-Auth-Token", token)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or(json!({})).to_string()),
    };
    let mut r = req.expect("HTTP answer");
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (r.status().as_u16(), v)
}

pub fn is_msg(f: &Value, text: &str) -> bool {
    f["collection"] == "stream-room-messages" && f["fields"]["args"][0]["msg"] == text
}
