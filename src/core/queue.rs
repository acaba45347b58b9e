//! The callback event queue: bounded, ordered, acknowledged by Jeedom.
use super::{Journal, Persisted};
use crate::bridge::events::{self, Event};
use crate::journal::Op;
use crate::state::{EventKind, QueuedEvent, State};
use serde_json::value::RawValue;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Most events kept while Jeedom is away; past it the oldest messages go.
pub const MAX_EVENTS: usize = 10_000;
/// Most events in one POST.
pub const MAX_BATCH: usize = 100;
/// Least time between two "queue full" warnings.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The events waiting for Jeedom, in order, and the batch being posted.
#[derive(Debug, Default)]
pub struct EventQueue {
    /// Persisted (`events` of the state file).
    events: VecDeque<QueuedEvent>,
    /// Sequence number of the next event (persisted).
    next_seq: u64,
    /// Sequence number of the last event of the batch being posted.
    inflight: Option<u64>,
    /// When the last "queue full" warning was logged.
    dropping_warned: Option<Instant>,
}

/// The newest acknowledged message time of each room.
pub type Marks = HashMap<String, i64>;

impl Persisted for EventQueue {
    fn swap(&mut self, state: &mut State) {
        std::mem::swap(&mut self.events, &mut state.events);
        std::mem::swap(&mut self.next_seq, &mut state.next_seq);
    }
}

impl EventQueue {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &QueuedEvent> {
        self.events.iter()
    }

    /// Queues an event; `mark` (room id, server ms) advances the room's
    /// watermark once Jeedom acknowledges it.
    pub fn push(&mut self, event: Event, mark: Option<(String, i64)>, j: &mut impl Journal) {
        if self.events.len() >= MAX_EVENTS {
            self.drop_oldest_message(j);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let kind = match &event {
            Event::Message(_) => EventKind::Message,
            Event::Dropped { .. } => EventKind::Dropped,
            Event::Rooms { .. } => EventKind::Rooms,
            _ => EventKind::Other,
        };
        log::debug!("event {seq} queued ({kind:?})");
        let queued = QueuedEvent::serialized(seq, mark, &event, kind);
        j.record(Op::Push {
            event: queued.clone(),
        });
        self.events.push_back(queued);
    }

    /// Whether an event is not part of the batch being posted.
    fn free(&self, e: &QueuedEvent) -> bool {
        self.inflight.is_none_or(|s| e.seq > s)
    }

    fn position(&self, kind: EventKind) -> Option<usize> {
        let free = |e: &QueuedEvent| self.free(e) && e.kind == kind;
        self.events.iter().position(free)
    }

    /// Drops the oldest `message` event not being posted and counts it in
    /// one `dropped` event, which takes the first dropped message's place (and
    /// sequence number, so that the queue stays in order).
    fn drop_oldest_message(&mut self, j: &mut impl Journal) {
        let Some(pos) = self.position(EventKind::Message) else {
            return;
        };
        let (seq, event) = match self.position(EventKind::Dropped) {
            Some(d) => {
                let n = self.events[d].value()["count"].as_u64().unwrap_or(0) + 1;
                let ev = events::dropped(n).to_value();
                self.events[d].set_event(&ev);
                let seq = self.events[d].seq;
                if let Some(gone) = self.events.remove(pos) {
                    j.record(Op::Remove { seq: gone.seq });
                }
                (seq, ev)
            }
            None => {
                self.warn_dropping();
                let ev = events::dropped(1).to_value();
                let e = &mut self.events[pos];
                e.set_event(&ev);
                e.mark = None;
                (e.seq, ev)
            }
        };
        j.record(Op::Set { seq, event });
    }

    /// Says that messages are dropped, once a minute at most: during a long
    /// outage a new `dropped` event starts with every batch.
    fn warn_dropping(&mut self) {
        let now = Instant::now();
        if self
            .dropping_warned
            .is_some_and(|t| now.duration_since(t) < DROP_WARNING_EVERY)
        {
            return;
        }
        self.dropping_warned = Some(now);
        log::warn!("Jeedom is not taking events: queue full, dropping the oldest messages");
    }

    /// The room list changed. A `rooms` event still waiting at the end of the
    /// queue is brought up to date instead of queuing another: while Jeedom
    /// is away, room changes would otherwise pile up one full list each.
    pub fn push_rooms(&mut self, ev: Event, j: &mut impl Journal) {
        let inflight = self.inflight;
        match self.events.back_mut() {
            Some(last)
                if last.kind == EventKind::Rooms && inflight.is_none_or(|s| last.seq > s) =>
            {
                let event = ev.to_value();
                last.set_event(&event);
                let seq = last.seq;
                j.record(Op::Set { seq, event });
            }
            _ => self.push(ev, None, j),
        }
    }

    /// The next batch for the callback worker: none while one is in flight.
    pub fn next_batch(&self) -> Option<Vec<(u64, Box<RawValue>)>> {
        if self.inflight.is_some() || self.events.is_empty() {
            return None;
        }
        let batch = self.events.iter().take(MAX_BATCH);
        Some(batch.map(|e| (e.seq, e.raw().to_owned())).collect())
    }

    /// The batch ending at `upto` was handed to the worker.
    pub fn posting(&mut self, upto: u64) {
        self.inflight = Some(upto);
    }

    /// Jeedom acknowledged the batch in flight, up to `upto`.
    pub fn delivered(&mut self, upto: u64, j: &mut impl Journal) -> Marks {
        self.inflight = None;
        self.acknowledge(upto, j)
    }

    /// Without `--callback`, events are logged (for a person testing) and acknowledged.
    pub fn log_and_forget(&mut self, j: &mut impl Journal) -> Marks {
        let last = self.events.back().map(|e| e.seq).unwrap_or(0);
        for e in &self.events {
            log::info!("event (no --callback): {}", e.value());
        }
        self.acknowledge(last, j)
    }

    /// Removes acknowledged events; returns the newest mark of each room
    /// among them (once per room and batch: each advance also prunes the
    /// room's ids).
    fn acknowledge(&mut self, upto: u64, j: &mut impl Journal) -> Marks {
        let mut newest = Marks::new();
        if self.events.front().is_some_and(|e| e.seq <= upto) {
            j.record(Op::Ack { upto });
        }
        while self.events.front().is_some_and(|e| e.seq <= upto) {
            let Some(e) = self.events.pop_front() else {
                break;
            };
            if let Some((rid, ts)) = e.mark {
                let at = newest.entry(rid).or_insert(ts);
                *at = (*at).max(ts);
            }
        }
        newest
    }

    /// Flags every queued event as possibly delivered before (after a
    /// crash; written whole at start, not journaled).
    pub fn mark_all_replays(&mut self) {
        self.events.iter_mut().for_each(mark_queued);
    }

    /// Before the last write: the batch being posted may have reached Jeedom
    /// without its answer reaching us.
    pub fn mark_inflight_replays(&mut self) {
        if let Some(upto) = self.inflight {
            let posting = self.events.iter_mut().take_while(|e| e.seq <= upto);
            posting.for_each(mark_queued);
        }
    }
}

/// Flags a queued event as possibly delivered before.
fn mark_queued(e: &mut QueuedEvent) {
    let mut v = e.value();
    events::mark_json_replay(&mut v);
    e.set_event(&v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{incoming, room};
    use crate::model::Room;

    fn message(id: &str, ts_ms: i64) -> (Event, Option<(String, i64)>) {
        let m = incoming("R", id, "alice", "hi", ts_ms);
        let ev = events::message(&m, &room("R"), "bot");
        (ev, Some(("R".into(), ts_ms)))
    }

    fn types(q: &EventQueue) -> Vec<String> {
        let kind = |e: &QueuedEvent| e.value()["type"].as_str().unwrap_or("").to_string();
        q.iter().map(kind).collect()
    }

    fn ops(j: &[Op]) -> Vec<String> {
        let name = |op: &Op| serde_json::to_value(op).unwrap();
        let first_key = |v: serde_json::Value| v.as_object().unwrap().keys().next().cloned();
        j.iter().filter_map(|op| first_key(name(op))).collect()
    }

    #[test]
    fn each_event_gets_the_next_number_and_is_journaled() {
        let (mut q, mut j) = (EventQueue::default(), Vec::new());
        q.push(events::ask_expired("1"), None, &mut j);
        let (ev, mark) = message("m1", 5);
        q.push(ev, mark, &mut j);
        let seqs: Vec<u64> = q.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1]);
        assert_eq!(ops(&j), ["push", "push"]);
        let mut state = State::default();
        q.swap(&mut state);
        assert_eq!((state.events.len(), state.next_seq), (2, 2));
        assert_eq!(q.len(), 0, "lent whole to the state");
    }

    #[test]
    fn the_kind_given_at_push_is_the_one_its_text_says() {
        let (mut q, mut j) = (EventQueue::default(), Vec::new());
        q.push(events::ask_expired("1"), None, &mut j);
        let (ev, mark) = message("m1", 5);
        q.push(ev, mark, &mut j);
        q.push(events::dropped(3), None, &mut j);
        q.push(events::rooms(std::iter::empty()), None, &mut j);
        for e in q.iter() {
            let mut read = e.clone();
            read.refresh_kind();
            assert_eq!(e.kind, read.kind, "{}", e.raw());
        }
        let kinds: Vec<EventKind> = q.iter().map(|e| e.kind).collect();
        use EventKind::*;
        assert_eq!(kinds, [Other, Message, Dropped, Rooms]);
    }

    #[test]
    fn a_full_queue_counts_the_dropped_messages_in_one_event() {
        let (mut q, mut j) = (EventQueue::default(), Vec::new());
        q.push(events::ask_expired("1"), None, &mut j);
        for i in 0..MAX_EVENTS + 2 {
            let (ev, mark) = message(&format!("m{i}"), i as i64);
            q.push(ev, mark, &mut j);
        }
        assert_eq!(q.len(), MAX_EVENTS + 1, "the count takes one place");
        let t = types(&q);
        assert_eq!(t[..2], ["ask_expired", "dropped"]);
        let dropped = q.iter().nth(1).unwrap();
        assert_eq!(dropped.value()["count"], 3);
        assert_eq!(dropped.mark, None, "a count advances no watermark");
        assert_eq!(dropped.seq, 1, "in the first dropped message's place");
        let kept = t.iter().filter(|k| *k == "message").count();
        assert_eq!(kept + 3, MAX_EVENTS + 2, "every message kept or counted");
        let newest = q.iter().last().unwrap().value();
        assert_eq!(
            newest["id"],
            format!("m{}", MAX_EVENTS + 1),
            "the newest are kept"
        );
        let seqs: Vec<u64> = q.iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
        let tail = ops(&j).split_off(MAX_EVENTS);
        let again = ["remove", "set", "push"];
        assert_eq!(tail, [&["set", "push"][..], &again, &again].concat());
    }

    #[test]
    fn a_waiting_rooms_event_is_updated_but_not_one_being_posted() {
        let (mut q, mut j) = (EventQueue::default(), Vec::new());
        let rooms = |n: usize| {
            let list: Vec<Room> = (0..n).map(|i| room(&format!("R{i}"))).collect();
            events::rooms(list.iter())
        };
        q.push_rooms(rooms(1), &mut j);
        q.push_rooms(rooms(2), &mut j);
        assert_eq!(types(&q), ["rooms"]);
        let listed = |q: &EventQueue| {
            let last = q.iter().last().unwrap().value();
            last["rooms"].as_array().map_or(0, Vec::len)
        };
        assert_eq!(listed(&q), 2);
        // After a message, a new list comes after it: the order stays.
        let (ev, mark) = message("m1", 1);
        q.push(ev, mark, &mut j);
        q.push_rooms(rooms(1), &mut j);
        assert_eq!(types(&q), ["rooms", "message", "rooms"]);
        let batch = q.next_batch().expect("a batch");
        q.posting(batch.last().unwrap().0);
        q.push_rooms(rooms(3), &mut j);
        assert_eq!(types(&q), ["rooms", "message", "rooms", "rooms"]);
        assert_eq!(listed(&q), 3);
        assert_eq!(ops(&j), ["push", "set", "push", "push", "push"]);
    }

    #[test]
    fn one_batch_at_a_time_and_acknowledging_gives_each_rooms_newest_mark() {
        let (mut q, mut j) = (EventQueue::default(), Vec::new());
        for (id, ts) in [("a", 30), ("b", 10), ("c", 20)] {
            let (ev, mark) = message(id, ts);
            q.push(ev, mark, &mut j);
        }
        let batch = q.next_batch().expect("a batch");
        assert_eq!(batch.len(), 3);
        q.posting(1);
        assert!(q.next_batch().is_none(), "one batch in flight");
        j.clear();
        let marks = q.delivered(1, &mut j);
        assert_eq!(marks, Marks::from([("R".to_string(), 30)]));
        assert_eq!(ops(&j), ["ack"]);
        assert_eq!(q.next_batch().expect("the rest").len(), 1);
        assert!(q.delivered(1, &mut j).is_empty(), "nothing more");
    }

    #[test]
    fn only_the_batch_being_posted_is_marked_at_a_clean_stop() {
        let (mut q, mut j) = (EventQueue::default(), Vec::new());
        for id in ["a", "b"] {
            let (ev, mark) = message(id, 1);
            q.push(ev, mark, &mut j);
        }
        q.mark_inflight_replays();
        q.posting(0);
        q.mark_inflight_replays();
        let flags: Vec<bool> = q.iter().map(|e| e.value()["replay"] == true).collect();
        assert_eq!(flags, [true, false]);
        q.mark_all_replays();
        assert!(q.iter().all(|e| e.value()["replay"] == true));
    }
}
