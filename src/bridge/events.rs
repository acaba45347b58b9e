//! The callback events Jeedom receives (contract §3), typed; JSON only when queued.
use super::clock::rfc3339;
use super::mention::{is_mentioned, query};
use crate::model::{FileRef, Incoming, Room, RoomKind, UserRef};
use serde::Serialize;
use serde_json::Value;

/// One callback event. Field names, `null`s and the fields left out match
/// the README's "What Jeedom receives" (Jeedom's PHP reads them).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Status(Status),
    Rooms {
        rooms: Vec<RoomRef>,
    },
    Message(Box<Message>),
    AskAnswer {
        /// The reply's message id: a replayed `ask_answer` is skipped by it.
        id: String,
        ask_id: String,
        answer: String,
        user: UserShown,
        room: RoomRef,
        #[serde(skip_serializing_if = "is_false")]
        replay: bool,
    },
    AskExpired {
        ask_id: String,
    },
    Sent {
        #[serde(rename = "ref")]
        reference: Option<String>,
        room: RoomRef,
        message_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ask_id: Option<String>,
        #[serde(skip_serializing_if = "is_false")]
        replay: bool,
    },
    SendFailed {
        #[serde(rename = "ref")]
        reference: Option<String>,
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ask_id: Option<String>,
        #[serde(skip_serializing_if = "is_false")]
        replay: bool,
    },
    /// The closing edit of an ask was refused: the question still shows its
    /// buttons. `notice_id`: the message posted instead to say it is closed
    /// (`null` when that failed too, with `notice_error`).
    AskCloseFailed {
        ask_id: String,
        error: String,
        notice_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        notice_error: Option<String>,
        #[serde(skip_serializing_if = "is_false")]
        replay: bool,
    },
    Dropped {
        count: u64,
    },
}

/// The `status` event: `server_version` and `user` when connected, `error` when not.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<BotUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The bot's account in a `status` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BotUser {
    id: String,
    username: String,
}

/// The `message` event, with the flags Jeedom's interaction engine relies on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    id: String,
    room: RoomRef,
    user: UserShown,
    text: String,
    ts: String,
    direct: bool,
    mentioned: bool,
    interaction: bool,
    query: String,
    thread: Option<String>,
    files: Vec<FileRef>,
    #[serde(skip_serializing_if = "is_false")]
    encrypted: bool,
    #[serde(skip_serializing_if = "is_false")]
    replay: bool,
}

/// `{"id","name","kind"}` as events show a room; `users` only in `rooms`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoomRef {
    id: String,
    name: String,
    kind: RoomKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    users: Vec<String>,
}

/// A person as events show them: `name` is `null` when unknown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserShown {
    id: String,
    username: String,
    name: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Event {
    /// The JSON the queue keeps and the callback body carries.
    pub fn to_value(&self) -> Value {
        // Plain structs with string keys: serializing them cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Flags an event as possibly delivered before (only those a crash can
    /// repeat carry the flag).
    pub fn mark_replay(&mut self) {
        match self {
            Event::Message(m) => m.replay = true,
            Event::AskAnswer { replay, .. }
            | Event::Sent { replay, .. }
            | Event::SendFailed { replay, .. }
            | Event::AskCloseFailed { replay, .. } => *replay = true,
            _ => {}
        }
    }
}

/// Flags an event already in JSON form (queued, or in a batch that may have
/// reached Jeedom) as possibly delivered before.
pub fn mark_json_replay(event: &mut Value) {
    if let Some(obj) = event.as_object_mut() {
        obj.insert("replay".into(), Value::Bool(true));
    }
}

fn room_ref(room: &Room) -> RoomRef {
    RoomRef {
        id: room.id.clone(),
        name: room.name.clone(),
        kind: room.kind,
        users: Vec::new(),
    }
}

fn user_shown(user: &UserRef) -> UserShown {
    UserShown {
        id: user.id.clone(),
        username: user.username.clone(),
        name: user.name.clone(),
    }
}

pub fn connected(user_id: &str, username: &str, server_version: &str) -> Event {
    Event::Status(Status {
        connected: true,
        server_version: Some(server_version.to_string()),
        user: Some(BotUser {
            id: user_id.to_string(),
            username: username.to_string(),
        }),
        error: None,
    })
}

pub fn disconnected(error: &str) -> Event {
    Event::Status(Status {
        connected: false,
        server_version: None,
        user: None,
        error: Some(error.to_string()),
    })
}

pub fn rooms<'a>(rooms: impl Iterator<Item = &'a Room>) -> Event {
    let rooms = rooms
        .map(|r| RoomRef {
            users: r.users.clone(),
            ..room_ref(r)
        })
        .collect();
    Event::Rooms { rooms }
}

/// The `message` event; an encrypted one has nothing to interpret: Jeedom
/// can only tell the person why.
pub fn message(m: &Incoming, room: &Room, bot_username: &str) -> Event {
    let direct = room.kind == RoomKind::Direct;
    let mentioned = is_mentioned(&m.text, &m.mentions, bot_username);
    Event::Message(Box::new(Message {
        id: m.id.clone(),
        room: room_ref(room),
        user: user_shown(&m.user),
        text: m.text.clone(),
        ts: rfc3339(m.ts_ms),
        direct,
        mentioned,
        interaction: (direct || mentioned) && !m.encrypted,
        query: query(&m.text, bot_username),
        thread: m.thread.clone(),
        files: m.files.clone(),
        encrypted: m.encrypted,
        replay: false,
    }))
}

pub fn ask_answer(id: &str, ask_id: &str, answer: &str, user: &UserRef, room: &Room) -> Event {
    Event::AskAnswer {
        id: id.to_string(),
        ask_id: ask_id.to_string(),
        answer: answer.to_string(),
        user: user_shown(user),
        room: room_ref(room),
        replay: false,
    }
}

pub fn ask_expired(ask_id: &str) -> Event {
    Event::AskExpired {
        ask_id: ask_id.to_string(),
    }
}

pub fn sent(reference: Option<&str>, ask_id: Option<&str>, room: &Room, message_id: &str) -> Event {
    Event::Sent {
        reference: reference.map(str::to_string),
        room: room_ref(room),
        message_id: message_id.to_string(),
        ask_id: ask_id.map(str::to_string),
        replay: false,
    }
}

pub fn send_failed(reference: Option<&str>, ask_id: Option<&str>, error: &str) -> Event {
    Event::SendFailed {
        reference: reference.map(str::to_string),
        error: error.to_string(),
        ask_id: ask_id.map(str::to_string),
        replay: false,
    }
}

/// The closing edit of ask `ask_id` was refused with `error`; `notice`: the
/// id of the message posted instead to say it is closed, or why that failed.
pub fn ask_close_failed(ask_id: &str, error: &str, notice: Result<&str, &str>) -> Event {
    Event::AskCloseFailed {
        ask_id: ask_id.to_string(),
        error: error.to_string(),
        notice_id: notice.ok().map(str::to_string),
        notice_error: notice.err().map(str::to_string),
        replay: false,
    }
}

pub fn dropped(count: u64) -> Event {
    Event::Dropped { count }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(kind: RoomKind) -> Room {
        Room {
            id: "R".into(),
            name: "general".into(),
            kind,
            users: vec![],
            last_message_ms: None,
        }
    }

    fn msg(text: &str) -> Incoming {
        Incoming {
            encrypted: false,
            room_kind: None,
            id: "m1".into(),
            room_id: "R".into(),
            text: text.into(),
            ts_ms: 0,
            thread: None,
            files: vec![],
            mentions: vec![],
            user: UserRef {
                id: "u1".into(),
                username: "alice".into(),
                name: Some("Alice A.".into()),
            },
        }
    }

    #[test]
    fn message_flags() {
        let e = message(
            &msg("@jeedombot turn on the radio"),
            &room(RoomKind::Channel),
            "jeedombot",
        )
        .to_value();
        assert_eq!(
            (
                e["direct"].as_bool(),
                e["mentioned"].as_bool(),
                e["interaction"].as_bool()
            ),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(e["query"], "turn on the radio");
        assert_eq!(e["room"]["kind"], "channel");
        let e = message(&msg("hello all"), &room(RoomKind::Channel), "jeedombot").to_value();
        assert_eq!(e["interaction"], false);
        let e = message(
            &msg("turn on the radio"),
            &room(RoomKind::Direct),
            "jeedombot",
        )
        .to_value();
        assert_eq!(
            (e["direct"].as_bool(), e["interaction"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(e["query"], "turn on the radio");
    }

    /// Each event as the README's "What Jeedom receives" shows it (its `..`
    /// filled in), `null`s and left-out fields included.
    #[test]
    fn each_event_serializes_as_the_readme_shows() {
        let general = room(RoomKind::Channel);
        let mut dm = room(RoomKind::Direct);
        (dm.id, dm.name) = ("abcXYZ".into(), "alice".into());
        dm.users = vec!["alice".into(), "jeedombot".into()];
        let mut m = msg("@jeedombot turn on the radio");
        m.ts_ms = 1_795_600_800_123;
        m.files = vec![FileRef {
            name: "a.jpg".into(),
            mime: "image/jpeg".into(),
            url: "/file-upload/f1/a.jpg".into(),
        }];
        let alice = m.user.clone();
        let mut sent_replayed = sent(Some("r1"), None, &general, "M9");
        sent_replayed.mark_replay();
        let cases = [
            (
                connected("B1", "jeedombot", "7.4.1"),
                r#"{"type":"status","connected":true,"server_version":"7.4.1","user":{"id":"B1","username":"jeedombot"}}"#,
            ),
            (
                disconnected("login failed: incorrect password"),
                r#"{"type":"status","connected":false,"error":"login failed: incorrect password"}"#,
            ),
            (
                rooms([general.clone(), dm].iter()),
                r#"{"type":"rooms","rooms":[{"id":"R","name":"general","kind":"channel"},{"id":"abcXYZ","name":"alice","kind":"direct","users":["alice","jeedombot"]}]}"#,
            ),
            (
                message(&m, &general, "jeedombot"),
                r#"{"type":"message","id":"m1","room":{"id":"R","name":"general","kind":"channel"},"user":{"id":"u1","username":"alice","name":"Alice A."},"text":"@jeedombot turn on the radio","ts":"2026-11-25T10:00:00.123Z","direct":false,"mentioned":true,"interaction":true,"query":"turn on the radio","thread":null,"files":[{"name":"a.jpg","type":"image/jpeg","url":"/file-upload/f1/a.jpg"}]}"#,
            ),
            (
                ask_answer("M1", "42", "Yes", &alice, &general),
                r#"{"type":"ask_answer","id":"M1","ask_id":"42","answer":"Yes","user":{"id":"u1","username":"alice","name":"Alice A."},"room":{"id":"R","name":"general","kind":"channel"}}"#,
            ),
            (ask_expired("42"), r#"{"type":"ask_expired","ask_id":"42"}"#),
            (
                sent(None, Some("42"), &general, "M9"),
                r#"{"type":"sent","ref":null,"room":{"id":"R","name":"general","kind":"channel"},"message_id":"M9","ask_id":"42"}"#,
            ),
            (
                sent_replayed,
                r#"{"type":"sent","ref":"r1","room":{"id":"R","name":"general","kind":"channel"},"message_id":"M9","replay":true}"#,
            ),
            (
                send_failed(Some("r1"), None, "room not found"),
                r#"{"type":"send_failed","ref":"r1","error":"room not found"}"#,
            ),
            (dropped(123), r#"{"type":"dropped","count":123}"#),
        ];
        for (event, readme) in cases {
            let want: Value = serde_json::from_str(readme).unwrap();
            assert_eq!(event.to_value(), want, "{readme}");
        }
    }

    #[test]
    fn an_encrypted_message_has_no_interaction_and_says_so() {
        let mut m = msg("");
        m.encrypted = true;
        let mut e = message(&m, &room(RoomKind::Direct), "jeedombot");
        e.mark_replay();
        let e = e.to_value();
        assert_eq!(
            (
                &e["encrypted"],
                &e["interaction"],
                &e["direct"],
                &e["replay"]
            ),
            (
                &Value::Bool(true),
                &Value::Bool(false),
                &Value::Bool(true),
                &Value::Bool(true)
            )
        );
        assert_eq!(
            (&e["text"], &e["query"], &e["user"]["name"]),
            (&Value::from(""), &Value::from(""), &Value::from("Alice A."))
        );
    }
}
