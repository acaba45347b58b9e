//! What goes to Rocket.Chat: accepted requests, the send queue and its outcomes.
use super::{Core, Waiter};
use crate::bridge::events::{self, Event};
use crate::bus::{Reply, RtCommand, SendJob, SendOutcome};
use crate::journal::Op;
use crate::model::{OutKind, Outgoing, Room};
use crate::state::PendingAsk;
use std::time::Instant;

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
        self.log(Op::Accept { item: item.clone() });
        self.saver.spooled(&item.files);
        self.waiters.push(Waiter {
            key: item.key.clone(),
            reply,
            written: false,
            ticket: None,
        });
        self.state.outbox.push_back(item);
    }

    /// Removes a request the disk refused (never handed out).
    pub(super) fn take_back(&mut self, key: &str) {
        if let Some(pos) = self.state.outbox.iter().position(|i| i.key == key) {
            if let Some(item) = self.state.outbox.remove(pos) {
                remove_files(&item);
            }
        }
    }

    /// Gives the oldest request to the send worker when it is free and logged in.
    pub(super) fn dispatch_send(&mut self) {
        if self.send_inflight.is_some() || self.send_retry_at.is_some_and(|t| t > Instant::now()) {
            return;
        }
        let (Some(session), Some(item)) = (&self.session, self.state.outbox.front()) else {
            return;
        };
        let rooms: Vec<Room> = self.state.rooms.values().map(|r| r.room.clone()).collect();
        let job = SendJob {
            item: item.clone(),
            session: session.clone(),
            rooms,
        };
        self.send_retry_at = None;
        if self.links.sender.send(job).is_ok() {
            self.send_inflight = Some(item.key.clone());
        }
    }

    pub(super) fn on_send_outcome(&mut self, outcome: SendOutcome) {
        match outcome {
            SendOutcome::Progress { key, steps_done } => {
                if let Some(item) = self.state.outbox.iter_mut().find(|i| i.key == key) {
                    item.steps_done = steps_done;
                    self.log(Op::Step { key, steps_done });
                }
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
                self.send_inflight = None;
                self.send_retry_at = Some(Instant::now() + after);
            }
            SendOutcome::Unauthorized { key } => {
                log::warn!("request {key}: the server refused the session; logging in again");
                self.send_inflight = None;
                self.session = None;
                self.links.realtime.send(RtCommand::Relogin);
            }
        }
    }

    /// Ends a request with exactly one `sent` or `send_failed` event.
    fn finish(&mut self, key: &str, result: Result<(Room, String), String>) {
        self.send_inflight = None;
        let Some(pos) = self.state.outbox.iter().position(|i| i.key == key) else {
            return;
        };
        let Some(item) = self.state.outbox.remove(pos) else {
            return;
        };
        self.log(Op::Done {
            key: key.to_string(),
        });
        let ask_id = match &item.kind {
            OutKind::Ask { ask_id, .. } => Some(ask_id.as_str()),
            OutKind::Send => None,
            OutKind::Notice { ask_id, edit_error } => {
                let ev = super::closing::notice_outcome(ask_id, edit_error, &result);
                return self.push_outcome(key, ev);
            }
        };
        let ev = match &result {
            Ok((room, id)) => {
                log::info!("request {key} posted in {} as {id}", room.name);
                events::sent(item.reference.as_deref(), ask_id, room, id)
            }
            Err(e) => {
                log::error!("request {key} for {} failed: {e}", item.room);
                remove_files(&item);
                events::send_failed(item.reference.as_deref(), ask_id, e)
            }
        };
        self.push_outcome(key, ev);
        if let (
            OutKind::Ask {
                ask_id,
                answers,
                timeout_s,
                ..
            },
            Ok((room, id)),
        ) = (&item.kind, result)
        {
            self.state.asks.push(PendingAsk {
                ask_id: ask_id.clone(),
                room,
                message_id: id,
                question: question_text(&item),
                answers: answers.clone(),
                mention: item.mention.clone(),
                expires_ms: item.accepted_ms.saturating_add(
                    i64::try_from(*timeout_s).map_or(i64::MAX, |s| s.saturating_mul(1000)),
                ),
                closing: None,
            });
            self.log_asks();
        }
    }

    /// Queues the event ending a request; marked when a crashed run may
    /// have sent it already.
    fn push_outcome(&mut self, key: &str, mut ev: Event) {
        if self.suspect_sends.remove(key) {
            ev.mark_replay();
        }
        self.push_event(ev, None);
    }
}

/// Removes a request's spooled files.
fn remove_files(item: &Outgoing) {
    for f in &item.files {
        let _ = std::fs::remove_file(&f.path);
    }
}

/// The question as posted, without the answer list, for the closing edit.
fn question_text(item: &Outgoing) -> String {
    match &item.mention {
        Some(u) => format!("@{u} {}", item.text),
        None => item.text.clone(),
    }
}
