//! Pure message and room logic: what Rocket.Chat sends, read into the model.
use super::ddp::date_ms;
use crate::bridge::mention::eq_ci;
use crate::model::{FileRef, Incoming, Room, RoomKind, UserRef};
use serde_json::Value;

/// A live message whose `_updatedAt` is this far after its `ts` is an update
/// (reaction, thread counter, pin...) of an old message, not a new one: the
/// server stamps `ts` within 60 s of the insert.
const UPDATE_AFTER_MS: i64 = 5 * 60 * 1000;

/// Turns the `args` of a `stream-room-messages` `changed` frame
/// (`[message, {roomParticipant, roomType, roomName}]`, or `[[message], info]`
/// from 3.x servers before PR #20801) into a new message, or `None` when it
/// must not reach Jeedom.
pub fn parse(args: &[Value], bot_user_id: &str) -> Option<Incoming> {
    let first = args.first()?;
    let msg = match first {
        Value::Array(inner) => inner.first()?,
        m => m,
    };
    let room_type = args
        .get(1)
        .and_then(|info| info.get("roomType"))
        .and_then(Value::as_str);
    if let Some(info) = args.get(1) {
        if info.get("roomParticipant").and_then(Value::as_bool) == Some(false) {
            return None;
        }
        if room_type == Some("l") {
            return None;
        }
    }
    // An edit re-sends the message with `editedAt`.
    if msg.get("editedAt").is_some_and(|v| !v.is_null()) {
        return None;
    }
    let updated = msg.get("_updatedAt").and_then(date_ms);
    let ts = msg.get("ts").and_then(date_ms);
    if let (Some(u), Some(t)) = (updated, ts) {
        if u.saturating_sub(t) > UPDATE_AFTER_MS {
            return None;
        }
    }
    let mut m = parse_missed(msg, bot_user_id)?;
    m.room_kind = room_type.and_then(RoomKind::from_letter);
    Some(m)
}

/// Turns one entry of a `loadMissedMessages` answer into a new message.
/// An edited entry is kept: it was posted while the daemon was away, so it
/// is new to Jeedom, with its current text.
pub fn parse_missed(msg: &Value, bot_user_id: &str) -> Option<Incoming> {
    let s = |key: &str| msg.get(key).and_then(Value::as_str);
    // `t:"e2e"` is a person's end-to-end encrypted message, not a system one.
    let encrypted = s("t") == Some("e2e");
    let set = |key: &str| msg.get(key).is_some_and(|v| !v.is_null());
    if (set("t") && !encrypted) || msg.get("_hidden").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let user = parse_user(msg.get("u")?)?;
    if user.id == bot_user_id {
        return None;
    }
    let (text, files) = match encrypted {
        // `msg` holds the ciphertext: nothing of it is for Jeedom.
        true => (String::new(), Vec::new()),
        false => (message_text(msg), files(msg)),
    };
    if !encrypted && text.trim().is_empty() && files.is_empty() {
        return None;
    }
    Some(Incoming {
        id: s("_id")?.to_string(),
        room_id: s("rid")?.to_string(),
        user,
        text,
        ts_ms: msg.get("ts").and_then(date_ms)?,
        thread: s("tmid").filter(|t| !t.is_empty()).map(str::to_string),
        files,
        mentions: mentions(msg),
        encrypted,
        room_kind: None,
    })
}

fn parse_user(u: &Value) -> Option<UserRef> {
    Some(UserRef {
        id: u.get("_id")?.as_str()?.to_string(),
        username: u.get("username")?.as_str()?.to_string(),
        name: u.get("name").and_then(Value::as_str).map(str::to_string),
    })
}

/// The text, or for an upload sent without text the caption of its file.
fn message_text(msg: &Value) -> String {
    let text = msg.get("msg").and_then(Value::as_str).unwrap_or_default();
    if !text.trim().is_empty() {
        return text.to_string();
    }
    file_attachments(msg)
        .find_map(|a| a.get("description").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

fn mentions(msg: &Value) -> Vec<String> {
    let Some(list) = msg.get("mentions").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|m| m.get("username").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// Attachments that link to an uploaded file of this server.
fn file_attachments(msg: &Value) -> impl Iterator<Item = &Value> {
    let list = msg.get("attachments").and_then(Value::as_array);
    list.into_iter().flatten().filter(|a| {
        a.get("title_link")
            .and_then(Value::as_str)
            .is_some_and(|l| l.contains("/file-upload/"))
    })
}

/// Files of the message. The attachments come first because `files` also
/// lists generated thumbnails, which the attachments do not link.
fn files(msg: &Value) -> Vec<FileRef> {
    let uploaded = uploaded_files(msg);
    let from_attachments: Vec<FileRef> = file_attachments(msg)
        .filter_map(|a| attachment_file(a, &uploaded))
        .collect();
    if !from_attachments.is_empty() {
        return from_attachments;
    }
    uploaded
        .iter()
        .filter_map(|f| {
            let (id, name) = (f.get("_id")?.as_str()?, f.get("name")?.as_str()?);
            Some(FileRef {
                name: name.to_string(),
                mime: mime_of(f),
                url: format!("/file-upload/{id}/{}", encode_component(name)),
            })
        })
        .collect()
}

/// `files[]`, or the single `file` of older servers.
fn uploaded_files(msg: &Value) -> Vec<&Value> {
    match msg.get("files").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.iter().collect(),
        _ => msg
            .get("file")
            .filter(|f| f.is_object())
            .into_iter()
            .collect(),
    }
}

fn attachment_file(a: &Value, uploaded: &[&Value]) -> Option<FileRef> {
    let url = a.get("title_link")?.as_str()?;
    let file = uploaded.iter().find(|f| {
        f.get("_id")
            .and_then(Value::as_str)
            .is_some_and(|id| url.contains(&format!("/file-upload/{id}/")))
    });
    let name = file
        .and_then(|f| f.get("name").and_then(Value::as_str))
        .or_else(|| a.get("title").and_then(Value::as_str))
        .unwrap_or_else(|| url.rsplit('/').next().unwrap_or(url));
    let mime = match file {
        Some(f) => mime_of(f),
        None => ["image_type", "video_type", "audio_type"]
            .iter()
            .find_map(|k| a.get(*k).and_then(Value::as_str))
            .unwrap_or("application/octet-stream")
            .to_string(),
    };
    Some(FileRef {
        name: name.to_string(),
        mime,
        url: url.to_string(),
    })
}

fn mime_of(file: &Value) -> String {
    file.get("type")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// Percent-encodes a path segment like JavaScript's `encodeURIComponent`.
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A room from a `rooms/get` entry, a `subscriptions/get` entry (which
/// carries the room id in `rid`) or a `rooms-changed` payload. `None` for
/// livechat and unknown types.
pub fn parse_room(v: &Value, bot_username: &str) -> Option<Room> {
    let s = |key: &str| v.get(key).and_then(Value::as_str).filter(|x| !x.is_empty());
    let kind = RoomKind::from_letter(s("t")?)?;
    let id = s("rid").or_else(|| s("_id"))?.to_string();
    let (name, users) = match kind {
        RoomKind::Direct => direct_name(v, bot_username),
        // A discussion's `name` is a random id; people know it by its title.
        _ if s("prid").is_some() => (s("fname").or_else(|| s("name"))?.to_string(), Vec::new()),
        _ => (s("name").or_else(|| s("fname"))?.to_string(), Vec::new()),
    };
    Some(Room {
        name: if name.is_empty() { id.clone() } else { name },
        id,
        kind,
        users,
        last_message_ms: v.get("lm").and_then(date_ms),
    })
}

/// A direct message is named after the other member(s); a subscription
/// has no `usernames` but its `name` is the other member.
fn direct_name(v: &Value, bot: &str) -> (String, Vec<String>) {
    let usernames: Vec<String> = v
        .get("usernames")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if usernames.is_empty() {
        let other = v.get("name").and_then(Value::as_str).unwrap_or_default();
        let users = [other, bot].into_iter().filter(|u| !u.is_empty());
        return (other.to_string(), users.map(str::to_string).collect());
    }
    let others: Vec<&str> = usernames
        .iter()
        .map(String::as_str)
        .filter(|u| !eq_ci(u, bot))
        .collect();
    // A note-to-self DM has only the bot in it.
    let name = if others.is_empty() {
        bot.to_string()
    } else {
        others.join(", ")
    };
    (name, usernames)
}

/// Rooms of a `rooms/get` or `subscriptions/get` answer: an array, or
/// `{update: [...], remove: [...]}` when asked for changes since a date.
pub fn parse_rooms(result: &Value, bot_username: &str) -> Vec<Room> {
    let list = result
        .as_array()
        .or_else(|| result.get("update").and_then(Value::as_array));
    let mut rooms: Vec<Room> = list
        .into_iter()
        .flatten()
        .filter_map(|v| parse_room(v, bot_username))
        .collect();
    rooms.sort_by(|a, b| (a.kind as u8, &a.name, &a.id).cmp(&(b.kind as u8, &b.name, &b.id)));
    rooms.dedup_by(|a, b| a.id == b.id);
    rooms
}

/// Whether two room lists differ in what Jeedom sees (ids, names, kinds,
/// members), ignoring the last message times that change with every message.
pub fn same_rooms(a: &[Room], b: &[Room]) -> bool {
    let key = |r: &Room| (r.id.clone(), r.name.clone(), r.kind as u8, r.users.clone());
    let mut ka: Vec<_> = a.iter().map(key).collect();
    let mut kb: Vec<_> = b.iter().map(key).collect();
    ka.sort();
    kb.sort();
    ka == kb
}

#[cfg(test)]
mod tests;
