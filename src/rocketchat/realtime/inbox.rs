//! The realtime thread's single wake-up source: the socket's bytes and the core's commands on one channel.
//!
//! Why: a thread blocked in a socket read cannot also wait for an mpsc
//! message, and std has no `poll`. Reading with a short timeout to look at
//! the commands and the stop flag made the idle daemon wake 5 times a second.
//! Instead, a small `realtime-rx` thread per connection does nothing but the
//! blocking read and passes the bytes on, and a `realtime-cmd` thread passes
//! the core's commands on; the realtime thread sleeps in one `recv_timeout`
//! until either comes, or until its heartbeat or the watchdog is due. The
//! websocket (TLS included) reads those bytes from a [`Feed`], which never
//! blocks: rustls and tungstenite resume after `WouldBlock`.
use crate::bus::RtCommand;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

/// Chunks a reader may queue ahead of the realtime thread: bounds the memory
/// a fast server can fill, and leaves flow control to TCP beyond it.
const QUEUE: usize = 8;
/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;

/// What the helper threads send.
enum Input {
    /// Bytes read from connection number `.0`.
    Bytes(u64, Vec<u8>),
    /// Connection `.0` reached its end: `Ok` for the peer's close, else the error.
    Ended(u64, io::Result<()>),
    Command(RtCommand),
    /// The core dropped its end of the command channel: the daemon is stopping.
    CoreGone,
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
    tx: SyncSender<Input>,
    /// Commands taken off the channel, not handled yet.
    commands: RefCell<VecDeque<RtCommand>>,
    core_gone: Cell<bool>,
    last_conn: Cell<u64>,
}

impl Inbox {
    pub fn new() -> Inbox {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        Inbox {
            rx,
            tx,
            commands: RefCell::default(),
            core_gone: Cell::new(false),
            last_conn: Cell::new(0),
        }
    }

    /// Passes the core's commands on from a `realtime-cmd` thread, then
    /// [`Next::Stop`] once the core drops its sender (the stop's wake-up).
    /// The thread ends then, or as soon as this inbox is gone.
    pub fn forward(&self, commands: Receiver<RtCommand>) -> io::Result<()> {
        let tx = self.tx.clone();
        thread::Builder::new()
            .name("realtime-cmd".into())
            .spawn(move || {
                for c in commands {
                    if tx.send(Input::Command(c)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Input::CoreGone);
            })
            .map(drop)
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
            .spawn(move || read_into(reader, conn, &tx))?;
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
                Ok(Input::Bytes(c, bytes)) if Some(c) == conn => return Next::Bytes(bytes),
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
fn read_into(mut tcp: TcpStream, conn: u64, tx: &SyncSender<Input>) {
    let mut buf = vec![0u8; CHUNK];
    let end = loop {
        match tcp.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if tx.send(Input::Bytes(conn, buf[..n].to_vec())).is_err() {
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
        let (core, commands) = mpsc::channel();
        inbox.forward(commands).unwrap();
        inbox.tx.send(Input::Bytes(7, vec![1])).unwrap();
        core.send(RtCommand::Relogin).unwrap();
        assert!(matches!(inbox.next(Some(8), WAIT), Next::Command));
        assert!(matches!(inbox.take_command(), Some(RtCommand::Relogin)));
        assert!(inbox.take_command().is_none());
        inbox.tx.send(Input::Bytes(8, vec![2])).unwrap();
        assert!(matches!(inbox.next(Some(8), WAIT), Next::Bytes(b) if b == [2]));
        inbox.tx.send(Input::Bytes(8, vec![3])).unwrap();
        let quiet = Duration::from_millis(20);
        assert_eq!(inbox.wait(quiet), Waited::Timeout, "bytes are not for it");
        drop(core);
        assert_eq!(inbox.wait(WAIT), Waited::Stop);
        assert!(inbox.core_gone());
    }

    const WAIT: Duration = Duration::from_secs(10);
}
