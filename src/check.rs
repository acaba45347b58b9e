//! `--check`: connect, log in, list rooms, test the callback, print a report.
use crate::config::{Config, Credentials};
use crate::error::{Error, Result};
use crate::jeedom::callback::{self, CallbackConfig};
use crate::model::{Room, RoomKind, Session};
use crate::rocketchat::realtime::{self, Progress};
use crate::state::State;
use std::time::Duration;

/// How long the Rocket.Chat part of the check may take.
const PROBE_TIME: Duration = Duration::from_secs(20);

/// Prints the report on stdout; returns 0 when everything works, 1 otherwise.
pub fn run(cfg: &Config) -> Result<i32> {
    let tls = crate::tls::client_config(cfg.ca_file.as_deref())?;
    println!("rocketchatd {} check", env!("CARGO_PKG_VERSION"));
    let rt = crate::daemon::realtime_config(cfg, &State::default(), tls.clone(), None);
    let mut ok = check_server(cfg, realtime::probe(&rt, PROBE_TIME));
    ok &= check_callback(cfg, tls);
    println!("result: {}", if ok { "all ok" } else { "FAILED" });
    Ok(if ok { 0 } else { 1 })
}

/// The server, login and rooms lines, each with its own mark.
fn check_server(
    cfg: &Config,
    probe: std::result::Result<(Session, Vec<Room>), (Progress, Error)>,
) -> bool {
    let base = &cfg.server.base;
    let (session, rooms) = match probe {
        Ok(found) => found,
        Err((step, e)) => return report_failure(cfg, step, &e),
    };
    let version = format!("{base} (Rocket.Chat {})", session.server_version);
    line("server", &version, Mark::Ok);
    let who = format!("{} (user id {})", session.username, session.user_id);
    line("login", &who, Mark::Ok);
    line("rooms", &describe_rooms(&rooms), Mark::Ok)
}

/// The steps before the failed one are ok, those after it were not tried.
fn report_failure(cfg: &Config, step: Progress, e: &Error) -> bool {
    let base = &cfg.server.base;
    let login = match &cfg.credentials {
        Credentials::Password { user, .. } => user.clone(),
        Credentials::Token { user_id, .. } => format!("user id {user_id} (token)"),
    };
    match step {
        Progress::Connect => {
            line("server", &format!("{base}: {}", e.chain()), Mark::Fail);
            line(
                "login",
                "not tried: no connection to the server",
                Mark::Skipped,
            );
        }
        Progress::Login => {
            let answered = format!("{base} (answered; its version is read after a login)");
            line("server", &answered, Mark::Ok);
            line("login", &format!("{login}: {}", e.chain()), Mark::Fail);
        }
        Progress::Rooms => {
            line("server", base, Mark::Ok);
            line("login", &login, Mark::Ok);
            line("rooms", &e.chain().to_string(), Mark::Fail);
            return false;
        }
    }
    line("rooms", "not tried: they need a login", Mark::Skipped);
    false
}

fn check_callback(cfg: &Config, tls: std::sync::Arc<rustls::ClientConfig>) -> bool {
    let Some(raw_url) = &cfg.callback else {
        line("callback", "not set: events would only be logged", Mark::Ok);
        return true;
    };
    let url = callback::shown_url(raw_url, &cfg.apikey);
    if cfg.apikey.is_empty() {
        line(
            "callback",
            &format!("{url}: --apikey is needed to test it"),
            Mark::Fail,
        );
        return false;
    }
    let cb = CallbackConfig {
        url: raw_url.clone(),
        apikey: cfg.apikey.clone(),
        tls,
    };
    match callback::test_callback(&cb) {
        Ok(()) => line("callback", &format!("{url}: Jeedom answered OK"), Mark::Ok),
        Err(e) => line("callback", &format!("{url}: {e}"), Mark::Fail),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Ok,
    Fail,
    Skipped,
}

fn line(what: &str, text: &str, mark: Mark) -> bool {
    let shown = match mark {
        Mark::Ok => "ok",
        Mark::Fail => "FAIL",
        Mark::Skipped => "--",
    };
    println!("  {what:<8} {shown:<4} {text}");
    mark != Mark::Fail
}

fn describe_rooms(rooms: &[Room]) -> String {
    if rooms.is_empty() {
        return "none: invite the bot into a channel or send it a direct message".into();
    }
    let names: Vec<String> = rooms
        .iter()
        .map(|r| match r.kind {
            RoomKind::Direct => format!("@{}", r.name),
            RoomKind::Channel => format!("#{}", r.name),
            RoomKind::Group => format!("#{} (private)", r.name),
        })
        .collect();
    format!("{}: {}", rooms.len(), names.join(", "))
}
