//! The rooms: what Jeedom was told, and how far it acknowledged each room's messages.
use super::queue::Marks;
use super::{Journal, Persisted};
use crate::journal::Op;
use crate::model::{Incoming, Room, RoomKind};
use crate::state::{RoomState, State};
use std::collections::{BTreeMap, HashSet};

/// The bot's rooms, their watermarks and the ids of their recent messages.
#[derive(Debug, Default)]
pub struct Rooms {
    /// Persisted (`rooms` of the state file).
    rooms: BTreeMap<String, RoomState>,
    /// Jeedom has the current list (a `rooms` event was queued since the
    /// last connection, or the last change).
    announced: bool,
    /// Rooms whose missed messages may include some a crashed run delivered.
    suspect: HashSet<String>,
}

/// What a new room list changed.
#[derive(Debug, PartialEq)]
pub struct Listed {
    /// Jeedom is to be told (a `rooms` event).
    pub announce: bool,
    /// A room is new: its starting point is to be made durable soon.
    pub new_room: bool,
}

impl Persisted for Rooms {
    fn swap(&mut self, state: &mut State) {
        std::mem::swap(&mut self.rooms, &mut state.rooms);
    }
}

impl Rooms {
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    #[cfg(test)]
    pub fn get(&self, id: &str) -> Option<&RoomState> {
        self.rooms.get(id)
    }

    pub fn has(&self, id: &str) -> bool {
        self.rooms.contains_key(id)
    }

    pub fn list(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values().map(|r| &r.room)
    }

    /// Each room's horizon, for a catch-up after a (re)connection.
    pub fn watermarks(&self) -> Vec<(String, i64)> {
        let mark = |(id, r): (&String, &RoomState)| Some((id.clone(), r.horizon()?));
        self.rooms.iter().filter_map(mark).collect()
    }

    /// A new session: the list is announced again when it comes.
    pub fn reconnected(&mut self) {
        self.announced = false;
    }

    /// Keeps room watermarks and starts new rooms at their last message (so
    /// the first run replays nothing).
    pub fn update(&mut self, list: Vec<Room>, j: &mut impl Journal) -> Listed {
        let mut next = BTreeMap::new();
        for room in list {
            let rs = match self.rooms.get(&room.id) {
                Some(prev) => RoomState {
                    room,
                    ..prev.clone()
                },
                None => {
                    let start = room.last_message_ms.unwrap_or(0);
                    RoomState::new(room, Some(start))
                }
            };
            next.insert(rs.room.id.clone(), rs);
        }
        let changed = !same_rooms(&self.rooms, &next);
        let new_room = next.keys().any(|id| !self.rooms.contains_key(id));
        self.rooms = next;
        j.record(Op::Rooms {
            rooms: self.rooms.clone(),
        });
        let announce = changed || !self.announced;
        self.announced = true;
        Listed { announce, new_room }
    }

    /// A message in a room the list does not have yet. A direct room is
    /// known well enough to be announced at once (returns true), before its
    /// message, so that Jeedom has the device; any other waits for the
    /// list, announced then even if it matches.
    pub fn add_unknown(&mut self, m: &Incoming, bot: &str, j: &mut impl Journal) -> bool {
        let rs = unknown_room(m, bot);
        let direct = rs.room.kind == RoomKind::Direct;
        j.record(Op::Room { room: rs.clone() });
        self.rooms.insert(m.room_id.clone(), rs);
        self.announced &= direct;
        direct
    }

    /// Remembers a new message; returns its room (`None`: unknown room, or
    /// the message was handled before).
    pub fn see(&mut self, m: &Incoming, j: &mut impl Journal) -> Option<Room> {
        let rs = self.rooms.get_mut(&m.room_id)?;
        // Ids decide (server times differ between instances and step); only
        // a message older than the id memory (an update of an old message)
        // is judged by its time.
        if rs.has_seen(&m.id) || rs.is_old(m.ts_ms) {
            log::debug!("message {} already handled", m.id);
            return None;
        }
        rs.remember(&m.id, m.ts_ms);
        j.record(Op::Seen {
            room: m.room_id.clone(),
            id: m.id.clone(),
            ts_ms: m.ts_ms,
        });
        Some(rs.room.clone())
    }

    /// Jeedom acknowledged messages: the rooms' watermarks advance.
    pub fn acknowledged(&mut self, marks: Marks, j: &mut impl Journal) {
        for (rid, ts_ms) in marks {
            if let Some(room) = self.rooms.get_mut(&rid) {
                room.acknowledged(ts_ms);
                j.record(Op::RoomAck { room: rid, ts_ms });
            }
        }
    }

    /// After a crash: the missed messages of every room that had some
    /// delivered may include some delivered already. Returns their number.
    pub fn suspect_all(&mut self) -> usize {
        let delivered = self.rooms.iter().filter(|(_, r)| r.watermark_ms.is_some());
        self.suspect = delivered.map(|(id, _)| id.clone()).collect();
        self.suspect.len()
    }

    /// Whether a message found by a catch-up of this room may be a replay.
    pub fn is_suspect(&self, id: &str) -> bool {
        self.suspect.contains(id)
    }

    /// These rooms were caught up: their new messages are no replays.
    pub fn caught_up(&mut self, rooms: Vec<String>) {
        for r in rooms {
            if self.suspect.remove(&r) {
                log::debug!("room {r} caught up: its new messages are no replays");
            }
        }
    }

    /// Whether every room was caught up since the crash (then a stop is clean).
    pub fn none_suspect(&self) -> bool {
        self.suspect.is_empty()
    }
}

/// Whether Jeedom would see the same list (the last message time does not count).
fn same_rooms(a: &BTreeMap<String, RoomState>, b: &BTreeMap<String, RoomState>) -> bool {
    let shown = |r: &RoomState| (r.room.name.clone(), r.room.kind, r.room.users.clone());
    a.len() == b.len()
        && a.iter()
            .all(|(id, r)| b.get(id).map(shown) == Some(shown(r)))
}

/// A room the list did not have yet: the message raced the room change (the
/// first message of a new direct message arrives before the room's
/// notifications). The frame's room type says what it is; a direct room is
/// named after its author until the list comes.
fn unknown_room(m: &Incoming, bot: &str) -> RoomState {
    let kind = m.room_kind.unwrap_or(RoomKind::Channel);
    let (name, users) = match kind {
        RoomKind::Direct => {
            let who = m.user.username.clone();
            (who.clone(), vec![who, bot.to_string()])
        }
        _ => (m.room_id.clone(), vec![]),
    };
    let room = Room {
        id: m.room_id.clone(),
        name,
        kind,
        users,
        last_message_ms: None,
    };
    RoomState::new(room, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::incoming;

    fn room(id: &str, last: i64) -> Room {
        let last_message_ms = Some(last);
        Room {
            last_message_ms,
            ..crate::core::fixtures::room(id)
        }
    }

    fn msg(room: &str, id: &str, ts_ms: i64) -> Incoming {
        incoming(room, id, "carol", "hi", ts_ms)
    }

    #[test]
    fn a_list_is_announced_when_it_changes_or_after_a_reconnection() {
        let (mut r, mut j) = (Rooms::default(), Vec::new());
        let first = r.update(vec![room("A", 10)], &mut j);
        assert_eq!(
            first,
            Listed {
                announce: true,
                new_room: true
            }
        );
        assert_eq!(
            r.get("A").unwrap().watermark_ms,
            Some(10),
            "starts at its last message"
        );
        let same = r.update(vec![room("A", 99)], &mut j);
        assert_eq!(
            same,
            Listed {
                announce: false,
                new_room: false
            }
        );
        assert_eq!(r.get("A").unwrap().watermark_ms, Some(10), "kept");
        r.reconnected();
        assert!(r.update(vec![room("A", 99)], &mut j).announce);
        assert_eq!(j.len(), 3, "each list journaled");
    }

    #[test]
    fn a_message_is_seen_once_and_acknowledging_moves_the_watermark() {
        let (mut r, mut j) = (Rooms::default(), Vec::new());
        r.update(vec![room("A", 10)], &mut j);
        assert!(
            r.see(&msg("A", "old", 5), &mut j).is_none(),
            "older than the room"
        );
        assert_eq!(r.see(&msg("A", "m1", 20), &mut j).unwrap().id, "A");
        assert!(r.see(&msg("A", "m1", 20), &mut j).is_none(), "seen");
        assert!(r.see(&msg("B", "m2", 20), &mut j).is_none(), "unknown room");
        r.acknowledged(Marks::from([("A".into(), 20), ("B".into(), 30)]), &mut j);
        assert_eq!(r.get("A").unwrap().watermark_ms, Some(20));
        assert_eq!(r.watermarks(), [("A".to_string(), 10)], "ids kept from 10");
        assert_eq!(j.len(), 3, "list, one id, one room ack");
    }

    #[test]
    fn an_unknown_direct_room_is_announced_at_once_and_another_waits_for_the_list() {
        let (mut r, mut j) = (Rooms::default(), Vec::new());
        r.update(vec![], &mut j);
        let mut dm = msg("carolbot", "d1", 1);
        dm.room_kind = Some(RoomKind::Direct);
        assert!(r.add_unknown(&dm, "bot", &mut j));
        assert_eq!(r.list().next().unwrap().users, ["carol", "bot"]);
        let listed: Vec<Room> = r.list().cloned().collect();
        assert!(!r.update(listed, &mut j).announce);
        assert!(!r.add_unknown(&msg("C", "c1", 1), "bot", &mut j));
        assert!(r.has("C"));
        let listed: Vec<Room> = r.list().cloned().collect();
        assert!(r.update(listed, &mut j).announce, "announced with the list");
    }

    #[test]
    fn after_a_crash_rooms_stay_suspect_until_caught_up() {
        let (mut r, mut j) = (Rooms::default(), Vec::new());
        r.update(vec![room("A", 10), room("B", 10)], &mut j);
        assert_eq!(r.suspect_all(), 2);
        r.caught_up(vec!["A".into()]);
        assert!(!r.is_suspect("A") && r.is_suspect("B"));
        assert!(!r.none_suspect());
        r.caught_up(vec!["B".into()]);
        assert!(r.none_suspect());
    }
}
