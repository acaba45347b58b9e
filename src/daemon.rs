//! The daemon's life: pid file, state, threads, and a clean stop on SIGTERM.
use crate::bus::CoreMsg;
use crate::config::{Config, Credentials};
use crate::core::saver::Saver;
use crate::core::{Core, CoreConfig, Links};
use crate::error::{Error, Result};
use crate::jeedom::{callback, files::FileRules, socket, spool::Spool};
use crate::pidfile::PidFile;
use crate::rocketchat::{realtime, rest::Rest, sender};
use crate::state::{self, Loaded, State};
use crate::systemd::Notifier;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the stop waits for threads before leaving them to the exit.
const JOIN_TIME: Duration = Duration::from_millis(300);

/// Runs the daemon until SIGTERM, SIGINT or the `stop` action.
pub fn run(cfg: Config) -> Result<()> {
    // Checked before anything is written: a second daemon on the same state
    // or port stops here, leaving the first one's files alone.
    // Every error before the start names the option behind it (cli.rs prints it).
    let mut lock = crate::instance::lock_state(&cfg.state)?;
    // A failed start leaves the state directory as it found it: the lock
    // file goes with `lock`, the spool directory here (if still empty).
    let spool_dir = spool_dir(&cfg);
    let had_spool = spool_dir.exists();
    let running = start(&cfg).inspect_err(|_| {
        if !had_spool {
            let _ = std::fs::remove_dir(&spool_dir);
        }
    })?;
    lock.keep();
    log::info!(
        "rocketchatd {} started; command socket on {}",
        env!("CARGO_PKG_VERSION"),
        cfg.socket
    );
    if let Some(n) = &running.notifier {
        n.ready();
    }
    let core_cfg = CoreConfig {
        on_status: status_hook(running.notifier.clone()),
    };
    Core::new(core_cfg, running.links, running.state, running.saver).run(running.inbox);
    // An upload in flight would otherwise hold the stop for its whole timeout.
    running.rest.shutdown();
    let notifier = running.notifier.as_ref();
    stop(&cfg, &running.shutdown, notifier, running.threads);
    Ok(())
}

/// A started daemon's parts, for the core and the stop.
struct Running {
    links: Links,
    state: State,
    saver: Saver,
    inbox: mpsc::Receiver<CoreMsg>,
    rest: Rest,
    notifier: Option<Notifier>,
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    _signals: signal_hook::iterator::Handle,
    _pid: Option<PidFile>,
}

/// Every step of the start that can fail, in order.
fn start(cfg: &Config) -> Result<Running> {
    let tls = crate::tls::client_config(cfg.ca_file.as_deref())?;
    let listener = TcpListener::bind(cfg.socket)
        .map_err(|e| Error::io(format!("cannot listen on {}", cfg.socket), e))
        .map_err(|e| e.for_option("socketport"))?;
    let state = load_state(cfg);
    let spool = open_spool(cfg, &state).map_err(|e| e.for_option("state"))?;
    let notifier = Notifier::from_env();
    let shutdown = Arc::new(AtomicBool::new(false));
    let (to_core, inbox) = mpsc::channel();
    let signals = watch_signals(to_core.clone())?;
    // After every step that can fail but starting threads, and within
    // milliseconds of the start (Jeedom polls for it): a failed start, even
    // one given the --pid of a daemon running on another state, never
    // replaced that daemon's pid file.
    let pid = cfg.pid.as_deref().map(PidFile::create).transpose();
    let pid = pid.map_err(|e| e.for_option("pid"))?;
    let mut threads = Vec::new();
    let socket_ctx = Arc::new(socket::Context::new(cfg.apikey.clone(), spool));
    threads.push(
        socket::spawn(listener, socket_ctx, to_core.clone(), shutdown.clone())
            .map_err(thread_error)?,
    );
    let rest = Rest::new(&cfg.server, tls.clone())?;
    let workers = (tls, rest.clone());
    let (links, more) = start_workers(cfg, &state, workers, &notifier, &to_core, &shutdown)?;
    threads.extend(more);
    let saver = Saver::spawn(cfg.state.clone(), to_core.clone(), test_sync_delay())?;
    Ok(Running {
        links,
        state,
        saver,
        inbox,
        rest,
        notifier,
        shutdown,
        threads,
        _signals: signals,
        _pid: pid,
    })
}

/// Test hook: `RCD_TEST_SYNC_DELAY_MS` slows every durable write by that
/// many milliseconds, as a slow SD card would. Not for production use.
fn test_sync_delay() -> Duration {
    let ms = std::env::var("RCD_TEST_SYNC_DELAY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
        .min(10_000);
    if ms > 0 {
        log::warn!("test hook: durable writes slowed by {ms} ms (RCD_TEST_SYNC_DELAY_MS)");
    }
    Duration::from_millis(ms)
}

fn load_state(cfg: &Config) -> State {
    let login = match &cfg.credentials {
        Credentials::Password { user, .. } => user.clone(),
        Credentials::Token { user_id, .. } => user_id.clone(),
    };
    let (state, how) = state::load(&cfg.state, &cfg.server.base, &login);
    let shown = cfg.state.display();
    match how {
        Loaded::FirstRun => log::info!("state file {shown} not found: first run"),
        Loaded::Resumed => log::info!("state read from {shown}"),
        Loaded::OtherAccount => {
            log::warn!("state file {shown} is for another server or user: starting afresh")
        }
        Loaded::MovedAside(to, why) => {
            log::error!(
                "state file {shown} is unreadable ({why}); moved to {}, starting afresh",
                to.display()
            )
        }
    }
    state
}

/// The spool of files to send, beside the state file.
fn spool_dir(cfg: &Config) -> PathBuf {
    crate::instance::dir_of(&cfg.state).join("rocketchatd-spool")
}

fn open_spool(cfg: &Config, state: &State) -> Result<Spool> {
    let own: Vec<PathBuf> = cfg.secret_files.iter().chain(&cfg.pid).cloned().collect();
    let rules = FileRules::new(&cfg.files_dirs, &own, &cfg.state, cfg.max_file_size);
    log::info!(
        "files may be sent from {} (--files-dir), up to {} bytes each",
        rules.allowed_list(),
        rules.max_size()
    );
    let spool = Spool::open(spool_dir(cfg), rules)?;
    let keep = state
        .outbox
        .iter()
        .flat_map(|o| o.files.iter().map(|f| f.path.clone()))
        .collect();
    spool.sweep(&keep);
    Ok(spool)
}

type Started = (Links, Vec<JoinHandle<()>>);

fn start_workers(
    cfg: &Config,
    state: &State,
    (tls, rest): (Arc<rustls::ClientConfig>, Rest),
    notifier: &Option<Notifier>,
    to_core: &Sender<CoreMsg>,
    shutdown: &Arc<AtomicBool>,
) -> Result<Started> {
    let mut threads = Vec::new();
    let callback = match &cfg.callback {
        Some(url) => {
            let (tx, rx) = mpsc::channel();
            let cb = callback::CallbackConfig {
                url: url.clone(),
                apikey: cfg.apikey.clone(),
                tls: tls.clone(),
            };
            threads.push(
                callback::spawn(cb, rx, to_core.clone(), shutdown.clone()).map_err(thread_error)?,
            );
            Some(tx)
        }
        None => {
            log::warn!("no --callback: events are only logged");
            None
        }
    };
    let (send_tx, send_rx) = mpsc::channel();
    threads.push(
        sender::spawn(rest, send_rx, to_core.clone(), shutdown.clone()).map_err(thread_error)?,
    );
    let rt_cfg = realtime_config(cfg, state, tls, notifier.clone());
    let (rt_thread, rt_tx) =
        realtime::spawn(rt_cfg, to_core.clone(), shutdown.clone()).map_err(thread_error)?;
    threads.push(rt_thread);
    Ok((
        Links {
            callback,
            sender: send_tx,
            realtime: rt_tx,
        },
        threads,
    ))
}

/// The realtime settings, resuming the session kept in the state.
pub fn realtime_config(
    cfg: &Config,
    state: &State,
    tls: Arc<rustls::ClientConfig>,
    notifier: Option<Notifier>,
) -> realtime::RealtimeConfig {
    let resume = match (&state.user_id, &state.resume_token) {
        (Some(id), Some(tok)) if !tok.is_empty() => Some((id.clone(), tok.clone())),
        _ => None,
    };
    // systemd wants WATCHDOG=1 within each interval, and the notifier sends
    // at most one per quarter of it: a call every eighth keeps the gaps under
    // 3/8 of the interval.
    let alive_every = notifier
        .as_ref()
        .and_then(Notifier::watchdog_interval)
        .map(|interval| interval / 8);
    let alive: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Some(n) = &notifier {
            n.watchdog();
        }
    });
    realtime::RealtimeConfig {
        server: cfg.server.clone(),
        credentials: cfg.credentials.clone(),
        tls,
        heartbeat: cfg.heartbeat,
        resume,
        alive,
        alive_every,
    }
}

fn status_hook(notifier: Option<Notifier>) -> Box<dyn Fn(&str) + Send> {
    Box::new(move |text| {
        if let Some(n) = &notifier {
            n.status(text);
        }
    })
}

fn thread_error(e: std::io::Error) -> Error {
    Error::io("cannot start a thread", e)
}

/// SIGTERM (Jeedom, systemd) and SIGINT (Ctrl-C) stop the daemon cleanly.
/// SIGHUP (a closed terminal, `systemctl reload`, log rotators) is logged and
/// ignored: there is nothing to reload and no log file to reopen (the log is
/// stderr), and its default action would kill the daemon uncleanly.
fn watch_signals(to_core: Sender<CoreMsg>) -> Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| Error::io("cannot install signal handlers", e))?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    log::info!("signal {sig} (SIGHUP) received: ignored, nothing to reload (restart to apply new options)");
                    continue;
                }
                log::info!("signal {sig} received: stopping");
                let _ = to_core.send(CoreMsg::Stop);
            }
        })
        .map_err(thread_error)?;
    Ok(handle)
}

/// Wakes every thread, waits a little for them, and lets the exit do the rest
/// (a thread stuck in an HTTP call is bounded by its own timeout anyway).
fn stop(
    cfg: &Config,
    shutdown: &AtomicBool,
    notifier: Option<&Notifier>,
    threads: Vec<JoinHandle<()>>,
) {
    if let Some(n) = notifier {
        n.stopping();
    }
    shutdown.store(true, Ordering::SeqCst);
    socket::wake(cfg.socket);
    let deadline = Instant::now() + JOIN_TIME;
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
    log::info!("stopped");
}
