//! The life of a logged-in link: messages, room changes, edits, catch-up.
use super::catchup::CatchUp;
use super::history::History;
use super::link::{Link, TICK};
use super::pacer::Pacer;
use super::Halt;
use super::Wiring;
use crate::bus::{CoreMsg, RtCommand, RtEvent};
use crate::error::Protocol;
use crate::model::{Room, Session};
use crate::rocketchat::ddp::{self, DdpError, ServerFrame};
use crate::rocketchat::message;
use log::{debug, info, warn};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Why a healthy link was left.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum End {
    Shutdown,
    Relogin,
}

/// An edit asked by the core, kept until the server answers it: editing
/// twice to the same text is harmless, so it is sent again after a reconnection.
#[derive(Debug, Clone)]
pub(super) struct Update {
    pub message_id: String,
    pub room_id: String,
    pub text: String,
}

/// What a method call was for.
enum Purpose {
    Update(Update),
    Rooms,
}

/// A method call, kept until the server answers it: a refusal of the rate
/// limiter sends it again.
struct Call {
    method: &'static str,
    params: Vec<Value>,
    purpose: Purpose,
    /// Held until then (a room change waits for the ones right after it).
    not_before: Option<Instant>,
}

/// How long a room list refresh waits for more changes: the server sends a
/// new room's `rooms-changed` and `subscriptions-changed` a few ms apart,
/// and one `rooms/get` answers both (the rate limiter counts every call).
const REFRESH_DELAY: Duration = Duration::from_millis(300);

pub(super) struct Live<'a> {
    pub link: Link<'a>,
    session: Session,
    rooms: Vec<Room>,
    catchup: CatchUp,
    /// The catch-up waits on the core's watermarks and on the server's
    /// answers: until it is done, the loop ticks to look at them.
    catching_up: bool,
    /// Calls waiting for the pacer, in order.
    queue: VecDeque<Call>,
    /// Calls sent, by method id, until answered.
    pending: HashMap<String, Call>,
    pacer: Pacer,
    /// A `rooms/get` is in flight, and another change came since it left.
    refreshing: bool,
    refresh_again: bool,
    /// The REST reads of the catch-up.
    history: History,
    wiring: &'a Wiring,
}

impl<'a> Live<'a> {
    pub fn new(
        link: Link<'a>,
        (session, rooms): (Session, Vec<Room>),
        history: History,
        wiring: &'a Wiring,
    ) -> Live<'a> {
        Live {
            history,
            link,
            session,
            rooms,
            catchup: CatchUp::start(&wiring.to_core),
            catching_up: true,
            queue: VecDeque::new(),
            pending: HashMap::new(),
            pacer: Pacer::default(),
            refreshing: false,
            refresh_again: false,
            wiring,
        }
    }

    /// Serves the link until shutdown, a re-login order or an error.
    pub fn run(&mut self, updates: &mut VecDeque<Update>) -> Result<End, Halt> {
        while let Some(u) = updates.pop_front() {
            self.send_update(u)?;
        }
        loop {
            if self.wiring.stopping() {
                return Ok(End::Shutdown);
            }
            if let Some(end) = self.take_commands()? {
                return Ok(end);
            }
            self.drive_catchup()?;
            let release = self.flush_calls()?;
            // Once caught up, the thread sleeps until a frame or a command
            // comes, a paced call may leave, or the heartbeat or the watchdog
            // is due.
            let mut wait = if self.catching_up {
                TICK
            } else {
                self.wiring.longest_sleep
            };
            if let Some(at) = release {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
            if let Some(frame) = self.link.recv(wait)? {
                self.dispatch(frame)?;
            }
            // Every turn proves the loop is not stuck (systemd watchdog); a dead
            // link is the heartbeat's business, not the watchdog's.
            (self.wiring.alive)();
        }
    }

    /// Edits not answered (sent or still waiting for the pacer), oldest
    /// first, to send again later.
    pub fn unanswered(&mut self) -> Vec<Update> {
        let mut sent: Vec<(u64, Call)> = self
            .pending
            .drain()
            .map(|(id, c)| (id.parse().unwrap_or(u64::MAX), c))
            .collect();
        sent.sort_by_key(|(n, _)| *n);
        let calls = sent.into_iter().map(|(_, c)| c).chain(self.queue.drain(..));
        calls
            .filter_map(|c| match c.purpose {
                Purpose::Update(u) => Some(u),
                Purpose::Rooms => None,
            })
            .collect()
    }

    /// Queues a method call; it leaves when the pacer allows.
    fn call(&mut self, method: &'static str, params: Vec<Value>, purpose: Purpose) {
        self.queue.push_back(Call {
            method,
            params,
            purpose,
            not_before: None,
        });
    }

    /// Sends the queued calls the pacer allows now, in order per method;
    /// returns when the next held one may leave.
    fn flush_calls(&mut self) -> Result<Option<Instant>, Halt> {
        let now = Instant::now();
        let mut held = VecDeque::new();
        let mut release: Option<Instant> = None;
        while let Some(c) = self.queue.pop_front() {
            let paced = self.pacer.ready_at(c.method, now);
            let later = c
                .not_before
                .filter(|t| *t > now)
                .into_iter()
                .chain(paced)
                .max();
            if let Some(at) = later {
                release = Some(release.map_or(at, |r| r.min(at)));
                held.push_back(c);
                continue;
            }
            let frame = self.link.ids.method(c.method, c.params.clone());
            let id = ddp::frame_id(&frame).unwrap_or_default().to_string();
            self.pacer.sent(c.method, now);
            // Recorded first, so that a call lost with the link is sent again.
            self.pending.insert(id, c);
            if let Err(e) = self.link.send(&frame) {
                self.queue = held;
                return Err(e);
            }
        }
        self.queue = held;
        Ok(release)
    }

    fn emit(&self, event: RtEvent) {
        // The core only goes away when the daemon stops.
        let _ = self.wiring.to_core.send(CoreMsg::Realtime(event));
    }

    fn take_commands(&mut self) -> Result<Option<End>, Halt> {
        while let Some(command) = self.wiring.inbox.take_command() {
            match command {
                RtCommand::UpdateMessage {
                    message_id,
                    room_id,
                    text,
                } => self.send_update(Update {
                    message_id,
                    room_id,
                    text,
                })?,
                RtCommand::Relogin => return Ok(Some(End::Relogin)),
            }
        }
        Ok(None)
    }

    /// `updateMessage` with exactly `_id`, `rid`, `msg` and no attachments:
    /// this is how an ask loses its buttons.
    fn send_update(&mut self, u: Update) -> Result<(), Halt> {
        let params = vec![json!({
            "_id": u.message_id, "rid": u.room_id, "msg": u.text, "attachments": []
        })];
        self.call("updateMessage", params, Purpose::Update(u));
        Ok(())
    }

    fn drive_catchup(&mut self) -> Result<(), Halt> {
        if let Some(marks) = self.catchup.poll_watermarks(Instant::now()) {
            let rooms: Vec<(Room, i64)> = marks
                .into_iter()
                .filter_map(|(id, mark)| {
                    let room = self.rooms.iter().find(|r| r.id == id)?;
                    Some((room.clone(), mark))
                })
                .collect();
            let api = self.history.clone();
            let fetch = Box::new(move |room: &Room, oldest: i64, most: usize| {
                api.since(room, oldest, most)
            });
            let nothing_to_load = rooms.is_empty();
            let early = self.catchup.begin(rooms, fetch);
            if nothing_to_load {
                // The core learns that this connection's catch-up is over.
                self.emit(RtEvent::Replayed {
                    messages: vec![],
                    rooms: vec![],
                });
            }
            if !early.is_empty() {
                self.emit(RtEvent::Messages(early));
            }
        }
        for done in self.catchup.poll(&self.session.user_id) {
            done.into_events().into_iter().for_each(|e| self.emit(e));
        }
        let was = std::mem::replace(&mut self.catching_up, !self.catchup.done());
        if was && !self.catching_up {
            info!("catch-up done: every room loaded");
        }
        Ok(())
    }

    fn dispatch(&mut self, frame: ServerFrame) -> Result<(), Halt> {
        match frame {
            ServerFrame::Result { id, result, error } => self.on_result(&id, result, error),
            ServerFrame::Changed {
                collection, fields, ..
            } => match collection.as_str() {
                "stream-room-messages" => self.on_message(fields.as_ref()),
                "stream-notify-user" => self.on_notify(fields.as_ref()),
                _ => Ok(()),
            },
            ServerFrame::Nosub { id, error } => {
                let why = error.as_ref().map(DdpError::text).unwrap_or_default();
                Err(Protocol::SubscriptionEnded { id, reason: why }.into())
            }
            ServerFrame::Error { reason } => {
                warn!(
                    "Rocket.Chat reported a DDP error: {}",
                    reason.unwrap_or_default()
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn on_result(
        &mut self,
        id: &str,
        result: Option<Value>,
        error: Option<DdpError>,
    ) -> Result<(), Halt> {
        let answer = error
            .is_none()
            .then(|| result.clone().unwrap_or(Value::Null));
        let Some(call) = self.pending.remove(id) else {
            return Ok(());
        };
        if let Some(wait) = error.as_ref().and_then(DdpError::rate_limit_wait) {
            info!(
                "Rocket.Chat's rate limiter refused {}: sending it again in {} ms",
                call.method,
                wait.as_millis()
            );
            self.pacer.refused(call.method, Instant::now(), wait);
            self.queue.push_front(call);
            return Ok(());
        }
        match call.purpose {
            Purpose::Update(u) => {
                let error = error.map(|e| e.text());
                match &error {
                    Some(e) => warn!("could not edit message {}: {e}", u.message_id),
                    None => debug!("message {} edited", u.message_id),
                }
                self.emit(RtEvent::Updated {
                    message_id: u.message_id,
                    error,
                });
                Ok(())
            }
            Purpose::Rooms => self.on_rooms(answer),
        }
    }

    fn on_message(&mut self, fields: Option<&Value>) -> Result<(), Halt> {
        let args = fields.and_then(|f| f.get("args")).and_then(Value::as_array);
        let Some(incoming) = args.and_then(|a| message::parse(a, &self.session.user_id)) else {
            return Ok(());
        };
        debug!(
            "message {} from {} in {}",
            incoming.id, incoming.user.username, incoming.room_id
        );
        if let Some(m) = self.catchup.live(incoming) {
            self.emit(RtEvent::Messages(vec![m]));
        }
        Ok(())
    }

    /// `[action, document]` of `<uid>/rooms-changed` and `<uid>/subscriptions-changed`.
    fn on_notify(&mut self, fields: Option<&Value>) -> Result<(), Halt> {
        let event = fields
            .and_then(|f| f.get("eventName"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let args = fields.and_then(|f| f.get("args")).and_then(Value::as_array);
        let (Some(action), Some(doc)) = (
            args.and_then(|a| a.first()).and_then(Value::as_str),
            args.and_then(|a| a.get(1)),
        ) else {
            return Ok(());
        };
        if event.ends_with("/rooms-changed") {
            self.on_room_changed(action, doc)
        } else if event.ends_with("/subscriptions-changed") {
            self.on_subscription_changed(action, doc)
        } else {
            Ok(())
        }
    }

    fn on_room_changed(&mut self, action: &str, doc: &Value) -> Result<(), Halt> {
        let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default();
        if action == "removed" {
            let before = self.rooms.len();
            self.rooms.retain(|r| r.id != id);
            if self.rooms.len() != before {
                self.rooms_changed();
            }
            return Ok(());
        }
        let Some(room) = message::parse_room(doc, &self.session.username) else {
            return Ok(());
        };
        match self.rooms.iter_mut().find(|r| r.id == room.id) {
            Some(old)
                if message::same_rooms(std::slice::from_ref(old), std::slice::from_ref(&room)) =>
            {
                old.last_message_ms = room.last_message_ms.or(old.last_message_ms);
                Ok(())
            }
            // A new room whose document says all Jeedom sees: no need to ask
            // for the list (each `rooms/get` counts against the rate limiter).
            None if complete(doc) => {
                self.rooms.push(room);
                self.rooms_changed();
                Ok(())
            }
            // Renamed, or a partial document: ask for the whole list.
            _ => self.refresh_rooms(),
        }
    }

    /// The bot joined or left a room (a person opening a DM with it too).
    fn on_subscription_changed(&mut self, action: &str, doc: &Value) -> Result<(), Halt> {
        let rid = doc.get("rid").and_then(Value::as_str);
        let known = rid.is_some_and(|rid| self.rooms.iter().any(|r| r.id == rid));
        if action == "inserted" && known {
            // Its room document came first and was taken already.
            return Ok(());
        }
        if action == "inserted" && complete(doc) {
            if let Some(room) = message::parse_room(doc, &self.session.username) {
                self.rooms.push(room);
                self.rooms_changed();
                return Ok(());
            }
        }
        if action == "inserted" || action == "removed" || !known {
            return self.refresh_rooms();
        }
        Ok(())
    }

    fn refresh_rooms(&mut self) -> Result<(), Halt> {
        if self
            .queue
            .iter()
            .any(|c| matches!(c.purpose, Purpose::Rooms))
        {
            // The refresh has not left yet: it will see this change too.
            return Ok(());
        }
        if self.refreshing {
            self.refresh_again = true;
            return Ok(());
        }
        self.queue.push_back(Call {
            method: "rooms/get",
            params: vec![],
            purpose: Purpose::Rooms,
            not_before: Some(Instant::now() + REFRESH_DELAY),
        });
        self.refreshing = true;
        Ok(())
    }

    fn on_rooms(&mut self, answer: Option<Value>) -> Result<(), Halt> {
        self.refreshing = false;
        match answer {
            Some(v) => {
                let rooms = message::parse_rooms(&v, &self.session.username);
                if !message::same_rooms(&self.rooms, &rooms) {
                    self.rooms = rooms;
                    self.rooms_changed();
                } else {
                    self.rooms = rooms;
                }
            }
            None => warn!("could not refresh the room list"),
        }
        if std::mem::take(&mut self.refresh_again) {
            self.refresh_rooms()?;
        }
        Ok(())
    }

    fn rooms_changed(&self) {
        info!("room list changed: {} room(s)", self.rooms.len());
        self.emit(RtEvent::Rooms(self.rooms.clone()));
    }
}

/// Whether a room or subscription document names the room as the room list
/// would: a channel or group with its `name`, a direct room with its
/// `usernames` (a subscription of a direct room only names the other member,
/// so the list is asked for instead).
pub(super) fn complete(doc: &Value) -> bool {
    let has = |k: &str| doc.get(k).is_some_and(|v| !v.is_null());
    match doc.get("t").and_then(Value::as_str) {
        Some("c" | "p") => has("name") && (has("fname") || !has("prid")),
        Some("d") => doc.get("usernames").is_some_and(Value::is_array),
        _ => false,
    }
}
