//! `--check`: connect, log in, list rooms, test the callback, print a report.
use crate::config::Config;
use crate::error::Result;
use crate::jeedom::callback::{self, CallbackConfig};
use crate::model::{Room, RoomKind};
use crate::rocketchat::realtime;
use crate::state::State;
use std::time::Duration;

/// How long the Rocket.Chat part of the check may take.
const PROBE_TIME: Duration = Duration::from_secs(20);

/// Prints the report on stdout; returns 0 when everything works, 1 otherwise.
pub fn run(cfg: &Config) -> Result<i32> {
    println!("rocketchatd {} check", env!("CARGO_PKG_VERSION"));
    let tls = crate::tls::client_config(cfg.ca_file.as_deref())?;
    let rt = crate::daemon::realtime_config(cfg, &State::default(), tls.clone(), None);
    let mut ok = true;
    match realtime::probe(&rt, PROBE_TIME) {
        Ok((session, rooms)) => {
            line(
                "server",
                &format!(
                    "{} (Rocket.Chat {})",
                    cfg.server.base, session.server_version
                ),
                true,
            );
            line(
                "login",
                &format!("{} (user id {})", session.username, session.user_id),
                true,
            );
            line("rooms", &describe_rooms(&rooms), true);
        }
        Err(e) => {
            line("rocket.chat", &format!("{}: {e}", cfg.server.base), false);
            ok = false;
        }
    }
    ok &= check_callback(cfg, tls);
    println!("result: {}", if ok { "all ok" } else { "FAILED" });
    Ok(if ok { 0 } else { 1 })
}

fn check_callback(cfg: &Config, tls: std::sync::Arc<rustls::ClientConfig>) -> bool {
    let Some(raw_url) = &cfg.callback else {
        line("callback", "not set: events would only be logged", true);
        return true;
    };
    let url = callback::shown_url(raw_url, &cfg.apikey);
    if cfg.apikey.is_empty() {
        line(
            "callback",
            &format!("{url}: --apikey is needed to test it"),
            false,
        );
        return false;
    }
    let cb = CallbackConfig {
        url: raw_url.clone(),
        apikey: cfg.apikey.clone(),
        tls,
    };
    match callback::test_callback(&cb) {
        Ok(()) => line("callback", &format!("{url}: Jeedom answered OK"), true),
        Err(e) => line("callback", &format!("{url}: {e}"), false),
    }
}

fn line(what: &str, text: &str, ok: bool) -> bool {
    println!("  {:<8} {:<4} {text}", what, if ok { "ok" } else { "FAIL" });
    ok
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
