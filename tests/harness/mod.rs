//! Runs the real `rocketchatd` binary as a child process and talks to its command socket.
#![allow(dead_code)]
pub mod disk;
pub mod stack;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const APIKEY: &str = "test-apikey-0123456789abcdef0123456789";

/// The binary under test: `ROCKETCHATD_BIN` (e.g. an ARM build) or this build's.
pub fn binary() -> PathBuf {
    std::env::var_os("ROCKETCHATD_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_rocketchatd")),
        PathBuf::from,
    )
}

/// A command for the binary, under `ROCKETCHATD_RUNNER` (e.g. qemu) when set.
pub fn command() -> Command {
    match std::env::var("ROCKETCHATD_RUNNER")
        .ok()
        .filter(|r| !r.trim().is_empty())
    {
        Some(runner) => {
            let mut parts = runner.split_whitespace();
            let mut c = Command::new(parts.next().unwrap_or("env"));
            c.args(parts).arg(binary());
            c
        }
        None => Command::new(binary()),
    }
}

/// A fresh, empty directory for one test. A failed test's directory stays
/// for a look; those of runs that ended are removed by the next run.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(remove_ended_runs);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("rcd-it-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Removes the `rcd-it-<pid>-*` directories of test processes that ended
/// (each run leaves up to a few hundred MB: spooled uploads, state files).
fn remove_ended_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("rcd-it-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// How long a request on the command socket may wait for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one request to the command socket on `port` and parses the reply line.
///
/// Takes a port, not a [`Daemon`], for threads that talk to whichever daemon
/// currently listens there while another thread restarts it.
pub fn request_on(port: u16, raw: &str, timeout: Duration) -> std::io::Result<Value> {
    let text = raw_on(port, raw.as_bytes(), timeout)?;
    serde_json::from_str(text.trim())
        .map_err(|e| std::io::Error::other(format!("reply {text:?}: {e}")))
}

/// Sends raw bytes to the command socket on `port`, closes the writing side,
/// reads the reply.
pub fn raw_on(port: u16, bytes: &[u8], timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(bytes)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// A running daemon and what it printed.
pub struct Daemon {
    child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    pub pid_path: PathBuf,
    pub state_path: PathBuf,
    pub args: Vec<String>,
    env: Vec<(String, String)>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts with the usual Jeedom options plus `extra`, in `dir`.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_env(dir, extra, &[])
    }

    /// Like [`Daemon::start_in`], with extra environment variables.
    pub fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let pid_path = dir.join("daemon.pid");
        let state_path = dir.join("state.json");
        let mut args: Vec<String> = vec![
            "--loglevel",
            "debug",
            "--socketport",
            &port.to_string(),
            "--apikey",
            APIKEY,
            "--pid",
            &pid_path.to_string_lossy(),
            "--state",
            &state_path.to_string_lossy(),
        ]
        .into_iter()
        .map(String::from)
        .collect();
        // The test's own directory is where its snapshots are written.
        if !extra.contains(&"--files-dir") {
            args.extend(["--files-dir".into(), dir.to_string_lossy().into_owned()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut d = Daemon {
            child: None,
            dir: dir.to_path_buf(),
            port,
            pid_path,
            state_path,
            args,
            env,
            log: Default::default(),
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let mut child = command()
            .args(&self.args)
            .current_dir(&self.dir)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rocketchatd");
        self.log = Arc::new(Mutex::new(Vec::new()));
        capture(child.stderr.take(), self.log.clone());
        capture(child.stdout.take(), self.log.clone());
        self.child = Some(child);
    }

    /// Starts the same daemon again (same port, files and options).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("daemon started")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits until the command socket answers `status`.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(v) = self
                .try_request(&serde_json::json!({"apikey": APIKEY, "action": "status"}).to_string())
            {
                if v["ok"] == true {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "daemon never answered on its socket; log:\n{}",
            self.log_text()
        );
    }

    /// Sends one request line and returns the reply line parsed.
    pub fn request(&self, v: &Value) -> Value {
        self.try_request(&v.to_string())
            .unwrap_or_else(|e| panic!("request failed: {e}\nlog:\n{}", self.log_text()))
    }

    /// Sends raw bytes, closes the writing side, reads the reply line.
    pub fn try_request(&self, raw: &str) -> std::io::Result<Value> {
        request_on(self.port, raw, REQUEST_TIMEOUT)
    }

    pub fn raw(&self, bytes: &[u8]) -> std::io::Result<String> {
        raw_on(self.port, bytes, REQUEST_TIMEOUT)
    }

    pub fn sigterm(&self) {
        signal(self.pid(), "TERM");
    }

    pub fn kill9(&mut self) {
        let _ = self.child().kill();
        let _ = self.child().wait();
    }

    /// Waits for the exit, with a safety deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child().try_wait().expect("try_wait") {
                return st;
            }
            if Instant::now() > deadline {
                panic!(
                    "daemon did not exit within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("log never showed {needle:?}; log:\n{}", self.log_text());
    }

    /// Waits for a log line containing `needle` and returns the first such line.
    pub fn wait_log_line(&self, needle: &str, timeout: Duration) -> String {
        self.wait_log(needle, timeout);
        let log = self.log_text();
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_string()
    }

    /// The state as a restart would read it: the file and its journal.
    pub fn state(&self) -> Value {
        let text = std::fs::read_to_string(&self.state_path).expect("state file");
        let mut st: rocketchatd::testing::state::State =
            serde_json::from_str(&text).expect("state file is JSON");
        rocketchatd::testing::replay_files(&mut st, &self.state_path);
        serde_json::to_value(&st).expect("state as JSON")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn capture(pipe: Option<impl Read + Send + 'static>, log: Arc<Mutex<Vec<String>>>) {
    let Some(pipe) = pipe else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if std::env::var_os("RCD_TEST_ECHO").is_some() {
                eprintln!("[daemon] {line}");
            }
            if let Ok(mut l) = log.lock() {
                l.push(line);
            }
        }
    });
}

/// Sends a signal with kill(1): the tests avoid unsafe code and extra crates.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}
