//! After a crash, what may reach Jeedom a second time carries `"replay": true`.
//!
//! A power cut can lose the record of what Jeedom acknowledged since the
//! last sync of the journal (a `kill -9` loses nothing written). Those events are
//! delivered again rather than lost; the flag lets Jeedom skip the ones it
//! has already handled (same message `id`), and only those can be repeats.
use super::Core;
use crate::model::Incoming;
use crate::state::QueuedEvent;
use serde_json::Value;

impl Core {
    /// Marks what a crashed run may have delivered: the events queued in the
    /// file, the outcome of the requests still in the outbox, and the rooms
    /// whose missed messages are to be loaded again.
    pub(super) fn after_unclean_start(&mut self) {
        // Until the file says "running", a crash would look like a clean
        // stop: the saver writes the state whole at start.
        if std::mem::take(&mut self.state.clean_stop) {
            return;
        }
        self.state.events.iter_mut().for_each(mark_queued);
        self.suspect = self
            .state
            .rooms
            .iter()
            .filter(|(_, r)| r.watermark_ms.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        self.suspect_sends = self.state.outbox.iter().map(|o| o.key.clone()).collect();
        if !self.state.events.is_empty() || !self.suspect.is_empty() {
            log::warn!(
                "the previous run did not stop cleanly: {} queued event(s) and the \
                 missed messages of {} room(s) go to Jeedom marked as replays",
                self.state.events.len(),
                self.suspect.len()
            );
        }
    }

    /// Messages found by a catch-up; those of a room not yet caught up since
    /// a crash are marked.
    pub(super) fn on_replayed(&mut self, messages: Vec<Incoming>, rooms: Vec<String>) {
        for m in messages {
            let replay = self.suspect.contains(&m.room_id);
            self.on_message(m, replay);
        }
        for r in rooms {
            if self.suspect.remove(&r) {
                log::debug!("room {r} caught up: its new messages are no replays");
            }
        }
    }

    /// Before the last write: a batch being posted may have reached Jeedom
    /// without its answer reaching us, and rooms still suspect stay so.
    pub(super) fn prepare_clean_stop(&mut self) {
        if let Some(upto) = self.cb_inflight {
            self.state
                .events
                .iter_mut()
                .take_while(|e| e.seq <= upto)
                .for_each(mark_queued);
        }
        self.state.clean_stop = self.suspect.is_empty();
    }
}

/// Flags a queued event (written whole at start or stop, not journaled).
fn mark_queued(e: &mut QueuedEvent) {
    let mut v = e.value();
    mark(&mut v);
    e.set_event(&v);
}

/// Flags an event as possibly delivered before.
pub(super) fn mark(event: &mut Value) {
    crate::bridge::events::mark_json_replay(event);
}
