//! The state journal: one JSON line per change, appended beside the state file.
//!
//! A record is `[N,{"op":{...}}]`; `N` counts up across runs and the state
//! file says which records it already holds (`journal_applied`), so replaying
//! a journal twice, or one that a fold made stale, changes nothing.
use crate::model::{Outgoing, Secret};
use crate::state::{PendingAsk, QueuedEvent, RoomState, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One change of the [`State`].
// Externally tagged on purpose: the queued events are raw JSON, which serde
// cannot read through the buffering of internally tagged or flattened forms.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Session {
        user_id: Option<String>,
        username: Option<String>,
        resume_token: Option<Secret>,
    },
    /// The whole room list (rare: the bot joined or left rooms).
    Rooms {
        rooms: BTreeMap<String, RoomState>,
    },
    /// One room, whole.
    Room {
        room: RoomState,
    },
    /// A message id queued for Jeedom (see [`RoomState::remember`]).
    Seen {
        room: String,
        id: String,
        ts_ms: i64,
    },
    /// Jeedom acknowledged the room's messages up to `ts_ms`.
    RoomAck {
        room: String,
        ts_ms: i64,
    },
    Asks {
        asks: Vec<PendingAsk>,
    },
    /// A request joined the outbox.
    Accept {
        item: Outgoing,
    },
    Step {
        key: String,
        steps_done: u32,
    },
    /// A request left the outbox (posted or failed).
    Done {
        key: String,
    },
    /// An event joined the queue.
    Push {
        event: QueuedEvent,
    },
    /// A queued event was replaced in place.
    Set {
        seq: u64,
        event: Value,
    },
    /// A queued event was dropped (queue full).
    Remove {
        seq: u64,
    },
    /// Jeedom acknowledged every event up to `upto`.
    Ack {
        upto: u64,
    },
}

/// A journal line: its number and the change.
#[derive(Debug, Serialize, Deserialize)]
struct Record(u64, Op);

/// The journal beside a state file: `<state>.journal`, and `<state>.journal.new`
/// while a fold is under way.
pub fn paths(state: &Path) -> [PathBuf; 2] {
    let with = |ext: &str| {
        let mut p = state.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    [with(".journal"), with(".journal.new")]
}

/// Appends record `n` to `buf` as one line.
pub fn encode(buf: &mut Vec<u8>, n: u64, op: &Op) -> serde_json::Result<()> {
    let start = buf.len();
    if let Err(e) = serde_json::to_writer(&mut *buf, &(n, op)) {
        buf.truncate(start);
        return Err(e);
    }
    buf.push(b'\n');
    Ok(())
}

/// Applies the records of `bytes` that follow `state.journal_applied`, in
/// order; stops at the first line that is torn (a crash mid-write), unreadable
/// or not the next number. Returns how many were applied.
pub fn replay(state: &mut State, bytes: &[u8]) -> usize {
    let mut applied = 0;
    for line in bytes.split(|&b| b == b'\n') {
        let Ok(Record(n, op)) = serde_json::from_slice::<Record>(line) else {
            break;
        };
        if n <= state.journal_applied {
            continue;
        }
        if n != state.journal_applied + 1 {
            break;
        }
        apply(state, op);
        state.journal_applied = n;
        applied += 1;
    }
    applied
}

/// Reads and applies both journal files of `path` (missing ones are empty).
pub fn replay_files(state: &mut State, path: &Path) -> usize {
    paths(path)
        .iter()
        .map(|p| std::fs::read(p).map_or(0, |b| replay(state, &b)))
        .sum()
}

/// Applies one change, as the core made it in memory.
pub fn apply(state: &mut State, op: Op) {
    match op {
        Op::Session {
            user_id,
            username,
            resume_token,
        } => {
            state.user_id = user_id;
            state.username = username;
            state.resume_token = resume_token;
        }
        Op::Rooms { rooms } => state.rooms = rooms,
        Op::Room { room } => {
            state.rooms.insert(room.room.id.clone(), room);
        }
        Op::Seen { room, id, ts_ms } => {
            // The room itself came first (`rooms` or `room`).
            if let Some(r) = state.rooms.get_mut(&room) {
                r.remember(&id, ts_ms);
            }
        }
        Op::RoomAck { room, ts_ms } => {
            if let Some(r) = state.rooms.get_mut(&room) {
                r.acknowledged(ts_ms);
            }
        }
        Op::Asks { asks } => state.asks = asks,
        other => apply_queue(state, other),
    }
}

/// The outbox and event queue changes.
fn apply_queue(state: &mut State, op: Op) {
    match op {
        Op::Accept { item } => state.outbox.push_back(item),
        Op::Step { key, steps_done } => {
            if let Some(i) = state.outbox.iter_mut().find(|i| i.key == key) {
                i.steps_done = steps_done;
            }
        }
        Op::Done { key } => state.outbox.retain(|i| i.key != key),
        Op::Push { mut event } => {
            state.next_seq = state.next_seq.max(event.seq + 1);
            event.refresh_kind();
            state.events.push_back(event);
        }
        Op::Set { seq, event } => {
            if let Some(e) = state.events.iter_mut().find(|e| e.seq == seq) {
                e.set_event(&event);
                e.mark = None;
            }
        }
        Op::Remove { seq } => state.events.retain(|e| e.seq != seq),
        Op::Ack { upto } => {
            while state.events.front().is_some_and(|e| e.seq <= upto) {
                state.events.pop_front();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
