//! Rocket.Chat REST client: send messages, open direct rooms, upload files, list rooms.
use super::rest_shapes as shapes;
use crate::backoff::random_id;
use crate::config::ServerUrl;
use crate::error::{Error, Protocol, Refusal, Result};
use crate::model::{Room, RoomKind, Session, SpooledFile};
use log::debug;
use rustls::ClientConfig;
use serde_json::{json, Value};
use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use ureq::http::Response;
use ureq::{Agent, Body, RequestBuilder, SendBody};

mod settings;

/// Longest a plain call may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Longest an upload of a small file may take; larger ones get 1 s more
/// per 64 KiB (a 50 MiB video over a 512 kbit/s uplink still fits), so
/// that a big file on a slow link is not retried for ever.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);
const UPLOAD_BYTES_PER_S: u64 = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's default `Message_MaxAllowedSize`.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 5000;

/// A REST client for one server; clones share the connection pool and cache.
#[derive(Clone)]
pub struct Rest {
    agent: Agent,
    base: String,
    cache: Arc<Mutex<Cache>>,
}

/// What the server told us once and will not change while we run.
#[derive(Default)]
struct Cache {
    version: Option<String>,
    max_message_size: Option<usize>,
    /// Which upload API worked last (true: `rooms.upload`).
    legacy_upload: Option<bool>,
}

impl fmt::Debug for Rest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rest").field("base", &self.base).finish()
    }
}

impl Rest {
    /// A client for `server`, verifying TLS with `tls` (webpki roots plus `--ca-file`).
    pub fn new(server: &ServerUrl, tls: Arc<ClientConfig>) -> Result<Rest> {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // The server closes an idle keep-alive connection after 5 s
            // (Node.js `keepAliveTimeout`): reusing one it is closing would
            // cost a spurious failure and a retry.
            .max_idle_age(std::time::Duration::from_secs(4))
            .user_agent(concat!("rocketchatd/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Rest {
            agent: crate::http_tls::agent(config, tls),
            base: server.base.clone(),
            cache: Arc::default(),
        })
    }

    /// Aborts the calls in flight on every clone (they fail at once with a
    /// transport error) and refuses new ones: for a stop within a second
    /// while an upload is running. Set the shutdown flag first, so that the
    /// send worker drops the aborted job instead of reporting a retry.
    pub fn shutdown(&self) {
        self.agent.clone().shutdown();
    }

    /// `POST /api/v1/chat.sendMessage {"message": msg}`: the posted message.
    /// A retry of an `_id` the server already holds (after a lost answer or
    /// a restart) is refused in several ways across versions: `200` without
    /// `message`, a duplicate-key 400, and on current servers a 400 crash
    /// (`Cannot read properties of undefined (reading 'starred')`). A 400
    /// is therefore checked with `chat.getMessage` before it counts: when
    /// the bot's message is there, in this room, it is posted.
    pub fn send_message(&self, s: &Session, msg: &Value) -> Result<Value> {
        let body = shapes::send_message_body(msg);
        let url = "/api/v1/chat.sendMessage";
        match self.post_json("chat.sendMessage", url, s, &body) {
            Ok(answer) => match answer.get("message").filter(|m| m.is_object()) {
                Some(m) => Ok(m.clone()),
                None => {
                    debug!("chat.sendMessage: {} was already posted", msg["_id"]);
                    Ok(msg.clone())
                }
            },
            Err(Error::Status {
                status: 400,
                refusal: Refusal::DuplicateId,
                ..
            }) => {
                debug!("chat.sendMessage: {} was already posted", msg["_id"]);
                Ok(msg.clone())
            }
            Err(e @ Error::Status { status: 400, .. }) => match self.posted_copy(s, msg)? {
                Some(m) => {
                    debug!("chat.sendMessage: {e}, but {} is posted", msg["_id"]);
                    Ok(m)
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// The bot's message `msg["_id"]` in `msg["rid"]` if the server holds it
    /// (`GET chat.getMessage`); `None` when it does not (a 400 or 404: an
    /// unknown id, a room the bot left). Other errors are for a retry: a
    /// posted message must not end in `send_failed` for want of a lookup.
    fn posted_copy(&self, s: &Session, msg: &Value) -> Result<Option<Value>> {
        let Some(id) = msg.get("_id").and_then(Value::as_str) else {
            return Ok(None);
        };
        let path = format!("/api/v1/chat.getMessage?msgId={}", segment(id));
        let req = authed(self.agent.get(self.url(&path)), s);
        match finish("chat.getMessage", req.call()) {
            Ok(answer) => Ok(shapes::posted_copy(&answer, msg, &s.user_id)),
            Err(Error::Status {
                status: 400 | 404, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens (or finds) the direct room with `username`: its room id.
    pub fn im_create(&self, s: &Session, username: &str) -> Result<String> {
        let body = json!({ "username": username });
        let answer = self.post_json("im.create", "/api/v1/im.create", s, &body)?;
        shapes::im_room_id(&answer).ok_or_else(|| missing("im.create", "room id"))
    }

    /// Uploads a spooled file into `rid` with its caption: `rooms.media` then
    /// `rooms.mediaConfirm` on servers that have them (6.10 and newer),
    /// `rooms.upload` on older ones; a 404 tries the other API. Answers the
    /// file's message (`null` when an old server does not return it).
    /// `uploaded` gets the file id once `rooms.media` took the file, so that
    /// a failed confirmation can be checked and retried without a second
    /// upload (see [`Rest::find_file_message`], [`Rest::confirm_upload`]).
    pub fn upload(
        &self,
        s: &Session,
        rid: &str,
        file: &SpooledFile,
        caption: Option<&str>,
        tmid: Option<&str>,
        uploaded: &mut Option<String>,
    ) -> Result<Value> {
        let up = Upload {
            rid,
            file,
            caption,
            tmid,
        };
        let legacy = self.legacy_upload_first(s);
        let result = match self.upload_with(legacy, s, &up, uploaded) {
            Err(Error::Status { status: 404, .. }) if uploaded.is_none() => {
                debug!("upload: no {} here, trying the other API", api_name(legacy));
                return self
                    .upload_with(!legacy, s, &up, uploaded)
                    .inspect(|_| self.remember(!legacy));
            }
            other => other,
        };
        result.inspect(|_| self.remember(legacy))
    }

    fn upload_with(
        &self,
        legacy: bool,
        s: &Session,
        up: &Upload,
        uploaded: &mut Option<String>,
    ) -> Result<Value> {
        if legacy {
            self.upload_legacy(s, up)
        } else {
            self.upload_media(s, up, uploaded)
        }
    }

    fn upload_media(
        &self,
        s: &Session,
        up: &Upload,
        uploaded: &mut Option<String>,
    ) -> Result<Value> {
        let path = format!("/api/v1/rooms.media/{}", segment(up.rid));
        let answer = self.post_form("rooms.media", &path, s, up, &[])?;
        let file_id =
            shapes::media_file_id(&answer).ok_or_else(|| missing("rooms.media", "file id"))?;
        *uploaded = Some(file_id.clone());
        self.confirm_upload(s, up.rid, &file_id, up.caption, up.tmid)
    }

    /// `rooms.mediaConfirm`: posts the message of a file already taken by
    /// `rooms.media`. Not idempotent: the server posts a message at each
    /// call, so after a lost answer check [`Rest::find_file_message`] first.
    pub fn confirm_upload(
        &self,
        s: &Session,
        rid: &str,
        file_id: &str,
        caption: Option<&str>,
        tmid: Option<&str>,
    ) -> Result<Value> {
        let path = format!(
            "/api/v1/rooms.mediaConfirm/{}/{}",
            segment(rid),
            segment(file_id)
        );
        let body = shapes::confirm_body(caption, tmid);
        let answer = self.post_json("rooms.mediaConfirm", &path, s, &body)?;
        Ok(answer.get("message").cloned().unwrap_or(Value::Null))
    }

    /// The bot's message carrying the uploaded file `file_id` among the
    /// latest messages of `room` (`channels|groups|dm.history`), if the
    /// server posted it.
    pub fn find_file_message(
        &self,
        s: &Session,
        room: &Room,
        file_id: &str,
    ) -> Result<Option<Value>> {
        let endpoint = match room.kind {
            RoomKind::Channel => "channels.history",
            RoomKind::Group => "groups.history",
            RoomKind::Direct => "dm.history",
        };
        let url = self.url(&format!(
            "/api/v1/{endpoint}?roomId={}&count={}&showThreadMessages=true",
            segment(&room.id),
            shapes::FILE_LOOKUP_COUNT
        ));
        let answer = finish(endpoint, authed(self.agent.get(url), s).call())?;
        Ok(shapes::file_message(&answer, file_id, &s.user_id))
    }

    fn upload_legacy(&self, s: &Session, up: &Upload) -> Result<Value> {
        let path = format!("/api/v1/rooms.upload/{}", segment(up.rid));
        let fields = shapes::upload_fields(up.caption, up.tmid);
        let answer = self.post_form("rooms.upload", &path, s, up, &fields)?;
        Ok(answer.get("message").cloned().unwrap_or(Value::Null))
    }

    /// True when `rooms.upload` should be tried first: it worked last time,
    /// or the server is older than 6.10. Unknown versions try `rooms.media`.
    fn legacy_upload_first(&self, s: &Session) -> bool {
        if let Some(legacy) = self.cache().legacy_upload {
            return legacy;
        }
        let known = shapes::version_at_least(&s.server_version, 6, 10);
        let at_least = known.or_else(|| {
            let v = self.version(Some(s)).ok()?;
            shapes::version_at_least(&v, 6, 10)
        });
        at_least == Some(false)
    }

    fn remember(&self, legacy: bool) {
        self.cache().legacy_upload = Some(legacy);
    }

    /// The server version from `GET /api/info`; `"unknown"` when the server
    /// does not say (404, or no `version` field as on recent servers for
    /// anonymous callers). Cached once known.
    pub(crate) fn version(&self, s: Option<&Session>) -> Result<String> {
        if let Some(v) = self.cache().version.clone() {
            return Ok(v);
        }
        let mut req = self.agent.get(self.url("/api/info"));
        if let Some(s) = s {
            req = authed(req, s);
        }
        let v = match finish("info", req.call()) {
            Ok(answer) => shapes::info_version(&answer).unwrap_or_else(|| "unknown".into()),
            Err(Error::Status { status: 404, .. }) => "unknown".into(),
            Err(e) => return Err(e),
        };
        self.cache().version = Some(v.clone());
        Ok(v)
    }

    fn post_json(&self, what: &str, path: &str, s: &Session, body: &Value) -> Result<Value> {
        let req = authed(self.agent.post(self.url(path)), s);
        let sent = req.content_type("application/json").send(body.to_string());
        finish(what, sent)
    }

    /// Streams the form from the spooled file to the socket: memory stays
    /// flat whatever the file's size. ureq sends a reader chunked unless a
    /// `Content-Length` is set, which it then keeps (ureq 3 README,
    /// "Overriding"); some proxies refuse chunked uploads, so the length is
    /// always given.
    fn post_form(
        &self,
        what: &str,
        path: &str,
        s: &Session,
        up: &Upload,
        fields: &[(&str, &str)],
    ) -> Result<Value> {
        let boundary = format!("----rocketchatd{}", random_id());
        let mime = shapes::content_type(&up.file.name);
        let (head, tail) = shapes::multipart_frame(&boundary, fields, &up.file.name, mime);
        let (file, size) = open_spooled(up.file)?;
        let length = head.len() as u64 + size + tail.len() as u64;
        let body = Cursor::new(head)
            .chain(file.take(size))
            .chain(Cursor::new(tail));
        let req = authed(self.agent.post(self.url(path)), s)
            .config()
            .timeout_global(Some(upload_timeout(length)))
            .build()
            .header("Content-Length", length.to_string())
            .content_type(format!("multipart/form-data; boundary={boundary}"));
        finish(what, req.send(SendBody::from_owned_reader(body)))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds plain values: one left by a panicking thread is still valid.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One file being uploaded, read from the spool as it is sent.
struct Upload<'a> {
    rid: &'a str,
    file: &'a SpooledFile,
    caption: Option<&'a str>,
    tmid: Option<&'a str>,
}

/// Opens a spooled copy with its size. A copy missing, or not of the size
/// copied, was lost in a power cut: an I/O error, final, that fails the
/// request naming the file rather than posting it empty or cut.
fn open_spooled(f: &SpooledFile) -> Result<(File, u64)> {
    let spooled = |e| Error::io(format!("spooled file {}", f.path), e);
    let file = File::open(&f.path).map_err(spooled)?;
    let size = file.metadata().map_err(spooled)?.len();
    match f.size {
        Some(copied) if copied != size => Err(spooled(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{size} bytes on disk, {copied} were copied (lost in a crash)"),
        ))),
        _ => Ok((file, size)),
    }
}

fn upload_timeout(bytes: u64) -> Duration {
    UPLOAD_TIMEOUT + Duration::from_secs(bytes / UPLOAD_BYTES_PER_S)
}

fn api_name(legacy: bool) -> &'static str {
    if legacy {
        "rooms.upload"
    } else {
        "rooms.media"
    }
}

/// Adds the session's credentials. ureq redacts these headers in its own logs.
fn authed<B>(req: RequestBuilder<B>, s: &Session) -> RequestBuilder<B> {
    req.header("X-User-Id", &s.user_id)
        .header("X-Auth-Token", s.token.expose())
}

/// Reads an answer (any status) into the JSON body or the matching error.
pub(crate) fn finish(
    what: &str,
    sent: std::result::Result<Response<Body>, ureq::Error>,
) -> Result<Value> {
    let http = |source: ureq::Error| Error::Http {
        what: what.to_string(),
        source: Box::new(source),
    };
    let mut resp = sent.map_err(http)?;
    let status = resp.status().as_u16();
    let reset = resp
        .headers()
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.body_mut().read_to_vec().map_err(http)?;
    let body = String::from_utf8_lossy(&body);
    shapes::check_answer(what, status, reset.as_deref(), &body)
}

/// An answer of `what` without the `field` the call needs.
fn missing(what: &str, field: &'static str) -> Error {
    Protocol::Missing {
        what: what.to_string(),
        field,
    }
    .into()
}

/// Percent-encodes a path segment (room ids are alphanumeric, but a room
/// given by hand is not to be trusted into a URL).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How long a 429 answer asks to wait; `None` for other errors and for a
/// 429 without `X-RateLimit-Reset` (then back off as usual).
pub fn retry_after(e: &Error) -> Option<Duration> {
    let Error::RateLimited {
        reset_ms: Some(reset),
        ..
    } = e
    else {
        return None;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Some(shapes::rate_limit_wait(*reset, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_uploads_get_more_time() {
        assert_eq!(upload_timeout(300_000), Duration::from_secs(124));
        assert_eq!(upload_timeout(50 << 20), Duration::from_secs(120 + 800));
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("GENERAL"), "GENERAL");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn retry_after_only_for_a_known_reset() {
        let soon = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 30_000;
        let e = Error::RateLimited {
            what: "x".into(),
            reason: "slow down".into(),
            reset_ms: Some(soon),
        };
        let d = retry_after(&e).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        let e = Error::RateLimited {
            what: "x".into(),
            reason: "slow down".into(),
            reset_ms: None,
        };
        assert_eq!(retry_after(&e), None);
        let e = Error::Protocol(Protocol::CallLost);
        assert_eq!(retry_after(&e), None);
    }

    #[test]
    fn client_builds_for_http_and_https() {
        let tls = crate::tls::client_config(None).unwrap();
        for url in ["http://127.0.0.1:3000", "https://chat.example.org/rc"] {
            let server = crate::config::parse_url(url).unwrap();
            let rest = Rest::new(&server, tls.clone()).unwrap();
            assert_eq!(rest.url("/api/info"), format!("{url}/api/info"));
        }
    }
}
