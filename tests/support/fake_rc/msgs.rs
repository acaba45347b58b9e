//! Messages of the fake Rocket.Chat: building the real document shape, inserting, updating.
use super::util::{ejson_date, new_id};
use super::world::World;
use serde_json::{json, Map, Value};

/// Characters allowed in a username or a room name after `@` or `#`.
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `(sigil, name)` tokens of a text, e.g. `('@', "jeedombot")`.
fn sigil_tokens(text: &str) -> Vec<(char, String)> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let mut cs = word.chars();
        let Some(s @ ('@' | '#')) = cs.next() else {
            continue;
        };
        let name: String = cs.take_while(|c| name_char(*c)).collect();
        let name = name.trim_end_matches('.').to_string();
        if !name.is_empty() {
            out.push((s, name));
        }
    }
    out
}

/// A simplified `md` (message-parser AST): one paragraph per line, mentions as nodes.
fn markdown(text: &str) -> Value {
    let paras: Vec<Value> = text
        .lines()
        .map(|l| json!({"type": "PARAGRAPH", "value": inline(l)}))
        .collect();
    Value::Array(paras)
}

fn inline(line: &str) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut plain = String::new();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        let sigil = c == '@' || c == '#';
        let name: String = match sigil {
            true => after.chars().take_while(|c| name_char(*c)).collect(),
            false => String::new(),
        };
        let name = name.trim_end_matches('.').to_string();
        let at_word_start = plain.is_empty() || plain.ends_with(char::is_whitespace);
        if sigil && !name.is_empty() && at_word_start {
            if !plain.is_empty() {
                nodes.push(json!({"type": "PLAIN_TEXT", "value": std::mem::take(&mut plain)}));
            }
            let kind = if c == '@' {
                "MENTION_USER"
            } else {
                "MENTION_CHANNEL"
            };
            nodes.push(json!({"type": kind, "value": {"type": "PLAIN_TEXT", "value": name}}));
            rest = &after[name.len()..];
        } else {
            plain.push(c);
            rest = after;
        }
    }
    if !plain.is_empty() {
        nodes.push(json!({"type": "PLAIN_TEXT", "value": plain}));
    }
    nodes
}

impl World {
    /// `mentions` of a text: known users, plus `all` and `here`.
    fn mentions(&self, text: &str) -> Value {
        let mut out: Vec<Value> = Vec::new();
        for (_, name) in sigil_tokens(text).into_iter().filter(|(s, _)| *s == '@') {
            let m = match (name.as_str(), self.user_by_name(&name)) {
                ("all" | "here", _) => json!({"_id": name, "username": name}),
                (_, Some(u)) => {
                    json!({"_id": u.id, "username": u.username, "name": u.name, "type": "user"})
                }
                _ => continue,
            };
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Value::Array(out)
    }

    /// `channels` of a text: known channels and groups.
    fn channels(&self, text: &str) -> Value {
        let it = sigil_tokens(text).into_iter().filter(|(s, _)| *s == '#');
        let found = it.filter_map(|(_, n)| self.rooms.iter().find(|r| r.t != 'd' && r.name == n));
        Value::Array(
            found
                .map(|r| json!({"_id": r.id, "name": r.name}))
                .collect(),
        )
    }

    /// Fills the server-side fields of a message (id, dates, full author, mentions, md).
    pub fn complete_message(&mut self, msg: &mut Map<String, Value>) {
        let now = self.now();
        if !msg.get("_id").is_some_and(Value::is_string) {
            msg.insert("_id".into(), json!(new_id()));
        }
        msg.insert("ts".into(), ejson_date(now));
        msg.insert("_updatedAt".into(), ejson_date(now));
        let text = msg
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        msg.insert("msg".into(), json!(text));
        let uid = self.author_id(msg.get("u"));
        msg.insert("u".into(), self.user_ref(&uid));
        if !msg.contains_key("t") {
            msg.entry("mentions")
                .or_insert_with(|| self.mentions(&text));
            msg.entry("channels")
                .or_insert_with(|| self.channels(&text));
            if !text.is_empty() {
                msg.entry("md").or_insert_with(|| markdown(&text));
            }
        }
    }

    /// Author id from a `u` given as `{_id}` or `{username}`; `alice` when absent.
    fn author_id(&self, u: Option<&Value>) -> String {
        let u = u.cloned().unwrap_or(Value::Null);
        if let Some(id) = u["_id"].as_str() {
            return id.to_string();
        }
        self.uid(u["username"].as_str().unwrap_or("alice"))
    }

    /// Stores a completed message, updates its room and thread, broadcasts; returns its id.
    pub fn insert_message(&mut self, msg: Map<String, Value>) -> String {
        let msg = Value::Object(msg);
        let id = msg["_id"].as_str().unwrap_or_default().to_string();
        let rid = msg["rid"].as_str().unwrap_or_default().to_string();
        self.messages.push(msg.clone());
        let ts = msg["ts"].clone();
        if let Some(tmid) = msg["tmid"].as_str() {
            let uid = msg["u"]["_id"].clone();
            self.bump_thread(tmid, ts.clone(), Some(uid));
        }
        self.emit_message(&msg);
        if let Some(room) = self.rooms.iter_mut().find(|r| r.id == rid) {
            room.msgs += 1;
            room.updated = super::util::date_ms(&ts).unwrap_or(room.updated);
            room.last_message = Some(msg);
            self.notify_room(&rid, "updated");
        }
        id
    }

    /// Builds, stores and broadcasts a message; returns its id.
    pub fn post(&mut self, rid: &str, uid: &str, text: &str) -> String {
        let mut m = Map::new();
        m.insert("rid".into(), json!(rid));
        m.insert("msg".into(), json!(text));
        m.insert("u".into(), json!({"_id": uid}));
        self.complete_message(&mut m);
        self.insert_message(m)
    }

    /// Applies `f` to a stored message, sets `_updatedAt`, broadcasts it. False when unknown.
    pub fn modify_message(&mut self, id: &str, f: impl FnOnce(&mut Map<String, Value>)) -> bool {
        let Some(i) = self.msg_index(id) else {
            return false;
        };
        let now = self.now();
        let msg = &mut self.messages[i];
        if let Some(o) = msg.as_object_mut() {
            f(o);
            o.insert("_updatedAt".into(), ejson_date(now));
        }
        let msg = msg.clone();
        self.emit_message(&msg);
        true
    }

    /// Edits the text of a message as its author would.
    pub fn edit_text(&mut self, id: &str, text: &str, editor: &str) {
        self.edit_with(id, text, editor, Map::new());
    }

    /// Sets `extra` fields and the text of a message, marks it edited by `editor`, broadcasts once.
    pub fn edit_with(&mut self, id: &str, text: &str, editor: &str, extra: Map<String, Value>) {
        let now = self.now();
        let (mentions, md) = (self.mentions(text), markdown(text));
        let by = self.user_ref(editor);
        self.modify_message(id, |m| {
            m.extend(extra);
            m.insert("msg".into(), json!(text));
            m.insert("mentions".into(), mentions);
            m.insert("md".into(), md);
            m.insert("editedAt".into(), ejson_date(now));
            m.insert(
                "editedBy".into(),
                json!({"_id": by["_id"], "username": by["username"]}),
            );
        });
    }

    /// Counts one more reply in a thread (as when a reply is posted).
    pub fn bump_thread(&mut self, tmid: &str, tlm: Value, replier: Option<Value>) {
        self.modify_message(tmid, |m| {
            let n = m.get("tcount").and_then(Value::as_u64).unwrap_or(0);
            m.insert("tcount".into(), json!(n + 1));
            m.insert("tlm".into(), tlm);
            let replies = m.entry("replies").or_insert_with(|| json!([]));
            if let (Some(r), Some(u)) = (replies.as_array_mut(), replier) {
                if !r.contains(&u) {
                    r.push(u);
                }
            }
        });
    }

    /// Removes a message and tells `stream-notify-room` `<rid>/deleteMessage` subscribers.
    pub fn delete_message(&mut self, id: &str) {
        let Some(i) = self.msg_index(id) else { return };
        let msg = self.messages.remove(i);
        let rid = msg["rid"].as_str().unwrap_or_default().to_string();
        if let Some(room) = self.rooms.iter_mut().find(|r| r.id == rid) {
            room.msgs = room.msgs.saturating_sub(1);
        }
        self.notify_room_event(&rid, "deleteMessage", json!([{"_id": id}]));
    }
}
