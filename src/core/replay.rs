//! After a crash, what may reach Jeedom a second time carries `"replay": true`.
//!
//! A power cut can lose the record of what Jeedom acknowledged since the
//! last sync of the journal (a `kill -9` loses nothing written). Those events are
//! delivered again rather than lost; the flag lets Jeedom skip the ones it
//! has already handled (same message `id`), and only those can be repeats.
use super::Core;
use crate::model::Incoming;

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
        self.queue.mark_all_replays();
        let rooms = self.rooms.suspect_all();
        self.outbox.suspect_all();
        if self.queue.len() > 0 || rooms > 0 {
            log::warn!(
                "the previous run did not stop cleanly: {} queued event(s) and the \
                 missed messages of {rooms} room(s) go to Jeedom marked as replays",
                self.queue.len(),
            );
        }
    }

    /// Messages found by a catch-up; those of a room not yet caught up since
    /// a crash are marked.
    pub(super) fn on_replayed(&mut self, messages: Vec<Incoming>, rooms: Vec<String>) {
        for m in messages {
            let replay = self.rooms.is_suspect(&m.room_id);
            self.on_message(m, replay);
        }
        self.rooms.caught_up(rooms);
    }

    /// Before the last write: a batch being posted may have reached Jeedom
    /// without its answer reaching us, and rooms still suspect stay so.
    pub(super) fn prepare_clean_stop(&mut self) {
        self.queue.mark_inflight_replays();
        self.state.clean_stop = self.rooms.none_suspect();
    }
}
