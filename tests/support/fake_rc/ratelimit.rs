//! The DDP rate limiter of the fake Rocket.Chat, on by default, with the real server's default rules.
//!
//! Modelled on apps/meteor/app/lib/server/startup/rateLimiter.js (the rules and
//! their settings, defaults in apps/meteor/server/settings/rate.ts, all enabled:
//! `DDP_Rate_Limit_Connection_By_Method` 10 calls / 10 s, `DDP_Rate_Limit_User_By_Method`
//! 20 / 10 s, `stream-*` names getting the same rules with calls AND interval
//! times 4; `DDP_Rate_Limit_Connection` 600 / 60 s and `DDP_Rate_Limit_User`
//! 1200 / 60 s over every method and subscription together; the IP rule, which
//! skips 127.0.0.1, is left out) and on packages/ddp-rate-limit/src/index.ts with @rocket.chat/rate-limit:
//! each rule counts per key (connection or user, type, name) in a fixed window that
//! restarts for the whole rule once its interval has passed; a call is refused when
//! its count in the window exceeds the allowance. Meteor's ddp-server then answers
//! `Meteor.Error('too-many-requests', DDPRateLimiter.getErrorMessage(r), {timeToReset})`.
//! Bots are not exempt (the rules only skip `broadcastAuth` connections).
use super::util::meteor_error;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One rule: its allowance, window and counters.
struct Rule {
    allowed: u32,
    interval: Duration,
    window_start: Instant,
    counters: HashMap<String, u32>,
}

impl Rule {
    fn new(allowed: u32, interval: Duration) -> Rule {
        Rule {
            allowed,
            interval,
            window_start: Instant::now(),
            counters: HashMap::new(),
        }
    }

    /// Counts one call; `Some(ms to reset)` when it is over the allowance.
    fn hit(&mut self, key: String, now: Instant) -> Option<u64> {
        if now.duration_since(self.window_start) > self.interval {
            self.counters.clear();
            self.window_start = now;
        }
        let n = self.counters.entry(key).or_insert(0);
        *n += 1;
        let left = self
            .interval
            .saturating_sub(now.duration_since(self.window_start));
        (*n > self.allowed).then(|| left.as_millis().max(1) as u64)
    }
}

/// Which calls a rule counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    /// Each method or subscription on its own, `stream-*` left out.
    EachPlain,
    /// Each `stream-*` subscription on its own.
    EachStream,
    /// Every call together (the `DDP_Rate_Limit_Connection` and `_User` rules).
    All,
}

/// The six default rules: by connection and by user, per plain name, per
/// `stream-*` name, and over all calls.
pub struct RateLimiter {
    rules: Vec<(bool, Names, Rule)>,
}

/// Calls per window of the connection rule (settings default).
pub const CONNECTION_CALLS: u32 = 10;
/// Calls per window of the user rule (settings default).
pub const USER_CALLS: u32 = 20;
/// Window of both rules (settings default).
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Factor of the `stream-*` rules (calls and interval).
const STREAM_FACTOR: u32 = 4;
/// Calls per window of a connection over all names (settings default).
const CONNECTION_ALL_CALLS: u32 = 600;
/// Calls per window of a user over all names (settings default).
const USER_ALL_CALLS: u32 = 1200;
/// Window of the rules over all names (settings default).
const ALL_INTERVAL: Duration = Duration::from_secs(60);

impl Default for RateLimiter {
    fn default() -> Self {
        let mut rules = Vec::new();
        for names in [Names::EachPlain, Names::EachStream] {
            let f = if names == Names::EachStream {
                STREAM_FACTOR
            } else {
                1
            };
            let r = |calls: u32| Rule::new(calls * f, INTERVAL * f);
            rules.push((false, names, r(CONNECTION_CALLS)));
            rules.push((true, names, r(USER_CALLS)));
        }
        let all = |calls: u32| Rule::new(calls, ALL_INTERVAL);
        rules.push((false, Names::All, all(CONNECTION_ALL_CALLS)));
        rules.push((true, Names::All, all(USER_ALL_CALLS)));
        RateLimiter { rules }
    }
}

impl RateLimiter {
    /// Counts a method call or subscription; the `too-many-requests` error when refused.
    pub fn check(&mut self, kind: &str, name: &str, cid: u64, uid: Option<&str>) -> Option<Value> {
        let now = Instant::now();
        let each = match name.starts_with("stream-") {
            true => Names::EachStream,
            false => Names::EachPlain,
        };
        let mut refused: Option<u64> = None;
        for (by_user, names, rule) in &mut self.rules {
            if *names != each && *names != Names::All {
                continue;
            }
            // The user rules only match logged-in callers (`userId != null`).
            let who = match (*by_user, uid) {
                (false, _) => format!("c{cid}"),
                (true, Some(u)) => format!("u{u}"),
                (true, None) => continue,
            };
            let key = match names {
                Names::All => who,
                _ => format!("{who}/{kind}/{name}"),
            };
            if let Some(ms) = rule.hit(key, now) {
                refused = Some(refused.map_or(ms, |r| r.max(ms)));
            }
        }
        refused.map(too_many_requests)
    }
}

/// The error of a refused call, as Meteor's ddp-server builds it
/// (`DDPRateLimiter.getErrorMessage` in packages/ddp-rate-limit/src/index.ts).
pub fn too_many_requests(time_to_reset_ms: u64) -> Value {
    let secs = time_to_reset_ms.div_ceil(1000);
    let reason = format!(
        "Error, too many requests. Please slow down. You must wait {secs} seconds before trying again."
    );
    let mut e = meteor_error("too-many-requests", &reason);
    e["details"] = json!({ "timeToReset": time_to_reset_ms });
    e
}
