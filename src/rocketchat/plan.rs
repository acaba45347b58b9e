//! What a send job posts, step by step: target room, deterministic message ids, text parts.
use super::ask;
use crate::model::{OutKind, Outgoing, Room, RoomKind};
use ring::digest::{digest, SHA256};
use serde_json::Value;
use std::fmt;

/// The alphabet of Meteor ids, which Rocket.Chat uses for `_id`.
const METEOR_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";

/// One confirmed-or-not unit of a job; `steps_done` counts these.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A text message (one part of a long text).
    Text(String),
    /// The question of an ask, with its button attachments.
    Question { text: String, attachments: Value },
    /// The upload of `item.files[index]`.
    File(usize),
}

impl Step {
    /// True for the steps posted with `chat.sendMessage` and our own `_id`.
    pub fn has_own_id(&self) -> bool {
        !matches!(self, Step::File(_))
    }
}

/// The steps of `item`, in order: the text (split above `max_size`) or the
/// question, then each file. The list only depends on the item and
/// `max_size`, so that `steps_done` means the same after a restart.
pub fn steps(item: &Outgoing, max_size: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    match &item.kind {
        OutKind::Ask { .. } => {
            let (text, attachments) = ask::question_message(item, &item.kind);
            steps.push(Step::Question { text, attachments });
        }
        OutKind::Send | OutKind::Notice { .. } if item.text.trim().is_empty() => {}
        OutKind::Send | OutKind::Notice { .. } => {
            let text = ask::with_mention(item.mention.as_deref(), &item.text);
            steps.extend(split_text(&text, max_size).into_iter().map(Step::Text));
        }
    }
    steps.extend((0..item.files.len()).map(Step::File));
    steps
}

/// The `_id` of step `step` of the job `key`: the same at every attempt and
/// after a restart, so that the server drops a second insert.
pub fn message_id(key: &str, step: u32) -> String {
    let hash = digest(&SHA256, format!("rocketchatd/{key}/{step}").as_bytes());
    hash.as_ref()
        .iter()
        .take(17)
        .map(|b| METEOR_ALPHABET[*b as usize % METEOR_ALPHABET.len()] as char)
        .collect()
}

/// Splits a text longer than `max` (in UTF-16 units, as the server counts)
/// into parts, preferably at line breaks, else at spaces, else anywhere.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut parts = Vec::new();
    let mut rest = text;
    while utf16_len(rest) > max {
        let (end, next) = cut_point(rest, max);
        let part = rest[..end].trim_end();
        if !part.is_empty() {
            parts.push(part.to_string());
        }
        rest = &rest[next..];
    }
    if !rest.trim().is_empty() || parts.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

/// Where to end the first part of `text` (byte index) and where the next
/// part starts (after the separator).
fn cut_point(text: &str, max: usize) -> (usize, usize) {
    let limit = prefix_bytes(text, max);
    let head = &text[..limit];
    // A break in the first half would make many small messages: prefer a
    // line break past the middle, then a space, then any break.
    let half = limit / 2;
    let newline = head.rfind('\n').filter(|&i| i > 0);
    let space = head.rfind([' ', '\t']).filter(|&i| i > 0);
    let at = newline
        .filter(|&i| i >= half)
        .or(space.filter(|&i| i >= half))
        .or(newline)
        .or(space);
    match at {
        Some(i) => (i, i + 1),
        None => (limit, limit),
    }
}

/// The byte length of the longest prefix of `text` within `max` UTF-16 units
/// (at least one character, so that splitting always advances).
fn prefix_bytes(text: &str, max: usize) -> usize {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return if i == 0 { c.len_utf8() } else { i };
        }
    }
    text.len()
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Where a job goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// A room the bot is already in.
    Room(Room),
    /// `@username` without a direct room yet: open it with `im.create`.
    OpenDirect(String),
}

/// Why a request's `room` names no room; the text of its `send_failed`.
#[derive(Debug, PartialEq)]
pub enum Unresolved {
    NoUsername,
    NoRoom,
    /// No room of the bot has this id or name.
    NotMember(String),
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unresolved::NoUsername => f.write_str("no username after @"),
            Unresolved::NoRoom => f.write_str("no room given"),
            Unresolved::NotMember(target) => {
                write!(f, "unknown room {target}: the bot is not a member")
            }
        }
    }
}

/// Resolves the `room` of a request: a room id, `#name` (channel or group)
/// or `@username`; a bare name is accepted too. `Err` says why not.
pub fn resolve(target: &str, rooms: &[Room]) -> Result<Target, Unresolved> {
    let target = target.trim();
    if let Some(user) = target.strip_prefix('@') {
        if user.is_empty() {
            return Err(Unresolved::NoUsername);
        }
        return Ok(direct_room(user, rooms)
            .map(|r| Target::Room(r.clone()))
            .unwrap_or_else(|| Target::OpenDirect(user.to_string())));
    }
    if target.is_empty() {
        return Err(Unresolved::NoRoom);
    }
    let by_id = || rooms.iter().find(|r| r.id == target);
    let found = match target.strip_prefix('#') {
        Some(name) => named_room(name, rooms),
        None => by_id().or_else(|| named_room(target, rooms)),
    };
    found
        .map(|r| Target::Room(r.clone()))
        .ok_or_else(|| Unresolved::NotMember(target.to_string()))
}

/// The channel or group called `name` (exact spelling first).
fn named_room<'a>(name: &str, rooms: &'a [Room]) -> Option<&'a Room> {
    let shared = || rooms.iter().filter(|r| r.kind != RoomKind::Direct);
    shared()
        .find(|r| r.name == name)
        .or_else(|| shared().find(|r| r.name.eq_ignore_ascii_case(name)))
}

/// The existing direct room with `user` (usernames compare case-insensitively).
fn direct_room<'a>(user: &str, rooms: &'a [Room]) -> Option<&'a Room> {
    let direct = || rooms.iter().filter(|r| r.kind == RoomKind::Direct);
    direct()
        .find(|r| r.users.iter().any(|u| u.eq_ignore_ascii_case(user)))
        .or_else(|| direct().find(|r| r.users.is_empty() && r.name.eq_ignore_ascii_case(user)))
}

#[cfg(test)]
mod tests;
