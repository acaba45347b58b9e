//! The command socket's listener: taken in turn by the thread that will serve the next connection.
use super::sparing::{Say, Sparing, SUMMARY_EVERY};
use super::{reply, serve, Context, Slot, Slots, TicketGuard, MAX_THREADS};
use crate::bridge::error_json;
use crate::bus::CoreMsg;
use crate::jeedom::workers::Workers;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Starts the accepting thread on an already bound listener.
///
/// The thread that accepts a connection serves it, and hands the listener
/// to the parked connection thread (or a new one) first: the connection
/// never waits for a hand-over between threads, which cost one wake-up
/// (about 30 µs here) on the path of every `send`. One thread accepts at a
/// time, so connections are numbered in the order they were accepted.
pub fn spawn(
    listener: TcpListener,
    ctx: Arc<Context>,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let workers = Workers::default();
    let shared = Arc::new(Shared {
        acceptor: Mutex::new(Some(Acceptor {
            listener,
            ctx,
            to_core,
            shutdown,
            slots: Arc::new(Slots::default()),
            next_ticket: 0,
            busy: Sparing::new(1),
        })),
        workers: workers.clone(),
    });
    thread::Builder::new()
        .name("socket".into())
        .spawn(move || workers.work_here(Box::new(move || take_turn(&shared))))
}

/// Unblocks `accept` after `shutdown` is set, by connecting to ourselves.
pub fn wake(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
}

/// The listener and what numbering and serving connections need; held by
/// the thread accepting, else waiting in [`Shared`] for the next one.
struct Acceptor {
    listener: TcpListener,
    ctx: Arc<Context>,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
    slots: Arc<Slots>,
    next_ticket: u64,
    /// Connections refused for want of a thread, for the log.
    busy: Sparing,
}

struct Shared {
    acceptor: Mutex<Option<Acceptor>>,
    workers: Workers,
}

/// A connection accepted and numbered, to serve.
struct Accepted {
    stream: TcpStream,
    ticket: TicketGuard,
    slot: Slot,
    ctx: Arc<Context>,
    to_core: Sender<CoreMsg>,
}

/// Accepts the next connection, hands the listener on, serves the
/// connection. At a stop, closes the pool of connection threads instead.
fn take_turn(shared: &Arc<Shared>) {
    loop {
        let taken = shared
            .acceptor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut a) = taken else { return };
        let Some(conn) = a.next() else {
            shared.workers.close();
            return;
        };
        *shared.acceptor.lock().unwrap_or_else(|p| p.into_inner()) = Some(a);
        let next = shared.clone();
        let handed = shared.workers.run(Box::new(move || take_turn(&next)));
        serve(
            conn.stream,
            &conn.ctx,
            &conn.to_core,
            conn.ticket,
            &conn.slot,
        );
        match handed {
            Ok(()) => return,
            // No thread for the listener: this one takes it back.
            Err(e) => log::error!("command socket: cannot start a connection thread: {e}"),
        }
    }
}

impl Acceptor {
    /// The next connection to serve; `None` once the daemon stops.
    fn next(&mut self) -> Option<Accepted> {
        loop {
            if self.shutdown.load(Ordering::SeqCst) {
                return None;
            }
            let conn = self.listener.accept();
            if self.shutdown.load(Ordering::SeqCst) {
                return None;
            }
            let stream = match conn {
                Ok((s, _)) => s,
                Err(e) => {
                    log::warn!("command socket: accept failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if self.slots.threads.load(Ordering::SeqCst) >= MAX_THREADS {
                self.log_busy();
                reply(&stream, &error_json("too many connections, try again"));
                continue;
            }
            return Some(self.number(stream));
        }
    }

    /// Logs a connection refused for want of a thread, sparingly.
    fn log_busy(&mut self) {
        match self.busy.note(1, Instant::now()) {
            Some(Say::Line) => log::warn!(
                "command socket: {MAX_THREADS} connections busy, refusing one (further \
                 refusals are counted, one line every {} s at most)",
                SUMMARY_EVERY.as_secs()
            ),
            Some(Say::Sum { count, secs }) => log::warn!(
                "command socket: refused {count} connections in the last {secs} s, \
                 {MAX_THREADS} busy"
            ),
            None => {}
        }
    }

    fn number(&mut self, stream: TcpStream) -> Accepted {
        let ticket = TicketGuard::new(self.next_ticket, self.to_core.clone());
        self.next_ticket += 1;
        let slot = self.slots.open(ticket.ticket, &stream);
        Accepted {
            stream,
            ticket,
            slot,
            ctx: self.ctx.clone(),
            to_core: self.to_core.clone(),
        }
    }
}
