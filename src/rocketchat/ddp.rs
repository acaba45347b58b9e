//! Meteor DDP frames as Rocket.Chat speaks them, without any socket.
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// DDP protocol version the daemon speaks (the only one Rocket.Chat serves).
pub const DDP_VERSION: &str = "1";

/// A frame the client sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "msg", rename_all = "lowercase")]
pub enum ClientFrame {
    Connect {
        version: String,
        support: Vec<String>,
    },
    Ping {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    Method {
        id: String,
        method: String,
        params: Vec<Value>,
    },
    Sub {
        id: String,
        name: String,
        params: Vec<Value>,
    },
}

impl ClientFrame {
    /// The opening `connect` frame.
    pub fn connect() -> ClientFrame {
        ClientFrame::Connect {
            version: DDP_VERSION.into(),
            support: vec![DDP_VERSION.into()],
        }
    }

    /// The JSON text sent on the websocket.
    pub fn to_text(&self) -> String {
        // Serializing plain strings and JSON values cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The `error` object of a `result` or `nosub` frame (a Meteor.Error).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DdpError {
    /// Machine code: a string (`totp-required`) or an HTTP-like number (403).
    #[serde(default)]
    pub error: Value,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
}

impl DdpError {
    /// The error code as text (`"403"`, `"totp-required"`).
    pub fn code(&self) -> String {
        match &self.error {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// How long the DDP rate limiter asks to wait, when this is its
    /// `too-many-requests` refusal (Meteor's ddp-server puts the time in
    /// `details.timeToReset`, ms; 10 s, the default window, when it does not).
    pub fn rate_limit_wait(&self) -> Option<std::time::Duration> {
        if self.code() != "too-many-requests" {
            return None;
        }
        let ms = self
            .details
            .as_ref()
            .and_then(|d| d.get("timeToReset"))
            .and_then(Value::as_f64)
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map_or(10_000, |ms| ms.min(600_000.0) as u64);
        Some(std::time::Duration::from_millis(ms))
    }

    /// The most readable text the server gave.
    pub fn text(&self) -> String {
        self.reason
            .clone()
            .or_else(|| self.message.clone())
            .unwrap_or_else(|| self.code())
    }
}

/// A frame the server sends. Unknown `msg` values map to `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    Connected {
        session: Option<String>,
    },
    Failed {
        version: Option<String>,
    },
    Ping {
        id: Option<String>,
    },
    Pong {
        id: Option<String>,
    },
    Result {
        id: String,
        result: Option<Value>,
        error: Option<DdpError>,
    },
    Updated {
        methods: Vec<String>,
    },
    Ready {
        subs: Vec<String>,
    },
    Nosub {
        id: String,
        error: Option<DdpError>,
    },
    Added {
        collection: String,
        id: String,
        fields: Option<Value>,
    },
    Changed {
        collection: String,
        id: String,
        fields: Option<Value>,
    },
    Removed {
        collection: String,
        id: String,
    },
    Error {
        reason: Option<String>,
    },
    Other,
}

/// Parses one text frame. `Ok(None)` for frames without `msg` (the
/// `{"server_id":"0"}` greeting), which DDP says to ignore.
///
/// One pass over the text into [`Wire`]: a `Value` first and the tagged enum
/// from it built the frame's tree three times (the `Value`, serde's buffered
/// copy for the tag, then `fields`), the realtime thread's largest cost per
/// message.
pub fn parse_frame(text: &str) -> Result<Option<ServerFrame>, serde_json::Error> {
    let w: Wire = serde_json::from_str(text)?;
    let Some(msg) = w.msg.as_deref() else {
        return Ok(None);
    };
    Ok(Some(match msg {
        "connected" => ServerFrame::Connected { session: w.session },
        "failed" => ServerFrame::Failed { version: w.version },
        "ping" => ServerFrame::Ping { id: w.id },
        "pong" => ServerFrame::Pong { id: w.id },
        "result" => ServerFrame::Result {
            id: required(w.id, "id")?,
            result: w.result,
            error: w.error,
        },
        "updated" => ServerFrame::Updated { methods: w.methods },
        "ready" => ServerFrame::Ready { subs: w.subs },
        "nosub" => ServerFrame::Nosub {
            id: required(w.id, "id")?,
            error: w.error,
        },
        "added" | "changed" => {
            let (collection, id) = (required(w.collection, "collection")?, required(w.id, "id")?);
            let fields = w.fields;
            match msg {
                "added" => ServerFrame::Added {
                    collection,
                    id,
                    fields,
                },
                _ => ServerFrame::Changed {
                    collection,
                    id,
                    fields,
                },
            }
        }
        "removed" => ServerFrame::Removed {
            collection: required(w.collection, "collection")?,
            id: required(w.id, "id")?,
        },
        "error" => ServerFrame::Error { reason: w.reason },
        _ => ServerFrame::Other,
    }))
}

/// Every field a server frame may carry, read in one pass; [`parse_frame`]
/// picks those of its `msg`.
#[derive(Deserialize)]
struct Wire {
    msg: Option<String>,
    id: Option<String>,
    session: Option<String>,
    version: Option<String>,
    result: Option<Value>,
    error: Option<DdpError>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    subs: Vec<String>,
    collection: Option<String>,
    fields: Option<Value>,
    reason: Option<String>,
}

fn required(v: Option<String>, field: &'static str) -> Result<String, serde_json::Error> {
    v.ok_or_else(|| serde::de::Error::missing_field(field))
}

/// Hands out method and subscription ids, unique for one connection.
#[derive(Debug, Default)]
pub struct Ids(u64);

impl Ids {
    pub fn next_id(&mut self) -> String {
        self.0 += 1;
        self.0.to_string()
    }

    /// A `method` frame with a fresh id.
    pub fn method(&mut self, method: &str, params: Vec<Value>) -> ClientFrame {
        ClientFrame::Method {
            id: self.next_id(),
            method: method.into(),
            params,
        }
    }

    /// A `sub` frame with a fresh id.
    pub fn sub(&mut self, name: &str, params: Vec<Value>) -> ClientFrame {
        ClientFrame::Sub {
            id: self.next_id(),
            name: name.into(),
            params,
        }
    }
}

/// The id of a `method` or `sub` frame.
pub fn frame_id(frame: &ClientFrame) -> Option<&str> {
    match frame {
        ClientFrame::Method { id, .. } | ClientFrame::Sub { id, .. } => Some(id),
        _ => None,
    }
}

/// Lower-case hex SHA-256, the password digest Meteor's `login` expects.
pub fn sha256_hex(text: &str) -> String {
    let d = digest(&SHA256, text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in d.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `login` parameter for a password; an `@` means the user gave an e-mail.
pub fn login_password(user: &str, password: &str) -> Value {
    let user = if user.contains('@') {
        json!({ "email": user })
    } else {
        json!({ "username": user })
    };
    json!({
        "user": user,
        "password": { "digest": sha256_hex(password), "algorithm": "sha-256" },
    })
}

/// `login` parameter for a resume token (also a personal access token).
pub fn login_resume(token: &str) -> Value {
    json!({ "resume": token })
}

/// Reads a date as milliseconds since the epoch: EJSON `{"$date": ms}`, a
/// bare number, or an ISO 8601 / RFC 3339 string (REST answers use those).
pub fn date_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Object(o) => o.get("$date").and_then(date_ms),
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => parse_rfc3339_ms(s),
        _ => None,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` into epoch milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let sep_ok = b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-');
    if !sep_ok || !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let (frac_ms, rest) = fraction_ms(&b[19..]);
    let offset_s = utc_offset_s(rest)?;
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_s) * 1000) + frac_ms)
}

/// Splits `.123456...` into milliseconds and the rest of the text.
fn fraction_ms(b: &[u8]) -> (i64, &[u8]) {
    let Some(rest) = b.strip_prefix(b".") else {
        return (0, b);
    };
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut ms = 0;
    for i in 0..3 {
        ms = ms * 10
            + rest
                .get(i)
                .filter(|_| i < digits)
                .map_or(0, |c| i64::from(c - b'0'));
    }
    (ms, &rest[digits..])
}

fn utc_offset_s(b: &[u8]) -> Option<i64> {
    match b {
        b"" | b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let secs = (digit(h1)? * 10 + digit(h2)?) * 3600 + (digit(m1)? * 10 + digit(m2)?) * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Keys whose values are secrets wherever they appear in a frame.
const SECRET_KEYS: &[&str] = &[
    "password",
    "digest",
    "resume",
    "token",
    "authToken",
    "hashedToken",
    "X-Auth-Token",
];

/// The frame text made safe for a debug log: login parameters, resume
/// tokens and the token of a login result are replaced by `***`.
pub fn redacted(frame_text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(frame_text) else {
        return redact_opaque(frame_text);
    };
    let is_login = value.get("method").and_then(Value::as_str) == Some("login");
    if is_login {
        if let Some(params) = value.get_mut("params") {
            *params = json!(["***"]);
        }
    }
    redact_value(&mut value);
    value.to_string()
}

/// A frame that is not JSON is shown only when it cannot carry a secret.
fn redact_opaque(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let risky = ["token", "password", "digest", "resume"];
    if risky.iter().any(|w| lower.contains(w)) {
        format!("<{} bytes, not JSON, hidden>", text.len())
    } else {
        text.to_string()
    }
}

fn redact_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k)) && !val.is_null() {
                    *val = Value::String("***".into());
                } else {
                    redact_value(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
