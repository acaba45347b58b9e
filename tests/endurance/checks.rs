//! The checks at the end of a run: what became of the messages, the sends and the state file.
use super::drain::{self, Reply};
use super::faults::KillMark;
use super::traffic::{Posted, Record, SendTry};
use super::Rig;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// What the checks found.
pub struct Checks {
    pub messages: Messages,
    pub sends: Sends,
    pub state: StateFile,
}

/// Messages posted by people, as Jeedom got them.
#[derive(Default)]
pub struct Messages {
    /// Posted messages delivered at least once.
    pub handled: usize,
    pub lost: Vec<Posted>,
    /// Re-deliveries without the replay mark.
    pub dup: Vec<String>,
    /// Re-deliveries marked as replays, after a kill -9.
    pub replays: Vec<String>,
    /// Re-deliveries marked as replays with no kill -9 before them.
    pub bad_replays: Vec<String>,
    pub out_of_order: Vec<String>,
    /// Message events for messages nobody posted.
    pub unexpected: usize,
}

/// `send` requests, as the bot posted them and as Jeedom heard of them.
pub struct Sends {
    pub tried: usize,
    pub accepted: Vec<u64>,
    /// Distinct sends posted.
    pub posted: usize,
    /// Sends posted although the request got no ok.
    pub posted_unacked: usize,
    pub lost: Vec<u64>,
    pub dup: Vec<u64>,
    pub out_of_order: usize,
    /// `sent` events repeated without the replay mark.
    pub sent_dup: usize,
    /// `sent` events repeated with the mark, which Jeedom skips.
    pub sent_replays: usize,
    /// Why requests were not accepted (the start of the error), with counts.
    pub refused: BTreeMap<String, usize>,
}

/// The state file the daemon left at its clean stop.
pub struct StateFile {
    pub text: String,
    /// It parses and the daemon would resume from it.
    pub ok: bool,
    pub outbox: usize,
    pub events: usize,
}

/// Runs every check, once the daemon has stopped.
pub fn check(rig: &Rig, traffic: &Record, kills: &[KillMark]) -> Checks {
    let events = rig.jeedom.events();
    let batches = rig.jeedom.batches();
    let messages = messages(&traffic.posted, &events, &batches, kills);
    let replies = drain::bot_replies(&rig.rc);
    let sends = sends(&traffic.sends, traffic.accepted(), &replies, &events);
    Checks {
        messages,
        sends,
        state: state_file(&rig.daemon.state_path),
    }
}

fn messages(
    posted: &[Posted],
    events: &[Value],
    batches: &[Vec<Value>],
    kills: &[KillMark],
) -> Messages {
    let by_id: HashMap<&str, &Posted> = posted.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut deliveries: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut m = Messages::default();
    for (i, e) in events.iter().enumerate() {
        if e["type"] != "message" {
            continue;
        }
        let id = e["id"].as_str().unwrap_or_default();
        match by_id.get(id) {
            Some(p) => deliveries.entry(p.id.as_str()).or_default().push(i),
            None => m.unexpected += 1,
        }
    }
    m.handled = deliveries.len();
    m.lost = posted
        .iter()
        .filter(|p| !deliveries.contains_key(p.id.as_str()))
        .cloned()
        .collect();
    redeliveries(&mut m, &deliveries, &by_id, events, batches, kills);
    m.out_of_order = out_of_order(&deliveries, &by_id);
    m
}

/// Sorts the deliveries after the first of each message.
///
/// Jeedom handles each message once: a re-delivery marked `replay` (the
/// daemon crashed before writing down what Jeedom acknowledged) is skipped
/// because its id was handled. A re-delivery without the mark is a
/// duplicate; a mark with no kill -9 in between is a daemon bug.
fn redeliveries(
    m: &mut Messages,
    deliveries: &HashMap<&str, Vec<usize>>,
    by_id: &HashMap<&str, &Posted>,
    events: &[Value],
    batches: &[Vec<Value>],
    kills: &[KillMark],
) {
    // Batch index of each event, to place deliveries relative to the kills.
    let mut batch_of = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        batch_of.extend(std::iter::repeat_n(i, b.len()));
    }
    for (id, at) in deliveries {
        for pair in at.windows(2) {
            let (first, again) = (batch_of[pair[0]], batch_of[pair[1]]);
            let p = by_id[id];
            let marked = events[pair[1]]["replay"] == true;
            let kill = kills
                .iter()
                .position(|k| first < k.batches && k.batches <= again);
            let text = format!("e{} in {}", p.n, p.rid);
            match (marked, kill) {
                (true, Some(k)) => m.replays.push(format!("{text} after kill -9 #{}", k + 1)),
                (true, None) => m.bad_replays.push(text),
                (false, _) => m.dup.push(text),
            }
        }
    }
}

/// Order per room, on first deliveries.
fn out_of_order(
    deliveries: &HashMap<&str, Vec<usize>>,
    by_id: &HashMap<&str, &Posted>,
) -> Vec<String> {
    let mut first_at: Vec<(usize, &Posted)> = deliveries
        .iter()
        .map(|(id, at)| (at[0], by_id[id]))
        .collect();
    first_at.sort_by_key(|(i, _)| *i);
    let mut last_n: HashMap<&str, u64> = HashMap::new();
    let mut out_of_order = Vec::new();
    for (_, p) in &first_at {
        let last = last_n.entry(p.rid.as_str()).or_insert(0);
        if p.n < *last {
            out_of_order.push(format!("e{} after e{} in {}", p.n, last, p.rid));
        }
        *last = (*last).max(p.n);
    }
    out_of_order
}

fn sends(tries: &[SendTry], accepted: Vec<u64>, replies: &[Reply], events: &[Value]) -> Sends {
    let posted_count = count_posted(replies);
    let accepted_set: HashSet<u64> = accepted.iter().copied().collect();
    let (sent_dup, sent_replays) = sent_events(events);
    Sends {
        tried: tries.len(),
        lost: accepted
            .iter()
            .copied()
            .filter(|n| !posted_count.contains_key(n))
            .collect(),
        dup: posted_count
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(n, _)| *n)
            .collect(),
        posted_unacked: posted_count
            .keys()
            .filter(|n| !accepted_set.contains(n))
            .count(),
        posted: posted_count.len(),
        accepted,
        out_of_order: sends_out_of_order(replies),
        sent_dup,
        sent_replays,
        refused: refused(tries),
    }
}

/// How many times each send was posted.
fn count_posted(replies: &[Reply]) -> HashMap<u64, usize> {
    let mut posted_count: HashMap<u64, usize> = HashMap::new();
    for (n, _, _) in replies {
        *posted_count.entry(*n).or_default() += 1;
    }
    posted_count
}

/// Sends posted out of order, by server time.
fn sends_out_of_order(replies: &[Reply]) -> usize {
    let mut in_order = replies.to_vec();
    in_order.sort_by_key(|r| r.2);
    in_order.windows(2).filter(|w| w[1].0 < w[0].0).count()
}

/// `sent` events repeated: without the mark (duplicates), and with it
/// (replays, which Jeedom skips because it handled their ref).
fn sent_events(events: &[Value]) -> (usize, usize) {
    let mut sent_refs: HashSet<String> = HashSet::new();
    let (mut sent_dup, mut sent_replays) = (0usize, 0usize);
    for e in events.iter().filter(|e| e["type"] == "sent") {
        let fresh = sent_refs.insert(e["ref"].as_str().unwrap_or_default().to_string());
        match (fresh, e["replay"] == true) {
            (true, _) => {}
            (false, true) => sent_replays += 1,
            (false, false) => sent_dup += 1,
        }
    }
    (sent_dup, sent_replays)
}

fn refused(tries: &[SendTry]) -> BTreeMap<String, usize> {
    tries
        .iter()
        .filter(|s| !s.accepted)
        .fold(BTreeMap::new(), |mut m, s| {
            let e: String = s.error.chars().take(60).collect();
            *m.entry(e).or_default() += 1;
            m
        })
}

fn state_file(path: &Path) -> StateFile {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let state: Result<rocketchatd::testing::state::State, _> = serde_json::from_str(&text);
    let ok = match &state {
        Ok(s) => {
            let (_, loaded) = rocketchatd::testing::state::load(
                path,
                &s.server_url,
                s.login.as_deref().unwrap_or(""),
            );
            loaded == rocketchatd::testing::state::Loaded::Resumed
        }
        Err(_) => false,
    };
    let (outbox, events) = state
        .as_ref()
        .map(|s| (s.outbox.len(), s.events.len()))
        .unwrap_or((usize::MAX, usize::MAX));
    StateFile {
        text,
        ok,
        outbox,
        events,
    }
}
