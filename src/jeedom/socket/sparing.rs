//! Warnings a local process can cause at will (idle connections closed, requests refused), logged sparingly.
use std::time::{Duration, Instant};

/// Longest time events are counted before a line sums them up. Another
/// local process can open idle connections as fast as they are closed, or
/// send bad requests in a loop: one line each made thousands of lines a
/// second, on an SD card.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What to log for the events just noted.
#[derive(Debug, PartialEq, Eq)]
pub enum Say {
    /// The caller's own line, with its details.
    Line,
    /// One line for the `count` events not logged over the last `secs` s.
    Sum { count: usize, secs: u64 },
}

/// Events of one kind: after a quiet spell the first `burst` are logged one
/// by one, the others counted and summed up once per [`SUMMARY_EVERY`].
pub struct Sparing {
    burst: usize,
    /// When the interval began; `None` after a whole interval without any
    /// event (the next one is logged at once).
    since: Option<Instant>,
    /// Lines logged one by one since the quiet spell.
    logged: usize,
    /// Events since `since`, not logged yet.
    count: usize,
}

impl Sparing {
    pub fn new(burst: usize) -> Sparing {
        Sparing {
            burst: burst.max(1),
            since: None,
            logged: 0,
            count: 0,
        }
    }

    /// Notes `events` at `now` (0: none, only a look at the clock). No thread
    /// ticks: a count left when the events stop is logged at the next look
    /// after the interval.
    pub fn note(&mut self, events: usize, now: Instant) -> Option<Say> {
        let Some(since) = self.since else {
            if events == 0 {
                return None;
            }
            self.since = Some(now);
            self.logged = 1;
            self.count = events - 1;
            return Some(Say::Line);
        };
        let waited = now.saturating_duration_since(since);
        if waited < SUMMARY_EVERY {
            if events > 0 && self.logged < self.burst {
                self.logged += 1;
                self.count += events - 1;
                return Some(Say::Line);
            }
            self.count += events;
            return None;
        }
        self.count += events;
        if self.count == 0 {
            self.since = None;
            return None;
        }
        let sum = Say::Sum {
            count: self.count,
            secs: waited.as_secs(),
        };
        self.since = Some(now);
        self.count = 0;
        Some(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood makes one line at once, then one per interval with the count;
    /// a quiet interval makes none, and the next event is logged at once.
    #[test]
    fn events_are_logged_once_then_summed_up_per_interval() {
        let t0 = Instant::now();
        let mut log = Sparing::new(1);
        assert_eq!(log.note(0, t0), None, "nothing happened, nothing logged");
        assert_eq!(log.note(1, t0), Some(Say::Line));
        let mut lines = Vec::new();
        for ms in 1..3000 {
            lines.extend(log.note(1, t0 + Duration::from_millis(ms * 20)));
        }
        // 2999 events over 60 s: the first 60 s end at the 3000th.
        assert!(lines.is_empty(), "{lines:?}");
        let sum = log.note(1, t0 + SUMMARY_EVERY);
        assert_eq!(
            sum,
            Some(Say::Sum {
                count: 3000,
                secs: 60
            })
        );
        // A count left when the events stop comes out at the next look.
        let t1 = t0 + SUMMARY_EVERY;
        assert_eq!(log.note(2, t1 + Duration::from_secs(1)), None);
        let sum = log.note(0, t1 + Duration::from_secs(75));
        assert_eq!(sum, Some(Say::Sum { count: 2, secs: 75 }));
        // A whole quiet interval: no line, and the next event is logged at once.
        let t2 = t1 + Duration::from_secs(75);
        assert_eq!(log.note(0, t2 + SUMMARY_EVERY), None);
        let next = t2 + SUMMARY_EVERY + Duration::from_secs(1);
        assert_eq!(log.note(1, next), Some(Say::Line));
    }

    /// With a burst of 3, three events of a flood get their own line, the
    /// rest of the interval is counted, and the next interval is only counted.
    #[test]
    fn a_burst_is_logged_one_by_one_then_the_rest_counted() {
        let t0 = Instant::now();
        let mut log = Sparing::new(3);
        let said: Vec<Option<Say>> = (0..10)
            .map(|i| log.note(1, t0 + Duration::from_secs(i)))
            .collect();
        assert_eq!(said.iter().filter(|s| **s == Some(Say::Line)).count(), 3);
        assert!(said[3..].iter().all(Option::is_none), "{said:?}");
        let sum = log.note(1, t0 + SUMMARY_EVERY);
        assert_eq!(sum, Some(Say::Sum { count: 8, secs: 60 }));
        assert_eq!(
            log.note(1, t0 + SUMMARY_EVERY + Duration::from_secs(1)),
            None
        );
    }
}
