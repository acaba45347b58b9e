//! Socket replies held until the request they answer is on disk.
use super::saver::Ticket;
use crate::bus::Reply;
use serde_json::json;

/// A reply waiting for its request to be on disk.
struct Waiter {
    key: String,
    reply: Reply,
    /// Its request is in the journal (or a fold), and may be handed out.
    written: bool,
    /// The durable write it waits for.
    ticket: Option<Ticket>,
}

/// The replies waiting, in the order their requests were accepted.
#[derive(Default)]
pub struct Replies {
    waiters: Vec<Waiter>,
}

impl Replies {
    /// The reply to request `key` waits for its request to be durable.
    pub fn hold(&mut self, key: String, reply: Reply) {
        let (written, ticket) = (false, None);
        self.waiters.push(Waiter {
            key,
            reply,
            written,
            ticket,
        });
    }

    /// Every request held was written (not yet synced).
    pub fn written(&mut self) {
        self.waiters.iter_mut().for_each(|w| w.written = true);
    }

    /// Whether a reply waits for a durable write not yet asked for.
    pub fn want_sync(&self) -> bool {
        self.waiters.iter().any(|w| w.ticket.is_none())
    }

    /// The replies without a durable write wait for `ticket`.
    pub fn assign(&mut self, ticket: Ticket) {
        for w in self.waiters.iter_mut().filter(|w| w.ticket.is_none()) {
            w.ticket = Some(ticket);
        }
    }

    /// The journal write failed: the requests not written are taken back
    /// (`take_back`; none was handed out yet), then their clients told.
    pub fn refuse_unwritten(&mut self, error: &str, mut take_back: impl FnMut(&str)) {
        for w in self.take(|w| !w.written) {
            take_back(&w.key);
            w.reply.send(crate::bridge::error_json(error));
        }
    }

    /// Everything written was already durable: the replies written and
    /// waiting for no write go out.
    pub fn already_durable(&mut self) {
        self.answer(|w| w.written && w.ticket.is_none());
    }

    /// Durable write `id` is done: the replies waiting for it go out.
    pub fn durable(&mut self, id: Ticket) {
        self.answer(|w| w.ticket.is_some_and(|t| t <= id));
    }

    /// Durable write `id` failed: its replies wait for the next successful
    /// write (their requests may already be posted: an error reply would
    /// say they were not).
    pub fn not_durable(&mut self, id: Ticket) {
        for w in self.waiters.iter_mut() {
            w.ticket = w.ticket.filter(|t| *t > id);
        }
    }

    /// At the stop: every reply still waiting gets its `ok` once the state
    /// is written whole. If even that fails, they get no answer: their
    /// requests were handed out, and an error would say they were not.
    pub fn close(&mut self, written: Result<(), String>) {
        for w in self.waiters.drain(..) {
            match &written {
                Ok(()) => w.reply.send(json!({"ok": true})),
                Err(e) => log::error!("request {}: not on disk at the stop: {e}", w.key),
            }
        }
    }

    fn answer(&mut self, done: impl Fn(&Waiter) -> bool) {
        for w in self.take(done) {
            w.reply.send(json!({"ok": true}));
        }
    }

    fn take(&mut self, which: impl Fn(&Waiter) -> bool) -> Vec<Waiter> {
        let (taken, kept) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| which(w));
        self.waiters = kept;
        taken
    }

    /// Whether a reply waits for a durable write under way (tests).
    #[cfg(test)]
    pub fn syncing(&self) -> bool {
        self.waiters.iter().any(|w| w.ticket.is_some())
    }

    /// The durable write the first reply waits for (tests).
    #[cfg(test)]
    pub fn first_ticket(&self) -> Option<Ticket> {
        self.waiters.first().and_then(|w| w.ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::sync::mpsc::{self, Receiver};

    fn held(r: &mut Replies, key: &str) -> Receiver<Value> {
        let (tx, rx) = mpsc::channel();
        r.hold(key.into(), Reply::channel(tx));
        rx
    }

    #[test]
    fn a_reply_goes_out_once_its_write_is_durable() {
        let mut r = Replies::default();
        let a = held(&mut r, "a");
        r.written();
        assert!(r.want_sync());
        r.assign(1);
        let b = held(&mut r, "b");
        r.written();
        r.assign(2);
        assert!(!r.want_sync());
        r.durable(1);
        assert_eq!(a.try_recv().unwrap()["ok"], true);
        assert!(b.try_recv().is_err(), "waits for write 2");
        r.not_durable(2);
        assert!(r.want_sync(), "waits for the next write");
        r.already_durable();
        assert_eq!(b.try_recv().unwrap()["ok"], true);
    }

    #[test]
    fn a_refused_write_answers_only_the_requests_it_carried() {
        let mut r = Replies::default();
        let a = held(&mut r, "a");
        r.written();
        let b = held(&mut r, "b");
        let mut taken = Vec::new();
        r.refuse_unwritten("disk full", |k| taken.push(k.to_string()));
        assert_eq!(taken, ["b"]);
        let refused = b.try_recv().unwrap();
        assert_eq!(
            (&refused["ok"], &refused["error"]),
            (&false.into(), &"disk full".into())
        );
        assert!(a.try_recv().is_err(), "written: it waits on");
        r.close(Err("EIO".into()));
        assert!(a.try_recv().is_err(), "no answer rather than a false one");
    }

    #[test]
    fn at_the_stop_the_replies_go_once_the_state_is_written() {
        let mut r = Replies::default();
        let a = held(&mut r, "a");
        r.close(Ok(()));
        assert_eq!(a.try_recv().unwrap()["ok"], true);
    }
}
