//! The callback event queue: bounded, ordered, acknowledged by Jeedom.
use super::Core;
use crate::bus::{CallbackJob, CallbackReport};
use crate::jeedom::events;
use crate::journal::Op;
use crate::state::{EventKind, QueuedEvent};
use serde_json::Value;
use std::collections::HashMap;

/// Most events kept while Jeedom is away; past it the oldest messages go.
pub const MAX_EVENTS: usize = 10_000;
/// Most events in one POST.
pub const MAX_BATCH: usize = 100;
/// Least time between two "queue full" warnings.
const DROP_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Core {
    /// Queues an event; `mark` (room id, server ms) advances the room's
    /// watermark once Jeedom acknowledges it.
    pub(super) fn push_event(&mut self, event: Value, mark: Option<(String, i64)>) {
        if self.state.events.len() >= MAX_EVENTS {
            self.drop_oldest_message();
        }
        let seq = self.state.next_seq;
        self.state.next_seq += 1;
        log::debug!("event {seq} queued: {}", event["type"]);
        let queued = QueuedEvent::new(seq, mark, &event);
        self.log(Op::Push {
            event: queued.clone(),
        });
        self.state.events.push_back(queued);
    }

    /// Drops the oldest `message` event not being posted and counts it in
    /// one `dropped` event, which takes the first dropped message's place (and
    /// sequence number, so that the queue stays in order).
    fn drop_oldest_message(&mut self) {
        let inflight = self.cb_inflight;
        let free = |e: &QueuedEvent| inflight.is_none_or(|s| e.seq > s);
        let events = &mut self.state.events;
        let Some(pos) = events
            .iter()
            .position(|e| free(e) && e.kind == EventKind::Message)
        else {
            return;
        };
        let (seq, event) = match events
            .iter()
            .position(|e| free(e) && e.kind == EventKind::Dropped)
        {
            Some(d) => {
                let n = events[d].value()["count"].as_u64().unwrap_or(0) + 1;
                let ev = events::dropped(n);
                events[d].set_event(&ev);
                let seq = events[d].seq;
                if let Some(gone) = events.remove(pos) {
                    self.log(Op::Remove { seq: gone.seq });
                }
                (seq, ev)
            }
            None => {
                self.warn_dropping();
                let ev = events::dropped(1);
                let e = &mut self.state.events[pos];
                e.set_event(&ev);
                e.mark = None;
                (e.seq, ev)
            }
        };
        self.log(Op::Set { seq, event });
    }

    /// Says that messages are dropped, once a minute at most: during a long
    /// outage a new `dropped` event starts with every batch.
    fn warn_dropping(&mut self) {
        let now = std::time::Instant::now();
        if self
            .dropping_warned
            .is_some_and(|t| now.duration_since(t) < DROP_WARNING_EVERY)
        {
            return;
        }
        self.dropping_warned = Some(now);
        log::warn!("Jeedom is not taking events: queue full, dropping the oldest messages");
    }

    /// Hands the next batch to the callback worker when none is in flight.
    pub(super) fn dispatch_callback(&mut self) {
        if self.cb_inflight.is_some() || self.state.events.is_empty() {
            return;
        }
        let Some(tx) = &self.links.callback else {
            self.log_and_forget();
            return;
        };
        let batch: Vec<(u64, Value)> = self
            .state
            .events
            .iter()
            .take(MAX_BATCH)
            .map(|e| (e.seq, e.value()))
            .collect();
        let last = batch.last().map(|(s, _)| *s);
        if tx.send(CallbackJob::Batch { events: batch }).is_ok() {
            self.cb_inflight = last;
        }
    }

    /// Without `--callback`, events are logged (for a person testing) and acknowledged.
    fn log_and_forget(&mut self) {
        let last = self.state.events.back().map(|e| e.seq).unwrap_or(0);
        for e in &self.state.events {
            log::info!("event (no --callback): {}", e.value());
        }
        self.acknowledge(last);
    }

    pub(super) fn on_callback(&mut self, report: CallbackReport) {
        match report {
            CallbackReport::Delivered { upto_seq } => {
                self.cb_inflight = None;
                self.callback_error = None;
                self.acknowledge(upto_seq);
            }
            CallbackReport::Failed { error } => self.callback_error = Some(error),
        }
    }

    /// Removes acknowledged events and advances the rooms' watermarks (once
    /// per room and batch: each advance also prunes the room's ids).
    fn acknowledge(&mut self, upto: u64) {
        let mut newest: HashMap<String, i64> = HashMap::new();
        if self.state.events.front().is_some_and(|e| e.seq <= upto) {
            self.log(Op::Ack { upto });
        }
        while self.state.events.front().is_some_and(|e| e.seq <= upto) {
            let Some(e) = self.state.events.pop_front() else {
                break;
            };
            if let Some((rid, ts)) = e.mark {
                let at = newest.entry(rid).or_insert(ts);
                *at = (*at).max(ts);
            }
        }
        for (rid, ts_ms) in newest {
            if let Some(room) = self.state.rooms.get_mut(&rid) {
                room.acknowledged(ts_ms);
                self.log(Op::RoomAck { room: rid, ts_ms });
            }
        }
    }

    /// Queues the `rooms` event with the current list (Jeedom's `rooms`
    /// request: always an event of its own).
    pub(super) fn queue_rooms(&mut self) {
        let ev = events::rooms(self.state.rooms.values().map(|r| &r.room));
        self.push_event(ev, None);
    }

    /// The room list changed. A `rooms` event still waiting at the end of the
    /// queue is brought up to date instead of queuing another: while Jeedom
    /// is away, room changes would otherwise pile up one full list each.
    pub(super) fn queue_room_change(&mut self) {
        let ev = events::rooms(self.state.rooms.values().map(|r| &r.room));
        let inflight = self.cb_inflight;
        match self.state.events.back_mut() {
            Some(last)
                if last.kind == EventKind::Rooms && inflight.is_none_or(|s| last.seq > s) =>
            {
                last.set_event(&ev);
                let seq = last.seq;
                self.log(Op::Set { seq, event: ev });
            }
            _ => self.push_event(ev, None),
        }
    }
}
