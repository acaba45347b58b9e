//! Builders of the callback events Jeedom receives (contract §3).
use crate::model::{Incoming, Room, UserRef};
use crate::rocketchat::message::{is_mentioned, query};
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

/// `id` is the reply's message id: a replayed `ask_answer` is skipped by it.
pub fn ask_answer(id: &str, ask_id: &str, answer: &str, user: &UserRef, room: &Room) -> Value {
    json!({"type": "ask_answer", "id": id, "ask_id": ask_id, "answer": answer,
           "user": user_ref(user), "room": room_ref(room)})
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

/// The closing edit of ask `ask_id` was refused with `error`: the question
/// still shows its buttons. `notice`: the id of the message posted instead
/// to say it is closed, or why that failed too.
pub fn ask_close_failed(ask_id: &str, error: &str, notice: Result<&str, &str>) -> Value {
    let mut v = json!({"type": "ask_close_failed", "ask_id": ask_id, "error": error});
    match notice {
        Ok(id) => v["notice_id"] = json!(id),
        Err(e) => {
            v["notice_id"] = Value::Null;
            v["notice_error"] = json!(e);
        }
    }
    v
}

/// Flags an event as possibly delivered before (`"replay": true`): Jeedom
/// skips it if it has handled it already.
pub fn mark_replay(event: &mut Value) {
    if let Some(obj) = event.as_object_mut() {
        obj.insert("replay".into(), Value::Bool(true));
    }
}

pub fn dropped(count: u64) -> Value {
    json!({"type": "dropped", "count": count})
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-25T10:00:00.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!(
        "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:03}Z",
        ms.rem_euclid(1000)
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RoomKind;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_600_800_123), "2026-11-25T10:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

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
