//! Catch-up after a (re)connection: what was missed first, then live messages.
use super::history;
use crate::backoff::Backoff;
use crate::bridge::clock::now_ms;
use crate::bus::{CoreMsg, RtEvent};
use crate::error::Error;
use crate::model::{Incoming, Room};
use crate::rocketchat::ddp::date_ms;
use crate::rocketchat::message;
use log::{info, warn};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Oldest message replayed, relative to now.
pub const MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// Most messages replayed per room.
pub const MAX_PER_ROOM: usize = 500;
/// Longest wait for the core's watermarks.
const WATERMARK_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting loader looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// The messages of one room's history worth replaying, oldest first: at
/// most the 500 newest, none older than 24 h before `now_ms`.
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

/// Reads one room's messages since a time (newest first, at most `most`).
pub(super) type Fetch = dyn Fn(&Room, i64, usize) -> Result<Vec<Value>, Error> + Send;

/// What the loader thread found for one room (`None`: given up).
struct RoomLoaded {
    room: String,
    messages: Option<Vec<Value>>,
}

/// The catch-up of one connection. The live messages of a room wait until
/// that room's missed messages are loaded, so that Jeedom sees every message
/// in the server's order and a room's watermark never passes messages not
/// loaded yet; rooms are loaded one after the other, each retried until it
/// loads (or is refused for good).
pub(super) struct CatchUp {
    watermarks: Option<Receiver<Vec<(String, i64)>>>,
    since: Instant,
    /// Live messages that came before the watermarks, for any room.
    early: Vec<Incoming>,
    /// Rooms being loaded → their live messages held meanwhile.
    loading: HashMap<String, Vec<Incoming>>,
    results: Option<Receiver<RoomLoaded>>,
    /// Tells the loader thread to stop (the link went away).
    stop: Arc<AtomicBool>,
}

impl CatchUp {
    /// Asks the core for the watermarks of its rooms.
    pub fn start(to_core: &Sender<CoreMsg>) -> CatchUp {
        let (reply, rx) = mpsc::channel();
        let asked = to_core.send(CoreMsg::Realtime(RtEvent::Watermarks { reply }));
        CatchUp {
            watermarks: asked.is_ok().then_some(rx),
            since: Instant::now(),
            early: Vec::new(),
            loading: HashMap::new(),
            results: None,
            stop: Arc::new(AtomicBool::new(false)),
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

    /// Starts loading `rooms` (each from its time) on a `catch-up` thread;
    /// answers the early live messages of the other rooms, to pass on now.
    pub fn begin(&mut self, rooms: Vec<(Room, i64)>, fetch: Box<Fetch>) -> Vec<Incoming> {
        for (room, _) in &rooms {
            self.loading.insert(room.id.clone(), Vec::new());
        }
        if !rooms.is_empty() {
            let (tx, rx) = mpsc::channel();
            let stop = self.stop.clone();
            let spawned = std::thread::Builder::new()
                .name("catch-up".into())
                .spawn(move || load_all(rooms, &fetch, &tx, &stop));
            match spawned {
                Ok(_) => self.results = Some(rx),
                Err(e) => {
                    warn!("cannot start the catch-up: {e}");
                    self.loading.clear();
                }
            }
        }
        let early = std::mem::take(&mut self.early);
        early.into_iter().filter_map(|m| self.live(m)).collect()
    }

    /// A live message: passed on when its room is caught up, held until then.
    pub fn live(&mut self, m: Incoming) -> Option<Incoming> {
        if self.watermarks.is_some() {
            self.early.push(m);
            return None;
        }
        match self.loading.get_mut(&m.room_id) {
            Some(held) => {
                held.push(m);
                None
            }
            None => Some(m),
        }
    }

    /// The rooms loaded since the last call.
    pub fn poll(&mut self, bot_user_id: &str) -> Vec<Finished> {
        let Some(rx) = &self.results else {
            return Vec::new();
        };
        let loaded: Vec<RoomLoaded> = rx.try_iter().collect();
        loaded
            .into_iter()
            .filter_map(|l| self.finish_room(l, bot_user_id))
            .collect()
    }

    fn finish_room(&mut self, l: RoomLoaded, bot_user_id: &str) -> Option<Finished> {
        let held = self.loading.remove(&l.room)?;
        let mut replayed = match &l.messages {
            Some(list) => select_missed(&Value::Array(list.clone()), now_ms(), bot_user_id),
            None => Vec::new(),
        };
        let mut seen = HashSet::new();
        replayed.retain(|m| seen.insert(m.id.clone()));
        let held = held
            .into_iter()
            .filter(|m| seen.insert(m.id.clone()))
            .collect();
        Some(Finished {
            room: l.room,
            loaded: l.messages.is_some(),
            replayed,
            held,
        })
    }

    /// Whether every room is caught up.
    pub fn done(&self) -> bool {
        self.watermarks.is_none() && self.loading.is_empty()
    }
}

impl Drop for CatchUp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The loader thread: each room in turn, until loaded or refused for good.
fn load_all(rooms: Vec<(Room, i64)>, fetch: &Fetch, tx: &Sender<RoomLoaded>, stop: &AtomicBool) {
    for (room, since) in rooms {
        let oldest = since.max(now_ms() - MAX_AGE_MS);
        let Some(messages) = load_room(&room, oldest, fetch, stop) else {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let _ = tx.send(RoomLoaded {
                room: room.id,
                messages: None,
            });
            continue;
        };
        if tx
            .send(RoomLoaded {
                room: room.id,
                messages: Some(messages),
            })
            .is_err()
        {
            return;
        }
    }
}

/// One room, retried after the server's rate limit or an outage.
fn load_room(room: &Room, oldest: i64, fetch: &Fetch, stop: &AtomicBool) -> Option<Vec<Value>> {
    let mut backoff = Backoff::with_jitter(Duration::from_secs(1), Duration::from_secs(60));
    while !stop.load(Ordering::Relaxed) {
        let e = match fetch(room, oldest, MAX_PER_ROOM) {
            Ok(list) => return Some(list),
            Err(e) => e,
        };
        let Some(wait) = history::retry_wait(&e, backoff.next_delay()) else {
            let e = e.chain();
            warn!(
                "cannot load the missed messages of {}: {e}; messages posted there while \
                 disconnected are not replayed",
                room.name
            );
            return None;
        };
        info!(
            "loading the missed messages of {} failed ({}): again in {} ms",
            room.name,
            e.chain(),
            wait.as_millis()
        );
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(STOP_POLL.min(until.saturating_duration_since(Instant::now())));
        }
    }
    None
}

/// The outcome of one room's catch-up.
#[derive(Debug, PartialEq)]
pub(super) struct Finished {
    pub room: String,
    /// False when the room could not be loaded (refused for good).
    pub loaded: bool,
    /// Missed messages, oldest first.
    pub replayed: Vec<Incoming>,
    /// Live messages that arrived during the catch-up and were not replayed.
    pub held: Vec<Incoming>,
}

#[cfg(test)]
mod tests;
