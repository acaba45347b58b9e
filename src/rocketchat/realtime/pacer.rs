//! Keeps the daemon's DDP calls under the server's rate limiter, and waits out its refusals.
//!
//! Rocket.Chat's default DDP rate limiter (DDP_Rate_Limit_Connection_By_Method)
//! allows 10 calls of one method per connection in a 10 s window, bots
//! included; the 11th gets `too-many-requests` with `details.timeToReset`.
//! The pacer lets at most [`CALLS`] calls of a method leave in any [`WINDOW`]
//! (a sliding window a little longer than the server's fixed one, so that
//! transit jitter cannot squeeze 11 into one of its windows), and holds a
//! method back for as long as the server said after a refusal.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Most calls of one method in a [`WINDOW`].
pub(super) const CALLS: usize = 10;
/// The server's 10 s window, plus a margin for transit jitter.
pub(super) const WINDOW: Duration = Duration::from_millis(11_000);
/// Margin added to the server's `timeToReset`.
const RESET_MARGIN: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
pub(super) struct Pacer {
    /// When the last calls of each method left, oldest first.
    sent: HashMap<String, VecDeque<Instant>>,
    /// Methods refused by the server, and until when.
    blocked: HashMap<String, Instant>,
}

impl Pacer {
    /// When a call of `method` may leave: `None` for now.
    pub fn ready_at(&self, method: &str, now: Instant) -> Option<Instant> {
        let blocked = self.blocked.get(method).copied().filter(|t| *t > now);
        let full = self
            .sent
            .get(method)
            .filter(|q| q.len() >= CALLS)
            .and_then(|q| q.get(q.len() - CALLS))
            .map(|t| *t + WINDOW)
            .filter(|t| *t > now);
        blocked.into_iter().chain(full).max()
    }

    /// A call of `method` left now.
    pub fn sent(&mut self, method: &str, now: Instant) {
        let q = self.sent.entry(method.to_string()).or_default();
        q.push_back(now);
        while q.len() > CALLS {
            q.pop_front();
        }
    }

    /// The server refused a call of `method`: none before `time_to_reset`.
    pub fn refused(&mut self, method: &str, now: Instant, time_to_reset: Duration) {
        let until = now + time_to_reset + RESET_MARGIN;
        let at = self.blocked.entry(method.to_string()).or_insert(until);
        *at = (*at).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_calls_per_window_then_wait_for_the_oldest_to_age() {
        let mut p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..CALLS {
            let t = t0 + Duration::from_millis(i as u64 * 100);
            assert_eq!(p.ready_at("updateMessage", t), None, "call {i}");
            p.sent("updateMessage", t);
        }
        let t = t0 + Duration::from_secs(1);
        assert_eq!(p.ready_at("updateMessage", t), Some(t0 + WINDOW));
        assert_eq!(
            p.ready_at("rooms/get", t),
            None,
            "methods are counted apart"
        );
        assert_eq!(p.ready_at("updateMessage", t0 + WINDOW), None);
        p.sent("updateMessage", t0 + WINDOW);
        let next = t0 + Duration::from_millis(100) + WINDOW;
        assert_eq!(p.ready_at("updateMessage", t0 + WINDOW), Some(next));
    }

    #[test]
    fn a_refusal_holds_the_method_for_the_time_the_server_said() {
        let mut p = Pacer::default();
        let t0 = Instant::now();
        p.refused("rooms/get", t0, Duration::from_millis(4000));
        let until = t0 + Duration::from_millis(4000) + RESET_MARGIN;
        assert_eq!(p.ready_at("rooms/get", t0), Some(until));
        p.refused("rooms/get", t0, Duration::from_millis(10));
        assert_eq!(p.ready_at("rooms/get", t0), Some(until), "never shortened");
        assert_eq!(p.ready_at("rooms/get", until), None);
        assert_eq!(p.ready_at("updateMessage", t0), None);
    }
}
