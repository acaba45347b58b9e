//! The outbox: accepted requests waiting to be posted, one at a time.
use super::{Journal, Persisted};
use crate::journal::Op;
use crate::model::Outgoing;
use crate::state::State;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// The requests not yet posted, the one the send worker has, and when the
/// next may go.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Persisted (`outbox` of the state file), in order.
    items: VecDeque<Outgoing>,
    /// Key of the request the send worker has.
    inflight: Option<String>,
    /// Nothing goes out before this (the worker asked to wait).
    retry_at: Option<Instant>,
    /// Requests a crashed run may have posted and reported to Jeedom.
    suspect: HashSet<String>,
}

impl Persisted for Outbox {
    fn swap(&mut self, state: &mut State) {
        std::mem::swap(&mut self.items, &mut state.outbox);
    }
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &Outgoing> {
        self.items.iter()
    }

    /// Queues a request behind the others.
    pub fn keep(&mut self, item: Outgoing, j: &mut impl Journal) {
        j.record(Op::Accept { item: item.clone() });
        self.items.push_back(item);
    }

    /// Removes a request the disk refused (never handed out), with its files.
    pub fn take_back(&mut self, key: &str) {
        if let Some(item) = self.remove(key) {
            remove_files(&item);
        }
    }

    fn remove(&mut self, key: &str) -> Option<Outgoing> {
        let pos = self.items.iter().position(|i| i.key == key)?;
        self.items.remove(pos)
    }

    /// Hands the oldest request to `send` when the worker is free and no
    /// wait is asked for; `send` says whether the worker took it.
    pub fn dispatch(&mut self, send: impl FnOnce(&Outgoing) -> bool) {
        if self.inflight.is_some() || self.retry_at.is_some_and(|t| t > Instant::now()) {
            return;
        }
        let Some(item) = self.items.front() else {
            return;
        };
        self.retry_at = None;
        if send(item) {
            self.inflight = Some(item.key.clone());
        }
    }

    /// When a request waiting for its retry may go.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// One more step of `key` is confirmed.
    pub fn progress(&mut self, key: String, steps_done: u32, j: &mut impl Journal) {
        if let Some(item) = self.items.iter_mut().find(|i| i.key == key) {
            item.steps_done = steps_done;
            j.record(Op::Step { key, steps_done });
        }
    }

    /// The worker is done with `key` (posted, or failed for good): returns
    /// the request, and whether a crashed run may have ended it already.
    pub fn finish(&mut self, key: &str, j: &mut impl Journal) -> Option<(Outgoing, bool)> {
        self.inflight = None;
        let item = self.remove(key)?;
        j.record(Op::Done {
            key: key.to_string(),
        });
        Some((item, self.suspect.remove(key)))
    }

    /// The worker gave the request back: the same job goes again after `after`.
    pub fn retry(&mut self, after: Duration) {
        self.inflight = None;
        self.retry_at = Some(Instant::now() + after);
    }

    /// The worker gave the request back: it goes again after a new login.
    pub fn hand_back(&mut self) {
        self.inflight = None;
    }

    /// A new session: a request waiting for its retry goes at once.
    pub fn reconnected(&mut self) {
        self.retry_at = None;
    }

    /// After a crash: every request left may have been posted already.
    pub fn suspect_all(&mut self) {
        self.suspect = self.items.iter().map(|o| o.key.clone()).collect();
    }
}

/// Removes a request's spooled files.
pub fn remove_files(item: &Outgoing) {
    for f in &item.files {
        let _ = std::fs::remove_file(&f.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::send as item;

    fn filled(keys: &[&str], j: &mut Vec<Op>) -> Outbox {
        let mut o = Outbox::default();
        keys.iter().for_each(|k| o.keep(item(k), j));
        o
    }

    /// The key `dispatch` hands out, if any.
    fn handed(o: &mut Outbox) -> Option<String> {
        let mut got = None;
        o.dispatch(|i| {
            got = Some(i.key.clone());
            true
        });
        got
    }

    #[test]
    fn one_request_at_a_time_in_order() {
        let mut j = Vec::new();
        let mut o = filled(&["a", "b"], &mut j);
        assert_eq!(handed(&mut o).as_deref(), Some("a"));
        assert_eq!(handed(&mut o), None, "the worker has one");
        let (done, replay) = o.finish("a", &mut j).expect("known");
        assert_eq!((done.key.as_str(), replay), ("a", false));
        assert_eq!(handed(&mut o).as_deref(), Some("b"));
        assert!(
            matches!(&j[..], [Op::Accept { .. }, Op::Accept { .. }, Op::Done { key }] if key == "a")
        );
    }

    #[test]
    fn a_request_the_worker_did_not_take_stays_first() {
        let mut o = filled(&["a"], &mut Vec::new());
        o.dispatch(|_| false);
        assert_eq!(handed(&mut o).as_deref(), Some("a"));
    }

    #[test]
    fn a_retry_waits_until_its_time_or_a_new_session() {
        let mut o = filled(&["a"], &mut Vec::new());
        handed(&mut o);
        o.retry(Duration::from_secs(3600));
        assert!(o.retry_at().is_some());
        assert_eq!(handed(&mut o), None, "waits");
        o.reconnected();
        assert_eq!(handed(&mut o).as_deref(), Some("a"));
        assert_eq!(o.retry_at(), None);
    }

    #[test]
    fn progress_of_a_known_request_is_journaled() {
        let mut j = Vec::new();
        let mut o = filled(&["a"], &mut j);
        o.progress("a".into(), 2, &mut j);
        o.progress("gone".into(), 1, &mut j);
        assert_eq!(o.iter().next().unwrap().steps_done, 2);
        assert_eq!(j.len(), 2, "accept and one step");
    }

    #[test]
    fn after_a_crash_each_request_left_ends_marked_once() {
        let mut j = Vec::new();
        let mut o = filled(&["a"], &mut j);
        o.suspect_all();
        o.keep(item("b"), &mut j);
        assert!(o.finish("a", &mut j).unwrap().1, "may have been posted");
        assert!(!o.finish("b", &mut j).unwrap().1, "accepted by this run");
        assert!(o.finish("a", &mut j).is_none(), "ended once");
    }

    #[test]
    fn a_request_taken_back_leaves_with_its_files() {
        let dir = std::env::temp_dir().join(format!("rcd-outbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("k-0-a.txt");
        std::fs::write(&copy, "x").unwrap();
        let mut with_file = item("k");
        with_file.files = vec![crate::model::SpooledFile {
            path: copy.display().to_string(),
            name: "a.txt".into(),
            size: Some(1),
        }];
        let mut o = filled(&["a"], &mut Vec::new());
        o.keep(with_file, &mut Vec::new());
        o.take_back("k");
        assert_eq!(o.len(), 1);
        assert!(!copy.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
