//! The callback's texts: its URL with the API key, and failures described for
//! logs and `status` with the key kept out.
use crate::model::Secret;
use std::io;
use ureq::http::StatusCode;

/// Appends `query` to `url`, with `?` or `&` as the URL requires.
pub(super) fn with_query(url: &str, query: &str) -> String {
    // A fragment never reaches the server: a key appended after it would be lost.
    let base = url.split('#').next().unwrap_or(url);
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{base}{sep}{query}")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Hides the secrets in `text`: the key raw, URL-encoded and in any
/// `apikey=` parameter, and the password of any `user:password@` URL. Every
/// callback URL or error shown (logs, `status`, `--check`) goes through here.
pub(super) fn redact(text: &str, key: &Secret) -> String {
    let mut out = hide_url_passwords(&hide_apikey_params(text));
    let raw = key.expose();
    if !raw.is_empty() {
        out = out.replace(raw, "***").replace(&encode(raw), "***");
    }
    out
}

fn hide_apikey_params(text: &str) -> String {
    const NAME: &str = "apikey=";
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` fit `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    while let Some(found) = lower[done..].find(NAME) {
        let start = done + found + NAME.len();
        let len = text[start..]
            .find(|c: char| c.is_whitespace() || "&#\"'<>()".contains(c))
            .unwrap_or(text.len() - start);
        out.push_str(&text[done..start]);
        out.push_str("***");
        done = start + len;
    }
    out.push_str(&text[done..]);
    out
}

/// `scheme://user:password@host` becomes `scheme://user:***@host`.
fn hide_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let (head, after) = rest.split_at(found + 3);
        out.push_str(head);
        let end = after
            .find(|c: char| c.is_whitespace() || "\"'<>".contains(c))
            .unwrap_or(after.len());
        let word = &after[..end];
        // The userinfo ends at the last `@` before the query: a password
        // with a raw `/` or `@` is still hidden whole.
        let query = word.find(['?', '#']).unwrap_or(word.len());
        let userinfo = word[..query].rfind('@').map(|at| &word[..at]);
        match userinfo.and_then(|u| u.find(':').map(|colon| (colon, u.len()))) {
            Some((colon, at)) => {
                out.push_str(&word[..=colon]);
                out.push_str("***");
                out.push_str(&word[at..]);
            }
            None => out.push_str(word),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// A short reason for a transport failure, as shown in logs and `status`.
pub(super) fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => describe_io(io),
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Rustls(tls) => describe_tls(tls),
        other => other.to_string(),
    }
}

pub(super) fn describe_tls(e: &rustls::Error) -> String {
    format!("TLS: {e} ({})", crate::tls::hint(e))
}

pub(super) fn describe_io(e: &io::Error) -> String {
    // A failed handshake comes back as an io::Error around the rustls one.
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return describe_tls(tls);
    }
    let text = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out",
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "connection reset",
        io::ErrorKind::UnexpectedEof => "connection closed before the answer",
        _ => return e.to_string(),
    };
    text.into()
}

pub(super) fn status_text(status: StatusCode) -> String {
    let mut text = format!("HTTP {}", status.as_u16());
    if let Some(reason) = status.canonical_reason() {
        text = format!("{text} {reason}");
    }
    if status.is_redirection() {
        text.push_str(" (a redirect: point --callback at the final URL)");
    }
    text
}
