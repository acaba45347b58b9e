//! Messages exchanged between the daemon's threads over `std::sync::mpsc`.
//!
//! The core thread owns the state; every other thread owns its own socket and
//! talks to the core with [`CoreMsg`]. The core answers socket requests
//! through the [`Reply`] carried in the message. The bus imports neither side.
//!
//! Errors travel as text where the receiver only shows or forwards them; a
//! difference a receiver acts on is a variant of its own (`SendOutcome::Retry`
//! and `Unauthorized` apart from `Failed`, an edit done or refused).
use crate::model::{Incoming, Outgoing, Room, Session};
use serde_json::{value::RawValue, Value};
use std::sync::mpsc::Sender;
use std::time::Duration;

/// Everything the core thread receives.
#[derive(Debug)]
pub enum CoreMsg {
    /// What became of command-socket connection `ticket` (numbered in the
    /// order they were accepted): requests are taken in that order.
    Ticket { ticket: u64, state: TicketState },
    /// The saver thread finished durable write `id` (an error: not written).
    /// Text: whatever the cause (full disk, EIO), the core does the same:
    /// it holds the replies and retries by a fold; the text reaches the log
    /// and the refusals.
    Saved { id: u64, error: Option<String> },
    /// The `status` action.
    Status { reply: Sender<Value> },
    /// The `rooms` action: queue the `rooms` event again.
    ResendRooms { reply: Sender<Value> },
    /// From the realtime thread.
    Realtime(RtEvent),
    /// From the callback worker.
    Callback(CallbackReport),
    /// From the send worker.
    Send(SendOutcome),
    /// SIGTERM, SIGINT or the `stop` action.
    Stop,
}

/// Where a command-socket connection stands.
#[derive(Debug)]
pub enum TicketState {
    /// A `send`/`ask` was read; its files are being spooled.
    Reading,
    /// No complete request yet: later connections need not wait for it.
    Idle,
    /// A `send`/`ask` ready to queue (files spooled); the reply goes out
    /// once it is on disk.
    Accept { item: Box<Outgoing>, reply: Reply },
    /// Nothing to queue (another action, a refusal, a closed connection).
    Done,
}

/// Where a reply goes: a sink the socket side hands over with the request
/// (the client's socket itself; its thread has ended, nobody waits), so that
/// the core answers without knowing the socket side.
pub struct Reply(Box<dyn FnOnce(Value) + Send>);

impl Reply {
    pub fn new(deliver: impl FnOnce(Value) + Send + 'static) -> Reply {
        Reply(Box::new(deliver))
    }

    /// A test stands in for the client.
    #[cfg(test)]
    pub fn channel(tx: Sender<Value>) -> Reply {
        Reply::new(move |answer| {
            let _ = tx.send(answer);
        })
    }

    /// Sends the reply; a client that left is not an error.
    pub fn send(self, answer: Value) {
        (self.0)(answer)
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

/// Reports of the realtime (websocket) thread.
#[derive(Debug)]
pub enum RtEvent {
    /// Logged in and subscribed.
    Connected(Session),
    /// The link went down or the login failed; the thread retries by itself.
    /// Text: the core only shows it (`status`, the `disconnected` event).
    Disconnected { error: String },
    /// Every room the bot is a member of, after each (re)connection and change.
    Rooms(Vec<Room>),
    /// New messages from people, in the server's order (oldest first).
    Messages(Vec<Incoming>),
    /// The messages a catch-up found (oldest first, possibly none) and the
    /// rooms whose missed messages were loaded.
    Replayed {
        messages: Vec<Incoming>,
        rooms: Vec<String>,
    },
    /// Asks the core for each room's watermark (server ms of the last message
    /// acknowledged by Jeedom), to catch up after a (re)connection.
    Watermarks { reply: Sender<Vec<(String, i64)>> },
    /// Outcome of an [`RtCommand::UpdateMessage`].
    Updated {
        message_id: String,
        /// The server's refusal, as text for Jeedom: the only kind that
        /// comes here (the realtime thread retries rate-limited edits itself
        /// and keeps unanswered ones for the next connection).
        error: Option<String>,
    },
}

/// Orders for the realtime thread.
#[derive(Debug)]
pub enum RtCommand {
    /// Edit one of the bot's messages through DDP `updateMessage`, dropping
    /// its attachments (used to close an ask).
    UpdateMessage {
        message_id: String,
        room_id: String,
        text: String,
    },
    /// The REST side saw its token refused: log in again.
    Relogin,
}

/// The core's end of the realtime thread's inbox: each command goes straight
/// in, and dropping it (the daemon is stopping) wakes the thread to stop.
pub struct ToRealtime(Box<dyn Fn(Option<RtCommand>) + Send>);

impl ToRealtime {
    /// `deliver` gets `Some` for each command, then `None` once, on drop.
    pub fn new(deliver: impl Fn(Option<RtCommand>) + Send + 'static) -> ToRealtime {
        ToRealtime(Box::new(deliver))
    }

    /// Hands a command over; after the thread's end it is dropped (nobody
    /// is left to carry it out).
    pub fn send(&self, command: RtCommand) {
        (self.0)(Some(command))
    }
}

impl Drop for ToRealtime {
    fn drop(&mut self) {
        (self.0)(None)
    }
}

/// Reports of the callback worker.
#[derive(Debug)]
pub enum CallbackReport {
    /// Jeedom acknowledged every event up to this sequence number.
    Delivered { upto_seq: u64 },
    /// A delivery attempt failed (kept for `status`); the worker retries.
    /// Text: shown only.
    Failed { error: String },
}

/// Orders for the callback worker.
#[derive(Debug)]
pub enum CallbackJob {
    /// Deliver these events (sequence numbers ascending, as the queue keeps
    /// their JSON text: copied into the POST as is); report `Delivered`.
    Batch { events: Vec<(u64, Box<RawValue>)> },
}

/// Orders for the send worker.
#[derive(Debug)]
pub struct SendJob {
    pub item: Outgoing,
    pub session: Session,
    pub rooms: Vec<Room>,
}

/// Reports of the send worker.
#[derive(Debug)]
pub enum SendOutcome {
    /// One more step of `key` is confirmed (persisted as `steps_done`).
    Progress { key: String, steps_done: u32 },
    /// Posted; `message_id` is the text message (the question, for an ask).
    Sent {
        key: String,
        room: Room,
        message_id: String,
    },
    /// Will not succeed by retrying (4xx, missing room, file refused).
    /// Text: the core ends the request the same way whatever the cause,
    /// and the text goes to Jeedom in `send_failed`.
    Failed { key: String, error: String },
    /// Failed for now; retry the same job after `after` (the worker chose
    /// it from the error). Text: only logged.
    Retry {
        key: String,
        error: String,
        after: Duration,
    },
    /// The token was refused (401): log in again, then retry.
    Unauthorized { key: String },
}
