//! Builders of the callback events Jeedom receives (contract §3).
use super::clock::rfc3339;
use super::mention::{is_mentioned, query};
use crate::model::{Incoming, Room, UserRef};
use serde_json::{json, Value};

/// `{"id","name","kind"}` as events show a room.
pub fn room_ref(room: &Room) -> Value {
    json!({"id": room.id, "name": room.name, "kind": room.kind})
}

pub fn user_ref(user: &UserRef) -> Value {
    json!({"id": user.id, "username": user.username, "name": user.name})
}

pub fn connected(user_id: &str, username: &str, server_version: &str) -> Value {
    json!({"type": "status", "connected": true, "server_version": server_version,
           "user": {"id": user_id, "username": username}})
}

pub fn disconnected(error: &str) -> Value {
    json!({"type": "status", "connected": false, "error": error})
}

pub fn rooms<'a>(rooms: impl Iterator<Item = &'a Room>) -> Value {
    let list: Vec<Value> = rooms
        .map(|r| {
            let mut v = room_ref(r);
            if !r.users.is_empty() {
                v["users"] = json!(r.users);
            }
            v
        })
        .collect();
    json!({"type": "rooms", "rooms": list})
}

/// The `message` event, with the flags Jeedom's interaction engine relies on.
pub fn message(m: &Incoming, room: &Room, bot_username: &str) -> Value {
    let direct = room.kind == crate::model::RoomKind::Direct;
    let mentioned = is_mentioned(&m.text, &m.mentions, bot_username);
    let mut v = json!({
        "type": "message", "id": m.id, "room": room_ref(room), "user": user_ref(&m.user),
        "text": m.text, "ts": rfc3339(m.ts_ms), "direct": direct, "mentioned": mentioned,
        "interaction": direct || mentioned, "query": query(&m.text, bot_username),
        "thread": m.thread, "files": m.files,
    });
    if m.encrypted {
        // Nothing to interpret: Jeedom can only tell the person why.
        v["encrypted"] = json!(true);
        v["interaction"] = json!(false);
    }
    v
}

pub fn ask_answer(ask_id: &str, answer: &str, user: &UserRef, room: &Room) -> Value {
    json!({"type": "ask_answer", "ask_id": ask_id, "answer": answer, "user": user_ref(user), "room": room_ref(room)})
}

pub fn ask_expired(ask_id: &str) -> Value {
    json!({"type": "ask_expired", "ask_id": ask_id})
}

pub fn sent(reference: Option<&str>, ask_id: Option<&str>, room: &Room, message_id: &str) -> Value {
    let mut v =
        json!({"type": "sent", "ref": reference, "room": room_ref(room), "message_id": message_id});
    if let Some(id) = ask_id {
        v["ask_id"] = json!(id);
    }
    v
}

pub fn send_failed(reference: Option<&str>, ask_id: Option<&str>, error: &str) -> Value {
    let mut v = json!({"type": "send_failed", "ref": reference, "error": error});
    if let Some(id) = ask_id {
        v["ask_id"] = json!(id);
    }
    v
}

pub fn dropped(count: u64) -> Value {
    json!({"type": "dropped", "count": count})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RoomKind;

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
        );
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
        let e = message(&msg("hello all"), &room(RoomKind::Channel), "jeedombot");
        assert_eq!(e["interaction"], false);
        let e = message(
            &msg("turn on the radio"),
            &room(RoomKind::Direct),
            "jeedombot",
        );
        assert_eq!(
            (e["direct"].as_bool(), e["interaction"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(e["query"], "turn on the radio");
    }
}
