//! The traffic that flows while faults are injected: people posting, Jeedom sending, RSS sampled.
use super::random::Rng;
use super::{Rig, Run};
use crate::harness::{self, APIKEY};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Room targets of the `send` requests and the room id each resolves to.
const SEND_ROOMS: [&str; 3] = ["GENERAL", "#ops", "@alice"];

/// A message posted by a person.
#[derive(Debug, Clone)]
pub struct Posted {
    pub id: String,
    pub rid: String,
    pub n: u64,
    /// Seconds since the start of the run.
    pub at: f64,
}

/// The outcome of a `send` request on the command socket.
#[derive(Debug, Clone)]
pub struct SendTry {
    pub n: u64,
    pub accepted: bool,
    pub error: String,
}

/// The running traffic threads and what they record.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    /// The daemon's pid, updated at each restart so that the RSS follows it.
    pid: Arc<AtomicU32>,
    max_rss: Arc<AtomicU64>,
    posted: Arc<Mutex<Vec<Posted>>>,
    sends: Arc<Mutex<Vec<SendTry>>>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
}

/// What the traffic did, once stopped.
pub struct Record {
    pub posted: Vec<Posted>,
    pub sends: Vec<SendTry>,
    /// Largest RSS of any incarnation of the daemon, KiB.
    pub max_rss: u64,
}

impl Record {
    /// The numbers of the `send` requests the daemon accepted, in order.
    pub fn accepted(&self) -> Vec<u64> {
        self.sends
            .iter()
            .filter(|s| s.accepted)
            .map(|s| s.n)
            .collect()
    }
}

impl Traffic {
    /// Starts the threads; each takes its own generator from `rng`.
    pub fn start(rig: &Rig, run: &Run, rng: &mut Rng, started: Instant) -> Traffic {
        let mut t = Traffic {
            stop: Arc::default(),
            pid: Arc::new(AtomicU32::new(rig.daemon.pid())),
            max_rss: Arc::default(),
            posted: Arc::default(),
            sends: Arc::default(),
            threads: Vec::new(),
        };
        let poster = t.poster(rig, Rng::new(rng.next()), run.post_gap, started);
        let sender = t.sender(rig.daemon.port, Rng::new(rng.next()), run.send_gap);
        let sampler = t.sampler();
        t.threads = vec![("poster", poster), ("sender", sender), ("sampler", sampler)];
        t
    }

    pub fn pid(&self) -> &AtomicU32 {
        &self.pid
    }

    /// Stops the threads and hands over what they recorded.
    pub fn stop(self) -> Record {
        self.stop.store(true, Ordering::SeqCst);
        for (name, thread) in self.threads {
            thread.join().expect(name);
        }
        let posted = self.posted.lock().unwrap().clone();
        let sends = self.sends.lock().unwrap().clone();
        Record {
            posted,
            sends,
            max_rss: self.max_rss.load(Ordering::SeqCst),
        }
    }

    /// People post, at random, in the three rooms.
    fn poster(&self, rig: &Rig, mut r: Rng, gap: (u64, u64), t0: Instant) -> JoinHandle<()> {
        let (rc, stop, posted) = (rig.rc.clone(), self.stop.clone(), self.posted.clone());
        let rooms = rig.rooms.clone();
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let (rid, who) = &rooms[r.range(0, 2) as usize];
                n += 1;
                let id = rc.post(rid, who, &post_text(&rooms, rid, n));
                posted.lock().unwrap().push(Posted {
                    id,
                    rid: rid.clone(),
                    n,
                    at: t0.elapsed().as_secs_f64(),
                });
                thread::sleep(r.ms(gap.0, gap.1));
            }
        })
    }

    /// Jeedom sends, one request at a time, like a scenario.
    fn sender(&self, port: u16, mut r: Rng, gap: (u64, u64)) -> JoinHandle<()> {
        let (stop, sends) = (self.stop.clone(), self.sends.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let room = SEND_ROOMS[r.range(0, 2) as usize];
                let (accepted, error) = match send_request(port, room, n) {
                    Ok(v) if v["ok"] == true => (true, String::new()),
                    Ok(v) => (false, v.to_string()),
                    Err(e) => (false, e),
                };
                sends.lock().unwrap().push(SendTry { n, accepted, error });
                thread::sleep(r.ms(gap.0, gap.1));
            }
        })
    }

    /// RSS of whichever daemon runs.
    fn sampler(&self) -> JoinHandle<()> {
        let (stop, pid, max_rss) = (self.stop.clone(), self.pid.clone(), self.max_rss.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                max_rss.fetch_max(rss_kib(pid.load(Ordering::SeqCst)), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(200));
            }
        })
    }
}

/// Addresses the bot as a person would: by a mention in channels, plainly in the direct room.
fn post_text(rooms: &[(String, &str); 3], rid: &str, n: u64) -> String {
    if rid == rooms[2].0 {
        format!("e{n}")
    } else {
        format!("@jeedombot e{n}")
    }
}

/// One `send` request as Jeedom would (we read the reply to know if it was accepted).
fn send_request(port: u16, room: &str, n: u64) -> Result<Value, String> {
    let body = json!({"apikey": APIKEY, "action": "send", "room": room,
        "message": format!("reply s{n}"), "ref": format!("s{n}")});
    harness::request_on(port, &body.to_string(), Duration::from_secs(10)).map_err(|e| e.to_string())
}

fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
