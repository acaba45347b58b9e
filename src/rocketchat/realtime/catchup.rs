//! Catch-up after a (re)connection: what was missed first, then live messages.
use super::history;
use crate::backoff::Backoff;
use crate::bridge::clock::now_ms;
use crate::bus::{CoreMsg, RtEvent};
use crate::error::Error;
use crate::model::{Incoming, Room};
use crate::rocketchat::ddp::date_ms;
use crate::rocketchat::message;
use log::{debug, info, warn};
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
/// Longest a loaded room waits for the stream's frames of the messages its
/// history found while no live message of the room comes: then they go to
/// Jeedom anyway (their late copies are still dropped), only their order may
/// suffer. A flood's backlog keeps it waiting, as long as it flows.
const SETTLE_IDLE: Duration = Duration::from_secs(10);

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
    /// Rooms loaded → ids the history gave whose stream frames may still
    /// come: the server broadcasts a message after saving it, and a flood
    /// leaves frames unread behind the history's answer. Such a late copy is
    /// dropped here; the core's id memory (500 a room) forgets during a
    /// flood while Jeedom is away. At most 500 ids a room, for this link.
    late: HashMap<String, HashSet<String>>,
    /// Rooms loading → the time of their last message in the room list.
    listed: HashMap<String, Option<i64>>,
    /// Rooms loaded, waiting for the stream to catch up with their history.
    settling: HashMap<String, Settling>,
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
            late: HashMap::new(),
            listed: HashMap::new(),
            settling: HashMap::new(),
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
            self.listed.insert(room.id.clone(), room.last_message_ms);
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

    /// A live message: passed on when its room is caught up, held until
    /// then; dropped when the history gave it already.
    pub fn live(&mut self, m: Incoming) -> Option<Incoming> {
        if self.watermarks.is_some() {
            self.early.push(m);
            return None;
        }
        if let Some(ids) = self.late.get_mut(&m.room_id) {
            if ids.remove(&m.id) {
                debug!("message {} came live after the catch-up had it", m.id);
                if let Some(s) = self.settling.get_mut(&m.room_id) {
                    s.arrived(m.id);
                }
                return None;
            }
        }
        if let Some(s) = self.settling.get_mut(&m.room_id) {
            s.came(m);
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
        for l in loaded {
            self.finish_room(l, bot_user_id);
        }
        let now = Instant::now();
        let ready: Vec<String> = self
            .settling
            .iter()
            .filter(|(_, s)| s.waiting.is_empty() || now >= s.until)
            .map(|(room, _)| room.clone())
            .collect();
        let settled = ready.into_iter().filter_map(|room| {
            let s = self.settling.remove(&room)?;
            Some(s.finished(room))
        });
        settled.collect()
    }

    /// The room's history is read: it waits for the stream (see [`Settling`]).
    fn finish_room(&mut self, l: RoomLoaded, bot_user_id: &str) {
        let Some(held) = self.loading.remove(&l.room) else {
            return;
        };
        let listed = self.listed.remove(&l.room).flatten();
        let replayed = match &l.messages {
            Some(list) => select_missed(&Value::Array(list.clone()), now_ms(), bot_user_id),
            None => Vec::new(),
        };
        let (settling, late) = Settling::new(replayed, held, listed, l.messages.is_some());
        if !settling.waiting.is_empty() {
            info!(
                "catch-up of room {}: loaded, waiting for the stream to bring {} of \
                 its messages",
                l.room,
                settling.waiting.len()
            );
        }
        self.late.insert(l.room.clone(), late);
        self.settling.insert(l.room, settling);
    }

    /// Whether every room is caught up.
    pub fn done(&self) -> bool {
        self.watermarks.is_none() && self.loading.is_empty() && self.settling.is_empty()
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

/// A loaded room waiting for the stream's frames of messages its history
/// found: the real server broadcasts a message after saving it, so a REST
/// read can list it first (`notifyOnMessageChange` in
/// apps/meteor/app/lib/server/lib/notifyListener.ts, or the database
/// watchers), and a busy link reads the frames late.
struct Settling {
    loaded: bool,
    /// The history's messages and the live ones held, each once.
    messages: Vec<(Incoming, Source)>,
    /// Ids the history found posted after the room list: their frames are
    /// on the way.
    waiting: HashSet<String>,
    /// The time of the newest of them.
    newest_waited: Option<i64>,
    /// History ids that came live too (posted since the link is up).
    both: HashSet<String>,
    /// Given up at (pushed back by each live message of the room).
    until: Instant,
}

impl Settling {
    /// The history's messages (`replayed`, oldest first) and the live ones
    /// held while it loaded, each once; with the ids whose frames may still
    /// come (the late ones).
    fn new(
        replayed: Vec<Incoming>,
        held: Vec<Incoming>,
        listed_ms: Option<i64>,
        loaded: bool,
    ) -> (Settling, HashSet<String>) {
        let came: HashSet<String> = held.iter().map(|m| m.id.clone()).collect();
        let mut seen = HashSet::new();
        let replayed: Vec<Incoming> = replayed
            .into_iter()
            .filter(|m| seen.insert(m.id.clone()))
            .collect();
        let late: Vec<&Incoming> = replayed.iter().filter(|m| !came.contains(&m.id)).collect();
        let after_list = late
            .iter()
            .filter(|m| listed_ms.is_none_or(|t| m.ts_ms > t));
        let newest_waited = after_list.clone().map(|m| m.ts_ms).max();
        let waiting = after_list.map(|m| m.id.clone()).collect();
        let late_ids = late.iter().map(|m| m.id.clone()).collect();
        let both = replayed
            .iter()
            .filter(|m| came.contains(&m.id))
            .map(|m| m.id.clone())
            .collect();
        let mut messages: Vec<(Incoming, Source)> =
            replayed.into_iter().map(|m| (m, Source::History)).collect();
        let held = held.into_iter().filter(|m| seen.insert(m.id.clone()));
        messages.extend(held.map(|m| (m, Source::Live)));
        let settling = Settling {
            loaded,
            messages,
            waiting,
            newest_waited,
            both,
            until: Instant::now() + SETTLE_IDLE,
        };
        (settling, late_ids)
    }

    /// The late copy of a message the history found.
    fn arrived(&mut self, id: String) {
        self.waiting.remove(&id);
        self.both.insert(id);
    }

    /// A live message meanwhile (not one of those waited for): held; one
    /// newer than all of them says the stream is past them (those that did
    /// not come were posted before it started).
    fn came(&mut self, m: Incoming) {
        if self.newest_waited.is_some_and(|t| m.ts_ms > t) {
            self.waiting.clear();
        }
        self.until = Instant::now() + SETTLE_IDLE;
        self.messages.push((m, Source::Live));
    }

    /// In server order (stable: messages of the same time keep the
    /// history's, then the stream's, order); a message that came both ways
    /// counts as live: posted since the link is up, it was not missed.
    fn finished(mut self, room: String) -> Finished {
        self.messages.sort_by_key(|(m, _)| m.ts_ms);
        for (m, source) in &mut self.messages {
            if self.both.contains(&m.id) {
                *source = Source::Live;
            }
        }
        Finished {
            room,
            loaded: self.loaded,
            messages: self.messages,
        }
    }
}

/// How a caught-up message came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// Found by the history read: missed while disconnected (after a crash,
    /// maybe delivered by the run that crashed).
    History,
    /// Came live while its room was loading.
    Live,
}

/// The outcome of one room's catch-up.
#[derive(Debug, PartialEq)]
pub(super) struct Finished {
    pub room: String,
    /// False when the room could not be loaded (refused for good).
    pub loaded: bool,
    /// Missed messages and the live ones held meanwhile, in server order.
    pub messages: Vec<(Incoming, Source)>,
}

impl Finished {
    /// The room's catch-up for the core, in order: runs of missed messages
    /// (`Replayed`) and of live ones, then the room caught up (an empty
    /// `Replayed` naming it, sent even when nothing was missed).
    pub fn into_events(self) -> Vec<RtEvent> {
        let missed = self.messages.iter().filter(|(_, s)| *s == Source::History);
        let missed = missed.count();
        if missed > 0 {
            info!(
                "catch-up: {missed} message(s) missed in room {} while disconnected",
                self.room
            );
        }
        let mut events = Vec::new();
        let mut run: Vec<Incoming> = Vec::new();
        let mut run_source = Source::History;
        for (m, source) in self.messages {
            if source != run_source && !run.is_empty() {
                events.push(run_event(std::mem::take(&mut run), run_source));
            }
            run_source = source;
            run.push(m);
        }
        if !run.is_empty() {
            events.push(run_event(run, run_source));
        }
        let rooms = if self.loaded { vec![self.room] } else { vec![] };
        events.push(RtEvent::Replayed {
            messages: vec![],
            rooms,
        });
        events
    }
}

fn run_event(messages: Vec<Incoming>, source: Source) -> RtEvent {
    match source {
        Source::History => RtEvent::Replayed {
            messages,
            rooms: vec![],
        },
        Source::Live => RtEvent::Messages(messages),
    }
}

#[cfg(test)]
mod tests;
