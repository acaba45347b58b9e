//! REST `chat.postMessage` of the fake Rocket.Chat: how people (and integrations) post, `@user` creating the DM.
use super::rest::{failure, send, Answer};
use super::util::to_rest;
use super::Shared;
use crate::support::http::Request;
use serde_json::{json, Value};

/// `POST /api/v1/chat.postMessage {channel|roomId, text}`
/// (apps/meteor/app/api/server/v1/chat.ts → app/lib/server/functions/processWebhookMessage.ts):
/// `channel` is `#name`, `@username` or a room id. `@username` opens the
/// direct room when there is none and posts in the same call; the new
/// room's notifications then follow the message (see `World::post_to_new_direct`).
pub fn post_message(shared: &Shared, uid: &str, req: &Request) -> Answer {
    let body = req.json().unwrap_or(Value::Null);
    let text = body["text"].as_str().or(body["msg"].as_str()).unwrap_or("");
    let target = body["channel"]
        .as_str()
        .or(body["roomId"].as_str())
        .unwrap_or("");
    let mut w = shared.world();
    let (_, mid) = if let Some(name) = target.strip_prefix('@') {
        let Some(other) = w.user_by_name(name).map(|u| u.id.clone()) else {
            return failure("Invalid user [error-invalid-user]", "error-invalid-user");
        };
        w.post_to_new_direct(uid, &other, text)
    } else {
        let name = target.strip_prefix('#');
        let found = w.rooms.iter().find(|r| match name {
            Some(n) => r.t != 'd' && r.name == n,
            None => r.id == target,
        });
        let Some(rid) = found.map(|r| r.id.clone()).filter(|r| w.is_member(r, uid)) else {
            return failure(
                "Invalid channel [error-invalid-channel]",
                "error-invalid-channel",
            );
        };
        let mid = w.post(&rid, uid, text);
        (rid, mid)
    };
    let idx = w.msg_index(&mid).expect("message just posted");
    let m = to_rest(&w.messages[idx]);
    send(
        200,
        json!({"ts": m["ts"], "channel": target, "message": m, "success": true}),
    )
}

impl super::FakeRocketChat {
    /// `username` posts with REST `chat.postMessage` (a personal access token
    /// of theirs); returns the answer's message.
    pub fn rest_post_as(&self, username: &str, channel: &str, text: &str) -> Value {
        let (uid, token) = self.create_personal_token(username);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("{}/api/v1/chat.postMessage", self.url());
        let body = json!({"channel": channel, "text": text});
        let mut resp = agent
            .post(&url)
            .header("X-User-Id", &uid)
            .header("X-Auth-Token", &token)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .expect("chat.postMessage");
        let text = resp.body_mut().read_to_string().expect("an answer");
        let answer: Value = serde_json::from_str(&text).expect("JSON answer");
        assert_eq!(answer["success"], true, "{answer}");
        answer["message"].clone()
    }
}
