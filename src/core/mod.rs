//! The core thread: owns the state, routes between Jeedom and Rocket.Chat.
mod closing;
mod inbound;
mod outbound;
mod queue;
mod replay;

use crate::bus::{CallbackJob, CoreMsg, RtCommand, SendJob};
use crate::model::Session;
use crate::state::{self, State};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Longest sleep of the core loop when nothing is scheduled.
const IDLE: Duration = Duration::from_secs(60);

/// Settings the core needs.
pub struct CoreConfig {
    pub state_path: PathBuf,
    pub cycle: Duration,
    /// Called with a one-line connection status (systemd `STATUS=`).
    pub on_status: Box<dyn Fn(&str) + Send>,
}

/// Channels to the other threads.
pub struct Links {
    /// `None` without `--callback`: events are only logged.
    pub callback: Option<Sender<CallbackJob>>,
    pub sender: Sender<SendJob>,
    pub realtime: Sender<RtCommand>,
}

/// The core's own state besides the persisted [`State`].
pub struct Core {
    cfg: CoreConfig,
    links: Links,
    state: State,
    dirty: bool,
    /// Write at the next pump, whatever the cycle.
    save_now: bool,
    last_save: Option<Instant>,
    /// Socket replies held until the request they answer is on disk.
    waiters: Vec<Sender<serde_json::Value>>,
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

impl Core {
    pub fn new(cfg: CoreConfig, links: Links, state: State) -> Core {
        let mut core = Core {
            cfg,
            links,
            state,
            dirty: false,
            save_now: false,
            last_save: None,
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
        core
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
            // Take everything already waiting before paying for a save.
            while let Ok(msg) = inbox.try_recv() {
                self.handle(msg);
            }
            self.pump();
        }
        self.prepare_clean_stop();
        self.save();
        self.state
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::Accept { item, reply } => self.accept(item, reply),
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

    /// Everything time-driven: expiries, saving, handing out work.
    fn pump(&mut self) {
        self.expire_asks();
        if self.dirty && self.save_due() <= Instant::now() {
            self.save();
        }
        self.dispatch_callback();
        self.dispatch_send();
    }

    fn next_wakeup(&self) -> Instant {
        let mut at = Instant::now() + IDLE;
        if self.dirty {
            at = at.min(self.save_due());
        }
        if let Some(t) = self.send_retry_at {
            at = at.min(t);
        }
        if let Some(t) = self.next_ask_expiry() {
            at = at.min(t);
        }
        at
    }

    /// The state is written at most once per cycle, except when a socket
    /// client waits for its request to be on disk (Jeedom's PHP never reads
    /// the reply: a burst held for a whole cycle would fill the 32 connection
    /// slots and lose requests; the clients waiting together share one write)
    /// and right after the bot joined a room (until that room's starting point
    /// is on disk, a crash would make its first messages look older than it).
    fn save_due(&self) -> Instant {
        if self.save_now || !self.waiters.is_empty() {
            return Instant::now();
        }
        self.last_save
            .map_or_else(Instant::now, |t| t + self.cfg.cycle)
    }

    fn save(&mut self) {
        match state::save(&self.cfg.state_path, &self.state) {
            Ok(()) => {
                self.dirty = false;
                self.save_now = false;
                for w in self.waiters.drain(..) {
                    let _ = w.send(serde_json::json!({"ok": true}));
                }
            }
            Err(e) => {
                log::error!("cannot write the state file: {e}");
                let error = format!("cannot write the state file: {e}");
                for w in self.waiters.drain(..) {
                    let _ = w.send(crate::jeedom::socket::error_json(&error));
                }
            }
        }
        self.last_save = Some(Instant::now());
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
#[path = "tests.rs"]
mod tests;
