//! What arrives from Rocket.Chat: session changes, rooms, messages, ask answers.
use super::Core;
use crate::bridge::clock::now_ms;
use crate::bridge::events;
use crate::bus::{RtCommand, RtEvent};
use crate::model::{Incoming, Room, Session};
use std::time::{Duration, Instant};

impl Core {
    pub(super) fn on_realtime(&mut self, ev: RtEvent) {
        match ev {
            RtEvent::Connected(s) => self.on_connected(s),
            RtEvent::Disconnected { error } => {
                let ev = events::disconnected(&error);
                if self.conn.down(error) {
                    self.push_event(ev, None);
                }
            }
            RtEvent::Rooms(list) => self.on_rooms(list),
            RtEvent::Messages(list) => list.into_iter().for_each(|m| self.on_message(m, false)),
            RtEvent::Replayed { messages, rooms } => self.on_replayed(messages, rooms),
            RtEvent::Watermarks { reply } => {
                let _ = reply.send(self.rooms.watermarks());
            }
            RtEvent::Updated { message_id, error } => self.on_updated(&message_id, error),
        }
    }

    /// Logged in: Jeedom is told, the requests and the closing edits that
    /// waited for a session go.
    fn on_connected(&mut self, s: Session) {
        self.account.logged_in(&s, &mut self.saver);
        let ev = events::connected(&s.user_id, &s.username, &s.server_version);
        self.push_event(ev, None);
        self.conn.up(s);
        self.rooms.reconnected();
        self.outbox.reconnected();
        for edit in self.asks.closing_edits() {
            self.request_edit(edit);
        }
    }

    /// Tells Jeedom when the set of rooms changed (and after each connection).
    fn on_rooms(&mut self, list: Vec<Room>) {
        let listed = self.rooms.update(list, &mut self.saver);
        // Until a new room's starting point is on disk, a power cut would
        // make its first messages look older than the room.
        self.sync_now |= listed.new_room;
        if listed.announce {
            log::info!("{} rooms", self.rooms.len());
            self.queue_room_change();
        }
    }

    /// A new message becomes an event (`replay`: it may have been delivered
    /// by a run that crashed): an answer to an open question, or a message.
    pub(super) fn on_message(&mut self, m: Incoming, replay: bool) {
        let bot = self.account.bot().to_string();
        if !self.rooms.has(&m.room_id) && self.rooms.add_unknown(&m, &bot, &mut self.saver) {
            log::info!("new direct message from {}", m.user.username);
            self.queue_room_change();
        }
        let Some(room) = self.rooms.see(&m, &mut self.saver) else {
            return;
        };
        let mut ev = match self.asks.answer(&m, &room, &bot, &mut self.saver) {
            Some((answer, edit)) => {
                self.request_edit(edit);
                answer
            }
            None => {
                log::info!(
                    "message {} from {} in {} → Jeedom{}",
                    m.id,
                    m.user.username,
                    room.name,
                    if replay { " (replay)" } else { "" }
                );
                events::message(&m, &room, &bot)
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

    pub(super) fn expire_asks(&mut self) {
        for (ask_id, edit) in self.asks.expire(now_ms(), &mut self.saver) {
            log::info!("ask {ask_id} expired");
            self.push_event(events::ask_expired(&ask_id), None);
            self.request_edit(edit);
        }
    }

    pub(super) fn next_ask_expiry(&self) -> Option<Instant> {
        let soonest = self.asks.next_expiry()?;
        let wait = u64::try_from(soonest - now_ms()).unwrap_or(0);
        Some(Instant::now() + Duration::from_millis(wait))
    }

    /// A closing edit goes to the realtime thread while logged in (the
    /// others are sent again after the next login).
    fn request_edit(&mut self, edit: RtCommand) {
        if self.conn.session().is_some() {
            self.links.realtime.send(edit);
        }
    }
}
