//! The catch-up's REST reads: a room's messages since a time, through `*.history`.
//!
//! `channels.history`, `groups.history` and `im.history` exist on every
//! Rocket.Chat from 3.x to 9.0, where the DDP method `loadMissedMessages`
//! does not (it is deprecated for removal in 9.0). They answer newest first,
//! between `oldest` and `latest` (both included with `inclusive=true`), at
//! most `count` (the server caps it at `API_Upper_Count_Limit`, 100 by
//! default) from `offset` (apps/meteor/app/api/server/v1/channels.ts,
//! apps/meteor/app/lib/server/methods/getChannelHistory.ts: `sort: {ts: -1}`,
//! `skip: offset`, `limit: count`); thread replies only with
//! `showThreadMessages=true`.
use crate::bridge::clock::{now_ms, rfc3339};
use crate::error::{Error, Protocol};
use crate::model::{Room, RoomKind, Secret};
use crate::rocketchat::ddp::date_ms;
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
    ///
    /// Each page ends where the one before it did (`latest` is the time of
    /// its oldest message, `offset` skips the messages of that time already
    /// read): messages posted meanwhile are newer than every bound, so the
    /// pages do not shift (by `offset` alone a flood pushed the messages
    /// read into the next page, and those in between were missed).
    pub fn since(&self, room: &Room, oldest_ms: i64, most: usize) -> Result<Vec<Value>, Error> {
        let mut all: Vec<Value> = Vec::new();
        let mut bound = Bound {
            latest_ms: now_ms() + LATEST_AHEAD_MS,
            skip: 0,
        };
        loop {
            let page = self.page(room, oldest_ms, &bound)?;
            let full = page.len() >= PAGE;
            all.extend(page);
            if !full || all.len() >= most {
                return Ok(all);
            }
            bound = Bound::after(&all, bound);
        }
    }

    fn page(&self, room: &Room, oldest_ms: i64, bound: &Bound) -> Result<Vec<Value>, Error> {
        let ep = endpoint(room.kind);
        let what = format!("GET /api/v1/{ep} ({})", room.name);
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(HTTP_TIMEOUT))
            .http_status_as_error(false)
            .build();
        let agent = crate::http_tls::agent(config, self.tls.clone());
        // Both bounds included: `oldest` one ms later keeps the message of
        // the watermark itself out (Jeedom has it, or the first run starts
        // after it), and messages sharing the time of a page's end are read.
        let sent = agent
            .get(format!("{}/api/v1/{ep}", self.base))
            .query("roomId", &room.id)
            .query("oldest", rfc3339(oldest_ms.saturating_add(1)))
            .query("latest", rfc3339(bound.latest_ms))
            .query("inclusive", "true")
            // Without it the routes leave thread replies out (they pass
            // `showThreadMessages === 'true'` on): missed for good.
            .query("showThreadMessages", "true")
            .query("count", PAGE.to_string())
            .query("offset", bound.skip.to_string())
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

/// Where the next page of a history read starts.
#[derive(Debug, PartialEq)]
struct Bound {
    latest_ms: i64,
    /// Messages stamped `latest_ms` already read (listed first again).
    skip: usize,
}

impl Bound {
    /// After the pages read so far (newest first): at the oldest time read.
    fn after(read: &[Value], last: Bound) -> Bound {
        let times: Vec<i64> = read
            .iter()
            .filter_map(|m| m.get("ts").and_then(date_ms))
            .collect();
        let Some(&oldest) = times.iter().min() else {
            // Nothing dated: the next page by count, as before.
            return Bound {
                latest_ms: last.latest_ms,
                skip: read.len(),
            };
        };
        Bound {
            latest_ms: oldest,
            skip: times.iter().filter(|t| **t == oldest).count(),
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
    fn a_page_starts_at_the_oldest_time_read_past_the_messages_of_that_time() {
        let m = |ts: i64| serde_json::json!({"_id": ts.to_string(), "ts": rfc3339(ts)});
        let read = [m(50), m(40), m(30), m(30)];
        let first = Bound {
            latest_ms: 99,
            skip: 0,
        };
        let next = Bound::after(&read, first);
        assert_eq!(
            next,
            Bound {
                latest_ms: 30,
                skip: 2
            }
        );
        let undated = [serde_json::json!({"_id": "x"})];
        assert_eq!(Bound::after(&undated, next).skip, 1);
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
