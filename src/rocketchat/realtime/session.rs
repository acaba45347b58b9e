//! Opening a session: DDP connect, login, subscriptions, username and version.
use super::http;
use super::inbox::Inbox;
use super::link::{Link, Opening};
use super::Halt;
use super::RealtimeConfig;
use crate::config::Credentials;
use crate::error::{Error, Protocol};
use crate::model::{Room, Secret, Session};
use crate::rocketchat::ddp::{self, ClientFrame, DdpError, ServerFrame};
use crate::rocketchat::message;
use log::{debug, info};
use rustls::ClientConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for the TCP connection and for the TLS/websocket handshake.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The token the thread resumes with: the user id and token of the last
/// login, kept across reconnections.
pub(super) type Resume = Option<(String, Secret)>;

/// How far [`open`] got: `--check` reports the step that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// TCP, TLS, the websocket and DDP handshakes.
    Connect,
    Login,
    /// Subscriptions, the username and the server version.
    Rooms,
}

/// A logged-in, subscribed link.
pub(super) struct Opened<'a> {
    pub link: Link<'a>,
    pub session: Session,
    pub rooms: Vec<Room>,
}

/// Connects, logs in and subscribes; `timeout` bounds each server answer.
/// `progress` says how far it got.
pub(super) fn open<'a>(
    cfg: &RealtimeConfig,
    resume: &mut Resume,
    (inbox, shutdown): (&'a Inbox, &Arc<AtomicBool>),
    timeout: Duration,
    progress: &mut Progress,
) -> Result<Opened<'a>, Halt> {
    info!("connecting to {}", cfg.server.websocket);
    let opening = Opening {
        tls: cfg.tls.clone(),
        timeout: timeout.min(CONNECT_TIMEOUT),
        heartbeat: cfg.heartbeat,
        shutdown: shutdown.clone(),
        inbox,
    };
    let mut link = Link::open(&cfg.server, opening)?;
    match setup(&mut link, cfg, (resume, progress), timeout) {
        Ok((session, rooms)) => Ok(Opened {
            link,
            session,
            rooms,
        }),
        Err(e) => {
            link.close();
            Err(e)
        }
    }
}

fn setup(
    link: &mut Link,
    cfg: &RealtimeConfig,
    (resume, progress): (&mut Resume, &mut Progress),
    timeout: Duration,
) -> Result<(Session, Vec<Room>), Halt> {
    ddp_connect(link, timeout)?;
    *progress = Progress::Login;
    let (user_id, token) = login(link, cfg, resume, timeout)?;
    *progress = Progress::Rooms;
    let raw_rooms = subscribe(link, &user_id, timeout)?;
    let username = username(link, cfg, &user_id, &token)?;
    let (base, tls, uid, tok) = rest_args(cfg, &user_id, &token);
    let server_version =
        link.interruptible(move || http::server_version(&base, &tls, (&uid, &tok)))?;
    let rooms = message::parse_rooms(&raw_rooms, &username);
    let session = Session {
        user_id,
        username,
        token,
        server_version,
    };
    Ok((session, rooms))
}

fn ddp_connect(link: &mut Link, timeout: Duration) -> Result<(), Halt> {
    link.send(&ClientFrame::connect())?;
    link.wait_for("the DDP connected frame", timeout, |f| match f {
        ServerFrame::Connected { .. } => Some(Ok(())),
        ServerFrame::Failed { version } => Some(Err(Protocol::DdpVersion {
            ours: ddp::DDP_VERSION,
            offered: version.clone(),
        }
        .into())),
        _ => None,
    })?
}

/// Calls a method and waits for its result: the outer error is the link's,
/// the inner one the server's answer. A refusal of the DDP rate limiter is
/// waited out and the call made again (while the wait fits in `timeout`).
pub(super) fn call(
    link: &mut Link,
    method: &str,
    params: Vec<Value>,
    timeout: Duration,
) -> Result<Result<Value, DdpError>, Halt> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = call_once(link, method, params.clone(), left)?;
        let wait = answer.as_ref().err().and_then(DdpError::rate_limit_wait);
        match wait {
            Some(d) if Instant::now() + d < deadline => {
                info!(
                    "Rocket.Chat's rate limiter refused {method}: calling again in {} ms",
                    d.as_millis()
                );
                link.pause(d)?;
            }
            _ => return Ok(answer),
        }
    }
}

fn call_once(
    link: &mut Link,
    method: &str,
    params: Vec<Value>,
    timeout: Duration,
) -> Result<Result<Value, DdpError>, Halt> {
    let id = link.request(|ids| ids.method(method, params))?;
    link.wait_for(&format!("the answer to {method}"), timeout, |f| match f {
        ServerFrame::Result {
            id: rid,
            result,
            error,
        } if *rid == id => Some(match error {
            Some(e) => Err(e.clone()),
            None => Ok(result.clone().unwrap_or(Value::Null)),
        }),
        _ => None,
    })
}

/// Logs in with the resume token when there is one, else (or when it is
/// refused) with the password; a personal access token is a resume token.
fn login(
    link: &mut Link,
    cfg: &RealtimeConfig,
    resume: &mut Resume,
    timeout: Duration,
) -> Result<(String, Secret), Halt> {
    let (user, password) = match &cfg.credentials {
        Credentials::Token { token, .. } => {
            let answer = login_call(link, ddp::login_resume(token.expose()), timeout)?;
            return Ok(answer
                .map_err(|e| token_refused(&e))
                .and_then(login_result)?);
        }
        Credentials::Password { user, password } => (user, password),
    };
    if let Some(pair) = try_resume(link, resume, timeout)? {
        return Ok(pair);
    }
    let answer = login_call(link, ddp::login_password(user, password.expose()), timeout)?;
    let pair = answer.map_err(|e| login_error(&e)).and_then(login_result);
    Ok(remember(resume, pair)?)
}

fn login_call(
    link: &mut Link,
    param: Value,
    timeout: Duration,
) -> Result<Result<Value, DdpError>, Halt> {
    call(link, "login", vec![param], timeout)
}

/// Logs in with the saved token; a refusal just means the password is next.
fn try_resume(
    link: &mut Link,
    resume: &mut Resume,
    timeout: Duration,
) -> Result<Option<(String, Secret)>, Halt> {
    let Some((_, token)) = resume.clone() else {
        return Ok(None);
    };
    match login_call(link, ddp::login_resume(token.expose()), timeout)? {
        Ok(v) => Ok(remember(resume, login_result(v)).map(Some)?),
        Err(e) => {
            info!(
                "the saved session was refused ({}): logging in with the password",
                e.text()
            );
            *resume = None;
            Ok(None)
        }
    }
}

fn remember(
    resume: &mut Resume,
    r: Result<(String, Secret), Error>,
) -> Result<(String, Secret), Error> {
    if let Ok(pair) = &r {
        *resume = Some(pair.clone());
    }
    r
}

/// `{id, token, tokenExpires}`.
fn login_result(v: Value) -> Result<(String, Secret), Error> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    match (s("id"), s("token")) {
        (Some(id), Some(token)) => Ok((id.to_string(), Secret::new(token))),
        _ => Err(Protocol::NoLoginToken.into()),
    }
}

/// A refused password login, in the admin's terms. Recent servers answer
/// "User not found" for a wrong password too, so as not to reveal which.
pub(super) fn login_error(e: &DdpError) -> Error {
    let code = e.code();
    match e.reason.as_deref() {
        _ if code == "totp-required" => Error::TotpRequired {
            method: e
                .details
                .as_ref()
                .and_then(|d| d.get("method"))
                .and_then(Value::as_str)
                .unwrap_or("totp")
                .to_string(),
        },
        Some("Incorrect password") => Error::Login {
            reason: "incorrect password".into(),
        },
        Some("User not found") => Error::Login {
            reason: "unknown user or incorrect password (the server does not say which)".into(),
        },
        _ if code.starts_with("error-login-blocked") => Error::Login {
            reason: format!(
                "{} (too many failed attempts; the server refuses logins for a while)",
                e.text()
            ),
        },
        _ => Error::Login { reason: e.text() },
    }
}

fn token_refused(e: &DdpError) -> Error {
    Error::Login {
        reason: format!("personal access token refused ({})", e.text()),
    }
}

/// Asks for the rooms and subscribes to messages and room changes; returns
/// the raw `rooms/get` answer once every subscription is ready. A refusal of
/// the DDP rate limiter is waited out and the request made again.
fn subscribe(link: &mut Link, user_id: &str, timeout: Duration) -> Result<Value, Halt> {
    let mut rooms_id = link.request(|ids| ids.method("rooms/get", vec![]))?;
    let mut waiting: Waiting = HashMap::new();
    let mut wanted = vec![vec![json!("__my_messages__"), json!(false)]];
    for event in ["rooms-changed", "subscriptions-changed"] {
        wanted.push(vec![json!(format!("{user_id}/{event}")), json!(false)]);
    }
    for params in wanted {
        sub(link, &mut waiting, params)?;
    }
    let mut deadline = Instant::now() + timeout;
    let mut rooms = None;
    while rooms.is_none() || !waiting.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let step = link.wait_for("the room list and subscriptions", left, |f| match f {
            ServerFrame::Result { id, result, error } if *id == rooms_id => {
                Some(Step::Rooms(result.clone(), error.clone()))
            }
            ServerFrame::Ready { subs } => Some(Step::Ready(subs.clone())),
            ServerFrame::Nosub { id, error } if waiting.contains_key(id) => {
                Some(Step::Refused(id.clone(), error.clone().unwrap_or_default()))
            }
            _ => None,
        })?;
        // The deadline is the server's to answer in: waiting out its rate
        // limiter (a `stream-*` refusal may ask for up to 40 s) does not count.
        let handled = Instant::now();
        match step {
            Step::Rooms(_, Some(e)) if e.rate_limit_wait().is_some() => {
                link.pause(e.rate_limit_wait().unwrap_or_default())?;
                rooms_id = link.request(|ids| ids.method("rooms/get", vec![]))?;
            }
            Step::Rooms(result, error) => rooms = Some(rooms_answer(&result, &error)?),
            Step::Ready(subs) => waiting.retain(|s, _| !subs.contains(s)),
            Step::Refused(id, e) => sub_again(link, &mut waiting, &id, &e)?,
        }
        deadline += handled.elapsed();
    }
    Ok(rooms.unwrap_or(Value::Null))
}

/// Subscriptions sent and not ready yet: their ids and parameters.
type Waiting = HashMap<String, Vec<Value>>;

fn sub(link: &mut Link, waiting: &mut Waiting, params: Vec<Value>) -> Result<(), Halt> {
    let name = sub_name(&params);
    let id = link.request(|ids| ids.sub(name, params.clone()))?;
    waiting.insert(id, params);
    Ok(())
}

/// A refused subscription: subscribed again once the rate limiter allows,
/// any other refusal ends the session.
fn sub_again(link: &mut Link, waiting: &mut Waiting, id: &str, e: &DdpError) -> Result<(), Halt> {
    let Some(wait) = e.rate_limit_wait() else {
        let reason = e.text();
        return Err(Protocol::SubscriptionRefused { reason }.into());
    };
    let params = waiting.remove(id).unwrap_or_default();
    link.pause(wait)?;
    sub(link, waiting, params)
}

/// The stream of a subscription, told by its first parameter.
fn sub_name(params: &[Value]) -> &'static str {
    match params.first().and_then(Value::as_str) {
        Some("__my_messages__") => "stream-room-messages",
        _ => "stream-notify-user",
    }
}

enum Step {
    Rooms(Option<Value>, Option<DdpError>),
    Ready(Vec<String>),
    Refused(String, DdpError),
}

fn rooms_answer(result: &Option<Value>, error: &Option<DdpError>) -> Result<Value, Halt> {
    match error {
        Some(e) => Err(Protocol::RoomsRefused { reason: e.text() }.into()),
        None => Ok(result.clone().unwrap_or(Value::Null)),
    }
}

/// The bot's username: from the `users` document the server publishes to a
/// logged-in client, else the login name, else `GET /api/v1/me`.
fn username(
    link: &Link,
    cfg: &RealtimeConfig,
    user_id: &str,
    token: &Secret,
) -> Result<String, Halt> {
    let published = link.backlog.iter().find_map(|f| match f {
        ServerFrame::Added {
            collection,
            id,
            fields: Some(fields),
        } if collection == "users" && id == user_id => fields.get("username")?.as_str(),
        _ => None,
    });
    if let Some(name) = published {
        debug!("username {name} published by the server");
        return Ok(name.to_string());
    }
    if let Credentials::Password { user, .. } = &cfg.credentials {
        if !user.contains('@') {
            return Ok(user.clone());
        }
    }
    let (base, tls, uid, tok) = rest_args(cfg, user_id, token);
    Ok(link.interruptible(move || http::my_username(&base, &tls, (&uid, &tok)))??)
}

/// Owned copies of what a REST call needs, for its own thread.
fn rest_args(
    cfg: &RealtimeConfig,
    user_id: &str,
    token: &Secret,
) -> (String, Arc<ClientConfig>, String, Secret) {
    (
        cfg.server.base.clone(),
        cfg.tls.clone(),
        user_id.to_string(),
        token.clone(),
    )
}
