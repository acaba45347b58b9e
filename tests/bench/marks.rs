//! What the two taps saw, with timestamps, and a way to wait for it.
//!
//! Markers in message texts: `~N!` in the messages people post (N = sequence
//! number), `^N!` in the bot's replies and in the `ref` of their `send`
//! requests. Neither `~` nor `^` occurs in the ids and tokens of the fakes.
use crate::tap::{self, Dir, Scanner};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Which relay a chunk went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Between the daemon and the fake Rocket.Chat (DDP and REST).
    Rc,
    /// Between the daemon and the fake Jeedom (callback POSTs).
    Jeedom,
}

/// Protocol moments seen on the wire, for the start-up figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The login result (it carries `tokenExpires`) handed to the daemon.
    LoggedIn,
    /// A DDP `ready` (subscription accepted) handed to the daemon.
    Ready,
    /// A callback POST carrying a `rooms` event handed to Jeedom.
    RoomsEvent,
}

#[derive(Default)]
pub struct Seen {
    /// `~N!` handed to the daemon by the Rocket.Chat relay (first time).
    pub msg_to_daemon: HashMap<u64, Instant>,
    /// `~N!` handed to Jeedom (first time).
    pub msg_to_jeedom: HashMap<u64, Instant>,
    /// First response bytes of the POST that carried `~N!`.
    pub msg_acked: HashMap<u64, Instant>,
    /// `^N!` in a request to Rocket.Chat (the bot's reply posted).
    pub reply_to_rc: HashMap<u64, Instant>,
    /// First response bytes of that request.
    pub reply_acked: HashMap<u64, Instant>,
    /// `^N!` handed to the daemon in a room notification (`stream-notify-user`,
    /// the room's new `lastMessage`): the reply's echo and its notification
    /// have reached the daemon.
    pub reply_echoed: HashMap<u64, Instant>,
    /// `^N!` handed to Jeedom (the `sent` event of the reply).
    pub sent_to_jeedom: HashMap<u64, Instant>,
    /// Response to the POST that carried the `sent` event.
    pub sent_acked: HashMap<u64, Instant>,
    pub moments: Vec<(Instant, Moment)>,
    /// Callback POSTs, and `message` events in them.
    pub jeedom_posts: usize,
    pub jeedom_message_events: usize,
    /// `dropped` events (the daemon's queue passed 10,000 events).
    pub jeedom_dropped_events: usize,
    /// HTTP requests to the Rocket.Chat side (REST, websocket upgrades).
    pub rc_requests: usize,
    /// Markers waiting for the response of their connection: (side, conn) -> (is reply, N).
    pending: HashMap<(Side, u64), Vec<(bool, u64)>>,
}

pub struct Marks {
    seen: Mutex<Seen>,
    cv: Condvar,
}

impl Marks {
    pub fn new() -> Arc<Marks> {
        Arc::new(Marks {
            seen: Mutex::new(Seen::default()),
            cv: Condvar::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `cond` holds; false after `timeout`.
    pub fn wait(&self, timeout: Duration, mut cond: impl FnMut(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if cond(&g) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Forgets the per-marker maps (between phases, to keep memory flat).
    pub fn clear_marks(&self) {
        let mut g = self.lock();
        g.msg_to_daemon.clear();
        g.msg_to_jeedom.clear();
        g.msg_acked.clear();
        g.reply_to_rc.clear();
        g.reply_acked.clear();
        g.reply_echoed.clear();
        g.sent_to_jeedom.clear();
        g.sent_acked.clear();
    }

    /// The scanner for one relay.
    pub fn scanner(self: &Arc<Self>, side: Side) -> Scanner {
        let me = self.clone();
        Arc::new(move |conn, dir, buf, from| me.on_chunk(side, conn, dir, buf, from))
    }

    /// Searches the chunk, then notes the time: the instant recorded is
    /// the moment the relay goes on to write the bytes to their peer.
    fn on_chunk(&self, side: Side, conn: u64, dir: Dir, buf: &[u8], from: usize) {
        let found = Found::search(buf, from);
        let at = Instant::now();
        let mut g = self.lock();
        let s = &mut *g;
        match (side, dir) {
            (Side::Rc, Dir::Down) => {
                for &n in &found.msgs {
                    s.msg_to_daemon.entry(n).or_insert(at);
                }
                if found.notify_user {
                    for &n in &found.replies {
                        s.reply_echoed.entry(n).or_insert(at);
                    }
                }
                if found.logged_in {
                    s.moments.push((at, Moment::LoggedIn));
                }
                for _ in 0..found.ready {
                    s.moments.push((at, Moment::Ready));
                }
                ack(s, side, conn, at);
            }
            (Side::Rc, Dir::Up) => {
                s.rc_requests += found.http_requests;
                for &n in &found.replies {
                    s.reply_to_rc.entry(n).or_insert(at);
                    s.pending.entry((side, conn)).or_default().push((true, n));
                }
            }
            (Side::Jeedom, Dir::Up) => {
                s.jeedom_posts += found.posts;
                s.jeedom_message_events += found.message_events;
                s.jeedom_dropped_events += found.dropped_events;
                if found.rooms_event {
                    s.moments.push((at, Moment::RoomsEvent));
                }
                for &n in &found.msgs {
                    s.msg_to_jeedom.entry(n).or_insert(at);
                    s.pending.entry((side, conn)).or_default().push((false, n));
                }
                for &n in &found.replies {
                    s.sent_to_jeedom.entry(n).or_insert(at);
                    s.pending.entry((side, conn)).or_default().push((true, n));
                }
            }
            (Side::Jeedom, Dir::Down) => ack(s, side, conn, at),
        }
        drop(g);
        self.cv.notify_all();
    }
}

/// What one chunk carries, searched before the time is taken.
struct Found {
    msgs: Vec<u64>,
    replies: Vec<u64>,
    notify_user: bool,
    logged_in: bool,
    ready: usize,
    http_requests: usize,
    posts: usize,
    message_events: usize,
    dropped_events: usize,
    rooms_event: bool,
}

impl Found {
    fn search(buf: &[u8], from: usize) -> Found {
        let count = |needle: &[u8]| tap::count(buf, from, needle);
        Found {
            msgs: tap::markers(buf, from, b'~', b'!'),
            replies: tap::markers(buf, from, b'^', b'!'),
            notify_user: count(b"stream-notify-user") > 0,
            logged_in: count(b"\"tokenExpires\"") > 0,
            ready: count(b"\"msg\":\"ready\""),
            http_requests: count(b" HTTP/1.1\r\n"),
            posts: count(b"POST /"),
            message_events: count(b"\"type\":\"message\""),
            dropped_events: count(b"\"type\":\"dropped\""),
            rooms_event: count(b"\"type\":\"rooms\"") > 0,
        }
    }
}

/// The first bytes coming back on a connection answer the markers it carried.
fn ack(s: &mut Seen, side: Side, conn: u64, at: Instant) {
    let Some(list) = s.pending.remove(&(side, conn)) else {
        return;
    };
    for (reply, n) in list {
        let map = match (side, reply) {
            (Side::Rc, _) => &mut s.reply_acked,
            (Side::Jeedom, false) => &mut s.msg_acked,
            (Side::Jeedom, true) => &mut s.sent_acked,
        };
        map.entry(n).or_insert(at);
    }
}
