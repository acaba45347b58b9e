//! The core thread: owns the state in parts, routes between Jeedom, Rocket.Chat and them.
//!
//! Each part owns its share of the state and changes it only through its
//! methods, which record each change for the journal ([`Journal`]): the
//! [`EventQueue`] (events for Jeedom), the [`Outbox`] (requests for
//! Rocket.Chat), the [`Asks`] (open questions), the [`Rooms`] (watermarks),
//! the [`Account`] (the last login), the [`Connection`] (session and errors,
//! for `status`), the [`Intake`] (order of socket requests), the [`Replies`]
//! (held until on disk) and the [`Saver`] (the disk). The core passes what
//! one part yields to the next.
mod account;
mod asks;
mod callback;
mod closing;
mod connection;
#[cfg(test)]
mod fixtures;
mod inbound;
mod intake;
mod outbound;
mod outbox;
mod queue;
mod replay;
mod replies;
mod rooms;
pub(crate) mod saver;

use crate::bus::{CallbackJob, CoreMsg, SendJob, ToRealtime};
use crate::journal::Op;
use crate::state::State;
use account::Account;
use asks::Asks;
use connection::Connection;
use intake::Intake;
use outbox::Outbox;
use queue::EventQueue;
use replies::Replies;
use rooms::Rooms;
use saver::Saver;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Longest sleep of the core loop when nothing is scheduled.
const IDLE: Duration = Duration::from_secs(60);

/// Settings the core needs.
pub struct CoreConfig {
    /// Called with a one-line connection status (systemd `STATUS=`).
    pub on_status: Box<dyn Fn(&str) + Send>,
}

/// Channels to the other threads.
pub struct Links {
    /// `None` without `--callback`: events are only logged.
    pub callback: Option<Sender<CallbackJob>>,
    pub sender: Sender<SendJob>,
    pub realtime: ToRealtime,
}

/// Where the parts record their changes: the saver's journal (a list in
/// their unit tests).
pub trait Journal {
    fn record(&mut self, op: Op);
}

impl Journal for Saver {
    fn record(&mut self, op: Op) {
        self.log(&op);
    }
}

#[cfg(test)]
impl Journal for Vec<Op> {
    fn record(&mut self, op: Op) {
        self.push(op);
    }
}

/// A part holding fields of the state file: they are moved into it at
/// start, and lent back to the state for each whole write.
pub trait Persisted: Default {
    /// Exchanges the part's persisted fields with the state's.
    fn swap(&mut self, state: &mut State);

    /// Takes the part's fields out of the state read at start.
    fn take(state: &mut State) -> Self {
        let mut part = Self::default();
        part.swap(state);
        part
    }
}

/// The core's parts, and the channels between them and the other threads.
pub struct Core {
    links: Links,
    /// The state file's own fields (server, login, clean stop, journal
    /// count); the parts lend it theirs for a whole write ([`Core::whole`]).
    state: State,
    saver: Saver,
    /// Make the next changes durable now, though nobody waits for them.
    sync_now: bool,
    intake: Intake,
    replies: Replies,
    queue: EventQueue,
    outbox: Outbox,
    asks: Asks,
    rooms: Rooms,
    account: Account,
    conn: Connection,
    stopping: bool,
}

impl Core {
    pub fn new(cfg: CoreConfig, links: Links, mut state: State, saver: Saver) -> Core {
        let mut core = Core {
            links,
            queue: EventQueue::take(&mut state),
            outbox: Outbox::take(&mut state),
            asks: Asks::take(&mut state),
            rooms: Rooms::take(&mut state),
            account: Account::take(&mut state),
            state,
            saver,
            sync_now: false,
            intake: Intake::default(),
            replies: Replies::default(),
            conn: Connection::new(cfg.on_status),
            stopping: false,
        };
        core.after_unclean_start();
        core.whole(|saver, state| saver.open(state));
        core
    }

    /// Lends the parts' persisted fields to the state for `f`, which writes
    /// it whole, and takes them back.
    fn whole<R>(&mut self, f: impl FnOnce(&mut Saver, &mut State) -> R) -> R {
        self.swap_parts();
        let r = f(&mut self.saver, &mut self.state);
        self.swap_parts();
        r
    }

    fn swap_parts(&mut self) {
        self.queue.swap(&mut self.state);
        self.outbox.swap(&mut self.state);
        self.asks.swap(&mut self.state);
        self.rooms.swap(&mut self.state);
        self.account.swap(&mut self.state);
    }

    /// The whole state, the parts' fields back in it.
    fn into_state(mut self) -> State {
        self.swap_parts();
        self.state
    }

    /// Runs until `Stop` (or every sender is gone); saves the state at the end.
    pub fn run(mut self, inbox: Receiver<CoreMsg>) -> State {
        self.pump();
        while !self.stopping {
            let wait = self.next_wakeup().saturating_duration_since(Instant::now());
            match inbox.recv_timeout(wait) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stopping = true,
            }
            // Take everything already waiting: one write for all of it.
            while let Ok(msg) = inbox.try_recv() {
                self.handle(msg);
            }
            self.pump();
        }
        self.prepare_clean_stop();
        let done = self.whole(|saver, state| saver.close(state));
        let done = done.map_err(|e| format!("cannot write the state file: {}", e.chain()));
        self.replies.close(done);
        self.into_state()
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Ticket { ticket, state } => {
                for (item, reply) in self.intake.report(ticket, state) {
                    self.accept(item, reply);
                }
            }
            CoreMsg::Saved { id, error } => self.on_saved(id, error),
            CoreMsg::Status { reply } => {
                let _ = reply.send(self.status());
            }
            CoreMsg::ResendRooms { reply } => {
                self.queue_rooms();
                let _ = reply.send(serde_json::json!({"ok": true}));
            }
            CoreMsg::Realtime(ev) => self.on_realtime(ev),
            CoreMsg::Callback(r) => self.on_callback(r),
            CoreMsg::Send(o) => self.on_send_outcome(o),
            CoreMsg::Stop => self.stopping = true,
        }
    }

    /// Everything time-driven: expiries, writing, handing out work. The
    /// changes are written (not synced) before a request goes out, so that a
    /// request the disk refuses is answered with an error and never posted.
    fn pump(&mut self) {
        self.expire_asks();
        // Events first: what they change is written right after, and a
        // crash in between only makes Jeedom get them again, as replays.
        self.dispatch_callback();
        self.write_changes();
        self.dispatch_send();
        // After the work is handed out: its threads are woken first.
        self.make_durable();
    }

    fn next_wakeup(&self) -> Instant {
        let mut at = Instant::now() + IDLE;
        if let Some(t) = self.saver.next_due() {
            at = at.min(t);
        }
        if let Some(t) = self.outbox.retry_at() {
            at = at.min(t);
        }
        if let Some(t) = self.next_ask_expiry() {
            at = at.min(t);
        }
        at
    }

    /// Writes the changes (a request the disk refuses is answered with an
    /// error here, before anything of it went out).
    fn write_changes(&mut self) {
        if let Err(e) = self.saver.flush() {
            let outbox = &mut self.outbox;
            self.replies
                .refuse_unwritten(&e, |key| outbox.take_back(key));
        }
        self.replies.written();
    }

    /// Asks for a sync when a reply waits for one (the replies that arrived
    /// together share it), or when the last sync is old; folds when due.
    fn make_durable(&mut self) {
        let now = Instant::now();
        let fresh = self.replies.want_sync();
        if fresh || std::mem::take(&mut self.sync_now) || self.saver.sync_due(now) {
            match self.saver.sync() {
                Some(ticket) => self.replies.assign(ticket),
                // Everything written is already synced.
                None if self.saver.fault().is_none() => self.replies.already_durable(),
                None => {}
            }
        }
        if self.saver.fold_due(now) {
            if let Ok(ticket) = self.whole(|saver, state| saver.fold(state)) {
                self.replies.assign(ticket);
            }
        }
    }

    /// Durable write `id` is done: the replies waiting for it go out. After
    /// an error they wait for the next successful write.
    fn on_saved(&mut self, id: saver::Ticket, error: Option<String>) {
        if self.saver.on_saved(id, error) {
            self.replies.durable(id);
        } else {
            self.replies.not_durable(id);
        }
    }

    fn status(&self) -> serde_json::Value {
        let queues = serde_json::json!({"events": self.queue.len(),
            "outbox": self.outbox.len(), "asks": self.asks.len()});
        self.conn.status(self.rooms.len(), queues)
    }
}

#[cfg(test)]
mod tests;
