//! The realtime thread: one DDP websocket to Rocket.Chat, reconnected forever.
mod catchup;
mod history;
mod http;
mod inbox;
mod link;
mod live;
mod pacer;
mod session;

use crate::backoff::Backoff;
use crate::bus::{CoreMsg, RtCommand, RtEvent, ToRealtime};
use crate::config::{Credentials, ServerUrl};
use crate::error::{Error, Protocol};
use crate::model::{Room, Secret, Session};
use inbox::{Inbox, Waited};
use live::{End, Live, Update};
use log::{error, info, warn};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why a step of the realtime thread ended early: the daemon is stopping
/// (control flow, not an error: nothing is reported), or it failed.
#[derive(Debug)]
enum Halt {
    Stopping,
    Failed(Error),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Halt {
        Halt::Failed(e)
    }
}

impl From<Protocol> for Halt {
    fn from(p: Protocol) -> Halt {
        Halt::Failed(Error::from(p))
    }
}

impl From<tungstenite::Error> for Halt {
    fn from(e: tungstenite::Error) -> Halt {
        Halt::Failed(Error::from(e))
    }
}

pub use session::Progress;

/// Longest delay between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Delay between password logins refused for a code sent by e-mail: each
/// attempt makes the server e-mail the bot account a new code.
pub const EMAIL_2FA_RETRY: Duration = Duration::from_secs(3600);
/// Longest wait for each answer of the server while setting up a session.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// What the realtime thread needs to know.
#[derive(Clone)]
pub struct RealtimeConfig {
    pub server: ServerUrl,
    pub credentials: Credentials,
    pub tls: Arc<rustls::ClientConfig>,
    /// Silence before pinging the server, and again before giving up on it.
    pub heartbeat: Duration,
    /// User id and resume token from the state file.
    pub resume: Option<(String, Secret)>,
    /// Called on every turn of the loop while it works as meant (feeds the
    /// systemd watchdog).
    pub alive: Arc<dyn Fn() + Send + Sync>,
    /// Longest time between two `alive` calls: an idle thread wakes up for
    /// it. `None`: no need (no watchdog).
    pub alive_every: Option<Duration>,
}

impl std::fmt::Debug for RealtimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeConfig")
            .field("server", &self.server.websocket)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

/// The thread's ends of the channels, and its stop flag.
struct Wiring {
    to_core: Sender<CoreMsg>,
    /// The core's commands and the websocket's bytes.
    inbox: Inbox,
    shutdown: Arc<AtomicBool>,
    alive: Arc<dyn Fn() + Send + Sync>,
    /// Longest sleep of an idle wait (see [`RealtimeConfig::alive_every`]).
    longest_sleep: Duration,
}

impl Wiring {
    /// The daemon is stopping: the flag is set, or the core dropped its
    /// command sender (which is also what wakes a sleeping thread).
    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed) || self.inbox.core_gone()
    }
}

/// Starts the `realtime` thread; answers it and the core's end of its inbox.
/// It reports to the core and never gives up until the core drops that end
/// (the stop's wake-up) or, while it is not sleeping, `shutdown` is set.
pub fn spawn(
    cfg: RealtimeConfig,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
) -> std::io::Result<(JoinHandle<()>, ToRealtime)> {
    let inbox = Inbox::new();
    let commands = inbox.core_end();
    let wiring = Wiring {
        to_core,
        inbox,
        shutdown,
        alive: cfg.alive.clone(),
        longest_sleep: cfg.alive_every.unwrap_or(Duration::MAX),
    };
    let handle = std::thread::Builder::new()
        .name("realtime".into())
        .spawn(move || run(&cfg, &wiring))?;
    Ok((handle, commands))
}

/// For `--check`: connects, logs in, lists the rooms and disconnects, each
/// server answer bounded by `timeout`.
/// The error comes with the step it stopped at.
pub fn probe(
    cfg: &RealtimeConfig,
    timeout: Duration,
) -> Result<(Session, Vec<Room>), (Progress, Error)> {
    let shutdown = Arc::new(AtomicBool::new(false));
    let inbox = Inbox::new();
    let mut resume = initial_resume(cfg);
    let mut step = Progress::Connect;
    let opened = session::open(cfg, &mut resume, (&inbox, &shutdown), timeout, &mut step);
    let opened = opened.map_err(|h| match h {
        Halt::Failed(e) => (step, e),
        // Nothing stops a probe: it has no core and no stop flag of its own.
        Halt::Stopping => (step, Protocol::Interrupted.into()),
    })?;
    opened.link.close();
    Ok((opened.session, opened.rooms))
}

/// The state file's token serves password logins only: a personal access
/// token is itself what the thread resumes with.
fn initial_resume(cfg: &RealtimeConfig) -> session::Resume {
    match cfg.credentials {
        Credentials::Password { .. } => cfg.resume.clone(),
        Credentials::Token { .. } => None,
    }
}

/// Reconnects forever with backoff; returns on shutdown.
fn run(cfg: &RealtimeConfig, w: &Wiring) {
    let mut resume = initial_resume(cfg);
    let mut backoff = Backoff::with_jitter(Duration::from_secs(1), MAX_BACKOFF);
    let mut updates = VecDeque::new();
    while !w.stopping() {
        match serve(cfg, w, &mut resume, &mut updates, &mut backoff) {
            Ok(End::Shutdown) | Err(Halt::Stopping) => break,
            Ok(End::Relogin) => {
                info!("Rocket.Chat refused the token: logging in again");
                forget_token(cfg, &mut resume);
                emit(
                    w,
                    RtEvent::Disconnected {
                        error: "logging in again".into(),
                    },
                );
            }
            Err(Halt::Failed(e)) => {
                emit(
                    w,
                    RtEvent::Disconnected {
                        error: e.chain().to_string(),
                    },
                );
                let delay = retry_delay(&mut backoff, &e);
                info!("retrying in {} s", delay.as_secs().max(1));
                wait(w, delay, cfg, &mut resume, &mut updates);
            }
        }
    }
    info!("realtime thread stopped");
}

/// One connection: open, report, serve until it ends.
fn serve(
    cfg: &RealtimeConfig,
    w: &Wiring,
    resume: &mut session::Resume,
    updates: &mut VecDeque<Update>,
    backoff: &mut Backoff,
) -> Result<End, Halt> {
    let opened = session::open(
        cfg,
        resume,
        (&w.inbox, &w.shutdown),
        REPLY_TIMEOUT,
        &mut Progress::Connect,
    );
    let opened = opened.inspect_err(|e| {
        if let Halt::Failed(e) = e {
            error!("cannot connect to Rocket.Chat: {}", e.chain());
        }
    })?;
    backoff.reset();
    let s = &opened.session;
    info!(
        "connected to Rocket.Chat {} as {}",
        s.server_version, s.username
    );
    info!("member of {} room(s)", opened.rooms.len());
    emit(w, RtEvent::Connected(opened.session.clone()));
    emit(w, RtEvent::Rooms(opened.rooms.clone()));
    let history = history::History {
        base: cfg.server.base.clone(),
        tls: cfg.tls.clone(),
        user_id: opened.session.user_id.clone(),
        token: opened.session.token.clone(),
    };
    let mut live = Live::new(opened.link, (opened.session, opened.rooms), history, w);
    let end = live.run(updates);
    updates.extend(live.unanswered());
    live.link.close();
    if let Err(Halt::Failed(e)) = &end {
        warn!("disconnected from Rocket.Chat: {}", e.chain());
    }
    end
}

/// The backoff delay; a refused login that keeps failing is retried at
/// most once a minute (jitter would otherwise allow twice), and once an
/// hour when each attempt e-mails the account a two-factor code.
fn retry_delay(backoff: &mut Backoff, e: &Error) -> Duration {
    let delay = backoff.next_delay();
    if matches!(e, Error::TotpRequired { method } if method == "email") {
        return EMAIL_2FA_RETRY;
    }
    let refused = matches!(e, Error::Login { .. } | Error::TotpRequired { .. });
    if refused && backoff.peek() >= MAX_BACKOFF {
        MAX_BACKOFF
    } else {
        delay
    }
}

fn forget_token(cfg: &RealtimeConfig, resume: &mut session::Resume) {
    if matches!(cfg.credentials, Credentials::Password { .. }) {
        *resume = None;
    }
}

fn emit(w: &Wiring, event: RtEvent) {
    let _ = w.to_core.send(CoreMsg::Realtime(event));
}

/// Waits out a backoff delay, keeping the commands that arrive meanwhile;
/// returns early when the core goes (the daemon is stopping).
fn wait(
    w: &Wiring,
    delay: Duration,
    cfg: &RealtimeConfig,
    resume: &mut session::Resume,
    updates: &mut VecDeque<Update>,
) {
    let end = Instant::now() + delay;
    while !w.stopping() {
        while let Some(command) = w.inbox.take_command() {
            match command {
                RtCommand::UpdateMessage {
                    message_id,
                    room_id,
                    text,
                } => updates.push_back(Update {
                    message_id,
                    room_id,
                    text,
                }),
                RtCommand::Relogin => forget_token(cfg, resume),
            }
        }
        // Waiting out a backoff is the loop working as meant: the systemd
        // watchdog must only fire when the loop itself is stuck.
        (w.alive)();
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || w.inbox.wait(left.min(w.longest_sleep)) == Waited::Stop {
            return;
        }
    }
}

#[cfg(test)]
mod test_peer;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_backoff {
    use super::*;

    #[test]
    fn refused_logins_settle_at_one_attempt_a_minute() {
        let mut b = Backoff::with_jitter(Duration::from_secs(1), MAX_BACKOFF);
        let refused = Error::Login {
            reason: "incorrect password".into(),
        };
        let delays: Vec<Duration> = (0..10).map(|_| retry_delay(&mut b, &refused)).collect();
        assert!(delays[0] <= Duration::from_secs(1));
        assert!(delays[7..].iter().all(|d| *d == MAX_BACKOFF), "{delays:?}");
        let other = Error::Protocol(Protocol::CallLost);
        assert!(retry_delay(&mut b, &other) >= MAX_BACKOFF / 2);
    }

    #[test]
    fn a_code_sent_by_email_is_not_triggered_again_before_an_hour() {
        let mut b = Backoff::with_jitter(Duration::from_secs(1), MAX_BACKOFF);
        let email = Error::TotpRequired {
            method: "email".into(),
        };
        assert_eq!(retry_delay(&mut b, &email), EMAIL_2FA_RETRY);
        assert!(email.to_string().contains("by e-mail"), "{email}");
        let app = Error::TotpRequired {
            method: "totp".into(),
        };
        assert!(retry_delay(&mut b, &app) <= MAX_BACKOFF);
        assert!(app.to_string().contains("authenticator app"), "{app}");
    }
}
#[cfg(test)]
mod tests_tls;
