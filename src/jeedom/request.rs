//! Command-socket requests: serde shapes per action, API key check, field validation.
use crate::jeedom::options::{self, OptionsError};
use crate::model::Secret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};
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

/// The fields every request carries, read before the action's own.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope {
    apikey: Field<String>,
    action: Field<String>,
}

/// A request as it arrives, one variant per action, each with its fields.
/// Unknown fields are ignored, as Jeedom may send more than this reads.
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Wire {
    Send(SendFields),
    Ask(AskFields),
    Rooms,
    Status,
    Stop,
    #[serde(other)]
    Unknown,
}

/// The fields of a `send` as they arrive; [`SendFields::validate`] checks them.
#[derive(Deserialize, Default)]
#[serde(default)]
struct SendFields {
    room: Field<String>,
    message: Field<String>,
    mention: Field<String>,
    files: Field<Vec<String>>,
    options: Field<String>,
    thread: Field<String>,
    #[serde(rename = "ref")]
    reference: Field<Scalar>,
}

/// The fields of an `ask` as they arrive; [`AskFields::validate`] checks them.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AskFields {
    room: Field<String>,
    question: Field<String>,
    answers: Field<Answers>,
    ask_id: Field<Scalar>,
    timeout: Field<Whole>,
    mention: Field<String>,
    answers_per_line: Field<Whole>,
}

/// One field as it arrived. Serde reads its shape; what to say about a
/// missing or mistyped field is decided by the validation, field by field in
/// a fixed order, so that the reply does not depend on the order of the JSON
/// keys and keeps the documented texts (`missing field "room"`).
#[derive(Debug, Default)]
enum Field<T> {
    #[default]
    Absent,
    Null,
    Given(T),
    /// Present with a type `T` cannot be read from.
    Wrong,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => Field::Null,
            v => T::deserialize(v).map_or(Field::Wrong, Field::Given),
        })
    }
}

/// What a field's type is called in the error reply.
trait Expected {
    const EXPECTED: &'static str;
}

impl Expected for String {
    const EXPECTED: &'static str = "a string";
}

impl Expected for Vec<String> {
    const EXPECTED: &'static str = "a list of strings";
}

impl<T: Expected> Field<T> {
    /// The value; `None` when absent or null.
    fn optional(self, field: &'static str) -> Result<Option<T>, RequestError> {
        match self {
            Field::Absent | Field::Null => Ok(None),
            Field::Given(v) => Ok(Some(v)),
            Field::Wrong => Err(RequestError::WrongType {
                field,
                expected: T::EXPECTED,
            }),
        }
    }

    fn required(self, field: &'static str) -> Result<T, RequestError> {
        self.optional(field)?
            .ok_or(RequestError::MissingField(field))
    }
}

/// A string or a number (Jeedom ids are often numbers), read as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(Number),
}

impl Expected for Scalar {
    const EXPECTED: &'static str = "a string or a number";
}

impl From<Scalar> for String {
    fn from(s: Scalar) -> String {
        match s {
            Scalar::Text(t) => t,
            Scalar::Number(n) => n.to_string(),
        }
    }
}

/// The answers of an `ask`: a list, or Jeedom's `"Yes;No"` as scenarios write it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Answers {
    Joined(String),
    List(Vec<String>),
}

impl Expected for Answers {
    const EXPECTED: &'static str = "a list of strings";
}

impl From<Answers> for Vec<String> {
    fn from(a: Answers) -> Vec<String> {
        match a {
            Answers::Joined(s) => s
                .split(';')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect(),
            Answers::List(list) => list,
        }
    }
}

/// A count: a JSON number or a string of digits, as Jeedom sends either.
#[derive(Deserialize)]
#[serde(untagged)]
enum Whole {
    Number(Number),
    Text(String),
}

impl Expected for Whole {
    const EXPECTED: &'static str = "a positive whole number";
}

impl Whole {
    /// A whole number beyond u64 (a float >= 2^64, a string of 20+ digits).
    fn beyond_u64(&self) -> bool {
        match self {
            Whole::Number(n) => {
                n.as_u64().is_none()
                    && n.as_i64().is_none()
                    && n.as_f64().is_some_and(|f| f >= 1.8e19)
            }
            Whole::Text(s) => {
                let t = s.trim();
                t.len() > 19 && t.bytes().all(|b| b.is_ascii_digit())
            }
        }
    }
}

/// Parses and validates one request; the API key is checked before anything else.
pub fn parse(bytes: &[u8], apikey: &Secret) -> Result<Request, RequestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if !value.is_object() {
        return Err(RequestError::NotAnObject);
    }
    let envelope: Envelope = shape(&value)?;
    match &envelope.apikey {
        Field::Given(k) if constant_time_eq(k.as_bytes(), apikey.expose().as_bytes()) => {}
        _ => return Err(RequestError::BadApikey),
    }
    let action = envelope.action.required("action")?;
    match shape(&value)? {
        Wire::Send(fields) => fields.validate().map(Request::Send),
        Wire::Ask(fields) => fields.validate().map(Request::Ask),
        Wire::Rooms => Ok(Request::Rooms),
        Wire::Status => Ok(Request::Status),
        Wire::Stop => Ok(Request::Stop),
        Wire::Unknown => Err(RequestError::UnknownAction(
            action.chars().take(64).collect(),
        )),
    }
}

/// Reads a JSON object into one of the shapes above. Their fields take any
/// JSON value, so this fails on nothing a client can send; should it fail,
/// the client is told why rather than the daemon panicking.
fn shape<T: DeserializeOwned>(value: &Value) -> Result<T, RequestError> {
    T::deserialize(value).map_err(|e| RequestError::InvalidJson(e.to_string()))
}

/// Compares without an early exit, so timing does not reveal the key.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

impl SendFields {
    /// The fields in a fixed order: the first problem found is the reply.
    fn validate(self) -> Result<SendRequest, RequestError> {
        let mut r = SendRequest {
            room: room(self.room.required("room")?)?,
            message: self.message.optional("message")?.unwrap_or_default(),
            mention: username(self.mention.optional("mention")?),
            files: self.files.optional("files")?.unwrap_or_default(),
            thread: self.thread.optional("thread")?.filter(|t| !t.is_empty()),
            reference: self.reference.optional("ref")?.map(String::from),
            ..SendRequest::default()
        };
        if let Some(text) = self.options.optional("options")? {
            let o = options::parse(&text).map_err(RequestError::Options)?;
            r.files.extend(o.files);
            r.description = o.description;
        }
        if r.message.trim().is_empty() && r.files.is_empty() {
            return Err(RequestError::MissingField("message"));
        }
        if let Some(f) = r.files.iter().find(|f| !f.starts_with('/')) {
            return Err(RequestError::Invalid {
                field: "files",
                reason: format!("\"{f}\" is not an absolute path"),
            });
        }
        Ok(r)
    }
}

impl AskFields {
    /// The fields in a fixed order: the first problem found is the reply.
    fn validate(self) -> Result<AskRequest, RequestError> {
        let question = self.question.required("question")?;
        if question.trim().is_empty() {
            return Err(RequestError::Invalid {
                field: "question",
                reason: "is empty".into(),
            });
        }
        // Absent is an error; null, like an empty list, accepts any reply.
        let answers = match self.answers {
            Field::Absent => return Err(RequestError::MissingField("answers")),
            given => given
                .optional("answers")?
                .map(Vec::from)
                .unwrap_or_default(),
        };
        let ask_id = self.ask_id.required("ask_id")?.into();
        Ok(AskRequest {
            room: room(self.room.required("room")?)?,
            question,
            answers,
            ask_id,
            timeout_s: ask_timeout(self.timeout)?,
            mention: username(self.mention.optional("mention")?),
            answers_per_line: positive(self.answers_per_line, "answers_per_line")?
                .map(|n| n as usize),
        })
    }
}

fn room(r: String) -> Result<String, RequestError> {
    let r = r.trim().to_string();
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

fn username(u: Option<String>) -> Option<String> {
    u.map(|u| u.trim().trim_start_matches('@').to_string())
        .filter(|u| !u.is_empty())
}

/// Longest `ask` timeout, in seconds (366 days). A larger one, however large,
/// is cut to this rather than refused: Jeedom never reads the reply, so a
/// refusal would silently lose the question, and a timeout that large means
/// "until answered" anyway. (Before, 2^63 and more wrapped and the question
/// closed at once as expired.)
pub const MAX_ASK_TIMEOUT_S: u64 = 366 * 86_400;

fn ask_timeout(timeout: Field<Whole>) -> Result<u64, RequestError> {
    if matches!(&timeout, Field::Given(w) if w.beyond_u64()) {
        return Ok(MAX_ASK_TIMEOUT_S);
    }
    let t = positive(timeout, "timeout")?.unwrap_or(DEFAULT_ASK_TIMEOUT_S);
    Ok(t.min(MAX_ASK_TIMEOUT_S))
}

/// A whole number above 0; `None` when absent, null or a blank string.
fn positive(n: Field<Whole>, field: &'static str) -> Result<Option<u64>, RequestError> {
    let wrong = || RequestError::WrongType {
        field,
        expected: Whole::EXPECTED,
    };
    let n = match n.optional(field)? {
        None => return Ok(None),
        Some(Whole::Number(n)) => n.as_u64().ok_or_else(wrong)?,
        Some(Whole::Text(s)) if s.trim().is_empty() => return Ok(None),
        Some(Whole::Text(s)) => s.trim().parse::<u64>().map_err(|_| wrong())?,
    };
    if n == 0 {
        return Err(wrong());
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests;
