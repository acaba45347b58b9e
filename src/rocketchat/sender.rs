//! The send worker thread: posts each job's steps over REST and reports the outcome to the core.
use super::plan::{self, Step, Target};
use super::rest::{self, Rest};
use super::rest_shapes::text_message;
use crate::backoff::Backoff;
use crate::bus::{CoreMsg, SendJob, SendOutcome};
use crate::error::{Error, Refusal};
use crate::model::{Outgoing, Room, RoomKind};
use log::{debug, info, warn};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Starts the `sender` thread. It ends when the core drops the job channel
/// (the stop's wake-up), or at its next job once `shutdown` is set.
pub fn spawn(
    rest: Rest,
    jobs: Receiver<SendJob>,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let worker = Worker {
        rest,
        to_core,
        shutdown,
        backoff: Backoff::with_jitter(Duration::from_secs(1), Duration::from_secs(60)),
        refused_since_success: false,
        unconfirmed: None,
    };
    thread::Builder::new()
        .name("sender".into())
        .spawn(move || worker.run(jobs))
}

struct Worker {
    rest: Rest,
    to_core: Sender<CoreMsg>,
    shutdown: Arc<AtomicBool>,
    /// Delay of the next `Retry`; reset by every confirmed step.
    backoff: Backoff,
    /// A 401 was answered since the last confirmed step: a second one means
    /// that a fresh login does not help, so wait instead of logging in again
    /// (each login adds a token to the bot's account on the server).
    refused_since_success: bool,
    /// A file that `rooms.media` took but whose confirmation failed without
    /// a clear answer: the next attempt checks whether it was posted before
    /// confirming it again (the confirmation is not idempotent). Kept in
    /// memory only: a crash in that window can still post the file twice.
    unconfirmed: Option<Unconfirmed>,
}

/// See [`Worker::unconfirmed`].
struct Unconfirmed {
    key: String,
    index: usize,
    file_id: String,
}

/// Why a job stopped before its end.
enum Halt {
    /// The daemon is stopping: no outcome, the core keeps the job.
    Shutdown,
    /// Will never succeed: the reason for `send_failed`.
    Failed(String),
    /// A call failed; `Error` says whether to retry.
    Call(Error),
}

impl Worker {
    fn run(mut self, jobs: Receiver<SendJob>) {
        // Idle, the worker sleeps until a job comes: the core schedules the
        // retries, and the stop closes the channel.
        while let Ok(job) = jobs.recv() {
            if self.stopping() {
                break;
            }
            self.handle(job);
        }
        debug!("sender: stopped");
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Delivers one job and reports exactly one final outcome, or a retry.
    fn handle(&mut self, job: SendJob) {
        let key = job.item.key.clone();
        let outcome = match self.deliver(&job) {
            Ok((room, message_id)) => {
                info!("sent {key} to {} ({message_id})", shown(&room));
                SendOutcome::Sent {
                    key,
                    room,
                    message_id,
                }
            }
            Err(Halt::Shutdown) => return,
            // The call was aborted by the stop (see `Rest::shutdown`): the
            // core keeps the job for the next run.
            Err(Halt::Call(_)) if self.stopping() => return,
            Err(Halt::Failed(error)) => self.failed(&job.item, error),
            Err(Halt::Call(e)) => self.after_error(&job.item, e),
        };
        self.report(outcome);
    }

    /// Posts the steps not done yet; answers the room and the id of the
    /// first message (the question, for an ask).
    fn deliver(&mut self, job: &SendJob) -> Result<(Room, String), Halt> {
        let item = &job.item;
        let room = self.room(job)?;
        let steps = plan::steps(item, self.rest.max_message_size(&job.session));
        if steps.is_empty() {
            return Err(Halt::Failed("nothing to send: no text and no file".into()));
        }
        let mut first_id = None;
        for (n, step) in (0u32..).zip(&steps) {
            if n < item.steps_done {
                if step.has_own_id() && first_id.is_none() {
                    first_id = Some(plan::message_id(&item.key, n));
                }
                continue;
            }
            if self.stopping() {
                return Err(Halt::Shutdown);
            }
            let id = self.post(job, &room, n, step)?;
            first_id.get_or_insert(id);
            self.backoff.reset();
            self.refused_since_success = false;
            self.report(SendOutcome::Progress {
                key: item.key.clone(),
                steps_done: n + 1,
            });
            if let Step::File(i) = step {
                remove_spooled(&item.files[*i].path);
            }
        }
        Ok((room, first_id.unwrap_or_default()))
    }

    /// The target room, opening the direct room of `@username` if needed.
    fn room(&self, job: &SendJob) -> Result<Room, Halt> {
        let target = plan::resolve(&job.item.room, &job.rooms);
        match target.map_err(|e| Halt::Failed(e.to_string()))? {
            Target::Room(room) => Ok(room),
            Target::OpenDirect(user) => {
                let rid = self
                    .rest
                    .im_create(&job.session, &user)
                    .map_err(Halt::Call)?;
                Ok(Room {
                    id: rid,
                    name: user.clone(),
                    kind: RoomKind::Direct,
                    users: vec![user, job.session.username.clone()],
                    last_message_ms: None,
                })
            }
        }
    }

    /// Posts one step: answers the id of the message it made ("" when an
    /// old server does not say, for a file).
    fn post(&mut self, job: &SendJob, room: &Room, n: u32, step: &Step) -> Result<String, Halt> {
        let item = &job.item;
        let tmid = item.thread.as_deref();
        let id = plan::message_id(&item.key, n);
        let msg = match step {
            Step::Text(text) => text_message(&id, &room.id, text, tmid),
            Step::Question { text, attachments } => {
                let mut m = text_message(&id, &room.id, text, tmid);
                m["attachments"] = attachments.clone();
                m
            }
            Step::File(i) => return self.upload(job, room, *i),
        };
        let posted = self
            .rest
            .send_message(&job.session, &msg)
            .map_err(Halt::Call)?;
        Ok(message_id_of(&posted).unwrap_or(id))
    }

    fn upload(&mut self, job: &SendJob, room: &Room, index: usize) -> Result<String, Halt> {
        let item = &job.item;
        let file = &item.files[index];
        let caption = item.description.as_deref();
        let tmid = item.thread.as_deref();
        let pending = self
            .unconfirmed
            .take()
            .filter(|u| u.key == item.key && u.index == index);
        if let Some(u) = pending {
            if let Some(id) = self.finish_unconfirmed(job, room, u)? {
                return Ok(id);
            }
        }
        let mut uploaded = None;
        let result = self
            .rest
            .upload(&job.session, &room.id, file, caption, tmid, &mut uploaded);
        match result {
            Ok(message) => Ok(message_id_of(&message).unwrap_or_default()),
            Err(e) if is_final(&e) => Err(Halt::Failed(format!("{}: {}", file.name, e.chain()))),
            Err(e) => {
                self.unconfirmed = uploaded.map(|file_id| Unconfirmed {
                    key: item.key.clone(),
                    index,
                    file_id,
                });
                Err(Halt::Call(e))
            }
        }
    }

    /// After a confirmation without a clear answer: the file's message if the
    /// server did post it, else the confirmation again. `Ok(None)`: the
    /// server forgot the upload, upload the file again.
    fn finish_unconfirmed(
        &mut self,
        job: &SendJob,
        room: &Room,
        u: Unconfirmed,
    ) -> Result<Option<String>, Halt> {
        let item = &job.item;
        let name = &item.files[u.index].name;
        match self.rest.find_file_message(&job.session, room, &u.file_id) {
            Ok(Some(m)) => {
                debug!("{name} was posted before the answer was lost");
                return Ok(Some(message_id_of(&m).unwrap_or_default()));
            }
            Ok(None) => {}
            // The history cannot be read here: confirm as before the check.
            Err(e) if is_final(&e) => {
                warn!("cannot check whether {name} was posted: {}", e.chain())
            }
            Err(e) => {
                self.unconfirmed = Some(u);
                return Err(Halt::Call(e));
            }
        }
        let caption = item.description.as_deref();
        let tmid = item.thread.as_deref();
        let confirmed = self
            .rest
            .confirm_upload(&job.session, &room.id, &u.file_id, caption, tmid);
        match confirmed {
            Ok(message) => Ok(Some(message_id_of(&message).unwrap_or_default())),
            Err(Error::Status {
                refusal: Refusal::FileExpired,
                ..
            }) => Ok(None),
            Err(e) if is_final(&e) => Err(Halt::Failed(format!("{name}: {}", e.chain()))),
            Err(e) => {
                self.unconfirmed = Some(u);
                Err(Halt::Call(e))
            }
        }
    }

    /// The outcome of a failed call: log in again, wait, or give up.
    fn after_error(&mut self, item: &Outgoing, e: Error) -> SendOutcome {
        let key = item.key.clone();
        if matches!(e, Error::Status { status: 401, .. }) && !self.refused_since_success {
            warn!("sending {key}: {}: logging in again", e.chain());
            self.refused_since_success = true;
            return SendOutcome::Unauthorized { key };
        }
        if is_final(&e) {
            return self.failed(item, e.chain().to_string());
        }
        if matches!(e, Error::Status { status: 401, .. }) {
            warn!(
                "sending {key}: {} again after a new login: is a proxy refusing the REST API?",
                e.chain()
            );
        }
        let after = rest::retry_after(&e).unwrap_or_else(|| self.backoff.next_delay());
        warn!(
            "sending {key}: {}: retrying in {:.1} s",
            e.chain(),
            after.as_secs_f64()
        );
        SendOutcome::Retry {
            key,
            error: e.chain().to_string(),
            after,
        }
    }

    /// A final failure: the spooled files will never be sent, remove them.
    fn failed(&self, item: &Outgoing, error: String) -> SendOutcome {
        warn!("sending {} failed: {error}", item.key);
        for f in &item.files {
            remove_spooled(&f.path);
        }
        SendOutcome::Failed {
            key: item.key.clone(),
            error,
        }
    }

    fn report(&self, outcome: SendOutcome) {
        // The core only goes away when the daemon stops: nothing left to tell.
        let _ = self.to_core.send(CoreMsg::Send(outcome));
    }
}

/// True for errors that no retry can fix: 4xx other than 401, 408 and 429
/// (too large, refused type, no permission...), and a lost spooled file.
fn is_final(e: &Error) -> bool {
    match e {
        Error::Status { status, .. } => (400..500).contains(status) && ![401, 408].contains(status),
        Error::Io { .. } => true,
        _ => false,
    }
}

fn message_id_of(message: &Value) -> Option<String> {
    message
        .get("_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn remove_spooled(path: &str) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!("cannot remove spooled file {path}: {e}"),
    }
}

/// A room as shown in log lines.
fn shown(room: &Room) -> String {
    match room.kind {
        RoomKind::Direct => format!("@{}", room.name),
        _ => format!("#{}", room.name),
    }
}

#[cfg(test)]
mod tests;
