//! Control API of the fake Rocket.Chat for tests: users, rooms, messages, and what the fake saw.
use super::util::{date_ms, ejson_date};
use super::world::BOT_ID;
use super::FakeRocketChat;
use crate::support::wait::{wait_for, wait_until};
use serde_json::{json, Value};
use std::time::Duration;

impl FakeRocketChat {
    /// Sets a public setting (`Message_MaxAllowedSize`...), adding it if new.
    pub fn set_setting(&self, id: &str, value: Value) {
        self.shared.world().settings.insert(id.into(), value);
    }

    /// Adds a user (no password); returns its id.
    pub fn add_user(&self, username: &str, name: &str) -> String {
        self.shared.world().add_user(username, name)
    }

    /// Id of a user by name; panics when unknown.
    pub fn user_id(&self, username: &str) -> String {
        self.shared.world().uid(username)
    }

    /// Id of a channel or group by name.
    pub fn room_id(&self, name: &str) -> Option<String> {
        let w = self.shared.world();
        w.rooms
            .iter()
            .find(|r| r.t != 'd' && r.name == name)
            .map(|r| r.id.clone())
    }

    /// Creates a room (`t` = c, p, d or l) with these members; tells them. Returns its id.
    pub fn add_room(&self, t: char, name: &str, members: &[&str]) -> String {
        let mut w = self.shared.world();
        let uids = members.iter().map(|m| w.uid(m)).collect();
        w.create_room(t, name, uids)
    }

    /// Adds a member (subscription inserted, room updated, `uj` system message).
    pub fn add_member(&self, rid: &str, username: &str) {
        let mut w = self.shared.world();
        let uid = w.uid(username);
        w.add_member(rid, &uid);
    }

    /// Removes a member (`ul` system message, subscription removed, room updated).
    pub fn remove_member(&self, rid: &str, username: &str) {
        let mut w = self.shared.world();
        let uid = w.uid(username);
        w.remove_member(rid, &uid);
    }

    /// Renames a channel or group (room and subscriptions updated, `r` system message).
    pub fn rename_room(&self, rid: &str, new_name: &str) {
        self.shared.world().rename_room(rid, new_name);
    }

    /// Deletes a room (room and subscriptions `removed` for every member).
    pub fn delete_room(&self, rid: &str) {
        self.shared.world().delete_room(rid);
    }

    /// Creates a discussion of room `parent` (private group, `name` a random id,
    /// `fname` the title, `prid` the parent); tells the members. Returns its id.
    pub fn add_discussion(&self, parent: &str, title: &str, members: &[&str]) -> String {
        let mut w = self.shared.world();
        let uids = members.iter().map(|m| w.uid(m)).collect();
        w.create_discussion(parent, title, uids)
    }

    /// `from` writes to `to` with `chat.postMessage` `channel:"@to"`: the direct
    /// room is created if needed and the message posted in one call; the
    /// message frame reaches `to` before the room notifications, as on the real
    /// server. Returns `(room id, message id)`.
    pub fn post_to_user(&self, from: &str, to: &str, text: &str) -> (String, String) {
        let mut w = self.shared.world();
        let (uf, ut) = (w.uid(from), w.uid(to));
        w.post_to_new_direct(&uf, &ut, text)
    }

    /// How many DDP calls and subscriptions the rate limiter refused.
    pub fn rate_limited(&self) -> Vec<String> {
        self.shared.world().log.rate_limited.clone()
    }

    /// Two-factor codes the server e-mailed (logins refused with method `email`).
    pub fn email_codes_sent(&self) -> usize {
        self.shared.world().log.email_codes
    }

    /// Opens (or returns) the direct room of `a` and `b`, as `a` opening a DM with `b`.
    pub fn open_direct(&self, a: &str, b: &str) -> String {
        let mut w = self.shared.world();
        let (ua, ub) = (w.uid(a), w.uid(b));
        w.open_direct(&ua, &ub).0
    }

    /// Posts a message as `username`; broadcast to members. Returns its id.
    pub fn post(&self, rid: &str, username: &str, text: &str) -> String {
        let mut w = self.shared.world();
        let uid = w.uid(username);
        w.post(rid, &uid, text)
    }

    /// Posts a message with arbitrary fields (`rid` required; `u` as `{username}` or `{_id}`,
    /// default alice; `ts` kept when given as EJSON, ISO or ms). Returns its id.
    pub fn post_message(&self, msg: Value) -> String {
        let mut m = msg
            .as_object()
            .cloned()
            .expect("post_message takes a JSON object");
        assert!(
            m.get("rid").is_some_and(Value::is_string),
            "post_message needs a rid"
        );
        let mut w = self.shared.world();
        w.complete_message(&mut m);
        if let Some(ts) = msg.get("ts").and_then(date_ms) {
            m.insert("ts".into(), ejson_date(ts));
            m.insert("_updatedAt".into(), ejson_date(ts));
        }
        w.insert_message(m)
    }

    /// Edits a message's text as its author (`editedAt`, `editedBy`); broadcast as an update.
    pub fn edit(&self, id: &str, text: &str) {
        let mut w = self.shared.world();
        let author = self.message_field(&w, id, "u")["_id"]
            .as_str()
            .unwrap_or(BOT_ID)
            .to_string();
        w.edit_text(id, text, &author);
    }

    /// Adds a reaction by `bob` (`reactions: {":emoji:": {usernames}}`); broadcast as an update.
    pub fn react(&self, id: &str, emoji: &str) {
        let key = format!(":{}:", emoji.trim_matches(':'));
        self.shared.world().modify_message(id, |m| {
            let r = m.entry("reactions").or_insert_with(|| json!({}));
            r[&key] = json!({"usernames": ["bob"]});
        });
    }

    /// Adds a URL preview (`urls` with `meta`); broadcast as an update.
    pub fn add_url_preview(&self, id: &str) {
        self.shared.world().modify_message(id, |m| {
            let meta = json!({"pageTitle": "Example Domain", "ogTitle": "Example Domain"});
            let url = json!({"url": "https://example.org/", "meta": meta,
                "headers": {"contentType": "text/html; charset=UTF-8"}});
            m.insert("urls".into(), json!([url]));
        });
    }

    /// Counts one more thread reply (`tcount`, `tlm`); broadcast as an update.
    pub fn bump_thread_count(&self, id: &str) {
        let mut w = self.shared.world();
        let now = w.now();
        w.bump_thread(id, ejson_date(now), None);
    }

    /// Deletes a message (only `stream-notify-room` `<rid>/deleteMessage` subscribers hear of it).
    pub fn delete(&self, id: &str) {
        self.shared.world().delete_message(id);
    }

    fn message_field(&self, w: &super::world::World, id: &str, field: &str) -> Value {
        let i = w
            .msg_index(id)
            .unwrap_or_else(|| panic!("fake RC: unknown message {id:?}"));
        w.messages[i][field].clone()
    }

    /// Messages of a room as stored (EJSON dates), oldest first, the bot's and system ones included.
    pub fn messages(&self, rid: &str) -> Vec<Value> {
        self.shared.world().room_messages(rid)
    }

    /// One stored message by id.
    pub fn message(&self, id: &str) -> Option<Value> {
        let w = self.shared.world();
        w.msg_index(id).map(|i| w.messages[i].clone())
    }

    /// Every file received (`rooms.media` and `rooms.upload`): (name, content type, bytes).
    pub fn uploads(&self) -> Vec<(String, String, Vec<u8>)> {
        let w = self.shared.world();
        w.uploads
            .iter()
            .map(|u| (u.name.clone(), u.ctype.clone(), u.bytes.to_vec()))
            .collect()
    }

    /// Open DDP connections.
    pub fn ddp_connections(&self) -> usize {
        self.shared.world().conns.len()
    }

    /// DDP connections accepted since the start.
    pub fn ddp_connections_total(&self) -> usize {
        self.shared.world().log.ddp_total
    }

    /// Successful logins in order: "password"/"resume" (DDP), "rest:password"/"rest:resume" (REST).
    pub fn logins(&self) -> Vec<String> {
        self.shared.world().log.logins.clone()
    }

    /// Every JSON frame received from DDP clients, in order.
    pub fn ddp_frames_received(&self) -> Vec<Value> {
        self.shared.world().log.frames.clone()
    }

    /// The `method` frames received for one method name.
    pub fn ddp_method_calls(&self, method: &str) -> Vec<Value> {
        let frames = self.ddp_frames_received();
        frames
            .into_iter()
            .filter(|f| f["msg"] == "method" && f["method"] == method)
            .collect()
    }

    /// Every HTTP request (method, path without query), websocket upgrades included.
    pub fn rest_requests(&self) -> Vec<(String, String)> {
        self.shared.world().log.rest.clone()
    }

    /// JSON bodies of the HTTP requests whose path contains `path_contains`.
    pub fn rest_bodies(&self, path_contains: &str) -> Vec<Value> {
        let w = self.shared.world();
        let it = w
            .log
            .rest_bodies
            .iter()
            .filter(|(p, _)| p.contains(path_contains));
        it.map(|(_, b)| b.clone()).collect()
    }

    /// True when a DDP connection is logged in as the bot and subscribed to `__my_messages__`.
    pub fn bot_listening(&self) -> bool {
        let w = self.shared.world();
        let listening = |c: &&super::world::Conn| {
            c.uid.as_deref() == Some(BOT_ID) && c.subs.iter().any(|s| s.event == "__my_messages__")
        };
        w.conns.values().any(|c| listening(&c))
    }

    /// Waits until `bot_listening()`.
    pub fn wait_bot_listening(&self, timeout: Duration) {
        wait_until(
            timeout,
            "the bot to log in and subscribe to __my_messages__",
            || self.bot_listening(),
        );
    }

    /// Waits for a stored message (any room) matching `pred`; returns it.
    pub fn wait_message(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_for(timeout, what, || {
            let w = self.shared.world();
            w.messages.iter().find(|m| pred(m)).cloned()
        })
    }

    /// Waits for the `n`-th (1-based) `method` frame of `method`; returns it.
    pub fn wait_method_call(&self, timeout: Duration, method: &str, n: usize) -> Value {
        let what = format!("DDP call #{n} of {method}");
        wait_for(timeout, &what, || {
            self.ddp_method_calls(method).into_iter().nth(n - 1)
        })
    }
}
