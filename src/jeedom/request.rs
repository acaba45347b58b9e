//! Command-socket requests: JSON parsing, API key check and field validation.
use crate::jeedom::options::{self, OptionsError};
use crate::model::Secret;
use serde_json::{Map, Value};
use std::fmt;

/// Default `ask` timeout, as in Jeedom.
pub const DEFAULT_ASK_TIMEOUT_S: u64 = 300;

/// A validated request.
#[derive(Debug, PartialEq)]
pub enum Request {
    Send(SendRequest),
    Ask(AskRequest),
    Rooms,
    Status,
    Stop,
}

/// Fields of a `send`.
#[derive(Debug, PartialEq, Default)]
pub struct SendRequest {
    pub room: String,
    pub message: String,
    pub mention: Option<String>,
    /// Absolute paths from `files` and the options' `file=`.
    pub files: Vec<String>,
    pub description: Option<String>,
    pub thread: Option<String>,
    pub reference: Option<String>,
}

/// Fields of an `ask`.
#[derive(Debug, PartialEq, Default)]
pub struct AskRequest {
    pub room: String,
    pub question: String,
    pub answers: Vec<String>,
    pub ask_id: String,
    pub timeout_s: u64,
    pub mention: Option<String>,
    pub answers_per_line: Option<usize>,
}

/// Why a request was refused; the text goes back to the client.
#[derive(Debug, PartialEq)]
pub enum RequestError {
    InvalidJson(String),
    NotAnObject,
    BadApikey,
    MissingField(&'static str),
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    UnknownAction(String),
    Invalid {
        field: &'static str,
        reason: String,
    },
    Options(OptionsError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidJson(e) => write!(f, "invalid JSON: {e}"),
            RequestError::NotAnObject => f.write_str("the request must be a JSON object"),
            RequestError::BadApikey => f.write_str("bad apikey"),
            RequestError::MissingField(name) => write!(f, "missing field \"{name}\""),
            RequestError::WrongType { field, expected } => {
                write!(f, "field \"{field}\" must be {expected}")
            }
            RequestError::UnknownAction(a) => {
                write!(f, "unknown action \"{a}\" (send, ask, rooms, status, stop)")
            }
            RequestError::Invalid { field, reason } => write!(f, "field \"{field}\": {reason}"),
            RequestError::Options(e) => write!(f, "field \"options\": {e}"),
        }
    }
}

/// Parses and validates one request; the API key is checked before anything else.
pub fn parse(bytes: &[u8], apikey: &Secret) -> Result<Request, RequestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let obj = value.as_object().ok_or(RequestError::NotAnObject)?;
    match obj.get("apikey").and_then(Value::as_str) {
        Some(k) if constant_time_eq(k.as_bytes(), apikey.expose().as_bytes()) => {}
        _ => return Err(RequestError::BadApikey),
    }
    match string(obj, "action")?.as_str() {
        "send" => send(obj).map(Request::Send),
        "ask" => ask(obj).map(Request::Ask),
        "rooms" => Ok(Request::Rooms),
        "status" => Ok(Request::Status),
        "stop" => Ok(Request::Stop),
        other => Err(RequestError::UnknownAction(
            other.chars().take(64).collect(),
        )),
    }
}

/// Compares without an early exit, so timing does not reveal the key.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

fn send(obj: &Map<String, Value>) -> Result<SendRequest, RequestError> {
    let mut r = SendRequest {
        room: room(obj)?,
        message: opt_string(obj, "message")?.unwrap_or_default(),
        mention: username(obj, "mention")?,
        files: string_list(obj, "files")?,
        thread: opt_string(obj, "thread")?.filter(|t| !t.is_empty()),
        reference: opt_scalar(obj, "ref")?,
        ..SendRequest::default()
    };
    if let Some(text) = opt_string(obj, "options")? {
        let o = options::parse(&text).map_err(RequestError::Options)?;
        r.files.extend(o.files);
        r.description = o.description;
    }
    if r.message.trim().is_empty() && r.files.is_empty() {
        return Err(RequestError::MissingField("message"));
    }
    for f in &r.files {
        if !f.starts_with('/') {
            return Err(RequestError::Invalid {
                field: "files",
                reason: format!("\"{f}\" is not an absolute path"),
            });
        }
    }
    Ok(r)
}

fn ask(obj: &Map<String, Value>) -> Result<AskRequest, RequestError> {
    let question = string(obj, "question")?;
    if question.trim().is_empty() {
        return Err(RequestError::Invalid {
            field: "question",
            reason: "is empty".into(),
        });
    }
    let answers = match obj.get("answers") {
        None => return Err(RequestError::MissingField("answers")),
        // Jeedom writes answers as "Yes;No" in scenarios.
        Some(Value::String(s)) => s
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect(),
        Some(_) => string_list(obj, "answers")?,
    };
    let ask_id = opt_scalar(obj, "ask_id")?.ok_or(RequestError::MissingField("ask_id"))?;
    Ok(AskRequest {
        room: room(obj)?,
        question,
        answers,
        ask_id,
        timeout_s: ask_timeout(obj)?,
        mention: username(obj, "mention")?,
        answers_per_line: positive(obj, "answers_per_line")?.map(|n| n as usize),
    })
}

fn room(obj: &Map<String, Value>) -> Result<String, RequestError> {
    let r = string(obj, "room")?.trim().to_string();
    let bare = r.trim_start_matches(['#', '@']);
    // A discussion is known by its title, which may hold spaces (`#Front
    // door`); no other blank (a line break never belongs in a room).
    let spaced_ok = r.starts_with('#');
    let bad = |c: char| (c.is_whitespace() && !(spaced_ok && c == ' ')) || c.is_control();
    if bare.is_empty() || bare.contains(bad) {
        return Err(RequestError::Invalid {
            field: "room",
            reason: format!("\"{r}\" is not a room id, #name or @username"),
        });
    }
    Ok(r)
}

fn username(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, RequestError> {
    Ok(opt_string(obj, field)?
        .map(|u| u.trim().trim_start_matches('@').to_string())
        .filter(|u| !u.is_empty()))
}

fn string(obj: &Map<String, Value>, field: &'static str) -> Result<String, RequestError> {
    opt_string(obj, field)?.ok_or(RequestError::MissingField(field))
}

fn opt_string(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, RequestError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(RequestError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// A string or a number (Jeedom ids are often numbers), as a string.
fn opt_scalar(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, RequestError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(RequestError::WrongType {
            field,
            expected: "a string or a number",
        }),
    }
}

fn string_list(obj: &Map<String, Value>, field: &'static str) -> Result<Vec<String>, RequestError> {
    let wrong = RequestError::WrongType {
        field,
        expected: "a list of strings",
    };
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from).ok_or(()))
            .collect::<Result<_, _>>()
            .map_err(|_| wrong),
        Some(_) => Err(wrong),
    }
}

/// Longest `ask` timeout, in seconds (366 days). A larger one, however large,
/// is cut to this rather than refused: Jeedom never reads the reply, so a
/// refusal would silently lose the question, and a timeout that large means
/// "until answered" anyway. (Before, 2^63 and more wrapped and the question
/// closed at once as expired.)
pub const MAX_ASK_TIMEOUT_S: u64 = 366 * 86_400;

fn ask_timeout(obj: &Map<String, Value>) -> Result<u64, RequestError> {
    // Whole numbers beyond u64 (a float >= 2^64, a string of 20+ digits).
    let beyond_u64 = match obj.get("timeout") {
        Some(Value::Number(n)) => {
            n.as_u64().is_none() && n.as_i64().is_none() && n.as_f64().is_some_and(|f| f >= 1.8e19)
        }
        Some(Value::String(s)) => {
            let t = s.trim();
            t.len() > 19 && t.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    };
    if beyond_u64 {
        return Ok(MAX_ASK_TIMEOUT_S);
    }
    let t = positive(obj, "timeout")?.unwrap_or(DEFAULT_ASK_TIMEOUT_S);
    Ok(t.min(MAX_ASK_TIMEOUT_S))
}

fn positive(obj: &Map<String, Value>, field: &'static str) -> Result<Option<u64>, RequestError> {
    let wrong = || RequestError::WrongType {
        field,
        expected: "a positive whole number",
    };
    let n = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(wrong)?,
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| wrong())?,
        Some(_) => return Err(wrong()),
    };
    if n == 0 {
        return Err(wrong());
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests;
