//! Life cycle of the real binary: pid file, signals, exit codes, state file, secrets.
use crate::harness;
use crate::support;
use harness::{Daemon, APIKEY};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// A Rocket.Chat URL where nothing listens: the daemon must run regardless.
fn unreachable_url() -> String {
    format!("http://127.0.0.1:{}", harness::free_port())
}

fn start(name: &str, extra: &[&str]) -> Daemon {
    let dir = harness::temp_dir(name);
    let url = unreachable_url();
    let mut args = vec![
        "--url",
        url.as_str(),
        "--user",
        "jeedombot",
        "--password",
        "s3cret-Pa55word",
    ];
    args.extend_from_slice(extra);
    let d = Daemon::start_in(&dir, &args);
    d.wait_ready();
    d
}

#[test]
fn pid_file_appears_and_sigterm_exits_0_quickly() {
    let dir = harness::temp_dir("pid");
    let url = unreachable_url();
    let started = Instant::now();
    let mut d = Daemon::start_in(
        &dir,
        &["--url", &url, "--user", "jeedombot", "--password", "pw"],
    );
    support::wait::wait_until(Duration::from_secs(5), "pid file", || d.pid_path.exists());
    let appeared = started.elapsed();
    let text = std::fs::read_to_string(&d.pid_path).unwrap();
    assert_eq!(
        text,
        format!("{}\n", d.pid()),
        "pid file holds the daemon's own pid"
    );
    d.wait_ready();
    let t = Instant::now();
    d.sigterm();
    let status = d.wait_exit(Duration::from_secs(10));
    let took = t.elapsed();
    assert_eq!(status.code(), Some(0), "log:\n{}", d.log_text());
    assert!(!d.pid_path.exists(), "pid file removed on exit");
    assert!(d.state_path.exists(), "state flushed on exit");
    eprintln!("pid file after {appeared:?}, SIGTERM exit after {took:?}");
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
}

#[test]
fn sigint_and_stop_action_also_exit_cleanly() {
    let mut d = start("sigint", &[]);
    harness::signal(d.pid(), "INT");
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert!(!d.pid_path.exists());

    let mut d = start("stop", &[]);
    let reply = d.request(&json!({"apikey": APIKEY, "action": "stop"}));
    assert_eq!(
        reply,
        json!({"ok": true, "stopping": true}),
        "the README's stop reply"
    );
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert!(!d.pid_path.exists());
}

#[test]
fn sigterm_while_a_client_hangs_on_the_socket() {
    let mut d = start("hangclient", &[]);
    let _idle = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let t = Instant::now();
    d.sigterm();
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn invalid_options_exit_2_naming_the_option() {
    let cases: &[(&[&str], &str)] = &[
        (&["--socketport", "80"], "--socketport"),
        (&["--loglevel", "verbose"], "--loglevel"),
        (&["--url", "chat.example.org"], "--url"),
        (&["--cycle", "12"], "--cycle"),
        (&["--bogus"], "--bogus"),
    ];
    for (extra, name) in cases {
        let mut args = vec![
            "--apikey",
            "k",
            "--url",
            "http://h",
            "--user",
            "u",
            "--password",
            "p",
        ];
        args.extend_from_slice(extra);
        let out = harness::command().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(name), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let out = harness::command()
        .args(["--url", "http://h", "--user", "u", "--password", "p"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--apikey"));
}

#[test]
fn version_and_help() {
    let out = harness::command().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("rocketchatd "));
    let out = harness::command().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--socketport",
        "--callback",
        "--apikey",
        "--heartbeat",
        "--state",
        "--check",
        "--ca-file",
    ] {
        assert!(help.contains(opt), "help lacks {opt}");
    }
}

#[test]
fn config_file_supplies_options_and_command_line_wins() {
    let dir = harness::temp_dir("configfile");
    let url = unreachable_url();
    let cfg = dir.join("config.json");
    let file = json!({"url": url, "user": "jeedombot", "password": "from-file", "apikey": "file-key", "loglevel": "error"});
    std::fs::write(&cfg, file.to_string()).unwrap();
    // --apikey on the command line (set by the harness) must win over the file's.
    let d = Daemon::start_in(&dir, &["--config", cfg.to_str().unwrap()]);
    d.wait_ready();
    let r = d.request(&json!({"apikey": "file-key", "action": "status"}));
    assert_eq!(r["error"], "bad apikey");
}

#[test]
fn corrupt_state_is_moved_aside_and_the_daemon_runs() {
    for (name, garbage) in [
        ("truncated", &b"{\"schema\":1,\"outbox\":["[..]),
        ("binary", &b"\x00\xff\xfe garbage"[..]),
    ] {
        let dir = harness::temp_dir(name);
        std::fs::write(dir.join("state.json"), garbage).unwrap();
        let url = unreachable_url();
        let mut d = Daemon::start_in(
            &dir,
            &["--url", &url, "--user", "jeedombot", "--password", "pw"],
        );
        d.wait_ready();
        let moved: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("state.json.corrupt-")
            })
            .collect();
        assert_eq!(moved.len(), 1, "corrupt file moved aside");
        assert_eq!(
            std::fs::read(moved[0].path()).unwrap(),
            garbage,
            "kept as it was"
        );
        assert!(
            d.log_text().contains("ERROR"),
            "logged at error:\n{}",
            d.log_text()
        );
        d.sigterm();
        assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0));
        let mode = std::fs::metadata(&d.state_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "state file mode");
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&d.state_path).unwrap()).unwrap();
        assert_eq!(state["schema"], 1);
    }
}

#[test]
fn accepted_send_survives_kill_9() {
    let mut d = start("kill9", &[]);
    let reply = d.request(&json!({"apikey": APIKEY, "action": "send", "room": "#general", "message": "survivor", "ref": "r1"}));
    assert_eq!(reply["ok"], true, "{reply}");
    d.kill9();
    let outbox = &d.state()["outbox"];
    assert_eq!(
        outbox[0]["text"], "survivor",
        "on disk before the ok: {outbox}"
    );
    d.restart();
    d.wait_ready();
    let status = d.request(&json!({"apikey": APIKEY, "action": "status"}));
    assert_eq!(status["queues"]["outbox"], 1, "{status}");
    assert_eq!(status["connected"], false);
}

#[test]
fn secrets_never_reach_the_log() {
    let password = "s3cret-Pa55word";
    let mut d = start("secrets", &[]);
    d.request(&json!({"apikey": "wrong-key", "action": "status"}));
    d.request(&json!({"apikey": APIKEY, "action": "send", "room": "#general", "message": "hello"}));
    d.request(&json!({"apikey": APIKEY, "action": "status"}));
    d.sigterm();
    d.wait_exit(Duration::from_secs(10));
    let log = d.log_text();
    assert!(
        log.contains("DEBUG") || log.contains("INFO"),
        "debug logging was on:\n{log}"
    );
    assert!(log.contains("bad apikey"), "the refusal is logged:\n{log}");
    for secret in [password, APIKEY] {
        assert!(
            !log.contains(secret),
            "secret {secret:?} in the log:\n{log}"
        );
    }
}

#[test]
fn log_lines_carry_a_timestamp_except_under_journald() {
    let url = unreachable_url();
    let args = [
        "--url",
        url.as_str(),
        "--user",
        "jeedombot",
        "--password",
        "pw",
    ];
    let d = Daemon::start_in(&harness::temp_dir("log-ts"), &args);
    let line = d.wait_log_line("started", Duration::from_secs(10));
    assert!(line.starts_with("20") && line.contains("INFO"), "{line}");
    let d = Daemon::start_env(
        &harness::temp_dir("log-journal"),
        &args,
        &[("JOURNAL_STREAM", "8:12345")],
    );
    let line = d.wait_log_line("started", Duration::from_secs(10));
    assert!(
        line.starts_with("INFO"),
        "no timestamp under journald: {line}"
    );
}
