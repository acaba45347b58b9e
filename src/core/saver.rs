//! The saver: the core's part that makes the state durable without making
//! anyone wait for the disk.
//!
//! Every change is appended to the journal as it happens (one `write`, into
//! the page cache: a crash of the daemon loses nothing). The slow part, the
//! fdatasync, runs on the `saver` thread; the requests whose `ok` waits for it
//! share one sync. When the journal outgrows the state file, the state is
//! written whole again (a fold) and the journal starts afresh.
//!
//! The spooled copies of a request's files are synced by the same thread,
//! just before the journal write that accepts the request: the `ok` covers
//! them, the send never waits for them, and a group of requests still costs
//! one sync pass (each new copy, the spool directory once, the journal once).
use crate::bus::CoreMsg;
use crate::error::{Error, Result};
use crate::journal::{self, Op};
use crate::model::SpooledFile;
use crate::state::{self, State};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A journal shorter than this is never folded.
const FOLD_MIN: u64 = 256 * 1024;
/// Longest time a change that nobody waits for stays unsynced.
pub const SYNC_EVERY: Duration = Duration::from_secs(30);
/// Time between two attempts to write the state again after a disk error.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the saver thread does, in order.
enum Job {
    Sync {
        id: u64,
        file: Arc<File>,
        /// Spooled copies of the requests this sync accepts.
        spool: Vec<PathBuf>,
    },
    Fold {
        id: u64,
        tmp: PathBuf,
        path: PathBuf,
        spool: Vec<PathBuf>,
    },
}

/// Number of a durable write; replies wait for theirs.
pub type Ticket = u64;

/// The journal writer and the handle of the saver thread.
pub struct Saver {
    path: PathBuf,
    journal: Option<Arc<File>>,
    buf: Vec<u8>,
    next_n: u64,
    journal_len: u64,
    /// Size of the last state file written: the journal may grow as large.
    base_len: u64,
    unsynced: bool,
    /// Spooled copies written since the last sync was asked for.
    spooled: Vec<PathBuf>,
    last_sync: Instant,
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    requested: Ticket,
    done: Ticket,
    fold_in_flight: Option<Ticket>,
    fault: Option<String>,
    retry_at: Option<Instant>,
}

impl Saver {
    /// Starts the saver thread; it reports each finished job as
    /// [`CoreMsg::Saved`]. `delay` slows every sync (a test hook).
    pub fn spawn(path: PathBuf, reports: Sender<CoreMsg>, delay: Duration) -> Result<Saver> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("saver".into())
            .spawn(move || run(rx, reports, delay))
            .map_err(|e| Error::io("cannot start a thread", e))?;
        Ok(Saver {
            path,
            journal: None,
            buf: Vec::new(),
            next_n: 1,
            journal_len: 0,
            base_len: 0,
            unsynced: false,
            spooled: Vec::new(),
            last_sync: Instant::now(),
            jobs: Some(tx),
            thread: Some(thread),
            requested: 0,
            done: 0,
            fold_in_flight: None,
            fault: None,
            retry_at: None,
        })
    }

    /// Writes the whole state at start (marks and all) and opens a fresh journal.
    pub fn open(&mut self, state: &mut State) {
        self.next_n = state.journal_applied + 1;
        if let Err(e) = self.write_whole(state) {
            self.set_fault(format!("cannot write the state file: {}", e.chain()));
            return;
        }
        let [journal, next] = journal::paths(&self.path);
        let _ = fs::remove_file(next);
        match create(&journal) {
            Ok(f) => self.journal = Some(Arc::new(f)),
            Err(e) => self.set_fault(format!("cannot write the state file: {e}")),
        }
        // The journal's own name must survive a power cut too.
        if let Ok(d) = File::open(state::dir_of(&self.path)) {
            let _ = d.sync_all();
        }
    }

    /// The last state write failed and nothing has succeeded since.
    pub fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    /// Records one change (written at the next [`Saver::flush`]).
    pub fn log(&mut self, op: &Op) {
        match journal::encode(&mut self.buf, self.next_n, op) {
            Ok(()) => self.next_n += 1,
            Err(e) => self.set_fault(format!("cannot write the journal: {e}")),
        }
    }

    /// Notes the spooled copies of an accepted request: the next sync makes
    /// them durable before the journal that points at them.
    pub fn spooled(&mut self, files: &[SpooledFile]) {
        self.spooled
            .extend(files.iter().map(|f| PathBuf::from(&f.path)));
    }

    /// Appends the recorded changes to the journal. An error puts the saver
    /// in fault: the changes are in memory only until a fold succeeds.
    pub fn flush(&mut self) -> std::result::Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(file) = self.journal.clone().filter(|_| self.writable()) else {
            self.buf.clear();
            return Err(self.fault.clone().unwrap_or_default());
        };
        match (&*file).write_all(&self.buf) {
            Ok(()) => {
                self.journal_len += self.buf.len() as u64;
                self.unsynced = true;
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                self.buf.clear();
                let error = format!("cannot write the state journal: {e}");
                self.set_fault(error.clone());
                Err(error)
            }
        }
    }

    /// Whether appends go on: not after a fault, until a fold is under way.
    fn writable(&self) -> bool {
        self.fault.is_none() || self.fold_in_flight.is_some()
    }

    /// Asks the thread for a sync of what was written; returns its ticket
    /// (`None` after a fault: only a fold can make things durable then).
    pub fn sync(&mut self) -> Option<Ticket> {
        if !self.writable() {
            return None;
        }
        if !self.unsynced && self.spooled.is_empty() {
            // Nothing new: the last write requested covers it.
            return Some(self.requested).filter(|r| *r > self.done);
        }
        let file = self.journal.clone()?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.requested += 1;
        let spool = std::mem::take(&mut self.spooled);
        self.send(Job::Sync {
            id: self.requested,
            file,
            spool,
        });
        Some(self.requested)
    }

    fn send(&mut self, job: Job) {
        if self.jobs.as_ref().is_none_or(|j| j.send(job).is_err()) {
            self.set_fault("the saver thread is gone".into());
        }
    }

    /// Whether a periodic sync is due (changes nobody waited for).
    pub fn sync_due(&self, now: Instant) -> bool {
        self.unsynced && self.last_sync + SYNC_EVERY <= now
    }

    /// Whether the state should be written whole: the journal outgrew it,
    /// or a fault waits for a successful write.
    pub fn fold_due(&self, now: Instant) -> bool {
        if self.fold_in_flight.is_some() {
            return false;
        }
        match self.fault {
            Some(_) => self.retry_at.is_none_or(|t| t <= now),
            None => self.journal_len > FOLD_MIN.max(self.base_len),
        }
    }

    /// When [`Saver::sync_due`] or [`Saver::fold_due`] next becomes true.
    pub fn next_due(&self) -> Option<Instant> {
        let sync = self.unsynced.then_some(self.last_sync + SYNC_EVERY);
        let retry = self.fault.as_ref().and(self.retry_at);
        match (sync, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes the state whole into a temporary file and hands the rest of
    /// the fold to the thread; later changes go to a new journal file.
    pub fn fold(&mut self, state: &mut State) -> std::result::Result<Ticket, String> {
        self.buf.clear();
        state.journal_applied = self.next_n - 1;
        let [_, next] = journal::paths(&self.path);
        let started = state::write_temp(&self.path, state).and_then(|tmp| {
            Ok((
                tmp,
                create(&next).map_err(|e| Error::io(path_str(&next), e))?,
            ))
        });
        let (tmp, file) = match started {
            Ok(s) => s,
            Err(e) => {
                self.retry_at = Some(Instant::now() + RETRY_EVERY);
                let error = format!("cannot write the state file: {}", e.chain());
                self.set_fault(error.clone());
                return Err(error);
            }
        };
        self.base_len = fs::metadata(&tmp).map_or(0, |m| m.len());
        self.journal = Some(Arc::new(file));
        self.journal_len = 0;
        self.unsynced = false;
        self.requested += 1;
        self.fold_in_flight = Some(self.requested);
        let spool = std::mem::take(&mut self.spooled);
        self.send(Job::Fold {
            id: self.requested,
            tmp,
            path: self.path.clone(),
            spool,
        });
        Ok(self.requested)
    }

    /// The thread finished job `id`. Returns whether it succeeded.
    pub fn on_saved(&mut self, id: Ticket, error: Option<String>) -> bool {
        self.done = self.done.max(id);
        let folded = self.fold_in_flight == Some(id);
        if folded {
            self.fold_in_flight = None;
        }
        if let Some(e) = error {
            self.retry_at = Some(Instant::now() + RETRY_EVERY);
            self.set_fault(e);
            return false;
        }
        if folded {
            let [journal, next] = journal::paths(&self.path);
            if let Err(e) = fs::rename(&next, &journal) {
                self.set_fault(format!("cannot rename the journal: {e}"));
                return false;
            }
            if self.fault.take().is_some() {
                log::warn!("the state file is written again");
            }
        }
        self.fault.is_none()
    }

    fn set_fault(&mut self, error: String) {
        if self.fault.is_none() {
            log::error!("{error}");
        }
        self.fault = Some(error);
    }

    /// At the stop: lets the thread finish, writes the state whole and
    /// removes the journal, so that at rest there is one flat file.
    pub fn close(&mut self, state: &mut State) -> Result<()> {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.buf.clear();
        Disk::new(Duration::ZERO).sync_spool(&std::mem::take(&mut self.spooled))?;
        self.write_whole(state)?;
        for p in journal::paths(&self.path) {
            let _ = fs::remove_file(p);
        }
        Ok(())
    }

    fn write_whole(&mut self, state: &mut State) -> Result<()> {
        state.journal_applied = self.next_n - 1;
        state::save(&self.path, state)?;
        self.base_len = fs::metadata(&self.path).map_or(0, |m| m.len());
        self.journal_len = 0;
        Ok(())
    }
}

#[cfg(test)]
impl Saver {
    /// Makes every later journal write fail with "no space left" (tests).
    pub fn break_journal(&mut self) {
        let full = fs::OpenOptions::new().write(true).open("/dev/full");
        self.journal = Some(Arc::new(full.expect("/dev/full")));
    }

    /// The next pump retries a fold at once (tests).
    pub fn retry_now(&mut self) {
        self.retry_at = None;
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// A new, empty journal file (0600: it holds what the state file holds),
/// never through a symlink planted at its path.
fn create(path: &Path) -> std::io::Result<File> {
    crate::safe_file::create_temp(path)
}

/// The thread: takes every job already queued, does them in order with one
/// sync per file and run of syncs, and reports the last one done.
fn run(jobs: Receiver<Job>, reports: Sender<CoreMsg>, delay: Duration) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter());
        for (id, error) in do_batch(batch, &mut Disk::new(delay)) {
            if reports.send(CoreMsg::Saved { id, error }).is_err() {
                return;
            }
        }
    }
}

/// Syncs queued back to back on one journal file: done once, for the last.
struct Group {
    id: Ticket,
    file: Arc<File>,
    spool: Vec<PathBuf>,
}

/// Runs a batch; returns the outcome of each group (its last ticket).
fn do_batch(batch: Vec<Job>, disk: &mut Disk) -> Vec<(Ticket, Option<String>)> {
    let mut out = Vec::new();
    let mut pending: Option<Group> = None;
    for job in batch {
        match job {
            Job::Sync { id, file, spool } => {
                let mut group = Group { id, file, spool };
                if let Some(prev) = pending.take() {
                    if Arc::ptr_eq(&prev.file, &group.file) {
                        group.spool.splice(0..0, prev.spool);
                    } else {
                        out.push(disk.commit(prev));
                    }
                }
                pending = Some(group);
            }
            Job::Fold {
                id,
                tmp,
                path,
                spool,
            } => {
                if let Some(prev) = pending.take() {
                    out.push(disk.commit(prev));
                }
                out.push((id, disk.fold(&spool, &tmp, &path)));
            }
        }
    }
    out.extend(pending.map(|g| disk.commit(g)));
    out
}

/// What the thread made durable, in order (a unit test reads it).
#[derive(Debug, PartialEq)]
enum Synced {
    Spooled(PathBuf),
    SpoolDir(PathBuf),
    Journal,
}

/// The thread's durable writes, each slowed by the test hook's delay.
struct Disk {
    delay: Duration,
    synced: Vec<Synced>,
}

impl Disk {
    fn new(delay: Duration) -> Disk {
        let synced = Vec::new();
        Disk { delay, synced }
    }

    /// The spooled copies first, then the journal that points at them: once
    /// the journal says "accepted", the copies are on the disk too.
    fn commit(&mut self, g: Group) -> (Ticket, Option<String>) {
        if let Err(e) = self.sync_spool(&g.spool) {
            return (g.id, Some(e.chain().to_string()));
        }
        std::thread::sleep(self.delay);
        self.synced.push(Synced::Journal);
        let error = g.file.sync_data().err();
        (
            g.id,
            error.map(|e| format!("cannot write the state journal: {e}")),
        )
    }

    fn fold(&mut self, spool: &[PathBuf], tmp: &Path, path: &Path) -> Option<String> {
        if let Err(e) = self.sync_spool(spool) {
            return Some(e.chain().to_string());
        }
        std::thread::sleep(self.delay);
        let r = state::commit_temp(tmp, path);
        r.err()
            .map(|e| format!("cannot write the state file: {}", e.chain()))
    }

    /// `sync_data` on each copy (data and size), then one fsync of each
    /// directory, for their names. The spool directory's own name was made
    /// durable at start-up (it exists before the state directory's sync in
    /// [`Saver::open`]). A copy already gone was removed by its finished request.
    fn sync_spool(&mut self, spool: &[PathBuf]) -> Result<()> {
        let mut dirs: Vec<&Path> = Vec::new();
        for p in spool {
            match File::open(p) {
                Ok(f) => self.sync_one(&f, p, Synced::Spooled(p.clone()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(spool_error(p, e)),
            }
            let dir = p.parent().unwrap_or(Path::new("."));
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        for dir in dirs {
            let d = File::open(dir).map_err(|e| spool_error(dir, e))?;
            self.sync_one(&d, dir, Synced::SpoolDir(dir.to_path_buf()))?;
        }
        Ok(())
    }

    fn sync_one(&mut self, f: &File, p: &Path, what: Synced) -> Result<()> {
        std::thread::sleep(self.delay);
        self.synced.push(what);
        f.sync_data().map_err(|e| spool_error(p, e))
    }
}

fn spool_error(p: &Path, e: std::io::Error) -> Error {
    Error::io(format!("cannot write the spooled copy {}", p.display()), e)
}

#[cfg(test)]
mod tests;
