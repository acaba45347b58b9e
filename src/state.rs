//! The flat JSON state file: load (moving a corrupt file aside) and atomic save.
use crate::error::{Error, Result};
use crate::model::{Outgoing, Room, Secret};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Version of the file layout; a file of another version is not reused.
pub const SCHEMA: u32 = 1;
/// Message ids remembered per room to tell new messages from updates.
pub const SEEN_PER_ROOM: usize = 500;

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
}

/// A room and how far Jeedom has acknowledged its messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomState {
    #[serde(flatten)]
    pub room: Room,
    /// Server time (ms) of the last message Jeedom acknowledged.
    #[serde(default)]
    pub watermark_ms: Option<i64>,
    /// Ids of the latest messages queued for Jeedom, oldest first.
    #[serde(default)]
    pub seen: VecDeque<String>,
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub seq: u64,
    /// For `message` events: room id and server time, to advance the watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<(String, i64)>,
    pub event: Value,
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
        Ok(s) if s.belongs_to(server_url, login) => (s, Loaded::Resumed),
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
pub fn save(path: &Path, state: &State) -> Result<()> {
    let data = serde_json::to_vec_pretty(state).map_err(|source| Error::Json {
        what: "state".into(),
        source,
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    write_synced(&tmp, &data).map_err(|e| Error::io(tmp.display().to_string(), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path.display().to_string(), e))?;
    // The rename is durable only once the directory itself is synced.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.write_all(b"\n")?;
    f.sync_all()
}

impl RoomState {
    /// Remembers a queued message id, keeping the most recent ones.
    pub fn remember(&mut self, id: &str) {
        self.seen.push_back(id.to_string());
        while self.seen.len() > SEEN_PER_ROOM {
            self.seen.pop_front();
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
