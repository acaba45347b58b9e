//! Shapes of the REST calls: request bodies, multipart forms, and reading answers and errors.
use crate::error::{Error, Protocol, Refusal, Result};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The longest wait a 429 may impose, so that a server clock far ahead of
/// ours cannot stall the queue for hours.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(600);

/// Body of `chat.sendMessage`.
pub fn send_message_body(msg: &Value) -> Value {
    json!({ "message": msg })
}

/// A text message for `chat.sendMessage`, with our own `_id` and never a
/// `ts` (the server refuses a client clock more than 60 s off).
pub fn text_message(id: &str, rid: &str, text: &str, tmid: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), id.into());
    m.insert("rid".into(), rid.into());
    m.insert("msg".into(), text.into());
    if let Some(t) = tmid {
        m.insert("tmid".into(), t.into());
    }
    Value::Object(m)
}

/// Body of `rooms.mediaConfirm`: the caption and thread, both optional.
pub fn confirm_body(caption: Option<&str>, tmid: Option<&str>) -> Value {
    let mut m = Map::new();
    if let Some(c) = caption.filter(|c| !c.is_empty()) {
        m.insert("description".into(), c.into());
    }
    if let Some(t) = tmid {
        m.insert("tmid".into(), t.into());
    }
    Value::Object(m)
}

/// Text fields of a legacy `rooms.upload` form.
pub fn upload_fields<'a>(
    caption: Option<&'a str>,
    tmid: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut fields = Vec::new();
    if let Some(c) = caption.filter(|c| !c.is_empty()) {
        fields.push(("description", c));
    }
    if let Some(t) = tmid {
        fields.push(("tmid", t));
    }
    fields
}

/// The MIME type announced for a file, from its extension. The server keeps
/// it: an image, audio or video type gets a viewer or player in the chat,
/// anything else a download link.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        Some("mp3") => "audio/mpeg",
        Some("ogg" | "oga") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("m4a") => "audio/mp4",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A `multipart/form-data` body around the file's bytes: what goes before
/// them (the text fields first, as some server versions read them as the
/// file streams in, then the file part's head) and what goes after.
pub fn multipart_frame(
    boundary: &str,
    fields: &[(&str, &str)],
    file_name: &str,
    mime: &str,
) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::with_capacity(512);
    for (name, value) in fields {
        head.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n");
        head.extend_from_slice(disposition.as_bytes());
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    let file_head = format!(
        "Content-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {mime}\r\n\r\n",
        quote_file_name(file_name)
    );
    head.extend_from_slice(file_head.as_bytes());
    let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
    (head, tail)
}

/// Escapes a file name for a quoted header parameter the way browsers do.
fn quote_file_name(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Reads an answer: a 2xx JSON body, or the matching error with the server's
/// own reason. `reset` is the `X-RateLimit-Reset` header.
pub fn check_answer(what: &str, status: u16, reset: Option<&str>, body: &str) -> Result<Value> {
    if !(200..300).contains(&status) {
        return Err(status_error(what, status, reset, body));
    }
    let value: Value =
        serde_json::from_str(body).map_err(|_| Protocol::NotJson { what: what.into() })?;
    if value.get("success") == Some(&Value::Bool(false)) {
        let reason = error_reason(status, body);
        return Err(Error::Status {
            what: what.to_string(),
            status,
            refusal: refusal(&reason),
            reason,
        });
    }
    Ok(value)
}

/// The error for a non-2xx answer.
pub fn status_error(what: &str, status: u16, reset: Option<&str>, body: &str) -> Error {
    let what = what.to_string();
    let reason = error_reason(status, body);
    if status == 429 {
        let reset_ms = reset
            .and_then(|r| r.trim().parse::<f64>().ok())
            .map(|r| r as i64);
        return Error::RateLimited {
            what,
            reason,
            reset_ms,
        };
    }
    Error::Status {
        what,
        status,
        refusal: refusal(&reason),
        reason,
    }
}

/// What a refusal's text says that a caller acts on.
pub fn refusal(reason: &str) -> Refusal {
    if is_invalid_file(reason) {
        Refusal::FileExpired
    } else if is_duplicate_id(reason) {
        Refusal::DuplicateId
    } else {
        Refusal::Other
    }
}

/// The server's error text: `error`, `message` or `reason` of a JSON body,
/// else a short plain-text body, else the status' usual name (an HTML page
/// from a proxy says nothing useful in a log line).
pub fn error_reason(status: u16, body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let text = ["error", "message", "reason"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()));
        if let Some(t) = text {
            return t.to_string();
        }
    }
    let body = body.trim();
    if !body.is_empty() && body.len() <= 200 && !body.contains('<') && !body.starts_with('{') {
        return body.to_string();
    }
    status_name(status).to_string()
}

fn status_name(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "HTTP error",
    }
}

/// True when `chat.sendMessage` refused an `_id` that is already posted.
fn is_duplicate_id(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    ["duplicate", "already exist", "already-exist", "e11000"]
        .iter()
        .any(|p| r.contains(p))
}

/// The message of a `chat.getMessage` answer when it is `msg` as posted by
/// `user_id`: same `_id`, same room, same author (an `_id` found elsewhere
/// is not our message, and the 400 stands).
pub fn posted_copy(answer: &Value, msg: &Value, user_id: &str) -> Option<Value> {
    let found = answer.get("message").filter(|m| m.is_object())?;
    let same = |k: &str| found.get(k).is_some_and(|v| Some(v) == msg.get(k));
    let author = found
        .get("u")
        .and_then(|u| u.get("_id"))
        .and_then(Value::as_str);
    (same("_id") && same("rid") && author == Some(user_id)).then(|| found.clone())
}

/// How long a 429 asks to wait, from its reset time and the current time
/// (both Unix ms); at least 1 s, at most [`MAX_RATE_LIMIT_WAIT`].
pub fn rate_limit_wait(reset_ms: i64, now_ms: i64) -> Duration {
    let ms = reset_ms.saturating_sub(now_ms).max(1000);
    Duration::from_millis(ms as u64).min(MAX_RATE_LIMIT_WAIT)
}

/// The version in a `GET /api/info` answer (`version`, or `info.version` on
/// old servers).
pub fn info_version(answer: &Value) -> Option<String> {
    answer
        .get("version")
        .or_else(|| answer.get("info").and_then(|i| i.get("version")))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `Some(true)` when `version` is at least `major.minor`; `None` when it
/// cannot be read ("unknown", empty).
pub fn version_at_least(version: &str, major: u32, minor: u32) -> Option<bool> {
    let mut parts = version.trim().split(['.', '-']).map(|p| p.parse::<u32>());
    let maj = parts.next()?.ok()?;
    let min = parts.next().and_then(|m| m.ok()).unwrap_or(0);
    Some((maj, min) >= (major, minor))
}

/// The room id in an `im.create` answer (`room.rid`, or `room._id`).
pub fn im_room_id(answer: &Value) -> Option<String> {
    let room = answer.get("room")?;
    room.get("rid")
        .or_else(|| room.get("_id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The uploaded file's id in a `rooms.media` answer.
pub fn media_file_id(answer: &Value) -> Option<String> {
    answer
        .get("file")
        .and_then(|f| f.get("_id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// How many of a room's latest messages are searched for a file message
/// whose confirmation answer was lost (the send queue is sequential, so it
/// is among the last few unless the room is very busy).
pub const FILE_LOOKUP_COUNT: usize = 50;

/// In a history answer (`{"messages":[...]}`), the message of `user_id`
/// carrying the uploaded file `file_id` (in `file` or `files`).
pub fn file_message(answer: &Value, file_id: &str, user_id: &str) -> Option<Value> {
    let has_file = |m: &Value| {
        let id_is = |f: &Value| f.get("_id").and_then(Value::as_str) == Some(file_id);
        m.get("file").is_some_and(id_is)
            || m.get("files")
                .and_then(Value::as_array)
                .is_some_and(|fs| fs.iter().any(id_is))
    };
    let by_user = |m: &Value| {
        m.get("u")
            .and_then(|u| u.get("_id"))
            .and_then(Value::as_str)
            == Some(user_id)
    };
    answer
        .get("messages")?
        .as_array()?
        .iter()
        .find(|m| by_user(m) && has_file(m))
        .cloned()
}

/// True when `rooms.mediaConfirm` no longer knows the file (a temporary
/// upload expires after 24 h): upload it again.
fn is_invalid_file(reason: &str) -> bool {
    reason.contains("invalid-file")
}

/// `Message_MaxAllowedSize` in a `settings.public` answer.
pub fn max_message_size(answer: &Value) -> Option<usize> {
    let settings = answer.get("settings")?.as_array()?;
    let setting = settings
        .iter()
        .find(|s| s.get("_id").and_then(Value::as_str) == Some("Message_MaxAllowedSize"))?;
    let v = setting.get("value")?;
    let n = v
        .as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    usize::try_from(n).ok().filter(|&n| n > 0)
}

/// How many settings a `settings.public` page holds, and the total the
/// server has (if it says).
pub fn settings_page(answer: &Value) -> (usize, Option<usize>) {
    let got = answer
        .get("settings")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let total = answer.get("total").and_then(Value::as_u64);
    (got, total.and_then(|t| usize::try_from(t).ok()))
}

#[cfg(test)]
mod tests;
