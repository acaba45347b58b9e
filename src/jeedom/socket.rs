//! The command socket: one thread per connection, one JSON request, one reply line.
use crate::backoff::random_id;
use crate::bus::CoreMsg;
use crate::jeedom::request::{self, AskRequest, Request, RequestError, SendRequest};
use crate::jeedom::spool::Spool;
use crate::model::{OutKind, Outgoing, Secret};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Largest request accepted.
pub const MAX_REQUEST: usize = 1024 * 1024;
/// Time a client has to send its whole request.
pub const REQUEST_TIME: Duration = Duration::from_secs(5);
/// Connections served at once; more get an error line.
pub const MAX_CONNECTIONS: usize = 32;
/// Longest wait for the core to take a request (it persists before answering).
const CORE_TIME: Duration = Duration::from_secs(30);

/// What every connection thread needs.
pub struct Context {
    pub apikey: Secret,
    pub spool: Spool,
}

/// Starts the accepting thread on an already bound listener.
pub fn spawn(
    listener: TcpListener,
    ctx: Arc<Context>,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("socket".into())
        .spawn(move || accept_loop(listener, ctx, to_core, shutdown))
}

/// Unblocks `accept` after `shutdown` is set, by connecting to ourselves.
pub fn wake(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
}

fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Context>,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log::warn!("command socket: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            log::warn!(
                "command socket: more than {MAX_CONNECTIONS} connections at once, refusing one"
            );
            reply(&stream, &error_json("too many connections, try again"));
            continue;
        }
        let guard = ActiveGuard::new(&active);
        let (ctx, to_core) = (ctx.clone(), to_core.clone());
        let spawned = thread::Builder::new()
            .name("socket-conn".into())
            .spawn(move || {
                let _guard = guard;
                serve(stream, &ctx, &to_core);
            });
        if let Err(e) = spawned {
            log::error!("command socket: cannot start a connection thread: {e}");
        }
    }
}

/// Counts a live connection until dropped.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(active: &Arc<AtomicUsize>) -> ActiveGuard {
        active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(active.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(mut stream: TcpStream, ctx: &Context, to_core: &Sender<CoreMsg>) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let answer = match read_request(&mut stream, Instant::now() + REQUEST_TIME) {
        Ok(bytes) => handle(&bytes, ctx, to_core, &peer),
        Err(ReadError::TooLarge) => {
            reply(&stream, &error_json("request larger than 1 MiB"));
            drain(&mut stream);
            return;
        }
        Err(ReadError::TooSlow) => error_json("request not received within 5 s"),
        Err(ReadError::Empty) => error_json("empty request"),
        Err(ReadError::Io(e)) => {
            log::debug!("command socket: {peer}: {e}");
            return;
        }
    };
    reply(&stream, &answer);
}

enum ReadError {
    TooLarge,
    TooSlow,
    Empty,
    Io(std::io::Error),
}

/// Reads until a newline or EOF (PHP closes its side, `nc` sends a line).
fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::TooSlow);
        }
        stream.set_read_timeout(Some(left)).map_err(ReadError::Io)?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(ReadError::TooSlow)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        let start = buf.len();
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            buf.truncate(start + pos);
            return Ok(buf);
        }
        if buf.len() > MAX_REQUEST {
            return Err(ReadError::TooLarge);
        }
        if n == 0 {
            return if buf.iter().all(u8::is_ascii_whitespace) {
                Err(ReadError::Empty)
            } else {
                Ok(buf)
            };
        }
    }
}

fn handle(bytes: &[u8], ctx: &Context, to_core: &Sender<CoreMsg>, peer: &str) -> Value {
    let request = match request::parse(bytes, &ctx.apikey) {
        Ok(r) => r,
        Err(RequestError::BadApikey) => {
            log::warn!("command socket: request from {peer} refused: bad apikey");
            return error_json("bad apikey");
        }
        Err(e) => {
            log::warn!("command socket: request from {peer} refused: {e}");
            return error_json(&e.to_string());
        }
    };
    dispatch(request, ctx, to_core)
}

fn dispatch(request: Request, ctx: &Context, to_core: &Sender<CoreMsg>) -> Value {
    match request {
        Request::Send(s) => accept(outgoing_send(s), ctx, to_core),
        Request::Ask(a) => accept(outgoing_ask(a), ctx, to_core),
        Request::Status => ask_core(to_core, |reply| CoreMsg::Status { reply }),
        Request::Rooms => ask_core(to_core, |reply| CoreMsg::ResendRooms { reply }),
        Request::Stop => {
            let _ = to_core.send(CoreMsg::Stop);
            json!({"ok": true, "stopping": true})
        }
    }
}

/// Spools the files, then hands the request to the core, which persists it
/// before answering: an `ok` means the request survives a crash.
fn accept(pending: (Outgoing, Vec<String>), ctx: &Context, to_core: &Sender<CoreMsg>) -> Value {
    let (mut item, sources) = pending;
    match ctx.spool.store(&item.key, &sources) {
        Ok(files) => item.files = files,
        Err(e) => {
            // Jeedom does not read the reply: the log is where this shows.
            log::warn!("command socket: request refused: {e}");
            return error_json(&e.to_string());
        }
    }
    let files = item.files.clone();
    let answer = ask_core(to_core, |reply| CoreMsg::Accept { item, reply });
    if answer.get("ok") != Some(&Value::Bool(true)) {
        ctx.spool.remove(&files);
    }
    answer
}

fn ask_core(to_core: &Sender<CoreMsg>, msg: impl FnOnce(Sender<Value>) -> CoreMsg) -> Value {
    let (tx, rx) = mpsc::channel();
    if to_core.send(msg(tx)).is_err() {
        return error_json("the daemon is stopping");
    }
    rx.recv_timeout(CORE_TIME)
        .unwrap_or_else(|_| error_json("the daemon is stopping"))
}

fn outgoing(room: String, text: String, mention: Option<String>, kind: OutKind) -> Outgoing {
    Outgoing {
        key: random_id(),
        kind,
        room,
        text,
        mention,
        files: Vec::new(),
        description: None,
        thread: None,
        reference: None,
        accepted_ms: now_ms(),
        steps_done: 0,
    }
}

fn outgoing_send(s: SendRequest) -> (Outgoing, Vec<String>) {
    let mut o = outgoing(s.room, s.message, s.mention, OutKind::Send);
    o.description = s.description;
    o.thread = s.thread;
    o.reference = s.reference;
    (o, s.files)
}

fn outgoing_ask(a: AskRequest) -> (Outgoing, Vec<String>) {
    let kind = OutKind::Ask {
        ask_id: a.ask_id,
        answers: a.answers,
        timeout_s: a.timeout_s,
        answers_per_line: a.answers_per_line,
    };
    (outgoing(a.room, a.question, a.mention, kind), Vec::new())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn error_json(error: &str) -> Value {
    json!({"ok": false, "error": error})
}

/// Reads and drops what an oversized client still sends, for a short while,
/// so that closing does not reset the connection before it reads the reply.
fn drain(stream: &mut TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut chunk = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Writes the reply line; a peer that already closed is not an error.
fn reply(mut stream: &TcpStream, answer: &Value) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let mut line = answer.to_string();
    line.push('\n');
    let _ = stream.write_all(line.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
