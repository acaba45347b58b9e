//! The daemon under measurement: started with the options Jeedom passes, its
//! log drained (kept in a small ring for error reports), its command socket.
use crate::harness;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub started: Instant,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// How to start the daemon beyond its options.
#[derive(Default)]
pub struct Launch {
    pub env: Vec<(String, String)>,
    /// A program (and its arguments) that runs the daemon: `strace ... --`.
    pub wrapper: Vec<String>,
}

impl Daemon {
    /// Starts the binary against `rc_url` and `callback`.
    pub fn start(dir: &Path, rc_url: &str, callback: &str, loglevel: &str) -> Daemon {
        Daemon::launch(dir, rc_url, callback, loglevel, &Launch::default())
    }

    /// Like [`Daemon::start`], with an environment and a wrapper.
    pub fn launch(
        dir: &Path,
        rc_url: &str,
        callback: &str,
        loglevel: &str,
        how: &Launch,
    ) -> Daemon {
        let port = harness::free_port();
        let pid = dir.join("daemon.pid");
        let state = dir.join("state.json");
        let args: Vec<String> = [
            "--loglevel",
            loglevel,
            "--socketport",
            &port.to_string(),
            "--apikey",
            harness::APIKEY,
            "--pid",
            &pid.to_string_lossy(),
            "--state",
            &state.to_string_lossy(),
            "--url",
            rc_url,
            "--callback",
            callback,
            "--user",
            "jeedombot",
            "--password",
            "s3cret",
            // The upload section posts a 64 MiB file from the daemon's directory.
            "--files-dir",
            &dir.to_string_lossy(),
            "--max-file-size",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let started = Instant::now();
        let mut cmd = match how.wrapper.split_first() {
            Some((prog, rest)) => {
                let mut c = std::process::Command::new(prog);
                c.args(rest).arg(harness::binary());
                c
            }
            None => harness::command(),
        };
        let mut child = cmd
            .args(&args)
            .envs(how.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rocketchatd");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            let l2 = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut l = l2.lock().unwrap();
                    if l.len() >= 200 {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            });
        }
        Daemon {
            child,
            port,
            dir: dir.to_path_buf(),
            started,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's own pid, from its pid file (under a wrapper, the child
    /// is the wrapper).
    pub fn daemon_pid(&self) -> u32 {
        std::fs::read_to_string(self.pid_path())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| self.pid())
    }

    pub fn pid_path(&self) -> PathBuf {
        self.dir.join("daemon.pid")
    }

    /// The last lines the daemon logged.
    pub fn log_tail(&self) -> String {
        let l = self.log.lock().unwrap();
        l.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// One request on the command socket (the API key is added).
    pub fn request(&self, mut v: Value) -> Value {
        v["apikey"] = json!(harness::APIKEY);
        match harness::request_on(self.port, &v.to_string(), harness::REQUEST_TIMEOUT) {
            Ok(r) => r,
            Err(e) => panic!("command socket: {e}\nlog:\n{}", self.log_tail()),
        }
    }

    /// SIGTERM and wait for the exit (of the daemon itself under a
    /// wrapper: strace lets its tracee run on when it is stopped).
    pub fn stop(mut self) {
        harness::signal(self.daemon_pid(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Under a wrapper still running, the daemon is its live tracee.
        let pid = self.daemon_pid();
        if pid != self.child.id() && matches!(self.child.try_wait(), Ok(None)) {
            harness::signal(pid, "KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
