//! What arrives from Rocket.Chat: session changes, rooms, messages, ask answers.
use super::Core;
use crate::bridge::answers::{closed_text, match_answer, Closed};
use crate::bridge::clock::now_ms;
use crate::bridge::events;
use crate::bridge::mention::query;
use crate::bus::{RtCommand, RtEvent};
use crate::journal::Op;
use crate::model::{Incoming, Room, RoomKind, Session};
use crate::state::RoomState;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

impl Core {
    pub(super) fn on_realtime(&mut self, ev: RtEvent) {
        match ev {
            RtEvent::Connected(s) => self.on_connected(s),
            RtEvent::Disconnected { error } => self.on_disconnected(error),
            RtEvent::Rooms(list) => self.on_rooms(list),
            RtEvent::Messages(list) => list.into_iter().for_each(|m| self.on_message(m, false)),
            RtEvent::Replayed { messages, rooms } => self.on_replayed(messages, rooms),
            RtEvent::Watermarks { reply } => {
                let marks = self
                    .state
                    .rooms
                    .iter()
                    .filter_map(|(id, r)| Some((id.clone(), r.horizon()?)))
                    .collect();
                let _ = reply.send(marks);
            }
            RtEvent::Updated { message_id, error } => self.on_updated(&message_id, error),
        }
    }

    fn on_connected(&mut self, s: Session) {
        log::info!(
            "connected to Rocket.Chat {} as {}",
            s.server_version,
            s.username
        );
        (self.cfg.on_status)(&format!(
            "connected as {} to Rocket.Chat {}",
            s.username, s.server_version
        ));
        self.state.user_id = Some(s.user_id.clone());
        self.state.username = Some(s.username.clone());
        self.state.resume_token = Some(s.token.clone());
        self.log(Op::Session {
            user_id: self.state.user_id.clone(),
            username: self.state.username.clone(),
            resume_token: self.state.resume_token.clone(),
        });
        self.push_event(
            events::connected(&s.user_id, &s.username, &s.server_version),
            None,
        );
        self.session = Some(s);
        self.last_error = None;
        self.rooms_announced = false;
        self.send_retry_at = None;
        self.resend_closing_edits();
    }

    fn on_disconnected(&mut self, error: String) {
        let was_up = self.session.take().is_some();
        if was_up || self.last_error.as_deref() != Some(error.as_str()) {
            (self.cfg.on_status)(&format!("disconnected: {error}"));
            self.push_event(events::disconnected(&error), None);
        }
        self.last_error = Some(error);
    }

    /// Keeps room watermarks, starts new rooms at their last message (so the
    /// first run replays nothing) and tells Jeedom when the set changed.
    fn on_rooms(&mut self, list: Vec<Room>) {
        let mut next = BTreeMap::new();
        for room in list {
            let rs = match self.state.rooms.get(&room.id) {
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
        let changed = !same_rooms(&self.state.rooms, &next);
        // Until a new room's starting point is on disk, a power cut would
        // make its first messages look older than the room.
        self.sync_now |= next.keys().any(|id| !self.state.rooms.contains_key(id));
        self.state.rooms = next;
        self.log(Op::Rooms {
            rooms: self.state.rooms.clone(),
        });
        if changed || !self.rooms_announced {
            log::info!("{} rooms", self.state.rooms.len());
            self.rooms_announced = true;
            self.queue_room_change();
        }
    }

    /// A new message becomes an event (`replay`: it may have been delivered
    /// by a run that crashed).
    pub(super) fn on_message(&mut self, m: Incoming, replay: bool) {
        if !self.state.rooms.contains_key(&m.room_id) {
            self.add_unknown_room(&m);
        }
        let Some(rs) = self.state.rooms.get_mut(&m.room_id) else {
            return;
        };
        // Ids decide (server times differ between instances and step); only
        // a message older than the id memory (an update of an old message)
        // is judged by its time.
        if rs.has_seen(&m.id) || rs.is_old(m.ts_ms) {
            log::debug!("message {} already handled", m.id);
            return;
        }
        rs.remember(&m.id, m.ts_ms);
        let room = rs.room.clone();
        self.log(Op::Seen {
            room: m.room_id.clone(),
            id: m.id.clone(),
            ts_ms: m.ts_ms,
        });
        let mut ev = match self.answer_ask(&m, &room) {
            Some(answer) => answer,
            None => {
                log::info!(
                    "message {} from {} in {} → Jeedom{}",
                    m.id,
                    m.user.username,
                    room.name,
                    if replay { " (replay)" } else { "" }
                );
                let bot = self.state.username.as_deref().unwrap_or_default();
                events::message(&m, &room, bot)
            }
        };
        if replay {
            ev.mark_replay();
        }
        // A stamp ahead of this clock is not taken as the watermark: the next
        // catch-up would start after messages not yet posted.
        let mark = m.ts_ms.min(now_ms());
        self.push_event(ev, Some((m.room_id, mark)));
    }

    /// A message in a room the list does not have yet. A direct room is known
    /// well enough to be announced at once, before its message, so that
    /// Jeedom has the device; any other waits for the list, announced then
    /// even if it matches.
    fn add_unknown_room(&mut self, m: &Incoming) {
        let bot = self.state.username.clone().unwrap_or_default();
        let rs = unknown_room(m, &bot);
        let direct = rs.room.kind == RoomKind::Direct;
        self.log(Op::Room { room: rs.clone() });
        self.state.rooms.insert(m.room_id.clone(), rs);
        if direct {
            log::info!("new direct message from {}", m.user.username);
            self.queue_room_change();
        } else {
            self.rooms_announced = false;
        }
    }

    /// A reply to the newest pending ask of the room becomes `ask_answer`.
    /// A leading mention of the bot does not count (`@jeedombot yes`).
    fn answer_ask(&mut self, m: &Incoming, room: &Room) -> Option<events::Event> {
        let reply = query(&m.text, self.state.username.as_deref().unwrap_or_default());
        let ask = self.state.asks.iter_mut().rev().find(|a| {
            a.closing.is_none()
                && a.room.id == room.id
                && a.mention
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(&m.user.username))
        })?;
        let answer = match_answer(&ask.answers, &reply)?;
        log::info!(
            "ask {} answered \"{answer}\" by {}",
            ask.ask_id,
            m.user.username
        );
        ask.closing = Some(closed_text(
            &ask.question,
            Closed::Answered {
                answer: &answer,
                by: &m.user.username,
            },
        ));
        let ev = events::ask_answer(&m.id, &ask.ask_id, &answer, &m.user, room);
        let (id, rid, text) = (
            ask.message_id.clone(),
            ask.room.id.clone(),
            ask.closing.clone().unwrap_or_default(),
        );
        self.log_asks();
        self.request_edit(id, rid, text);
        Some(ev)
    }

    pub(super) fn expire_asks(&mut self) {
        let now = now_ms();
        let mut expired = Vec::new();
        for a in self
            .state
            .asks
            .iter_mut()
            .filter(|a| a.closing.is_none() && a.expires_ms <= now)
        {
            a.closing = Some(closed_text(&a.question, Closed::Expired));
            expired.push((
                a.ask_id.clone(),
                a.message_id.clone(),
                a.room.id.clone(),
                a.closing.clone().unwrap_or_default(),
            ));
        }
        if !expired.is_empty() {
            self.log_asks();
        }
        for (ask_id, id, rid, text) in expired {
            log::info!("ask {ask_id} expired");
            self.push_event(events::ask_expired(&ask_id), None);
            self.request_edit(id, rid, text);
        }
    }

    pub(super) fn next_ask_expiry(&self) -> Option<Instant> {
        let soonest = self
            .state
            .asks
            .iter()
            .filter(|a| a.closing.is_none())
            .map(|a| a.expires_ms)
            .min()?;
        let wait = u64::try_from(soonest - now_ms()).unwrap_or(0);
        Some(Instant::now() + Duration::from_millis(wait))
    }

    /// Records the pending asks (a short list: written whole).
    pub(super) fn log_asks(&mut self) {
        self.log(Op::Asks {
            asks: self.state.asks.clone(),
        });
    }

    fn request_edit(&mut self, message_id: String, room_id: String, text: String) {
        if self.session.is_some() {
            self.links.realtime.send(RtCommand::UpdateMessage {
                message_id,
                room_id,
                text,
            });
        }
    }

    fn resend_closing_edits(&mut self) {
        let edits: Vec<_> = self
            .state
            .asks
            .iter()
            .filter_map(|a| Some((a.message_id.clone(), a.room.id.clone(), a.closing.clone()?)))
            .collect();
        for (id, rid, text) in edits {
            self.request_edit(id, rid, text);
        }
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
