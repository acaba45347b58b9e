//! The core's side of the callback: events into the queue, batches out to
//! the worker, acknowledgements back to the rooms.
use super::Core;
use crate::bridge::events::{self, Event};
use crate::bus::{CallbackJob, CallbackReport};

impl Core {
    /// Queues an event; `mark` (room id, server ms) advances the room's
    /// watermark once Jeedom acknowledges it.
    pub(super) fn push_event(&mut self, event: Event, mark: Option<(String, i64)>) {
        self.queue.push(event, mark, &mut self.saver);
    }

    /// Queues the `rooms` event with the current list (Jeedom's `rooms`
    /// request: always an event of its own).
    pub(super) fn queue_rooms(&mut self) {
        let ev = events::rooms(self.rooms.list());
        self.queue.push(ev, None, &mut self.saver);
    }

    /// The room list changed: Jeedom gets it (a waiting list is updated).
    pub(super) fn queue_room_change(&mut self) {
        let ev = events::rooms(self.rooms.list());
        self.queue.push_rooms(ev, &mut self.saver);
    }

    /// Hands the next batch to the callback worker when none is in flight;
    /// without `--callback`, the events are logged and forgotten.
    pub(super) fn dispatch_callback(&mut self) {
        let Some(tx) = &self.links.callback else {
            let marks = self.queue.log_and_forget(&mut self.saver);
            self.rooms.acknowledged(marks, &mut self.saver);
            return;
        };
        let Some(batch) = self.queue.next_batch() else {
            return;
        };
        let Some(upto) = batch.last().map(|(seq, _)| *seq) else {
            return;
        };
        if tx.send(CallbackJob::Batch { events: batch }).is_ok() {
            self.queue.posting(upto);
        }
    }

    pub(super) fn on_callback(&mut self, report: CallbackReport) {
        match report {
            CallbackReport::Delivered { upto_seq } => {
                self.conn.callback_delivered();
                let marks = self.queue.delivered(upto_seq, &mut self.saver);
                self.rooms.acknowledged(marks, &mut self.saver);
            }
            CallbackReport::Failed { error } => self.conn.callback_failed(error),
        }
    }
}
