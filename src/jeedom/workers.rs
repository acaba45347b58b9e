//! The command socket's connection threads: one per connection, and the last one kept parked to take the listener next.
//!
//! Why: starting a thread costs about a tenth of a millisecond here (its
//! stack mapped, the clone, the first schedule), on the path of every `send`
//! from Jeedom. A thread that has served its connection waits instead of
//! ending, if no other thread waits already; the thread that accepts the
//! next connection hands it the listener (`socket/accept.rs`), so in steady
//! use two threads take turns, and a burst still gets one thread per
//! connection. A parked thread sleeps in `recv`, never polls, and ends when
//! the pool is closed (the daemon stops).
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

/// Work for a connection thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// Threads parked for the next connection (at most one). A handle: the
/// clones share one pool, which [`Workers::close`] ends.
#[derive(Default, Clone)]
pub struct Workers {
    pool: Arc<Mutex<Pool>>,
}

#[derive(Default)]
struct Pool {
    parked: Option<SyncSender<Job>>,
    /// The daemon is stopping: a thread done with its job ends.
    closed: bool,
}

fn lock(pool: &Mutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|p| p.into_inner())
}

impl Workers {
    /// Runs `job` on the parked thread, or on a new one.
    pub fn run(&self, job: Job) -> std::io::Result<()> {
        let parked = lock(&self.pool).parked.take();
        let job = match parked {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                // That thread is gone: a new one takes the job.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let pool = self.pool.clone();
        thread::Builder::new()
            .name("socket-conn".into())
            .spawn(move || work(job, &pool))
            .map(drop)
    }
}

impl Workers {
    /// The daemon is stopping: wakes the parked thread, which ends, and
    /// parks no other.
    pub fn close(&self) {
        let mut pool = lock(&self.pool);
        pool.closed = true;
        pool.parked.take();
    }

    /// Runs `job` on this thread, then serves as the pool's thread.
    pub fn work_here(&self, job: Job) {
        work(job, &self.pool);
    }
}

/// Runs jobs until the thread is not needed as the parked one.
fn work(mut job: Job, pool: &Mutex<Pool>) {
    loop {
        job();
        let Some(rx) = park(pool) else { return };
        match rx.recv() {
            Ok(next) => job = next,
            Err(_) => return,
        }
    }
}

/// Registers this thread as the parked one, unless one is already (or the
/// daemon is stopping).
fn park(pool: &Mutex<Pool>) -> Option<Receiver<Job>> {
    let mut pool = lock(pool);
    if pool.parked.is_some() || pool.closed {
        return None;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    pool.parked = Some(tx);
    Some(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    fn name_of_thread(w: &Workers) -> thread::ThreadId {
        let (tx, rx) = channel();
        w.run(Box::new(move || tx.send(thread::current().id()).unwrap()))
            .unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn a_thread_that_served_takes_the_next_connection() {
        let w = Workers::default();
        let first = name_of_thread(&w);
        // Parked once its job returned: wait until it is.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lock(&w.pool).parked.is_none() {
            assert!(std::time::Instant::now() < deadline, "never parked");
            thread::yield_now();
        }
        assert_eq!(name_of_thread(&w), first);
    }

    #[test]
    fn connections_at_once_get_a_thread_each() {
        let w = Workers::default();
        let (tx, rx) = channel();
        let gate = Arc::new(std::sync::Barrier::new(3));
        for _ in 0..3 {
            let (tx, gate) = (tx.clone(), gate.clone());
            // Each job waits for the other two: they run on three threads.
            w.run(Box::new(move || {
                gate.wait();
                tx.send(thread::current().id()).unwrap();
            }))
            .unwrap();
        }
        let ids: std::collections::HashSet<_> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn a_stopping_pool_parks_no_thread() {
        let w = Workers::default();
        let pool = w.pool.clone();
        assert!(park(&pool).is_some(), "an open pool parks one thread");
        assert!(park(&pool).is_none(), "only one");
        w.close();
        assert!(lock(&pool).parked.is_none(), "the parked thread was woken");
        assert!(park(&pool).is_none(), "a stopped pool parks none");
    }
}
