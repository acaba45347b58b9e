//! Values the core's unit tests build again and again.
use crate::model::{Incoming, OutKind, Outgoing, Room, RoomKind, Secret, Session, UserRef};
use crate::state::PendingAsk;

/// A channel named after its id.
pub fn room(id: &str) -> Room {
    Room {
        id: id.into(),
        name: id.to_lowercase(),
        kind: RoomKind::Channel,
        users: vec![],
        last_message_ms: None,
    }
}

/// A message from `user` (whose id is `<user>id`) in room `room`.
pub fn incoming(room: &str, id: &str, user: &str, text: &str, ts_ms: i64) -> Incoming {
    Incoming {
        encrypted: false,
        room_kind: None,
        id: id.into(),
        room_id: room.into(),
        user: UserRef {
            id: format!("{user}id"),
            username: user.into(),
            name: None,
        },
        text: text.into(),
        ts_ms,
        thread: None,
        files: vec![],
        mentions: vec![],
    }
}

/// The bot's session on a 7.x server.
pub fn session() -> Session {
    Session {
        user_id: "botid".into(),
        username: "jeedombot".into(),
        token: Secret::new("t"),
        server_version: "7".into(),
    }
}

/// A `send` request to #general, its reference its key.
pub fn send(key: &str) -> Outgoing {
    Outgoing {
        key: key.into(),
        kind: OutKind::Send,
        room: "#general".into(),
        text: format!("text {key}"),
        mention: None,
        files: vec![],
        description: None,
        thread: None,
        reference: Some(key.into()),
        accepted_ms: 0,
        steps_done: 0,
    }
}

/// An open question in GENERAL, posted as `q<id>`: "Call?", Yes or No.
pub fn pending(id: &str, mention: Option<&str>, expires_ms: i64) -> PendingAsk {
    PendingAsk {
        ask_id: id.into(),
        room: room("GENERAL"),
        message_id: format!("q{id}"),
        question: "Call?".into(),
        answers: vec!["Yes".into(), "No".into()],
        mention: mention.map(String::from),
        expires_ms,
        closing: None,
    }
}
