//! The flat JSON state file: load (moving a corrupt file aside) and atomic save.
use crate::error::{Error, Result};
use crate::model::{Outgoing, Room, Secret};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Version of the file layout; a file of another version is not reused.
pub const SCHEMA: u32 = 1;
/// Most message ids remembered per room (while Jeedom does not acknowledge).
pub const SEEN_PER_ROOM: usize = 500;
/// How far behind the watermark message ids are still remembered: a message
/// stamped a little earlier than the last one delivered (several server
/// instances, a clock step) is told apart by its id, not dropped by its time.
pub const ID_MEMORY_MS: i64 = 10 * 60 * 1000;

/// Everything that must survive a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub schema: u32,
    pub server_url: String,
    /// The configured login (username, e-mail or token user id).
    pub login: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub resume_token: Option<Secret>,
    pub rooms: BTreeMap<String, RoomState>,
    pub asks: Vec<PendingAsk>,
    /// Accepted `send`/`ask` requests not yet delivered, in order.
    pub outbox: VecDeque<Outgoing>,
    /// Callback events not yet acknowledged by Jeedom, in order.
    pub events: VecDeque<QueuedEvent>,
    pub next_seq: u64,
    /// True only in the file written by a clean stop. A file that says false
    /// was left by a crash: what that run delivered after its last write may
    /// be delivered again, so such deliveries carry `"replay": true`.
    pub clean_stop: bool,
    /// Number of the last journal record this file holds (see `journal`).
    pub journal_applied: u64,
}

/// A room and how far Jeedom has acknowledged its messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomState {
    #[serde(flatten)]
    pub room: Room,
    /// Server time (ms) of the last message Jeedom acknowledged.
    #[serde(default)]
    pub watermark_ms: Option<i64>,
    /// Messages queued for Jeedom not older than `ids_from_ms`, oldest first.
    #[serde(default)]
    pub seen: VecDeque<Seen>,
    /// Every message delivered with a server time from here on has its id in
    /// `seen`; older ones count as delivered. Absent in files of earlier
    /// versions, which kept ids from the watermark on: then the watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids_from_ms: Option<i64>,
}

/// A message id and its server time, written `["id", ms]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "SeenForm", into = "(String, i64)")]
pub struct Seen {
    pub id: String,
    pub ts_ms: i64,
}

/// Also reads a bare id (files of the first builds): kept until the bound
/// trims it, since its time is unknown.
#[derive(Deserialize)]
#[serde(untagged)]
enum SeenForm {
    Dated(String, i64),
    Bare(String),
}

impl From<SeenForm> for Seen {
    fn from(f: SeenForm) -> Seen {
        match f {
            SeenForm::Dated(id, ts_ms) => Seen { id, ts_ms },
            SeenForm::Bare(id) => Seen {
                id,
                ts_ms: i64::MAX,
            },
        }
    }
}

impl From<Seen> for (String, i64) {
    fn from(s: Seen) -> (String, i64) {
        (s.id, s.ts_ms)
    }
}

/// A question waiting for its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAsk {
    pub ask_id: String,
    pub room: Room,
    pub message_id: String,
    pub question: String,
    pub answers: Vec<String>,
    #[serde(default)]
    pub mention: Option<String>,
    pub expires_ms: i64,
    /// Set once answered or expired: the edit still to apply to the question.
    #[serde(default)]
    pub closing: Option<String>,
}

/// A callback event with its sequence number.
///
/// The event is kept as its JSON text: 10,000 of them wait while Jeedom is
/// away, and a text costs a fraction of a `Value` tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub seq: u64,
    /// For `message` events: room id and server time, to advance the watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<(String, i64)>,
    event: Box<RawValue>,
    /// The event's `type`, read once (set by [`QueuedEvent::refresh_kind`]).
    #[serde(skip)]
    pub kind: EventKind,
}

/// The event types the queue handles apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventKind {
    Message,
    Dropped,
    Rooms,
    #[default]
    Other,
}

impl QueuedEvent {
    pub fn new(seq: u64, mark: Option<(String, i64)>, event: &Value) -> QueuedEvent {
        let mut e = QueuedEvent {
            seq,
            mark,
            event: to_raw(event),
            kind: EventKind::Other,
        };
        e.refresh_kind();
        e
    }

    /// An event serialized straight to its JSON text, of a kind the caller
    /// knows (a `Value` in between, then the kind read back from the text,
    /// cost a tree and two passes per event on the way to Jeedom).
    pub fn serialized(
        seq: u64,
        mark: Option<(String, i64)>,
        event: &impl Serialize,
        kind: EventKind,
    ) -> QueuedEvent {
        QueuedEvent {
            seq,
            mark,
            event: to_raw(event),
            kind,
        }
    }

    /// The event's JSON text.
    pub fn raw(&self) -> &RawValue {
        &self.event
    }

    /// The event as a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.event.get()).unwrap_or(Value::Null)
    }

    pub fn set_event(&mut self, event: &Value) {
        self.event = to_raw(event);
        self.refresh_kind();
    }

    pub fn refresh_kind(&mut self) {
        #[derive(Deserialize)]
        struct Typed<'a> {
            #[serde(borrow, rename = "type")]
            kind: Option<&'a str>,
        }
        let kind = serde_json::from_str::<Typed>(self.event.get())
            .ok()
            .and_then(|t| t.kind);
        self.kind = match kind {
            Some("message") => EventKind::Message,
            Some("dropped") => EventKind::Dropped,
            Some("rooms") => EventKind::Rooms,
            _ => EventKind::Other,
        };
    }
}

/// A value as JSON text (a `Value`, and the plain structs of events, always serialize).
fn to_raw(v: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(v)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

/// What [`load`] found, for the log.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    FirstRun,
    Resumed,
    /// The file was unreadable or corrupt and moved to this path.
    MovedAside(PathBuf, String),
    /// The file belonged to another server or user; it was not reused.
    OtherAccount,
}

impl State {
    /// A fresh state for this server and login.
    pub fn fresh(server_url: &str, login: &str) -> State {
        State {
            schema: SCHEMA,
            server_url: server_url.to_string(),
            login: Some(login.to_string()),
            ..State::default()
        }
    }

    /// Whether the file was written for this server and login.
    pub fn belongs_to(&self, server_url: &str, login: &str) -> bool {
        self.schema == SCHEMA
            && self.server_url == server_url
            && self.login.as_deref() == Some(login)
    }
}

/// Loads the state file; never fails: problems are reported in [`Loaded`].
pub fn load(path: &Path, server_url: &str, login: &str) -> (State, Loaded) {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (State::fresh(server_url, login), Loaded::FirstRun)
        }
        Err(e) => {
            return (
                State::fresh(server_url, login),
                move_aside(path, e.to_string()),
            )
        }
    };
    match serde_json::from_slice::<State>(&bytes) {
        Ok(mut s) if s.belongs_to(server_url, login) => {
            crate::journal::replay_files(&mut s, path);
            s.events.iter_mut().for_each(QueuedEvent::refresh_kind);
            (s, Loaded::Resumed)
        }
        Ok(_) => (State::fresh(server_url, login), Loaded::OtherAccount),
        Err(e) => (
            State::fresh(server_url, login),
            move_aside(path, e.to_string()),
        ),
    }
}

fn move_aside(path: &Path, reason: String) -> Loaded {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{now}"));
    let aside = PathBuf::from(aside);
    match fs::rename(path, &aside) {
        Ok(()) => Loaded::MovedAside(aside, reason),
        Err(e) => Loaded::MovedAside(
            PathBuf::new(),
            format!("{reason}; could not move it aside: {e}"),
        ),
    }
}

/// Writes the state atomically: temp file in the same directory, fsync, rename.
/// The JSON is streamed to the file, never held whole in memory.
pub fn save(path: &Path, state: &State) -> Result<()> {
    let tmp = write_temp(path, state)?;
    commit_temp(&tmp, path)
}

/// Writes the state into a temporary file beside `path`, not yet synced
/// (a fold writes it on the core thread and leaves the waiting to the saver).
pub fn write_temp(path: &Path, state: &State) -> Result<PathBuf> {
    let dir = dir_of(path);
    fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    write_unsynced(&tmp, state).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        match e {
            Written::Io(e) => Error::io(tmp.display().to_string(), e),
            Written::Json(source) => Error::Json {
                what: "state".into(),
                source,
            },
        }
    })?;
    Ok(tmp)
}

/// Syncs the temporary file, renames it over `path` and syncs the directory.
pub fn commit_temp(tmp: &Path, path: &Path) -> Result<()> {
    let synced = fs::File::open(tmp).and_then(|f| f.sync_all());
    synced.map_err(|e| Error::io(tmp.display().to_string(), e))?;
    fs::rename(tmp, path).map_err(|e| Error::io(path.display().to_string(), e))?;
    // The rename is durable only once the directory itself is synced.
    if let Ok(d) = fs::File::open(dir_of(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The directory holding `path`.
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Why a write failed: the disk, or a value JSON cannot hold.
enum Written {
    Io(std::io::Error),
    Json(serde_json::Error),
}

fn write_unsynced(path: &Path, state: &State) -> std::result::Result<(), Written> {
    // Never through a symlink planted at the temporary path.
    let f = crate::safe_file::create_temp(path).map_err(Written::Io)?;
    let mut w = BufWriter::new(f);
    serde_json::to_writer_pretty(&mut w, state).map_err(|e| match e.io_error_kind() {
        Some(kind) => Written::Io(std::io::Error::new(kind, e)),
        None => Written::Json(e),
    })?;
    w.write_all(b"\n").map_err(Written::Io)?;
    w.into_inner().map_err(|e| Written::Io(e.into_error()))?;
    Ok(())
}

impl RoomState {
    /// A fresh room: nothing remembered, nothing acknowledged.
    pub fn new(room: Room, watermark_ms: Option<i64>) -> RoomState {
        RoomState {
            room,
            watermark_ms,
            seen: VecDeque::new(),
            ids_from_ms: None,
        }
    }

    /// Remembers a queued message, keeping the most recent ones. An id that
    /// falls off moves the horizon past it (never past the watermark, so a
    /// message stamped in the future cannot silence the room).
    pub fn remember(&mut self, id: &str, ts_ms: i64) {
        self.seen.push_back(Seen {
            id: id.to_string(),
            ts_ms,
        });
        while self.seen.len() > SEEN_PER_ROOM {
            let Some(gone) = self.seen.pop_front() else {
                break;
            };
            if let (Some(h), Some(w)) = (self.horizon(), self.watermark_ms) {
                self.ids_from_ms = Some(h.max(gone.ts_ms.saturating_add(1).min(w)));
            }
        }
    }

    /// Server time from which every delivered message's id is remembered;
    /// older messages count as delivered (`None`: nothing counts as old).
    pub fn horizon(&self) -> Option<i64> {
        self.ids_from_ms.or(self.watermark_ms)
    }

    /// Whether a message of this time is beyond the id memory (then it was
    /// delivered, or is older than anything worth catching up).
    pub fn is_old(&self, ts_ms: i64) -> bool {
        self.horizon().is_some_and(|h| ts_ms < h)
    }

    /// Whether this message was queued before (then it is an update).
    pub fn has_seen(&self, id: &str) -> bool {
        self.seen.iter().any(|s| s.id == id)
    }

    /// Jeedom acknowledged up to `ts_ms`: ids of messages more than
    /// [`ID_MEMORY_MS`] older are forgotten (a quiet room keeps a few ids).
    pub fn acknowledged(&mut self, ts_ms: i64) {
        let w = self.watermark_ms.map_or(ts_ms, |w| w.max(ts_ms));
        let floor = self.horizon().unwrap_or(i64::MIN);
        self.watermark_ms = Some(w);
        let horizon = floor.max(w.saturating_sub(ID_MEMORY_MS));
        self.ids_from_ms = Some(horizon);
        self.seen.retain(|s| s.ts_ms >= horizon);
    }
}

#[cfg(test)]
mod tests;
