//! Small helpers of the fake Rocket.Chat: clock, ids, ISO dates, EJSON, Meteor errors.
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Characters of Meteor's random ids.
const ID_CHARS: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";

/// Wall clock in milliseconds since the epoch.
pub fn wall_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as u64
}

/// A random id of `len` characters in Meteor's alphabet.
pub fn random_id(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    SystemRandom::new().fill(&mut bytes).expect("random bytes");
    let n = ID_CHARS.len();
    bytes
        .iter()
        .map(|b| ID_CHARS[*b as usize % n] as char)
        .collect()
}

/// A Meteor-like 17-character id.
pub fn new_id() -> String {
    random_id(17)
}

/// Lower-case hex SHA-256 of a text (Meteor's password digest).
pub fn sha256_hex(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// EJSON date.
pub fn ejson_date(ms: u64) -> Value {
    json!({ "$date": ms })
}

/// Milliseconds of an EJSON date, a number or an ISO string.
pub fn date_ms(v: &Value) -> Option<u64> {
    match v {
        Value::Object(o) => o.get("$date").and_then(date_ms),
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => parse_iso(s),
        _ => None,
    }
}

/// Formats milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso(ms: u64) -> String {
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{milli:03}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or `+00:00`) into milliseconds.
pub fn parse_iso(s: &str) -> Option<u64> {
    let s = s.trim().trim_end_matches('Z').trim_end_matches("+00:00");
    let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
    let mut dp = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (dp.next()??, dp.next()??, dp.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut tp = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (tp.next()??, tp.next()??, tp.next().flatten().unwrap_or(0));
    let frac3: String = frac.chars().chain("000".chars()).take(3).collect();
    let milli: u64 = frac3.parse().ok()?;
    let days = days_from_civil(y, m, d);
    let secs = days.checked_mul(86400)? as u64 + hh * 3600 + mm * 60 + ss;
    Some(secs * 1000 + milli)
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Replaces every EJSON date by an ISO string (REST shape of a DDP document).
pub fn to_rest(v: &Value) -> Value {
    match v {
        Value::Object(o) if o.len() == 1 && o.contains_key("$date") => date_ms(v)
            .map(|ms| Value::String(iso(ms)))
            .unwrap_or(Value::Null),
        Value::Object(o) => {
            let m: Map<String, Value> = o.iter().map(|(k, v)| (k.clone(), to_rest(v))).collect();
            Value::Object(m)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_rest).collect()),
        other => other.clone(),
    }
}

/// A Meteor.Error as the server sends it in `result` and `nosub` frames.
pub fn meteor_error(error: impl Into<Value>, reason: &str) -> Value {
    let error: Value = error.into();
    let code = match &error {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    json!({
        "isClientSafe": true,
        "error": error,
        "reason": reason,
        "message": format!("{reason} [{code}]"),
        "errorType": "Meteor.Error",
    })
}

/// Parses `major.minor.patch` (missing parts are 0).
pub fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut it = v.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}
