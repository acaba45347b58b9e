//! Catch-up after a (re)connection: what was missed first, then live messages.
use crate::bus::{CoreMsg, RtEvent};
use crate::model::Incoming;
use crate::rocketchat::ddp::date_ms;
use crate::rocketchat::message;
use log::warn;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// Oldest message replayed, relative to now.
pub const MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// Most messages replayed per room.
pub const MAX_PER_ROOM: usize = 500;
/// Longest wait for the core's watermarks.
const WATERMARK_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for all `loadMissedMessages` answers.
const LOAD_WAIT: Duration = Duration::from_secs(60);

/// The messages of one `loadMissedMessages` answer worth replaying, oldest
/// first: at most the 500 newest, none older than 24 h before `now_ms`.
pub fn select_missed(answer: &Value, now_ms: i64, bot_user_id: &str) -> Vec<Incoming> {
    let Some(list) = answer.as_array() else {
        // `false` when the bot may no longer read the room.
        return Vec::new();
    };
    // The server answers newest first; sort anyway, stably, by date.
    let mut dated: Vec<(i64, &Value)> = list
        .iter()
        .rev()
        .filter_map(|m| Some((m.get("ts").and_then(date_ms)?, m)))
        .filter(|(ts, _)| *ts >= now_ms - MAX_AGE_MS)
        .collect();
    dated.sort_by_key(|(ts, _)| *ts);
    let skip = dated.len().saturating_sub(MAX_PER_ROOM);
    dated
        .into_iter()
        .skip(skip)
        .filter_map(|(_, m)| message::parse_missed(m, bot_user_id))
        .collect()
}

/// The catch-up of one connection. Live messages are held until it is done
/// so that Jeedom sees every message in the server's order.
pub(super) struct CatchUp {
    watermarks: Option<Receiver<Vec<(String, i64)>>>,
    since: Instant,
    /// `loadMissedMessages` method id → room id.
    waiting: HashMap<String, String>,
    /// Rooms whose missed messages were loaded.
    loaded: Vec<String>,
    replayed: Vec<Incoming>,
    held: Vec<Incoming>,
    done: bool,
}

impl CatchUp {
    /// Asks the core for the watermarks of its rooms.
    pub fn start(to_core: &Sender<CoreMsg>) -> CatchUp {
        let (reply, rx) = mpsc::channel();
        let asked = to_core.send(CoreMsg::Realtime(RtEvent::Watermarks { reply }));
        CatchUp {
            watermarks: asked.is_ok().then_some(rx),
            since: Instant::now(),
            waiting: HashMap::new(),
            loaded: Vec::new(),
            replayed: Vec::new(),
            held: Vec::new(),
            done: false,
        }
    }

    /// The watermarks, once, when the core answered (or gave no answer in
    /// time: then nothing is replayed).
    pub fn poll_watermarks(&mut self, now: Instant) -> Option<Vec<(String, i64)>> {
        let rx = self.watermarks.as_ref()?;
        let list = match rx.try_recv() {
            Ok(list) => list,
            Err(TryRecvError::Empty) if now.duration_since(self.since) < WATERMARK_WAIT => {
                return None
            }
            Err(TryRecvError::Empty) => {
                warn!("no watermarks from the core: missed messages are not replayed");
                Vec::new()
            }
            Err(TryRecvError::Disconnected) => Vec::new(),
        };
        self.watermarks = None;
        self.since = now;
        Some(list)
    }

    /// Records a `loadMissedMessages` call in flight.
    pub fn expect(&mut self, method_id: String, room_id: String) {
        self.waiting.insert(method_id, room_id);
    }

    /// Takes a method answer if it is one of ours (`None`: the call failed).
    pub fn on_answer(
        &mut self,
        method_id: &str,
        answer: Option<&Value>,
        bot_user_id: &str,
    ) -> bool {
        let Some(room) = self.waiting.remove(method_id) else {
            return false;
        };
        match answer {
            Some(a) => {
                self.replayed
                    .extend(select_missed(a, now_ms(), bot_user_id));
                self.loaded.push(room);
            }
            None => warn!("could not load the missed messages of room {room}"),
        }
        true
    }

    /// A live message: passed on once caught up, held until then.
    pub fn live(&mut self, m: Incoming) -> Option<Incoming> {
        if self.done {
            return Some(m);
        }
        self.held.push(m);
        None
    }

    /// When every answer is in (or the wait is over): the replayed messages
    /// and the live ones held meanwhile, each sent once.
    pub fn finish(&mut self, now: Instant) -> Option<Finished> {
        if self.done || self.watermarks.is_some() {
            return None;
        }
        if !self.waiting.is_empty() {
            if now.duration_since(self.since) < LOAD_WAIT {
                return None;
            }
            warn!(
                "gave up waiting for the missed messages of {} room(s)",
                self.waiting.len()
            );
            self.waiting.clear();
        }
        self.done = true;
        let mut replayed = std::mem::take(&mut self.replayed);
        replayed.sort_by_key(|m| m.ts_ms);
        let mut seen = HashSet::new();
        replayed.retain(|m| seen.insert(m.id.clone()));
        let mut held = std::mem::take(&mut self.held);
        held.retain(|m| seen.insert(m.id.clone()));
        Some(Finished {
            replayed,
            held,
            rooms: std::mem::take(&mut self.loaded),
        })
    }
}

/// The outcome of a catch-up.
#[derive(Debug, PartialEq)]
pub(super) struct Finished {
    /// Missed messages, oldest first.
    pub replayed: Vec<Incoming>,
    /// Live messages that arrived during the catch-up and were not replayed.
    pub held: Vec<Incoming>,
    /// Rooms whose missed messages were loaded (the others failed).
    pub rooms: Vec<String>,
}

/// The daemon's clock in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(id: &str, ts: i64) -> Value {
        json!({"_id": id, "rid": "R", "msg": id, "ts": {"$date": ts},
               "u": {"_id": "u1", "username": "alice"}})
    }

    fn ids(list: &[Incoming]) -> Vec<&str> {
        list.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn select_orders_oldest_first_and_drops_old_ones() {
        let now = 10 * MAX_AGE_MS;
        let answer = json!([
            raw("c", now - 1000),
            raw("b", now - 2000),
            raw("old", now - MAX_AGE_MS - 1),
            {"_id": "bad"},
            raw("a", now - 3000)
        ]);
        assert_eq!(ids(&select_missed(&answer, now, "bot")), ["a", "b", "c"]);
        assert!(select_missed(&json!(false), now, "bot").is_empty());
    }

    #[test]
    fn select_keeps_the_500_newest() {
        let now = 10 * MAX_AGE_MS;
        let answer: Vec<Value> = (0..600).map(|i| raw(&format!("m{i}"), now - i)).collect();
        let got = select_missed(&Value::Array(answer), now, "bot");
        assert_eq!(got.len(), MAX_PER_ROOM);
        assert_eq!(got[0].id, "m499");
        assert_eq!(got[499].id, "m0");
    }

    #[test]
    fn live_messages_wait_for_the_replay() {
        let (tx, rx) = mpsc::channel();
        let mut c = CatchUp::start(&tx);
        let Ok(CoreMsg::Realtime(RtEvent::Watermarks { reply })) = rx.try_recv() else {
            panic!("no watermark request");
        };
        let t0 = Instant::now();
        assert_eq!(c.poll_watermarks(t0), None);
        reply.send(vec![("R".into(), 1)]).unwrap();
        assert_eq!(c.poll_watermarks(t0), Some(vec![("R".to_string(), 1)]));
        c.expect("7".into(), "R".into());
        let now = now_ms();
        let live = message::parse_missed(&raw("live", now), "bot").unwrap();
        assert_eq!(c.live(live.clone()), None);
        assert_eq!(c.finish(t0), None, "answer still pending");
        assert!(!c.on_answer("8", None, "bot"));
        let answer = json!([raw("live", now), raw("m2", now - 10), raw("m1", now - 20)]);
        assert!(c.on_answer("7", Some(&answer), "bot"));
        let done = c.finish(t0).unwrap();
        assert!(
            done.held.is_empty(),
            "the live message was replayed already"
        );
        assert_eq!(ids(&done.replayed), ["m1", "m2", "live"]);
        assert_eq!(done.rooms, ["R"]);
        assert_eq!(c.live(live.clone()), Some(live));
    }

    #[test]
    fn no_watermarks_means_no_replay_and_live_flows() {
        let (tx, rx) = mpsc::channel();
        let mut c = CatchUp::start(&tx);
        drop(rx);
        let t0 = Instant::now();
        let m = message::parse_missed(&raw("x", now_ms()), "bot").unwrap();
        assert_eq!(c.live(m), None);
        assert_eq!(c.poll_watermarks(t0), Some(vec![]));
        let done = c.finish(t0).unwrap();
        assert!(done.replayed.is_empty() && done.rooms.is_empty());
        assert_eq!(ids(&done.held), ["x"]);
    }

    #[test]
    fn slow_answers_are_given_up() {
        let (tx, _rx) = mpsc::channel();
        let mut c = CatchUp::start(&tx);
        let t0 = Instant::now();
        assert_eq!(c.poll_watermarks(t0 + WATERMARK_WAIT), Some(vec![]));
        c.expect("1".into(), "R".into());
        assert_eq!(c.finish(t0 + WATERMARK_WAIT), None);
        let done = c.finish(t0 + WATERMARK_WAIT + LOAD_WAIT).unwrap();
        assert!(
            done.rooms.is_empty(),
            "the room that did not answer was not loaded"
        );
    }
}
