//! Once the faults stop: wait until everything arrived, then stop the daemon cleanly.
use super::traffic::Record;
use super::Rig;
use crate::harness::Daemon;
use crate::support::fake_rc::{FakeRocketChat, BOT_ID};
use serde_json::Value;
use std::collections::HashSet;
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

/// A `send` posted by the bot: its number n (`reply sN`), message id, server time (ms).
pub type Reply = (u64, String, i64);

/// How the drain ended.
pub struct Drained {
    /// Everything arrived within the limit.
    pub done: bool,
    pub took: Duration,
}

/// Waits, up to `limit`, until every posted message is at Jeedom and every
/// accepted send is posted.
pub fn drain(rig: &Rig, traffic: &Record, limit: Duration) -> Drained {
    let accepted = traffic.accepted();
    let want_ids: HashSet<&str> = traffic.posted.iter().map(|p| p.id.as_str()).collect();
    let start = Instant::now();
    let done = loop {
        let (msgs_done, sends_done) = arrived(rig, &want_ids, &accepted);
        if msgs_done && sends_done {
            break true;
        }
        if std::env::var_os("RCD_ENDURANCE_TIMELINE").is_some() {
            println!(
                "  drain {:.1} s: messages {msgs_done}, sends {sends_done}",
                start.elapsed().as_secs_f64()
            );
        }
        if start.elapsed() > limit {
            break false;
        }
        thread::sleep(Duration::from_millis(200));
    };
    Drained {
        done,
        took: start.elapsed(),
    }
}

/// Whether all the messages, and all the sends, have arrived.
fn arrived(rig: &Rig, want_ids: &HashSet<&str>, accepted: &[u64]) -> (bool, bool) {
    let got: HashSet<String> = rig
        .jeedom
        .events_of_type("message")
        .iter()
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect();
    let replies: HashSet<u64> = bot_replies(&rig.rc).iter().map(|r| r.0).collect();
    let msgs_done = want_ids.iter().all(|id| got.contains(*id));
    let sends_done = accepted.iter().all(|n| replies.contains(n));
    (msgs_done, sends_done)
}

/// Lets the last `sent` events and the state settle, then stops the daemon
/// with SIGTERM.
pub fn stop(daemon: &mut Daemon) -> ExitStatus {
    thread::sleep(Duration::from_millis(700));
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(5))
}

/// The sends the bot posted, in the order the fake stored them.
pub fn bot_replies(rc: &FakeRocketChat) -> Vec<Reply> {
    let w = rc.shared().world();
    w.messages
        .iter()
        .filter(|m| m["u"]["_id"] == BOT_ID)
        .filter_map(|m| {
            let n = m["msg"].as_str()?.strip_prefix("reply s")?.parse().ok()?;
            Some((n, m["_id"].as_str()?.to_string(), ts_ms(&m["ts"])))
        })
        .collect()
}

/// `{"$date": ms}` or a number.
fn ts_ms(v: &Value) -> i64 {
    v["$date"].as_i64().or_else(|| v.as_i64()).unwrap_or(0)
}
