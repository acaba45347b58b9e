//! The catch-up's REST reads: a room's messages since a time, through `*.history`.
//!
//! `channels.history`, `groups.history` and `im.history` exist on every
//! Rocket.Chat from 3.x to 9.0, where the DDP method `loadMissedMessages`
//! does not (it is deprecated for removal in 9.0). They answer newest first,
//! strictly after `oldest`, at most `count` (the server caps it at
//! `API_Upper_Count_Limit`, 100 by default) from `offset`.
use crate::bridge::clock::{now_ms, rfc3339};
use crate::error::{Error, Protocol};
use crate::model::{Room, RoomKind, Secret};
use rustls::ClientConfig;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Messages per page (the server's default upper limit).
const PAGE: usize = 100;
/// How far ahead of this clock `latest` asks: without it the server lists
/// messages up to its own now only (`getChannelHistory`), and one stamped
/// ahead of that (another instance's clock, a clock stepped back) would be
/// missed for good.
const LATEST_AHEAD_MS: i64 = 366 * 24 * 3600 * 1000;
/// Whole-request limit of one page.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// What a history read needs: the server and the bot's REST identity.
#[derive(Clone)]
pub(super) struct History {
    pub base: String,
    pub tls: Arc<ClientConfig>,
    pub user_id: String,
    pub token: Secret,
}

/// The endpoint of a room kind.
pub(super) fn endpoint(kind: RoomKind) -> &'static str {
    match kind {
        RoomKind::Channel => "channels.history",
        RoomKind::Group => "groups.history",
        RoomKind::Direct => "im.history",
    }
}

impl History {
    /// The messages of `room` after `oldest_ms`, newest first, at most
    /// `most` of them (more pages while pages come full).
    pub fn since(&self, room: &Room, oldest_ms: i64, most: usize) -> Result<Vec<Value>, Error> {
        let mut all = Vec::new();
        loop {
            let page = self.page(room, oldest_ms, all.len())?;
            let full = page.len() >= PAGE;
            all.extend(page);
            // Messages posted meanwhile shift the pages: a few come twice
            // (the catch-up drops repeats by id), none is skipped.
            if !full || all.len() >= most {
                return Ok(all);
            }
        }
    }

    fn page(&self, room: &Room, oldest_ms: i64, offset: usize) -> Result<Vec<Value>, Error> {
        let ep = endpoint(room.kind);
        let what = format!("GET /api/v1/{ep} ({})", room.name);
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(HTTP_TIMEOUT))
            .http_status_as_error(false)
            .build();
        let agent = crate::http_tls::agent(config, self.tls.clone());
        let sent = agent
            .get(format!("{}/api/v1/{ep}", self.base))
            .query("roomId", &room.id)
            .query("oldest", rfc3339(oldest_ms))
            .query("latest", rfc3339(now_ms() + LATEST_AHEAD_MS))
            .query("count", PAGE.to_string())
            .query("offset", offset.to_string())
            .header("X-User-Id", &self.user_id)
            .header("X-Auth-Token", self.token.expose())
            .call();
        // A page of 100 messages fits well within ureq's 10 MB body limit.
        let answer = crate::rocketchat::rest::finish(&what, sent)?;
        match answer.get("messages") {
            Some(Value::Array(list)) => Ok(list.clone()),
            _ => Err(Protocol::Missing {
                what,
                field: "messages",
            }
            .into()),
        }
    }
}

/// Whether a failed read is worth trying again, and after how long:
/// `None` for a refusal that will not change (the bot may not read the room).
pub(super) fn retry_wait(e: &Error, backoff: Duration) -> Option<Duration> {
    match e {
        Error::RateLimited { .. } => {
            Some(crate::rocketchat::rest::retry_after(e).unwrap_or(backoff))
        }
        // 401: the session ends with the link, which stops the catch-up.
        Error::Status { status, .. } if (400..500).contains(status) && *status != 401 => None,
        _ => Some(backoff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_endpoint() {
        assert_eq!(endpoint(RoomKind::Channel), "channels.history");
        assert_eq!(endpoint(RoomKind::Group), "groups.history");
        assert_eq!(endpoint(RoomKind::Direct), "im.history");
    }

    #[test]
    fn rate_limits_and_outages_are_retried_refusals_are_not() {
        let b = Duration::from_secs(2);
        let soon = crate::bridge::clock::now_ms() + 5_000;
        let limited = Error::RateLimited {
            what: "x".into(),
            reason: "slow down".into(),
            reset_ms: Some(soon),
        };
        let w = retry_wait(&limited, b).unwrap();
        assert!(
            w > Duration::from_secs(3) && w <= Duration::from_secs(5),
            "{w:?}"
        );
        let status = |status| Error::Status {
            what: "x".into(),
            status,
            reason: "r".into(),
            refusal: crate::error::Refusal::Other,
        };
        assert_eq!(retry_wait(&status(503), b), Some(b));
        assert_eq!(retry_wait(&status(401), b), Some(b));
        assert_eq!(retry_wait(&status(400), b), None);
        assert_eq!(retry_wait(&status(403), b), None);
        assert_eq!(retry_wait(&Error::Protocol(Protocol::CallLost), b), Some(b));
    }
}
