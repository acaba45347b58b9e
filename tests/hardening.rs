//! Issue 13 against the real binary: broken stderr, SIGHUP, second instances, planted symlinks, `--state` refusals, forged log lines.
use crate::harness;
use crate::support;
use harness::{Daemon, APIKEY};
use serde_json::json;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::wait::wait_until;

const T: Duration = Duration::from_secs(20);

fn unreachable_url() -> String {
    format!("http://127.0.0.1:{}", harness::free_port())
}

fn base_args(url: &str) -> Vec<String> {
    ["--url", url, "--user", "jeedombot", "--password", "pw"]
        .map(String::from)
        .to_vec()
}

fn start(name: &str) -> Daemon {
    let d = Daemon::start_in(
        &harness::temp_dir(name),
        &base_args(&unreachable_url())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    d.wait_ready();
    d
}

/// Waits for a child's exit with a deadline; returns its code and stderr.
fn finish(mut child: Child, timeout: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rocketchatd did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.code(), err)
}

/// Starts a second daemon with these options, stderr captured.
fn second(args: &[String], dir: &Path) -> Child {
    harness::command()
        .args(args)
        .current_dir(dir)
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn daemon_args(port: u16, pid: &Path, state: &Path) -> Vec<String> {
    let mut a: Vec<String> = ["--loglevel", "debug", "--apikey", APIKEY]
        .map(String::from)
        .to_vec();
    a.extend(["--socketport".into(), port.to_string()]);
    a.extend(["--pid".into(), pid.display().to_string()]);
    a.extend(["--state".into(), state.display().to_string()]);
    a.extend(base_args(&unreachable_url()));
    a
}

fn status_on(port: u16) -> serde_json::Value {
    let raw = json!({"apikey": APIKEY, "action": "status"}).to_string();
    harness::request_on(port, &raw, Duration::from_secs(10)).unwrap()
}

#[test]
fn a_broken_stderr_pipe_does_not_stop_the_daemon() {
    let dir = harness::temp_dir("epipe");
    let port = harness::free_port();
    let (pid, state) = (dir.join("d.pid"), dir.join("state.json"));
    let mut cmd: Command = harness::command();
    cmd.args(daemon_args(port, &pid, &state))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // The reader goes away: every log line from now on meets EPIPE.
    drop(child.stderr.take());
    wait_until(T, "socket answers", || {
        let raw = json!({"apikey": APIKEY, "action": "status"}).to_string();
        harness::request_on(port, &raw, Duration::from_secs(5)).is_ok()
    });
    // Debug logging is on: each of these writes lines into the dead pipe.
    for i in 0..20 {
        let raw = json!({"apikey": "wrong", "action": "status", "n": i}).to_string();
        let _ = harness::request_on(port, &raw, Duration::from_secs(5));
    }
    assert_eq!(status_on(port)["ok"], true, "still serving its socket");
    assert!(child.try_wait().unwrap().is_none(), "still running");
    harness::signal(child.id(), "TERM");
    let (code, _) = finish(child, T);
    assert_eq!(code, Some(0), "clean stop");
    assert!(!pid.exists(), "pid file removed");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["clean_stop"], true);
}

#[test]
fn sighup_is_logged_and_ignored() {
    let mut d = start("sighup");
    harness::signal(d.pid(), "HUP");
    d.wait_log("SIGHUP", T);
    let status = d.request(&json!({"apikey": APIKEY, "action": "status"}));
    assert_eq!(status["ok"], true, "still running after SIGHUP");
    assert!(d.pid_path.exists());
    d.sigterm();
    assert_eq!(d.wait_exit(T).code(), Some(0));
    assert_eq!(d.state()["clean_stop"], true);
    assert!(!d.pid_path.exists());
}

#[test]
fn a_second_daemon_on_the_same_port_leaves_the_pid_file_alone() {
    let d = start("second-port");
    let other = harness::temp_dir("second-port-b");
    let args = daemon_args(d.port, &d.pid_path, &other.join("state.json"));
    let (code, err) = finish(second(&args, &other), T);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("rocketchatd: invalid --socketport: cannot listen"),
        "{err}"
    );
    let text = std::fs::read_to_string(&d.pid_path).expect("first daemon's pid file kept");
    assert_eq!(text, format!("{}\n", d.pid()));
    assert_eq!(
        d.request(&json!({"apikey": APIKEY, "action": "status"}))["ok"],
        true
    );
}

#[test]
fn a_second_daemon_on_the_same_state_exits_1() {
    let d = start("second-state");
    let other = harness::temp_dir("second-state-b");
    let args = daemon_args(harness::free_port(), &d.pid_path, &d.state_path);
    let (code, err) = finish(second(&args, &other), T);
    assert_eq!(code, Some(1), "{err}");
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "one line: {err}");
    assert!(
        line.starts_with("rocketchatd: invalid --state: ") && line.contains("another rocketchatd"),
        "{line}"
    );
    let text = std::fs::read_to_string(&d.pid_path).expect("first daemon's pid file kept");
    assert_eq!(text, format!("{}\n", d.pid()));
    assert_eq!(
        d.request(&json!({"apikey": APIKEY, "action": "status"}))["ok"],
        true
    );
}

/// A start failing after its checks of port and state (here on the spool,
/// a file in the way of its directory) given the running daemon's `--pid`.
#[test]
fn a_start_failing_later_leaves_the_running_daemon_s_pid_file_alone() {
    let d = start("failed-start");
    let other = harness::temp_dir("failed-start-b");
    std::fs::write(other.join("rocketchatd-spool"), "in the way").unwrap();
    let args = daemon_args(harness::free_port(), &d.pid_path, &other.join("state.json"));
    let (code, err) = finish(second(&args, &other), T);
    assert_eq!(code, Some(1), "{err}");
    // The error is the last line, after the start-up's log lines.
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("rocketchatd: invalid --state: cannot create ")
            && last.contains("rocketchatd-spool"),
        "{err}"
    );
    let text = std::fs::read_to_string(&d.pid_path).expect("first daemon's pid file kept");
    assert_eq!(text, format!("{}\n", d.pid()));
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A start refused after the state's lock was taken leaves the state
/// directory as it found it, and the next start with a good command line
/// runs: refused for its `--ca-file` (missing, not PEM; exit 2), or later,
/// after the spool directory was made, for its `--pid` (exit 1).
#[test]
fn a_failed_start_leaves_the_state_directory_as_it_found_it() {
    let dir = harness::temp_dir("failed-start-clean");
    let elsewhere = harness::temp_dir("failed-start-ca");
    let not_pem = elsewhere.join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let before = names_in(&dir);
    let (pid, no_pid) = (dir.join("daemon.pid"), not_pem.join("d.pid"));
    let missing = dir.join("missing-ca.pem").display().to_string();
    let cases = [
        ("ca-file", 2, &pid, vec!["--ca-file".into(), missing]),
        (
            "ca-file",
            2,
            &pid,
            vec!["--ca-file".into(), not_pem.display().to_string()],
        ),
        ("pid", 1, &no_pid, vec![]),
    ];
    for (option, want, pid, extra) in cases {
        let mut args = daemon_args(harness::free_port(), pid, &dir.join("state.json"));
        args.extend(extra);
        let (code, err) = finish(second(&args, &dir), T);
        // An invalid option's value exits 2, a start-up failure 1 (README, Options).
        assert_eq!(code, Some(want), "{err}");
        let last = err.lines().last().unwrap_or_default();
        let prefix = format!("rocketchatd: invalid --{option}: ");
        assert!(last.starts_with(&prefix), "{err}");
        assert_eq!(names_in(&dir), before, "after: {last}");
    }
    let d = start_in_dir(&dir);
    assert_eq!(status_on(d.port)["ok"], true);
    assert!(
        dir.join("state.json.lock").exists(),
        "a running daemon's lock"
    );
}

fn start_in_dir(dir: &Path) -> Daemon {
    let args = base_args(&unreachable_url());
    let d = Daemon::start_in(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    d.wait_ready();
    d
}

/// A daemon refused because another holds the state's lock leaves the lock
/// file alone: a third one is refused the same way.
#[test]
fn a_refused_second_daemon_leaves_the_first_one_s_lock() {
    let d = start("second-lock");
    let lock = d.dir.join("state.json.lock");
    let other = harness::temp_dir("second-lock-b");
    for _ in 0..2 {
        let args = daemon_args(harness::free_port(), &other.join("d.pid"), &d.state_path);
        let (code, err) = finish(second(&args, &other), T);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("in use by another rocketchatd"), "{err}");
        assert!(lock.exists(), "the first daemon's lock file removed");
    }
    assert_eq!(status_on(d.port)["ok"], true);
}

#[test]
fn symlinks_planted_at_the_pid_and_temporary_state_paths_are_not_followed() {
    let dir = harness::temp_dir("symlinks");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let plant = |name: &str| symlink(&victim, dir.join(name)).unwrap();
    // Before the start: the pid file, its temporary copy, the state's.
    plant("daemon.pid");
    plant("daemon.pid.tmp");
    plant("state.json.tmp");
    let args = base_args(&unreachable_url());
    let mut d = Daemon::start_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    d.wait_ready();
    assert_eq!(
        std::fs::read_to_string(&d.pid_path).unwrap(),
        format!("{}\n", d.pid())
    );
    assert!(!std::fs::symlink_metadata(&d.pid_path).unwrap().is_symlink());
    // While it runs (the start-up removed the first ones): the temporary
    // state file the clean stop writes through.
    plant("state.json.tmp");
    // An accepted send is saved before the ok: the state was written.
    let reply = d
        .request(&json!({"apikey": APIKEY, "action": "send", "room": "#general", "message": "hi"}));
    assert_eq!(reply["ok"], true, "{reply}");
    d.sigterm();
    assert_eq!(d.wait_exit(T).code(), Some(0));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&d.state_path).unwrap();
    assert!(meta.is_file(), "the state file is a file of its own");
    let state = d.state();
    assert_eq!(state["clean_stop"], true, "{state}");
    assert_eq!(state["outbox"][0]["text"], "hi", "{state}");
}

fn refused_state(state: &str) -> String {
    let dir = harness::temp_dir("state-refused");
    let mut args = vec![
        "--apikey".to_string(),
        APIKEY.into(),
        "--state".into(),
        state.into(),
    ];
    args.extend(["--socketport".into(), harness::free_port().to_string()]);
    args.extend(["--pid".into(), dir.join("d.pid").display().to_string()]);
    args.extend(base_args(&unreachable_url()));
    let (code, err) = finish(second(&args, &dir), T);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        !dir.join("d.pid").exists(),
        "no pid file for a refused start"
    );
    let line = err.trim().to_string();
    assert_eq!(line.lines().count(), 1, "one line: {err}");
    assert!(line.starts_with("rocketchatd: invalid --state: "), "{line}");
    line
}

#[test]
fn a_directory_or_an_unwritable_place_as_state_is_refused() {
    let dir = harness::temp_dir("state-dir");
    let inside = dir.join("keep.txt");
    std::fs::write(&inside, "x").unwrap();
    let line = refused_state(&dir.display().to_string());
    assert!(line.contains("is a directory"), "{line}");
    assert_eq!(
        std::fs::read_to_string(&inside).unwrap(),
        "x",
        "nothing moved"
    );
    let moved = format!("{}.corrupt", dir.file_name().unwrap().to_string_lossy());
    let aside = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with(&moved));
    assert!(!aside, "the directory was moved aside");
    // Not even root can create files in /proc: the same refusal as a
    // read-only directory, at start-up rather than at the first save.
    let line = refused_state("/proc/rocketchatd-state.json");
    assert!(line.contains("cannot write in /proc"), "{line}");
}

/// A state directory that does not exist and cannot be made (under /proc,
/// even for root; under a file) is refused in one line naming it; one that
/// can be made is made, and removed again when the start fails later.
#[test]
fn a_missing_state_directory_that_cannot_be_made_is_named() {
    let line = refused_state("/proc/rocketchatd-missing/dir/state.json");
    let want = "directory /proc/rocketchatd-missing/dir does not exist";
    assert!(line.contains(want), "{line}");
    let dir = harness::temp_dir("state-under-file");
    std::fs::write(dir.join("file"), "x").unwrap();
    let line = refused_state(&dir.join("file/dir/state.json").display().to_string());
    let want = format!(
        "directory {} does not exist",
        dir.join("file/dir").display()
    );
    assert!(line.contains(&want), "{line}");
    let state = dir.join("new/sub/state.json");
    let mut args = daemon_args(harness::free_port(), &dir.join("d.pid"), &state);
    args.extend([
        "--ca-file".into(),
        dir.join("missing.pem").display().to_string(),
    ]);
    let (code, err) = finish(second(&args, &dir), T);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        !dir.join("new").exists(),
        "the directories made stay: {err}"
    );
}

#[test]
fn log_lines_cannot_be_forged_or_made_huge() {
    let d = start("forge");
    let forged = "#kitchen\n2026-01-01T00:00:00.000Z ERROR [rocketchatd] FORGED";
    // A refused request is logged with its reason, which quotes the room.
    let reply =
        d.request(&json!({"apikey": APIKEY, "action": "send", "room": forged, "message": "x"}));
    assert_eq!(reply["ok"], false, "{reply}");
    let huge = format!("#a\n{}", "y".repeat(300_000));
    let reply =
        d.request(&json!({"apikey": APIKEY, "action": "send", "room": huge, "message": "x"}));
    assert_eq!(reply["ok"], false, "{reply}");
    d.wait_log("bytes)", T);
    let log = d.log_text();
    assert!(log.lines().all(|l| !l.starts_with("2026-01-01")), "{log}");
    assert!(log.contains("#kitchen\\n2026-01-01"), "escaped: {log}");
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1200, "a line of {longest} bytes");
    assert!(log.contains("(cut, "), "the cut is said");
}

#[test]
fn an_enormous_ask_timeout_is_capped_to_a_year() {
    use harness::stack::Stack;
    let mut s = Stack::start("ask-huge");
    s.wait_connected();
    // 2^63: wrapped to a negative time before, and the question expired at once.
    let reply = s.request(
        json!({"action": "ask", "room": "#general", "question": "Still there?",
        "answers": ["Yes", "No"], "ask_id": "huge", "timeout": 9_223_372_036_854_775_808u64}),
    );
    assert_eq!(reply["ok"], true, "{reply}");
    s.jeedom.wait_event(T, "sent", |e| e["ask_id"] == "huge");
    s.daemon.sigterm();
    assert_eq!(s.daemon.wait_exit(T).code(), Some(0));
    let state = s.daemon.state();
    let ask = &state["asks"][0];
    assert_eq!(ask["ask_id"], "huge", "{state}");
    assert!(ask["closing"].is_null(), "still open: {ask}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let left_days = (ask["expires_ms"].as_i64().unwrap() - now_ms) / 86_400_000;
    assert!((365..=366).contains(&left_days), "{left_days} days left");
    assert!(s.jeedom.events_of_type("ask_expired").is_empty());
}
