//! Exponential backoff with jitter, and random ids, for every retry loop.
use ring::rand::{SecureRandom, SystemRandom};
use std::time::Duration;

/// Delay doubling from `first` to `max` at each failure; reset on success.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    jitter: bool,
}

impl Backoff {
    /// Backoff without jitter (the callback's 0.5 s doubling to 30 s).
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
            jitter: false,
        }
    }

    /// Backoff whose delays are spread over [d/2, d] so that many daemons
    /// restarted together do not hit the server in step.
    pub fn with_jitter(first: Duration, max: Duration) -> Backoff {
        Backoff {
            jitter: true,
            ..Backoff::new(first, max)
        }
    }

    /// The delay to wait before the next attempt; doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        if self.jitter {
            let half = d / 2;
            half + half.mul_f64(random_unit())
        } else {
            d
        }
    }

    /// Starts again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The delay the next failure would get, without jitter.
    pub fn peek(&self) -> Duration {
        self.next
    }
}

/// A uniformly random number in [0, 1).
pub fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    if SystemRandom::new().fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// A Meteor-style 17-character id (the alphabet Rocket.Chat uses for `_id`).
pub fn random_id() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
    let mut bytes = [0u8; 17];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // Fall back on the clock: ids only need to be unique, not secret.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (t >> (i * 7)) as u8;
        }
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let got: Vec<u128> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(
            got,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        let mut b = Backoff::with_jitter(Duration::from_secs(1), Duration::from_secs(60));
        for expected in [1, 2, 4, 8, 16, 32, 60, 60] {
            let d = b.next_delay();
            let full = Duration::from_secs(expected);
            assert!(
                d >= full / 2 && d <= full,
                "{d:?} outside [{:?}, {full:?}]",
                full / 2
            );
        }
    }

    #[test]
    fn ids_look_like_meteor_ids() {
        let a = random_id();
        assert_eq!(a.len(), 17);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_id());
    }
}
