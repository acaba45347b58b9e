//! The command socket: one thread per connection, one JSON request, one reply line.
use crate::backoff::random_id;
use crate::bridge::clock::now_ms;
use crate::bridge::error_json;
use crate::bus::{CoreMsg, Reply, TicketState};
use crate::jeedom::request::{self, AskRequest, Request, RequestError, SendRequest};
use crate::jeedom::spool::Spool;
use crate::model::{OutKind, Outgoing, Secret};
use serde_json::{json, Value};
use sparing::{Say, Sparing};
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod accept;
mod sparing;

/// Largest request accepted.
pub const MAX_REQUEST: usize = 1024 * 1024;
/// Time a client has to send its whole request.
pub const REQUEST_TIME: Duration = Duration::from_secs(5);
/// Connections still sending their request; beyond this, the oldest idle
/// ones are closed (a client writes its request at once: only an idle or
/// very slow one goes [`IDLE_AFTER`] without a whole request). A connection
/// whose thread has not read yet is never closed: under load its request
/// may be waiting in the socket, and Jeedom's PHP never reads a refusal.
pub const MAX_UNREAD: usize = 64;
/// Connection threads at once (reading, spooling files, waiting for
/// `status`); more get an error line. A `send` waiting for its `ok` holds
/// no thread: the core keeps its socket and answers once it is on disk.
pub const MAX_THREADS: usize = 256;
/// A connection without a whole request after this long is idle: later
/// requests stop waiting for it (they are taken in connection order).
const IDLE_AFTER: Duration = Duration::from_millis(50);
/// Longest wait for the core's answer to `status` or `rooms`.
const CORE_TIME: Duration = Duration::from_secs(30);

/// What every connection thread needs.
pub struct Context {
    pub apikey: Secret,
    pub spool: Spool,
    /// Refused requests' warnings (a local process can send bad ones in a loop).
    refusals: Mutex<Sparing>,
}

impl Context {
    pub fn new(apikey: Secret, spool: Spool) -> Context {
        Context {
            apikey,
            spool,
            refusals: Mutex::new(Sparing::new(REFUSALS_LOGGED)),
        }
    }

    /// Logs a refused request: one by one after a quiet minute, then summed up.
    fn refused(&self, line: impl FnOnce() -> String) {
        let mut log = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        match log.note(1, Instant::now()) {
            Some(Say::Line) => log::warn!("{}", line()),
            Some(Say::Sum { count, secs }) => log::warn!(
                "command socket: {count} more requests refused in the last {secs} s \
                 (after a quiet minute, the first {REFUSALS_LOGGED} are logged one by one)"
            ),
            None => {}
        }
    }
}

/// Refused requests logged one by one after a quiet minute.
const REFUSALS_LOGGED: usize = 5;

pub use accept::{spawn, wake};

/// The connections being served, and those still sending their request.
struct Slots {
    threads: AtomicUsize,
    unread: Mutex<VecDeque<Unread>>,
    closes: Mutex<Sparing>,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots {
            threads: AtomicUsize::new(0),
            unread: Mutex::default(),
            closes: Mutex::new(Sparing::new(1)),
        }
    }
}

/// A connection whose request is not read yet.
struct Unread {
    id: u64,
    stream: TcpStream,
    /// Its thread waited [`IDLE_AFTER`] without getting a whole request.
    idle: bool,
}

impl Slots {
    /// Counts a new connection; when too many are unread, closes the oldest
    /// idle ones (they had all the time a real client needs).
    fn open(self: &Arc<Slots>, id: u64, stream: &TcpStream) -> Slot {
        self.threads.fetch_add(1, Ordering::SeqCst);
        if let Ok(stream) = stream.try_clone() {
            let mut unread = self.unread.lock().unwrap_or_else(|p| p.into_inner());
            unread.push_back(Unread {
                id,
                stream,
                idle: false,
            });
            let closed = close_idle(&mut unread);
            drop(unread);
            // Also with none closed: a count left from a flood is logged here.
            self.closed(closed);
        }
        Slot {
            slots: self.clone(),
            id,
        }
    }

    /// Logs the closes, sparingly (see [`Sparing`]).
    fn closed(&self, n: usize) {
        let mut log = self.closes.lock().unwrap_or_else(|p| p.into_inner());
        match log.note(n, Instant::now()) {
            Some(Say::Line) => log::warn!(
                "command socket: {MAX_UNREAD} connections without a request, closing the \
                 oldest idle one (further closes are counted, one line every {} s at most)",
                sparing::SUMMARY_EVERY.as_secs()
            ),
            Some(Say::Sum { count, secs }) => {
                log::warn!("command socket: closed {count} idle connections in the last {secs} s")
            }
            None => {}
        }
    }
}

/// Closes the oldest idle connections while more than [`MAX_UNREAD`] are
/// unread; how many it closed.
fn close_idle(unread: &mut VecDeque<Unread>) -> usize {
    let mut closed = 0;
    while unread.len() > MAX_UNREAD {
        let Some(pos) = unread.iter().position(|u| u.idle) else {
            break;
        };
        if let Some(u) = unread.remove(pos) {
            let _ = u.stream.shutdown(Shutdown::Both);
            closed += 1;
        }
    }
    closed
}

/// A connection's place in [`Slots`], given back when dropped.
struct Slot {
    slots: Arc<Slots>,
    id: u64,
}

impl Slot {
    /// The request was read (or given up): no longer a candidate for closing.
    fn read_done(&self) {
        let mut unread = self.slots.unread.lock().unwrap_or_else(|p| p.into_inner());
        unread.retain(|u| u.id != self.id);
    }

    /// No whole request after [`IDLE_AFTER`]: a candidate for closing.
    fn idle(&self) {
        let mut unread = self.slots.unread.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = unread.iter_mut().find(|u| u.id == self.id) {
            u.idle = true;
        }
        let closed = close_idle(&mut unread);
        drop(unread);
        if closed > 0 {
            self.slots.closed(closed);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.read_done();
        self.slots.threads.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's number in accept order; tells the core what became of
/// it, at the latest when dropped (so that later requests never wait for it).
struct TicketGuard {
    ticket: u64,
    to_core: Sender<CoreMsg>,
    finished: Cell<bool>,
}

impl TicketGuard {
    fn new(ticket: u64, to_core: Sender<CoreMsg>) -> TicketGuard {
        TicketGuard {
            ticket,
            to_core,
            finished: Cell::new(false),
        }
    }

    /// Nothing to queue: later requests need not wait for this connection.
    fn done(&self) {
        if !self.finished.replace(true) {
            self.tell(TicketState::Done);
        }
    }

    fn tell(&self, state: TicketState) -> bool {
        let msg = CoreMsg::Ticket {
            ticket: self.ticket,
            state,
        };
        self.to_core.send(msg).is_ok()
    }

    /// Hands over the request with the client's socket, which the core answers.
    fn accept(self, item: Box<Outgoing>, stream: TcpStream) -> bool {
        self.finished.set(true);
        let reply = Reply::new(move |answer| reply_now(&stream, &answer));
        self.tell(TicketState::Accept { item, reply })
    }
}

impl Drop for TicketGuard {
    fn drop(&mut self) {
        self.done();
    }
}

fn serve(
    mut stream: TcpStream,
    ctx: &Context,
    to_core: &Sender<CoreMsg>,
    ticket: TicketGuard,
    slot: &Slot,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let read = read_request(&mut stream, Instant::now() + REQUEST_TIME, || {
        ticket.tell(TicketState::Idle);
        slot.idle();
    });
    slot.read_done();
    let answer = match read {
        Ok(bytes) => match handle(&bytes, ctx, to_core, &peer, &ticket) {
            Handled::Answer(a) => a,
            Handled::Queue(item) => {
                if let Ok(s) = stream.try_clone() {
                    if ticket.accept(item, s) {
                        return;
                    }
                }
                error_json("the daemon is stopping")
            }
        },
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
/// Calls `on_idle` once if the request is not whole after [`IDLE_AFTER`].
fn read_request(
    stream: &mut TcpStream,
    deadline: Instant,
    on_idle: impl FnOnce(),
) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut on_idle = Some(on_idle);
    let idle_at = Instant::now() + IDLE_AFTER;
    loop {
        let until = if on_idle.is_some() { idle_at } else { deadline };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            match on_idle.take() {
                Some(f) => {
                    f();
                    continue;
                }
                None => return Err(ReadError::TooSlow),
            }
        }
        stream.set_read_timeout(Some(left)).map_err(ReadError::Io)?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
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

/// What a request comes to: an answer now, or a request for the core.
enum Handled {
    Answer(Value),
    Queue(Box<Outgoing>),
}

fn handle(
    bytes: &[u8],
    ctx: &Context,
    to_core: &Sender<CoreMsg>,
    peer: &str,
    ticket: &TicketGuard,
) -> Handled {
    let request = match request::parse(bytes, &ctx.apikey) {
        Ok(r) => r,
        Err(RequestError::BadApikey) => {
            ctx.refused(|| format!("command socket: request from {peer} refused: bad apikey"));
            return Handled::Answer(error_json("bad apikey"));
        }
        Err(e) => {
            ctx.refused(|| format!("command socket: request from {peer} refused: {e}"));
            return Handled::Answer(error_json(&e.to_string()));
        }
    };
    if !matches!(request, Request::Send(_) | Request::Ask(_)) {
        // Nothing to queue: later requests need not wait for this answer.
        ticket.done();
    }
    let answer = match request {
        Request::Send(s) => return spool(outgoing_send(s), ctx, ticket),
        Request::Ask(a) => return spool(outgoing_ask(a), ctx, ticket),
        Request::Status => ask_core(to_core, |reply| CoreMsg::Status { reply }),
        Request::Rooms => ask_core(to_core, |reply| CoreMsg::ResendRooms { reply }),
        Request::Stop => {
            let _ = to_core.send(CoreMsg::Stop);
            json!({"ok": true, "stopping": true})
        }
    };
    Handled::Answer(answer)
}

/// Spools the files; the core then queues the request in connection order,
/// and answers `ok` once it is on disk (it survives a crash).
fn spool(pending: (Outgoing, Vec<String>), ctx: &Context, ticket: &TicketGuard) -> Handled {
    let (mut item, sources) = pending;
    if !sources.is_empty() {
        ticket.tell(TicketState::Reading);
    }
    match ctx.spool.store(&item.key, &sources) {
        Ok(files) => item.files = files,
        Err(e) => {
            // Jeedom does not read the reply: the log is where this shows.
            ctx.refused(|| format!("command socket: request refused: {e}"));
            return Handled::Answer(error_json(&e.to_string()));
        }
    }
    Handled::Queue(Box::new(item))
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

/// Writes the reply line without ever blocking (the core thread calls it: a
/// line fits in a fresh socket's buffer, and a client that left is no error).
fn reply_now(stream: &TcpStream, answer: &Value) {
    let _ = stream.set_nonblocking(true);
    reply(stream, answer);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Connections over the limit: only the idle ones go, oldest first; one
    /// whose thread has not read yet stays, however many there are.
    #[test]
    fn only_idle_connections_are_closed_over_the_limit() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut unread: VecDeque<Unread> = (0..MAX_UNREAD as u64 + 3)
            .map(|id| Unread {
                id,
                stream: TcpStream::connect(addr).unwrap(),
                idle: id == 5 || id == 9,
            })
            .collect();
        assert_eq!(close_idle(&mut unread), 2);
        let left: Vec<u64> = unread.iter().map(|u| u.id).collect();
        assert_eq!(left.len(), MAX_UNREAD + 1, "two idle ones closed, no more");
        assert!(!left.contains(&5) && !left.contains(&9));
        assert!(unread.iter().all(|u| !u.idle));
    }
}
