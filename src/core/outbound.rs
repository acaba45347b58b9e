//! What goes to Rocket.Chat: accepted requests, the send worker and its outcomes.
use super::outbox::remove_files;
use super::Core;
use crate::bridge::events::{self, Event};
use crate::bus::{Reply, RtCommand, SendJob, SendOutcome};
use crate::model::{OutKind, Outgoing, Room};
use crate::state::PendingAsk;

impl Core {
    /// Queues an accepted request: it goes out once written (not synced);
    /// the reply waits for the sync. While the disk refuses writes, requests
    /// are refused at once, and nothing of them is queued or posted.
    pub(super) fn accept(&mut self, item: Outgoing, reply: Reply) {
        if let Some(e) = self.saver.fault() {
            log::warn!("request {} refused: {e}", item.key);
            let error = crate::bridge::error_json(e);
            remove_files(&item);
            reply.send(error);
            return;
        }
        log::info!("request {} accepted for {}", item.key, item.room);
        self.saver.spooled(&item.files);
        self.replies.hold(item.key.clone(), reply);
        self.outbox.keep(item, &mut self.saver);
    }

    /// Gives the oldest request to the send worker when it is free and logged in.
    pub(super) fn dispatch_send(&mut self) {
        let Some(session) = self.conn.session() else {
            return;
        };
        let (rooms, sender) = (&self.rooms, &self.links.sender);
        self.outbox.dispatch(|item| {
            let job = SendJob {
                item: item.clone(),
                session: session.clone(),
                rooms: rooms.list().cloned().collect(),
            };
            sender.send(job).is_ok()
        });
    }

    pub(super) fn on_send_outcome(&mut self, outcome: SendOutcome) {
        match outcome {
            SendOutcome::Progress { key, steps_done } => {
                self.outbox.progress(key, steps_done, &mut self.saver)
            }
            SendOutcome::Sent {
                key,
                room,
                message_id,
            } => self.finish(&key, Ok((room, message_id))),
            SendOutcome::Failed { key, error } => self.finish(&key, Err(error)),
            SendOutcome::Retry { key, error, after } => {
                log::warn!(
                    "request {key} not delivered yet ({error}); retrying in {:.1} s",
                    after.as_secs_f64()
                );
                self.outbox.retry(after);
            }
            SendOutcome::Unauthorized { key } => {
                log::warn!("request {key}: the server refused the session; logging in again");
                self.outbox.hand_back();
                self.conn.refused();
                self.links.realtime.send(RtCommand::Relogin);
            }
        }
    }

    /// Ends a request with exactly one `sent` or `send_failed` event (marked
    /// when a crashed run may have sent it already); a posted question
    /// starts waiting for its answer.
    fn finish(&mut self, key: &str, result: Result<(Room, String), String>) {
        let Some((item, replay)) = self.outbox.finish(key, &mut self.saver) else {
            return;
        };
        let mut ev = match &item.kind {
            OutKind::Notice { ask_id, edit_error } => {
                super::closing::notice_outcome(ask_id, edit_error, &result)
            }
            _ => outcome(&item, &result),
        };
        if replay {
            ev.mark_replay();
        }
        self.push_event(ev, None);
        if let Some(ask) = result
            .ok()
            .and_then(|(room, id)| posted_ask(&item, room, id))
        {
            self.asks.add(ask, &mut self.saver);
        }
    }
}

/// The `sent` or `send_failed` event of a `send` or an `ask`.
fn outcome(item: &Outgoing, result: &Result<(Room, String), String>) -> Event {
    let ask_id = match &item.kind {
        OutKind::Ask { ask_id, .. } => Some(ask_id.as_str()),
        _ => None,
    };
    let reference = item.reference.as_deref();
    match result {
        Ok((room, id)) => {
            log::info!("request {} posted in {} as {id}", item.key, room.name);
            events::sent(reference, ask_id, room, id)
        }
        Err(e) => {
            log::error!("request {} for {} failed: {e}", item.key, item.room);
            remove_files(item);
            events::send_failed(reference, ask_id, e)
        }
    }
}

/// The question an `ask` posted as message `id`, now waiting for its answer.
fn posted_ask(item: &Outgoing, room: Room, message_id: String) -> Option<PendingAsk> {
    let OutKind::Ask {
        ask_id,
        answers,
        timeout_s,
        ..
    } = &item.kind
    else {
        return None;
    };
    let timeout_ms = i64::try_from(*timeout_s).map_or(i64::MAX, |s| s.saturating_mul(1000));
    Some(PendingAsk {
        ask_id: ask_id.clone(),
        room,
        message_id,
        question: question_text(item),
        answers: answers.clone(),
        mention: item.mention.clone(),
        expires_ms: item.accepted_ms.saturating_add(timeout_ms),
        closing: None,
    })
}

/// The question as posted, without the answer list, for the closing edit.
fn question_text(item: &Outgoing) -> String {
    match &item.mention {
        Some(u) => format!("@{u} {}", item.text),
        None => item.text.clone(),
    }
}
