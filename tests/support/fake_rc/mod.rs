//! Fake Rocket.Chat server: DDP over a websocket at `/websocket` and REST on the same port, with faults.
mod ddp;
pub mod edit;
mod methods;
mod msgs;
mod notify;
mod post;
pub mod ratelimit;
mod rest;
mod rooms;
mod send;
mod settings;
mod tls;
pub mod upload;
pub mod util;
pub mod world;

use crate::support::http::HttpServer;
use serde_json::{json, Value};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use world::{Token, TokenKind, World};

pub use world::BOT_ID;

/// How `chat.sendMessage` answers a second insert of an existing `_id`.
///
/// The real path: `apps/meteor/app/lib/server/functions/sendMessage.ts` finds
/// the `_id` already stored (`messageAlreadyExists`) and returns `undefined`;
/// the route (`apps/meteor/app/api/server/v1/chat.ts`, `chat.sendMessage`)
/// hands `[undefined]` to `normalizeMessagesForUser`
/// (`apps/meteor/app/utils/server/lib/normalizeMessagesForUser.ts`), whose
/// `filterStarred` reads `message.starred`: a TypeError, which the REST layer
/// answers as 400 with the exception's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DupIdMode {
    /// Current servers (Node 16 and later, the default):
    /// `400 {"success":false,"error":"Cannot read properties of undefined (reading 'starred')"}`.
    StarredTypeError,
    /// The same crash on Node 14 servers (Rocket.Chat 3.x and 4.x):
    /// `400 {"success":false,"error":"Cannot read property 'starred' of undefined"}`.
    StarredTypeErrorNode14,
    /// A route that does not normalize the answer: `200 {"success":true}` without `message`.
    Ok200NoMessage,
    /// Two inserts racing past the existence check: Mongo's unique index on
    /// `_id` refuses the second, `400 {"success":false,"error":"E11000 duplicate key ..."}`.
    Error400,
}

/// Forced outcome of password logins (`Ok`: credentials are really checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMode {
    Ok,
    WrongPassword,
    UnknownUser,
    /// Right credentials answer `totp-required` (`details.method: "totp"`).
    Totp,
    /// Right credentials answer `totp-required` with `details.method: "email"`
    /// (and the fake counts an e-mailed code each time: see `methods::totp_error`).
    TotpEmail,
}

/// A fault injected on the next HTTP requests whose path contains a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestFault {
    /// Answer this status with `{"success":false,"error":"injected fault: HTTP n"}`, do nothing.
    Status(u16),
    /// 429 with the `X-RateLimit-*` headers and the real error body; nothing done.
    RateLimit { reset_ms_from_now: u64 },
    /// Do the request (e.g. store the message), then close the connection without answering.
    DropAfterInsert,
    /// Do the request, then never answer (a daemon killed while it waits).
    HangAfterInsert,
    /// Never answer (connection held until the client gives up or the server closes it).
    Hang,
}

/// Options of the fake server.
#[derive(Debug, Clone)]
pub struct FakeRcOptions {
    /// Version reported by `/api/info`; gates `rooms.media*` (>= 6.10) and `rooms.upload` (< 8.0).
    pub version: String,
    /// Serve https/wss with the test certificate (`url()` is then `https://localhost:PORT`).
    pub tls: bool,
    /// Which certificate TLS presents: `server` (signed by the test CA, the
    /// default) or a self-signed one (`tests/support/tls/make-self-signed.sh`).
    pub tls_cert: &'static str,
    /// Period of the server's DDP `ping`s.
    pub ping_interval: Duration,
    /// Largest accepted upload, in bytes.
    pub max_upload: usize,
    pub dup_id_mode: DupIdMode,
    /// Answer 404 to `/api/info`, like a server that hides its version.
    pub info_404: bool,
    /// Port to listen on (0: OS-chosen).
    pub port: u16,
    /// The DDP rate limiter of the real server (see fake_rc/ratelimit.rs). On by
    /// default; a test turns it off only when it tests something else and says why.
    pub ddp_rate_limit: bool,
    /// 3.x servers before PR #20801 (Feb 2021) send `__my_messages__` args as
    /// `[[msg], info]` instead of `[msg, info]`.
    pub legacy_my_messages: bool,
}

impl Default for FakeRcOptions {
    fn default() -> Self {
        FakeRcOptions {
            version: "7.4.1".into(),
            tls: false,
            tls_cert: "server",
            ping_interval: Duration::from_secs(25),
            max_upload: 100 * 1024 * 1024,
            dup_id_mode: DupIdMode::StarredTypeError,
            info_404: false,
            port: 0,
            ddp_rate_limit: true,
            legacy_my_messages: false,
        }
    }
}

/// Whether `*.history` answers are held, and how many may pass meanwhile.
#[derive(Default)]
struct HistoryGate {
    held: bool,
    passes: usize,
}

struct Fault {
    path_contains: String,
    fault: RestFault,
    times: usize,
}

/// State shared by the control API, the REST handler and the DDP connection threads.
pub struct Shared {
    pub opts: FakeRcOptions,
    world: Mutex<World>,
    silent: AtomicBool,
    stop: AtomicBool,
    next_cid: AtomicU64,
    faults: Mutex<Vec<Fault>>,
    /// `*.history` answers wait while held (`hold_history`), but for the
    /// passes given (`pass_history`).
    history_gate: Mutex<HistoryGate>,
    history_released: Condvar,
}

/// Longest a held `*.history` answer waits (a test that forgets to release it
/// still ends).
const HISTORY_HOLD_MAX: Duration = Duration::from_secs(60);

impl Shared {
    /// A `*.history` request waits here while history answers are held: a
    /// slow server (or a busy one, as the CI machine was) answering a catch-up.
    fn wait_history(&self, path: &str) {
        if !path.ends_with(".history") {
            return;
        }
        let gate = self.history_gate.lock().unwrap_or_else(|e| e.into_inner());
        let waited = self
            .history_released
            .wait_timeout_while(gate, HISTORY_HOLD_MAX, |g| g.held && g.passes == 0);
        if let Ok((mut gate, _)) = waited {
            gate.passes = gate.passes.saturating_sub(1);
        }
    }

    /// The locked world (a panic elsewhere does not poison it for the other threads).
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn silent(&self) -> bool {
        self.silent.load(Ordering::SeqCst)
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn next_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::SeqCst)
    }

    /// Takes one use of the first fault matching `path`.
    fn take_fault(&self, path: &str) -> Option<RestFault> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let i = faults
            .iter()
            .position(|f| f.times > 0 && path.contains(&f.path_contains))?;
        faults[i].times -= 1;
        let f = faults[i].fault;
        faults.retain(|f| f.times > 0);
        Some(f)
    }
}

/// The fake Rocket.Chat server, listening on 127.0.0.1.
pub struct FakeRocketChat {
    shared: Arc<Shared>,
    server: HttpServer,
}

mod control;

impl FakeRocketChat {
    /// Starts the server with the default world (see `world::World::new`).
    pub fn start(o: FakeRcOptions) -> Self {
        let tls = o.tls.then(|| tls::server_config(o.tls_cert));
        let port = o.port;
        let mut world = World::new();
        world.legacy_my_messages = o.legacy_my_messages;
        let shared = Arc::new(Shared {
            opts: o,
            world: Mutex::new(world),
            silent: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            next_cid: AtomicU64::new(1),
            faults: Mutex::new(Vec::new()),
            history_gate: Mutex::new(HistoryGate::default()),
            history_released: Condvar::new(),
        });
        let s2 = shared.clone();
        let server = HttpServer::start_with(port, tls, Arc::new(move |r| rest::handle(&s2, r)));
        FakeRocketChat { shared, server }
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS.
    pub fn url(&self) -> String {
        match self.shared.opts.tls {
            true => format!("https://localhost:{}", self.server.port()),
            false => format!("http://127.0.0.1:{}", self.server.port()),
        }
    }

    /// The websocket URL of DDP (`ws(s)://.../websocket`).
    pub fn ws_url(&self) -> String {
        format!("{}/websocket", self.url().replacen("http", "ws", 1))
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// PEM of the test CA (give it to the daemon as `--ca-file` when `tls` is on).
    pub fn ca_file() -> std::path::PathBuf {
        tls::ca_file()
    }

    /// PEM of the certificate `tls_cert` names, to pin it with `--ca-file`.
    pub fn cert_file(name: &str) -> std::path::PathBuf {
        tls::cert_file(name)
    }

    /// The shared state, for assertions not covered by the control API.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    // ---- faults ----

    /// Closes every websocket now (the listener stays open).
    pub fn drop_connections(&self) {
        let mut w = self.shared.world();
        for (_, c) in w.conns.drain() {
            let _ = c.tcp.shutdown(Shutdown::Both);
        }
    }

    /// While on: read everything, send nothing (no pong, ping, result; HTTP requests hang).
    pub fn set_silent(&self, on: bool) {
        self.shared.silent.store(on, Ordering::SeqCst);
    }

    /// Closes the listener and every connection, keeps the world, listens again on the same port.
    pub fn restart(&self) {
        self.drop_connections();
        self.server.restart();
    }

    /// While true the listener is closed (connection refused) and connections are closed.
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
        if down {
            self.drop_connections();
            self.server.close_connections();
        }
    }

    pub fn set_login(&self, m: LoginMode) {
        self.shared.world().login_mode = m;
    }

    pub fn set_bot_password(&self, p: &str) {
        let mut w = self.shared.world();
        let bot = w
            .users
            .iter_mut()
            .find(|u| u.id == BOT_ID)
            .expect("bot user");
        bot.password = Some(p.into());
    }

    /// Refuses every resume token issued so far (personal access tokens stay valid).
    pub fn invalidate_tokens(&self) {
        self.shared
            .world()
            .tokens
            .retain(|t| t.kind == TokenKind::Personal);
    }

    /// Holds the answers of `*.history` (`true`) until released (`false`).
    pub fn hold_history(&self, on: bool) {
        self.history_gate(|g| {
            *g = HistoryGate {
                held: on,
                passes: 0,
            }
        });
    }

    /// Lets one held `*.history` answer go (the next one if none waits yet).
    pub fn pass_history(&self) {
        self.history_gate(|g| g.passes += 1);
    }

    fn history_gate(&self, f: impl FnOnce(&mut HistoryGate)) {
        let gate = &self.shared.history_gate;
        f(&mut gate.lock().unwrap_or_else(|e| e.into_inner()));
        self.shared.history_released.notify_all();
    }

    /// The message stream lags behind the database (see `World::hold_stream`).
    pub fn hold_stream(&self, on: bool) {
        self.shared.world().hold_stream(on);
    }

    /// Applies `fault` to the next `times` HTTP requests whose path contains `path_contains`.
    pub fn rest_fault(&self, path_contains: &str, fault: RestFault, times: usize) {
        let f = Fault {
            path_contains: path_contains.into(),
            fault,
            times,
        };
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    /// Creates a personal access token for a user; `(user id, token)`.
    pub fn create_personal_token(&self, username: &str) -> (String, String) {
        let mut w = self.shared.world();
        let uid = w.uid(username);
        let token = util::random_id(43);
        let t = Token {
            token: token.clone(),
            uid: uid.clone(),
            kind: TokenKind::Personal,
            expires: u64::MAX,
        };
        w.tokens.push(t);
        (uid, token)
    }

    /// Issues a resume token for a user (as a past login would have).
    pub fn issue_token(&self, username: &str) -> String {
        let mut w = self.shared.world();
        let uid = w.uid(username);
        methods::issue_token(&mut w, &uid).0
    }
}

impl Drop for FakeRocketChat {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.drop_connections();
    }
}

/// `{"$date": ms}` helper for tests building DDP frames.
pub fn ejson_date(ms: u64) -> Value {
    json!({ "$date": ms })
}
