//! The realtime thread's single wake-up source: the socket's bytes and the core's commands on one channel.
//!
//! Why: a thread blocked in a socket read cannot also wait for an mpsc
//! message, and std has no `poll`. Reading with a short timeout to look at
//! the commands and the stop flag made the idle daemon wake 5 times a second.
//! Instead, a small `realtime-rx` thread per connection does nothing but the
//! blocking read and passes the bytes on, and the core sends its commands
//! into the same channel ([`Inbox::core_end`]); the realtime thread sleeps in one `recv_timeout`
//! until either comes, or until its heartbeat or the watchdog is due. The
//! websocket (TLS included) reads those bytes from a [`Feed`], which never
//! blocks: rustls and tungstenite resume after `WouldBlock`.
use crate::bus::{RtCommand, ToRealtime};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Chunks a reader may queue ahead of the realtime thread: bounds the memory
/// a fast server can fill, and leaves flow control to TCP beyond it.
const QUEUE: usize = 8;
/// Largest chunk read at once.
pub(super) const CHUNK: usize = 16 * 1024;

/// What the helper threads send.
enum Input {
    /// Bytes read from connection number `.0`, holding one of its reader's permits.
    Bytes(u64, Vec<u8>, Permit),
    /// Connection `.0` reached its end: `Ok` for the peer's close, else the error.
    Ended(u64, io::Result<()>),
    Command(RtCommand),
    /// The core dropped its end ([`ToRealtime`]): the daemon is stopping.
    CoreGone,
}

/// The chunks one reader may have in the channel, not taken yet. The channel
/// itself is unbounded, so that the core never waits to send a command.
struct Permits {
    state: Mutex<PermitState>,
    freed: Condvar,
}

struct PermitState {
    left: usize,
    /// The reader waits for a permit: only then does a freed one notify
    /// (a notify is a futex call, and a permit is freed on every chunk).
    waiting: bool,
}

impl Permits {
    fn new() -> Arc<Permits> {
        Arc::new(Permits {
            state: Mutex::new(PermitState {
                left: QUEUE,
                waiting: false,
            }),
            freed: Condvar::new(),
        })
    }

    /// Waits until a chunk may be queued. Dropping the inputs (taken, of an
    /// old connection, or with the inbox) frees their permits, so a reader
    /// of a link that was left wakes up, finds its socket shut and ends.
    fn take(self: &Arc<Permits>) -> Permit {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.left == 0 {
            state.waiting = true;
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting = false;
        state.left -= 1;
        Permit(self.clone())
    }
}

/// One queued chunk's place; given back on drop.
struct Permit(Arc<Permits>);

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.left += 1;
        if state.waiting {
            self.0.freed.notify_one();
        }
    }
}

/// How a wait on the inbox ended.
enum Next {
    Bytes(Vec<u8>),
    Ended(io::Result<()>),
    Command,
    Stop,
    Timeout,
}

/// How a wait on the inbox ended, for its callers.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Waited {
    /// Input for the websocket, now in its [`Feed`].
    Fed,
    /// A command came: see [`Inbox::take_command`].
    Command,
    /// The core is gone: the daemon is stopping.
    Stop,
    Timeout,
}

/// The realtime thread's end. Single-threaded: the cells are only touched by
/// the thread that owns it.
pub(super) struct Inbox {
    rx: Receiver<Input>,
    tx: Sender<Input>,
    /// Commands taken off the channel, not handled yet.
    commands: RefCell<VecDeque<RtCommand>>,
    core_gone: Cell<bool>,
    last_conn: Cell<u64>,
}

impl Inbox {
    pub fn new() -> Inbox {
        let (tx, rx) = mpsc::channel();
        Inbox {
            rx,
            tx,
            commands: RefCell::default(),
            core_gone: Cell::new(false),
            last_conn: Cell::new(0),
        }
    }

    /// The core's end: its commands come straight into this inbox, then
    /// [`Next::Stop`] once the core drops it (the stop's wake-up).
    pub fn core_end(&self) -> ToRealtime {
        let tx = self.tx.clone();
        ToRealtime::new(move |c| {
            let _ = tx.send(c.map_or(Input::CoreGone, Input::Command));
        })
    }

    /// Starts reading a new connection on a `realtime-rx` thread; answers
    /// the connection's side of the inbox, and the transport its websocket
    /// reads from and writes to. The read blocks without a timeout: the link
    /// bounds silences with its heartbeat and shuts the socket down when it
    /// leaves it (see `link::Closer`), which ends the read and the thread.
    pub fn connect(&self, tcp: &TcpStream) -> io::Result<(Source<'_>, Feed)> {
        let conn = self.last_conn.get() + 1;
        self.last_conn.set(conn);
        let reader = tcp.try_clone()?;
        reader.set_read_timeout(None)?;
        let tx = self.tx.clone();
        thread::Builder::new()
            .name("realtime-rx".into())
            .spawn(move || read_into(reader, conn, &tx, &Permits::new()))?;
        let received = Rc::new(RefCell::new(Received::default()));
        let feed = Feed {
            received: received.clone(),
            tcp: tcp.try_clone()?,
        };
        let source = Source {
            inbox: self,
            conn,
            received,
        };
        Ok((source, feed))
    }

    /// Waits up to `timeout` for a command or the core's end (input of past
    /// connections is dropped).
    pub fn wait(&self, timeout: Duration) -> Waited {
        match self.next(None, timeout) {
            Next::Command => Waited::Command,
            Next::Stop => Waited::Stop,
            _ => Waited::Timeout,
        }
    }

    /// Waits up to `timeout` for a command, the core's end, or input of
    /// connection `conn` (input of older connections is dropped).
    fn next(&self, conn: Option<u64>, timeout: Duration) -> Next {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
            match self.rx.recv_timeout(left) {
                Ok(Input::Bytes(c, bytes, _permit)) if Some(c) == conn => {
                    return Next::Bytes(bytes)
                }
                Ok(Input::Ended(c, end)) if Some(c) == conn => return Next::Ended(end),
                Ok(Input::Bytes(..) | Input::Ended(..)) => {}
                Ok(Input::Command(c)) => {
                    self.commands.borrow_mut().push_back(c);
                    return Next::Command;
                }
                // This inbox holds a sender: the channel itself never closes.
                Ok(Input::CoreGone) | Err(RecvTimeoutError::Disconnected) => {
                    self.core_gone.set(true);
                    return Next::Stop;
                }
                Err(RecvTimeoutError::Timeout) => return Next::Timeout,
            }
        }
    }

    /// The oldest command not handled yet.
    pub fn take_command(&self) -> Option<RtCommand> {
        self.commands.borrow_mut().pop_front()
    }

    /// True once the core dropped its command sender.
    pub fn core_gone(&self) -> bool {
        self.core_gone.get()
    }
}

/// The reader thread's loop: chunks, then the end.
fn read_into(mut tcp: TcpStream, conn: u64, tx: &Sender<Input>, permits: &Arc<Permits>) {
    let mut buf = vec![0u8; CHUNK];
    let end = loop {
        let permit = permits.take();
        match tcp.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if tx
                    .send(Input::Bytes(conn, buf[..n].to_vec(), permit))
                    .is_err()
                {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let _ = tx.send(Input::Ended(conn, end));
}

/// One connection's side of the inbox.
pub(super) struct Source<'a> {
    inbox: &'a Inbox,
    conn: u64,
    /// Shared with the connection's [`Feed`].
    received: Rc<RefCell<Received>>,
}

impl<'a> Source<'a> {
    /// Waits up to `timeout` for input of this connection, which goes to its
    /// [`Feed`], or for a command or the core's end.
    pub fn wait(&self, timeout: Duration) -> Waited {
        match self.inbox.next(Some(self.conn), timeout) {
            Next::Bytes(bytes) => self.received.borrow_mut().push(bytes),
            Next::Ended(end) => self.received.borrow_mut().end(end),
            Next::Command => return Waited::Command,
            Next::Stop => return Waited::Stop,
            Next::Timeout => return Waited::Timeout,
        }
        Waited::Fed
    }

    pub fn inbox(&self) -> &'a Inbox {
        self.inbox
    }
}

/// Bytes received and not read by the websocket yet, then the connection's end.
#[derive(Default)]
struct Received {
    chunks: VecDeque<Vec<u8>>,
    /// Read position in the first chunk.
    pos: usize,
    end: Option<io::Result<()>>,
}

impl Received {
    fn push(&mut self, bytes: Vec<u8>) {
        self.chunks.push_back(bytes);
    }

    fn end(&mut self, end: io::Result<()>) {
        self.end = Some(end);
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some(chunk) = self.chunks.front() else {
            return match self.end.take() {
                // Nothing yet: the caller waits on the inbox and tries again.
                None => Err(ErrorKind::WouldBlock.into()),
                // The error once, then end of stream for good.
                Some(end) => {
                    self.end = Some(Ok(()));
                    end.map(|()| 0)
                }
            };
        };
        let n = out.len().min(chunk.len() - self.pos);
        out[..n].copy_from_slice(&chunk[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == chunk.len() {
            self.chunks.pop_front();
            self.pos = 0;
        }
        Ok(n)
    }
}

/// The websocket's transport: reads what the reader thread received, never
/// blocking; writes straight to the socket (bounded by its write timeout).
pub(super) struct Feed {
    received: Rc<RefCell<Received>>,
    tcp: TcpStream,
}

impl Read for Feed {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.received.borrow_mut().read(out)
    }
}

impl Write for Feed {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.tcp.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_reads_across_chunks_then_would_block_then_ends() {
        let mut r = Received::default();
        let mut out = [0u8; 4];
        let would_block = |r: &mut Received, out: &mut [u8]| {
            r.read(out).map_err(|e| e.kind()) == Err(ErrorKind::WouldBlock)
        };
        assert!(would_block(&mut r, &mut out));
        r.push(b"abc".to_vec());
        r.push(b"defgh".to_vec());
        assert_eq!(r.read(&mut out).unwrap(), 3);
        assert_eq!(r.read(&mut out).unwrap(), 4);
        assert_eq!(&out, b"defg");
        assert_eq!(r.read(&mut out).unwrap(), 1);
        assert!(would_block(&mut r, &mut out));
        r.end(Err(ErrorKind::ConnectionReset.into()));
        let e = r.read(&mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset);
        assert_eq!(r.read(&mut out).unwrap(), 0, "then end of stream");
    }

    #[test]
    fn inbox_keeps_commands_drops_old_connections_and_sees_the_core_go() {
        let inbox = Inbox::new();
        let core = inbox.core_end();
        let permits = Permits::new();
        let bytes = |conn, b: u8| Input::Bytes(conn, vec![b], permits.take());
        inbox.tx.send(bytes(7, 1)).unwrap();
        core.send(RtCommand::Relogin);
        assert!(matches!(inbox.next(Some(8), WAIT), Next::Command));
        assert!(matches!(inbox.take_command(), Some(RtCommand::Relogin)));
        assert!(inbox.take_command().is_none());
        inbox.tx.send(bytes(8, 2)).unwrap();
        assert!(matches!(inbox.next(Some(8), WAIT), Next::Bytes(b) if b == [2]));
        inbox.tx.send(bytes(8, 3)).unwrap();
        let quiet = Duration::from_millis(20);
        assert_eq!(inbox.wait(quiet), Waited::Timeout, "bytes are not for it");
        drop(core);
        assert_eq!(inbox.wait(WAIT), Waited::Stop);
        assert!(inbox.core_gone());
    }

    #[test]
    fn a_reader_waits_once_its_chunks_fill_the_queue_until_one_is_taken() {
        let permits = Permits::new();
        let mut queued: Vec<Permit> = (0..QUEUE).map(|_| permits.take()).collect();
        let (done_tx, done) = mpsc::channel();
        let p = permits.clone();
        thread::spawn(move || drop(done_tx.send(p.take())));
        // The reader is parked (a freed place notifies only a waiting one).
        let deadline = Instant::now() + WAIT;
        while !permits.state.lock().unwrap().waiting {
            assert!(Instant::now() < deadline, "the reader never waited");
            thread::yield_now();
        }
        queued.pop();
        let taken = done
            .recv_timeout(WAIT)
            .expect("a place freed by the taken chunk");
        assert!(!permits.state.lock().unwrap().waiting);
        drop((queued, taken));
        assert_eq!(permits.state.lock().unwrap().left, QUEUE, "all given back");
    }

    const WAIT: Duration = Duration::from_secs(10);
}
