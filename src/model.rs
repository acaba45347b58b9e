//! Data shared by the threads: rooms, users, incoming and outgoing messages.
use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret (password, token, API key) that never prints itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The kind of a Rocket.Chat room, as Jeedom sees it (livechat is never one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Channel,
    Group,
    Direct,
}

impl RoomKind {
    /// Maps Rocket.Chat's room type letter; `None` for livechat and unknown types.
    pub fn from_letter(t: &str) -> Option<RoomKind> {
        match t {
            "c" => Some(RoomKind::Channel),
            "p" => Some(RoomKind::Group),
            "d" => Some(RoomKind::Direct),
            _ => None,
        }
    }
}

/// A room the bot is a member of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub kind: RoomKind,
    /// Usernames of a direct message's members (empty for other kinds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Server time (ms) of the room's last message, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_ms: Option<i64>,
}

/// A user as shown in events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRef {
    pub id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A file attached to an incoming message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    #[serde(rename = "type")]
    pub mime: String,
    pub url: String,
}

/// A new message written by a person, already stripped of everything that
/// must not reach Jeedom (own, system, edits...).
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub id: String,
    pub room_id: String,
    pub user: UserRef,
    pub text: String,
    pub ts_ms: i64,
    /// Thread root id when the message was posted inside a thread.
    pub thread: Option<String>,
    pub files: Vec<FileRef>,
    /// Usernames the server lists in the message's `mentions`.
    pub mentions: Vec<String>,
    /// End-to-end encrypted (`t:"e2e"`): the text is unreadable to the bot
    /// and left empty.
    pub encrypted: bool,
    /// The room type the live frame named (`roomType`), for a room the list
    /// does not have yet (a new direct message's first message).
    pub room_kind: Option<RoomKind>,
}

/// The logged-in session, shared with the REST side.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    pub token: Secret,
    pub server_version: String,
}

/// A file copied into the spool when its request was accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpooledFile {
    /// Path of the spooled copy (deleted once the upload is confirmed).
    pub path: String,
    /// Original file name, shown in the chat.
    pub name: String,
    /// Bytes copied: a copy found shorter at upload time was cut by a power
    /// cut, and fails its request instead of being posted truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What an accepted request asks for beyond posting text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OutKind {
    Send,
    Ask {
        ask_id: String,
        answers: Vec<String>,
        timeout_s: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answers_per_line: Option<usize>,
    },
    /// The daemon's own message saying that a question is closed, posted
    /// when the closing edit of ask `ask_id` was refused with `edit_error`.
    /// It ends in `ask_close_failed`, not in `sent`/`send_failed`.
    Notice {
        ask_id: String,
        edit_error: String,
    },
}

/// An accepted `send` or `ask` request waiting to be delivered to Rocket.Chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Unique key, also the base of the client-generated message `_id`s.
    pub key: String,
    #[serde(flatten)]
    pub kind: OutKind,
    /// Target as given: room id, `#name` or `@username`.
    pub room: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mention: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SpooledFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// Jeedom's `ref`, echoed in `sent` / `send_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Unix time (ms) the request was accepted.
    pub accepted_ms: i64,
    /// Steps already confirmed by the server (text parts, then files), so a
    /// restart resumes after them instead of posting them again.
    #[serde(default)]
    pub steps_done: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn room_letters() {
        assert_eq!(RoomKind::from_letter("p"), Some(RoomKind::Group));
        assert_eq!(RoomKind::from_letter("l"), None);
    }
}
