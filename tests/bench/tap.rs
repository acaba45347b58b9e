//! A TCP relay between the daemon and a fake server that timestamps bytes as they pass.
//!
//! The fakes of `tests/support` poll: their accept loop sleeps 5 ms when no
//! connection is pending, and a DDP connection thread waits up to 5 ms in a
//! read before it sends queued frames. Timing only at the fakes' API would
//! charge those waits to the daemon. The relay accepts at once (blocking
//! `accept`), copies bytes both ways as soon as they arrive, and hands every
//! chunk to a scanner before writing it on; the scanner notes the time once
//! it has looked at the chunk, so the bench can say when a frame was handed
//! to the daemon's socket (the scan's own time is not charged to the daemon)
//! and when the daemon's request reached the relay. The relay's wake-up and
//! read on the daemon's request are charged to the daemon (the figures err
//! on the slow side).
//!
//! Server-to-client websocket frames are not masked, so their JSON text is
//! in the byte stream as is; the daemon's own DDP frames are masked and not
//! searchable, its HTTP requests are plain text.
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Direction of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the daemon to the server.
    Up,
    /// From the server to the daemon.
    Down,
}

/// Called with each chunk, just before it is written on: connection number,
/// direction, the bytes (with up to `CARRY` bytes of the previous chunk of
/// the same direction in front), and where the new bytes start. It takes
/// the time itself, after its search and before recording what it found.
pub type Scanner = Arc<dyn Fn(u64, Dir, &[u8], usize) + Send + Sync>;

/// Bytes of the previous chunk kept in front of the next one, so that a
/// marker cut in two by the TCP stream is still seen.
pub const CARRY: usize = 96;

/// A running relay.
pub struct Tap {
    port: u16,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
}

impl Tap {
    /// Listens on 127.0.0.1 (OS-chosen port) and relays to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16, scanner: Scanner) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tap");
        let port = listener.local_addr().expect("tap addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(HashMap::new()));
        let (stop2, conns2) = (stop.clone(), conns.clone());
        thread::Builder::new()
            .name(format!("tap-{port}"))
            .spawn(move || accept_loop(listener, upstream, scanner, stop2, conns2))
            .expect("spawn tap");
        Tap { port, stop, conns }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (_, c) in self.conns.lock().unwrap().drain() {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Unblock accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

type Conns = Arc<Mutex<HashMap<u64, TcpStream>>>;

/// Accepts at once and hands the connection to its own thread, which
/// connects upstream and copies both ways; the accept loop does nothing else.
fn accept_loop(
    listener: TcpListener,
    upstream: u16,
    scanner: Scanner,
    stop: Arc<AtomicBool>,
    conns: Conns,
) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        let id = NEXT.fetch_add(1, Ordering::SeqCst);
        let (sc, conns) = (scanner.clone(), conns.clone());
        thread::spawn(move || relay(id, client, upstream, sc, conns));
    }
}

fn relay(id: u64, client: TcpStream, upstream: u16, scanner: Scanner, conns: Conns) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2), Ok(keep)) = (client.try_clone(), server.try_clone(), client.try_clone())
    else {
        return;
    };
    conns.lock().unwrap().insert(id, keep);
    let sc = scanner.clone();
    let down = thread::spawn(move || pump(id, Dir::Down, s2, c2, sc));
    pump(id, Dir::Up, client, server, scanner);
    let _ = down.join();
    conns.lock().unwrap().remove(&id);
}

/// Copies `from` to `to` until EOF, then half-closes `to`.
fn pump(id: u64, dir: Dir, mut from: TcpStream, mut to: TcpStream, scanner: Scanner) {
    let mut buf = vec![0u8; CARRY + 64 * 1024];
    let mut carry = 0usize;
    loop {
        let n = match from.read(&mut buf[carry..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Scan before passing the bytes on: the peer cannot answer bytes it
        // has not got, so an answer is never seen before the request it answers.
        scanner(id, dir, &buf[..carry + n], carry);
        if to.write_all(&buf[carry..carry + n]).is_err() {
            break;
        }
        let end = carry + n;
        let keep = end.min(CARRY);
        buf.copy_within(end - keep..end, 0);
        carry = keep;
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Finds `<open><digits><close>` markers whose last byte is at or after `new_from`.
pub fn markers(buf: &[u8], new_from: usize, open: u8, close: u8) -> Vec<u64> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == open {
            let mut j = i + 1;
            let mut v: u64 = 0;
            while j < buf.len() && buf[j].is_ascii_digit() {
                v = v.wrapping_mul(10).wrapping_add(u64::from(buf[j] - b'0'));
                j += 1;
            }
            if j > i + 1 && j < buf.len() && buf[j] == close && j >= new_from {
                out.push(v);
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Counts occurrences of `needle` that end at or after `new_from`.
pub fn count(buf: &[u8], new_from: usize, needle: &[u8]) -> usize {
    if needle.is_empty() || buf.len() < needle.len() {
        return 0;
    }
    (0..=buf.len() - needle.len())
        .filter(|&i| i + needle.len() > new_from && &buf[i..i + needle.len()] == needle)
        .count()
}
