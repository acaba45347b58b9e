//! The callback worker: delivers event batches to Jeedom's callback URL, one POST at a time.
use crate::backoff::Backoff;
use crate::bus::{CallbackJob, CallbackReport, CoreMsg};
use crate::model::Secret;
use log::{debug, error, info, warn};
use rustls::ClientConfig;
use serde_json::{value::RawValue, Value};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use ureq::Agent;

mod text;
use text::{describe, encode, redact, status_text, with_query};

/// The callback URL as it may be shown: no key, no `user:password@` password.
pub fn shown_url(url: &str, key: &Secret) -> String {
    redact(url, key)
}

/// Bounds a whole request, so a POST in flight cannot hold up shutdown for long.
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Jeedom answers a word or two; anything bigger is not worth reading.
const BODY_LIMIT: u64 = 64 * 1024;

/// Where and how to reach Jeedom's callback.
#[derive(Clone, Debug)]
pub struct CallbackConfig {
    /// `--callback`; may already hold a query string.
    pub url: String,
    pub apikey: Secret,
    pub tls: Arc<ClientConfig>,
}

/// Why the startup test of the callback failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackTestError {
    /// No HTTP answer (connection refused, timeout, DNS, TLS); the reason has no key.
    Unreachable(String),
    /// HTTP 200 with another body than `OK`: the key or Jeedom's API mode is wrong.
    Rejected,
    /// Any other HTTP status.
    Status(u16),
}

impl fmt::Display for CallbackTestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallbackTestError::Unreachable(reason) => write!(f, "unreachable: {reason}"),
            CallbackTestError::Rejected => {
                f.write_str("Jeedom rejected the API key or the API mode is off")
            }
            CallbackTestError::Status(status) => write!(f, "answered HTTP {status}"),
        }
    }
}

impl std::error::Error for CallbackTestError {}

/// Startup test: `GET {url}?test=1&apikey=KEY` must answer HTTP 200 with body `OK`.
pub fn test_callback(cfg: &CallbackConfig) -> Result<(), CallbackTestError> {
    Client::new(cfg).test()
}

/// Starts the `callback` thread. It tests the callback, then delivers each
/// batch it receives, retrying the same batch until Jeedom takes it. It
/// ends when the core drops `jobs` (the stop's wake-up), or at its next
/// wake-up once `shutdown` is set.
pub fn spawn(
    cfg: CallbackConfig,
    jobs: Receiver<CallbackJob>,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    spawn_with(cfg, jobs, to_core, shutdown, Timing::default())
}

/// Retry delays, shortened by the tests.
struct Timing {
    retry: Backoff,
    probe: Backoff,
}

impl Default for Timing {
    fn default() -> Timing {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        Timing {
            retry: backoff.clone(),
            probe: backoff,
        }
    }
}

fn spawn_with(
    cfg: CallbackConfig,
    jobs: Receiver<CallbackJob>,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
    timing: Timing,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("callback".into())
        .spawn(move || Worker::new(&cfg, to_core, shutdown, timing).run(&jobs))
}

/// The HTTP side: one agent and the two URLs, which carry the key.
struct Client {
    agent: Agent,
    test_url: String,
    post_url: String,
    key: Secret,
}

impl Client {
    fn new(cfg: &CallbackConfig) -> Client {
        let key = cfg.apikey.expose();
        Client {
            agent: agent(cfg.tls.clone()),
            test_url: with_query(&cfg.url, &format!("test=1&apikey={}", encode(key))),
            post_url: with_query(&cfg.url, &format!("apikey={}", encode(key))),
            key: cfg.apikey.clone(),
        }
    }

    fn test(&self) -> Result<(), CallbackTestError> {
        let unreachable = |e: ureq::Error| CallbackTestError::Unreachable(self.describe(&e));
        let mut resp = self.agent.get(&self.test_url).call().map_err(unreachable)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(CallbackTestError::Status(status));
        }
        match resp
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
        {
            Ok(body) if body.trim() == "OK" => Ok(()),
            Ok(_) | Err(ureq::Error::BodyExceedsLimit(_)) => Err(CallbackTestError::Rejected),
            Err(e) => Err(unreachable(e)),
        }
    }

    /// POSTs one encoded batch; `Ok(status)` on 2xx, else why not.
    fn post(&self, body: &[u8]) -> Result<u16, PostFailure> {
        let mut resp = self
            .agent
            .post(&self.post_url)
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| PostFailure {
                reason: self.describe(&e),
                maybe_received: maybe_received(&e),
            })?;
        let status = resp.status();
        // Reading the answer lets the connection be reused; its content does not matter.
        let _ = resp
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(PostFailure {
                reason: status_text(status),
                maybe_received: false,
            })
        }
    }

    /// ureq errors may quote the URL, which carries the key.
    fn describe(&self, e: &ureq::Error) -> String {
        redact(&describe(e), &self.key)
    }
}

/// A POST that Jeedom did not acknowledge.
struct PostFailure {
    /// For logs and `status`, without the key.
    reason: String,
    /// Jeedom may have received the batch and acted on it: a timeout, or a
    /// connection dropped once the request was on its way. An HTTP answer
    /// (Jeedom refused it) or a connection that never opened is not.
    maybe_received: bool,
}

/// True unless the error shows that the request never left: no address, no
/// connection (refused, unreachable, connect timeout). Everything else may
/// have reached Jeedom, whose PHP acts on a batch before it answers.
fn maybe_received(e: &ureq::Error) -> bool {
    use io::ErrorKind as K;
    match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => false,
        ureq::Error::Timeout(t) => !matches!(t, ureq::Timeout::Resolve | ureq::Timeout::Connect),
        ureq::Error::Io(io) => !matches!(
            io.kind(),
            K::ConnectionRefused | K::AddrNotAvailable | K::NetworkUnreachable | K::HostUnreachable
        ),
        _ => true,
    }
}

fn agent(tls: Arc<ClientConfig>) -> Agent {
    let config = Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .http_status_as_error(false)
        // A redirected POST comes back as a GET without the events: never follow.
        .max_redirects(0)
        // Apache closes idle keep-alive connections after 5 s: reusing one it is
        // closing would cost a spurious failure and a retry.
        .max_idle_age(Duration::from_secs(4))
        // The connector chain below has no proxy step, and Jeedom is local.
        .proxy(None)
        .user_agent(concat!("rocketchatd/", env!("CARGO_PKG_VERSION")))
        .build();
    crate::http_tls::agent(config, tls)
}

/// `{"events":[...]}` with the values in sequence order, written into `body`
/// (one buffer kept for every batch, written once, instead of a string per
/// event joined and copied again). `replay`: each event carries
/// `"replay": true` (the batch may have reached Jeedom already).
fn encode_batch(events: &[(u64, Box<RawValue>)], replay: bool, body: &mut Vec<u8>) {
    body.clear();
    body.extend_from_slice(b"{\"events\":[");
    for (i, (_, raw)) in events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        if replay {
            // Rare (a retry Jeedom may have handled): the text is parsed to
            // set the flag once, whether or not it carries one already.
            let mut marked: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            crate::bridge::events::mark_json_replay(&mut marked);
            // Writing a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *body, &marked);
        } else {
            body.extend_from_slice(raw.get().as_bytes());
        }
    }
    body.extend_from_slice(b"]}");
}

/// The startup test, retried in the gaps between deliveries while Jeedom
/// cannot be reached; it only informs the admin, events never wait for it.
struct Probe {
    next: Option<Instant>,
    backoff: Backoff,
    failures: u32,
}

impl Probe {
    fn new(backoff: Backoff) -> Probe {
        Probe {
            next: Some(Instant::now()),
            backoff,
            failures: 0,
        }
    }

    fn due(&self) -> bool {
        self.next.is_some_and(|at| Instant::now() >= at)
    }

    /// A delivery got through: Jeedom is up, so the pending test may run now.
    fn hurry(&mut self) {
        if self.next.is_some() {
            self.next = Some(Instant::now());
        }
    }

    fn record(&mut self, outcome: Result<(), CallbackTestError>, url: &str) {
        match outcome {
            Ok(()) => {
                info!("Jeedom callback {url} answered the test: API key accepted");
                self.next = None;
            }
            Err(CallbackTestError::Rejected) => {
                error!(
                    "Jeedom refused the callback's API key ({url} answered the test without OK): \
                     check the API key given to the daemon by the plugin, and that Jeedom's API \
                     mode is enabled for it; events are sent anyway and will be refused"
                );
                self.next = None;
            }
            Err(e) => self.retry_later(&e, url),
        }
    }

    fn retry_later(&mut self, e: &CallbackTestError, url: &str) {
        let delay = self.backoff.next_delay();
        if self.failures == 0 {
            warn!("Jeedom callback {url} test failed: {e}; testing again in the background");
        } else {
            debug!("Jeedom callback test failed again: {e}; next test in {delay:?}");
        }
        self.failures += 1;
        self.next = Some(Instant::now() + delay);
    }
}

struct Worker {
    client: Client,
    /// The callback URL as logs may show it.
    shown_url: String,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
    core_gone: bool,
    /// Jobs that came during a retry delay (the core sends one at a time, so
    /// there should be none), handled next.
    queued: VecDeque<CallbackJob>,
    retry: Backoff,
    probe: Probe,
    /// The POST body, reused from batch to batch.
    body: Vec<u8>,
}

impl Worker {
    fn new(
        cfg: &CallbackConfig,
        to_core: Sender<CoreMsg>,
        shutdown: Arc<AtomicBool>,
        timing: Timing,
    ) -> Worker {
        Worker {
            client: Client::new(cfg),
            shown_url: redact(&cfg.url, &cfg.apikey),
            to_core,
            shutdown,
            core_gone: false,
            queued: VecDeque::new(),
            retry: timing.retry,
            probe: Probe::new(timing.probe),
            body: Vec::new(),
        }
    }

    fn run(mut self, jobs: &Receiver<CallbackJob>) {
        while !self.stopping() {
            if self.probe.due() {
                let outcome = self.client.test();
                self.probe.record(outcome, &self.shown_url);
            }
            if let Some(CallbackJob::Batch { events }) = self.next_job(jobs) {
                self.deliver(&events, jobs);
            }
        }
        debug!("callback worker stopped");
    }

    /// The next job; idle, the worker sleeps until one comes, the channel
    /// closes, or the pending test of the callback is due (`None` then).
    fn next_job(&mut self, jobs: &Receiver<CallbackJob>) -> Option<CallbackJob> {
        if let Some(job) = self.queued.pop_front() {
            return Some(job);
        }
        let got = match self.probe.next {
            Some(at) => jobs.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.core_gone = true;
                None
            }
        }
    }

    fn stopping(&self) -> bool {
        self.core_gone || self.shutdown.load(Ordering::Relaxed)
    }

    /// POSTs the batch until Jeedom takes it or the daemon stops.
    fn deliver(&mut self, events: &[(u64, Box<RawValue>)], jobs: &Receiver<CallbackJob>) {
        let Some(&(upto_seq, _)) = events.last() else {
            warn!("callback: empty batch ignored");
            return;
        };
        encode_batch(events, false, &mut self.body);
        let (mut failures, mut marked) = (0u32, false);
        while !self.stopping() {
            debug!(
                "callback: POST of {} event(s) up to #{upto_seq}",
                events.len()
            );
            match self.client.post(&self.body) {
                Ok(status) => return self.delivered(upto_seq, status, failures),
                Err(failure) => {
                    // Jeedom may have handled it: every later copy says so,
                    // even after refusals that are sure.
                    if failure.maybe_received && !marked {
                        marked = true;
                        encode_batch(events, true, &mut self.body);
                    }
                    let delay = self.retry.next_delay();
                    self.failed(events.len(), failure.reason, failures, delay);
                    failures += 1;
                    self.pause(delay, jobs);
                }
            }
        }
    }

    fn delivered(&mut self, upto_seq: u64, status: u16, failures: u32) {
        debug!("callback: HTTP {status}, delivered up to #{upto_seq}");
        if failures > 0 {
            info!("callback: delivered to Jeedom after {failures} failed attempt(s)");
        }
        self.retry.reset();
        self.probe.hurry();
        self.report(CallbackReport::Delivered { upto_seq });
    }

    fn failed(&mut self, count: usize, error: String, failures: u32, delay: Duration) {
        let text = format!(
            "callback: delivery of {count} event(s) to Jeedom failed: {error}; retrying in {delay:?}"
        );
        if failures == 0 {
            warn!("{text}");
        } else {
            info!("{text}");
        }
        self.report(CallbackReport::Failed { error });
    }

    fn report(&mut self, report: CallbackReport) {
        if self.to_core.send(CoreMsg::Callback(report)).is_err() {
            // Nobody left to tell: the daemon is going away.
            self.core_gone = true;
        }
    }

    /// Waits `delay` on the job channel, so that the stop (the core dropping
    /// it) ends the wait at once.
    fn pause(&mut self, delay: Duration, jobs: &Receiver<CallbackJob>) {
        let end = Instant::now() + delay;
        while !self.stopping() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match jobs.recv_timeout(left) {
                Ok(job) => self.queued.push_back(job),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => self.core_gone = true,
            }
        }
    }
}

#[cfg(test)]
mod tests;
