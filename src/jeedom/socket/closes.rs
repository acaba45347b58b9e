//! The log of idle connections closed: the first one at once, the others summed up once a minute.
use std::time::{Duration, Instant};

/// Longest time closes are counted before a line sums them up. Another
/// local process can open idle connections as fast as they are closed: one
/// line each made thousands of lines a second, on an SD card.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Idle connections closed since the last line.
#[derive(Default)]
pub struct CloseLog {
    /// When the last line was logged; `None` once a whole interval passed
    /// without a close (the next close is logged at once).
    since: Option<Instant>,
    /// Closes since then, not logged yet.
    count: usize,
}

impl CloseLog {
    /// Counts `closed` connections closed at `now` (0: none, only a look at
    /// the clock); the line to log, if any. No thread ticks: a count left
    /// when the closes stop is logged at the next connection after the interval.
    pub fn note(&mut self, closed: usize, now: Instant) -> Option<String> {
        let Some(since) = self.since else {
            if closed == 0 {
                return None;
            }
            self.since = Some(now);
            self.count = closed - 1;
            return Some(format!(
                "command socket: {} connections without a request, closing the oldest idle one \
                 (further closes are counted, one line every {} s at most)",
                super::MAX_UNREAD,
                SUMMARY_EVERY.as_secs()
            ));
        };
        self.count += closed;
        let waited = now.saturating_duration_since(since);
        if waited < SUMMARY_EVERY {
            return None;
        }
        if self.count == 0 {
            self.since = None;
            return None;
        }
        let line = format!(
            "command socket: closed {} idle connections in the last {} s",
            self.count,
            waited.as_secs()
        );
        self.since = Some(now);
        self.count = 0;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood of closes makes one line at once, then one per interval with
    /// the count; a quiet interval makes none, and the next close is logged
    /// at once again.
    #[test]
    fn closes_are_logged_once_then_summed_up_per_interval() {
        let t0 = Instant::now();
        let mut log = CloseLog::default();
        assert_eq!(log.note(0, t0), None, "nothing closed, nothing logged");
        assert!(log
            .note(1, t0)
            .unwrap()
            .contains("closing the oldest idle one"));
        let mut lines = Vec::new();
        for ms in 1..3000 {
            lines.extend(log.note(1, t0 + Duration::from_millis(ms * 20)));
        }
        // 2999 closes over 60 s: the first 60 s end at the 3000th.
        assert!(lines.is_empty(), "{lines:?}");
        let line = log.note(1, t0 + SUMMARY_EVERY).unwrap();
        assert_eq!(
            line,
            "command socket: closed 3000 idle connections in the last 60 s"
        );
        // A count left when the closes stop comes out at the next look.
        let t1 = t0 + SUMMARY_EVERY;
        assert_eq!(log.note(2, t1 + Duration::from_secs(1)), None);
        let line = log.note(0, t1 + Duration::from_secs(75)).unwrap();
        assert_eq!(
            line,
            "command socket: closed 2 idle connections in the last 75 s"
        );
        // A whole quiet interval: no line, and the next close is logged at once.
        let t2 = t1 + Duration::from_secs(75);
        assert_eq!(log.note(0, t2 + SUMMARY_EVERY), None);
        let line = log
            .note(1, t2 + SUMMARY_EVERY + Duration::from_secs(1))
            .unwrap();
        assert!(line.contains("closing the oldest idle one"), "{line}");
    }
}
