//! Waiting helpers: poll a condition against a deadline, panic with a clear message.
use std::time::{Duration, Instant};

/// Poll interval of the waiting helpers.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `cond` is true; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(timeout, what, || cond().then_some(()))
}

/// Waits until `f` returns `Some`, and returns its value; panics naming `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Asserts that `cond` stays false for the whole of `period` (polls it).
pub fn assert_never(period: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < period {
        assert!(!cond(), "{what} happened, but it must not");
        std::thread::sleep(POLL);
    }
}
