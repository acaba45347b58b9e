//! The core thread: owns the state, routes between Jeedom and Rocket.Chat.
mod closing;
mod inbound;
mod intake;
mod outbound;
mod queue;
mod replay;
pub(crate) mod saver;

use crate::bus::{CallbackJob, CoreMsg, Reply, SendJob, ToRealtime};
use crate::journal::Op;
use crate::model::Session;
use crate::state::State;
use intake::Intake;
use saver::{Saver, Ticket};
use std::collections::HashSet;
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

/// The core's own state besides the persisted [`State`].
pub struct Core {
    cfg: CoreConfig,
    links: Links,
    state: State,
    saver: Saver,
    /// Make the next changes durable now, though nobody waits for them.
    sync_now: bool,
    /// Socket connections, to take their requests in order.
    intake: Intake,
    /// Socket replies held until the request they answer is on disk.
    waiters: Vec<Waiter>,
    session: Option<Session>,
    last_error: Option<String>,
    callback_error: Option<String>,
    /// When the last "queue full" warning was logged.
    dropping_warned: Option<Instant>,
    /// Sequence number of the last event of the batch being posted.
    cb_inflight: Option<u64>,
    send_inflight: Option<String>,
    send_retry_at: Option<Instant>,
    rooms_announced: bool,
    /// Rooms whose missed messages may include some a crashed run delivered.
    suspect: HashSet<String>,
    /// Requests a crashed run may have posted and reported to Jeedom.
    suspect_sends: HashSet<String>,
    started: Instant,
    stopping: bool,
}

/// A reply waiting for its request to be on disk.
struct Waiter {
    key: String,
    reply: Reply,
    /// Its request is in the journal (or a fold), and may be handed out.
    written: bool,
    /// The durable write it waits for.
    ticket: Option<Ticket>,
}

impl Core {
    pub fn new(cfg: CoreConfig, links: Links, state: State, saver: Saver) -> Core {
        let mut core = Core {
            cfg,
            links,
            state,
            saver,
            sync_now: false,
            intake: Intake::default(),
            waiters: Vec::new(),
            session: None,
            last_error: None,
            callback_error: None,
            dropping_warned: None,
            cb_inflight: None,
            send_inflight: None,
            send_retry_at: None,
            rooms_announced: false,
            suspect: HashSet::new(),
            suspect_sends: HashSet::new(),
            started: Instant::now(),
            stopping: false,
        };
        core.after_unclean_start();
        core.saver.open(&mut core.state);
        core
    }

    /// Records a change of the state for the journal.
    fn log(&mut self, op: Op) {
        self.saver.log(&op);
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
        let done = self.saver.close(&mut self.state);
        self.answer_waiters(
            done.map_err(|e| format!("cannot write the state file: {}", e.chain())),
        );
        self.state
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
        if let Some(t) = self.send_retry_at {
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
            self.refuse_unwritten(&e);
        }
        for w in self.waiters.iter_mut() {
            w.written = true;
        }
    }

    /// Asks for a sync when a reply waits for one (the replies that arrived
    /// together share it), or when the last sync is old; folds when due.
    fn make_durable(&mut self) {
        let now = Instant::now();
        let fresh = self.waiters.iter().any(|w| w.ticket.is_none());
        if fresh || std::mem::take(&mut self.sync_now) || self.saver.sync_due(now) {
            match self.saver.sync() {
                Some(ticket) => self.assign(ticket),
                // Everything written is already synced.
                None if self.saver.fault().is_none() => self.on_saved(0, None),
                None => {}
            }
        }
        if self.saver.fold_due(now) {
            if let Ok(ticket) = self.saver.fold(&mut self.state) {
                self.assign(ticket);
            }
        }
    }

    /// The waiters without a durable write wait for `ticket`.
    fn assign(&mut self, ticket: Ticket) {
        for w in self.waiters.iter_mut().filter(|w| w.ticket.is_none()) {
            w.ticket = Some(ticket);
        }
    }

    /// The journal write failed: the requests it carried are taken back
    /// (none was handed out yet) and their clients told.
    fn refuse_unwritten(&mut self, error: &str) {
        let (refused, kept) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| !w.written);
        self.waiters = kept;
        for w in refused {
            self.take_back(&w.key);
            w.reply.send(crate::bridge::error_json(error));
        }
    }

    /// Durable write `id` is done: the replies waiting for it go out. After
    /// an error they wait for the next successful write (their requests may
    /// already be posted: an error reply would say they were not).
    fn on_saved(&mut self, id: Ticket, error: Option<String>) {
        if id == 0 {
            self.answer_done(|w| w.written && w.ticket.is_none());
            return;
        }
        if !self.saver.on_saved(id, error) {
            for w in self.waiters.iter_mut() {
                w.ticket = w.ticket.filter(|t| *t > id);
            }
            return;
        }
        self.answer_done(|w| w.ticket.is_some_and(|t| t <= id));
    }

    fn answer_done(&mut self, durable: impl Fn(&Waiter) -> bool) {
        let (done, kept) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| durable(w));
        self.waiters = kept;
        for w in done {
            w.reply.send(serde_json::json!({"ok": true}));
        }
    }

    /// At the stop: every reply still waiting gets its `ok` once the state
    /// is written whole. If even that fails, they get no answer: their
    /// requests were handed out, and an error would say they were not.
    fn answer_waiters(&mut self, written: Result<(), String>) {
        for w in self.waiters.drain(..) {
            match &written {
                Ok(()) => w.reply.send(serde_json::json!({"ok": true})),
                Err(e) => log::error!("request {}: not on disk at the stop: {e}", w.key),
            }
        }
    }

    fn status(&self) -> serde_json::Value {
        let s = self.session.as_ref();
        serde_json::json!({
            "ok": true,
            "connected": s.is_some(),
            "server_version": s.map(|s| s.server_version.as_str()),
            "user": s.map(|s| serde_json::json!({"id": s.user_id, "username": s.username})),
            "rooms": self.state.rooms.len(),
            "queues": {"events": self.state.events.len(), "outbox": self.state.outbox.len(),
                       "asks": self.state.asks.len()},
            "last_error": self.last_error,
            "callback_error": self.callback_error,
            "uptime_s": self.started.elapsed().as_secs(),
        })
    }
}

#[cfg(test)]
mod tests;
