//! The faults, dealt at random from a shuffled deck while the traffic flows.
use super::random::Rng;
use super::{Rig, Run};
use crate::support::fake_jeedom::JeedomMode;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    DropConnections,
    Silence,
    RestartServer,
    ServerDown,
    JeedomStatus500,
    JeedomHang,
    JeedomClose,
    Kill9,
}

const FAULTS: [Fault; 8] = [
    Fault::DropConnections,
    Fault::Silence,
    Fault::RestartServer,
    Fault::ServerDown,
    Fault::JeedomStatus500,
    Fault::JeedomHang,
    Fault::JeedomClose,
    Fault::Kill9,
];

/// Where the daemon was killed in Jeedom's record.
#[derive(Debug, Clone)]
pub struct KillMark {
    /// Batches Jeedom had accepted at that moment.
    pub batches: usize,
}

/// What was injected, and when.
#[derive(Default)]
pub struct Injected {
    /// How many of each kind.
    pub counts: BTreeMap<String, usize>,
    /// Start and end (seconds since the start of the run) of each fault.
    pub timeline: Vec<(f64, f64, Fault)>,
    pub kills: Vec<KillMark>,
}

impl Injected {
    /// The faults around a moment, to tell what may have caused a loss.
    pub fn near(&self, at: f64) -> String {
        let f: Vec<String> = self
            .timeline
            .iter()
            .filter(|(a, b, _)| at >= a - 0.5 && at <= b + 2.0)
            .map(|(a, b, f)| format!("{f:?} {a:.2}-{b:.2}s"))
            .collect();
        f.join(", ")
    }
}

/// A shuffled deck of every kind, dealt again when empty, so that even a
/// short run injects each kind.
#[derive(Default)]
struct Deck(Vec<Fault>);

impl Deck {
    fn deal(&mut self, rng: &mut Rng) -> Fault {
        if self.0.is_empty() {
            self.0 = FAULTS.to_vec();
            for i in (1..self.0.len()).rev() {
                let j = rng.range(0, i as u64) as usize;
                self.0.swap(i, j);
            }
        }
        self.0.pop().unwrap_or(Fault::DropConnections)
    }
}

/// Injects faults for `run.secs`; `pid` follows the daemon's restarts.
pub fn inject(
    rig: &mut Rig,
    run: &Run,
    rng: &mut Rng,
    pid: &AtomicU32,
    started: Instant,
) -> Injected {
    let mut injected = Injected::default();
    let mut deck = Deck::default();
    let end = Instant::now() + Duration::from_secs(run.secs);
    while Instant::now() < end {
        thread::sleep(rng.ms(run.gap.0, run.gap.1));
        let fault = deck.deal(rng);
        let hold = rng.ms(run.hold.0, run.hold.1);
        *injected.counts.entry(format!("{fault:?}")).or_default() += 1;
        let fault_start = started.elapsed().as_secs_f64();
        if let Some(kill) = apply(rig, fault, hold, rng, pid) {
            injected.kills.push(kill);
        }
        let fault_end = started.elapsed().as_secs_f64();
        injected.timeline.push((fault_start, fault_end, fault));
    }
    injected
}

/// Injects one fault and waits until it is over; a kill -9 returns its mark.
fn apply(
    rig: &mut Rig,
    fault: Fault,
    hold: Duration,
    rng: &mut Rng,
    pid: &AtomicU32,
) -> Option<KillMark> {
    let rc = &rig.rc;
    match fault {
        Fault::DropConnections => rc.drop_connections(),
        Fault::Silence => silence(rig, hold),
        Fault::RestartServer => rc.restart(),
        Fault::ServerDown => {
            rc.set_down(true);
            thread::sleep(hold);
            rc.set_down(false);
        }
        Fault::JeedomStatus500 => jeedom_fails(rig, JeedomMode::Status(500), hold),
        Fault::JeedomHang => jeedom_fails(rig, JeedomMode::Hang, hold),
        Fault::JeedomClose => jeedom_fails(rig, JeedomMode::Close, hold),
        Fault::Kill9 => return Some(kill9(rig, rng, pid)),
    }
    None
}

fn silence(rig: &Rig, hold: Duration) {
    // Long enough for the daemon's heartbeat (1 s, then 1 s more) to
    // declare the link dead. The fake drops the frames it does not
    // send while silent, and holds HTTP requests (a reconnection's
    // handshake) forever; a real server cannot drop frames on a live
    // connection, and answers once it is back: so no connection
    // survives the silence (else a message dropped while the link
    // stayed up would be lost for good, and a held handshake costs
    // the daemon its 10 s connect timeout).
    rig.rc.set_silent(true);
    thread::sleep(hold.max(Duration::from_millis(2500)));
    rig.rc.restart();
    rig.rc.set_silent(false);
}

fn jeedom_fails(rig: &Rig, mode: JeedomMode, hold: Duration) {
    rig.jeedom.set_mode(mode);
    thread::sleep(hold);
    rig.jeedom.set_mode(JeedomMode::Ok);
}

fn kill9(rig: &mut Rig, rng: &mut Rng, pid: &AtomicU32) -> KillMark {
    rig.daemon.kill9();
    // A POST the daemon finished sending is recorded by the fake within
    // a few ms (its accept loop polls every 5 ms): count it before the kill.
    thread::sleep(Duration::from_millis(100));
    let mark = KillMark {
        batches: rig.jeedom.batches().len(),
    };
    thread::sleep(rng.ms(0, 500));
    rig.daemon.restart();
    pid.store(rig.daemon.pid(), Ordering::SeqCst);
    mark
}

/// Ends any fault still in force, so that everything can be drained.
pub fn clear(rig: &Rig) {
    rig.rc.set_silent(false);
    rig.rc.set_down(false);
    rig.jeedom.set_mode(JeedomMode::Ok);
}
