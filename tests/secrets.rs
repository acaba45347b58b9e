//! The daemon's own secrets against the real binary: the API key off the command line, URL secrets never shown.
use crate::harness;
use crate::support;
use harness::{Daemon, APIKEY};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;
use support::fake_jeedom::FakeJeedom;
use support::wait::wait_until;

const T: Duration = Duration::from_secs(20);

fn unreachable_url() -> String {
    format!("http://127.0.0.1:{}", harness::free_port())
}

/// A daemon started without `--apikey`; its log is not kept.
fn spawn(dir: &Path, port: u16, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let url = unreachable_url();
    let mut args = vec!["--socketport".to_string(), port.to_string()];
    args.extend([
        "--state".into(),
        dir.join("state.json").display().to_string(),
    ]);
    args.extend(["--url", &url, "--user", "bot", "--password", "pw"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    harness::command()
        .args(&args)
        .env_remove("ROCKETCHATD_APIKEY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The daemon on `port` takes `key` and refuses another one; `key` is not in its command line.
fn answers_with(mut child: Child, port: u16, key: &str) {
    let ask = |k: &str| {
        let raw = json!({"apikey": k, "action": "status"}).to_string();
        harness::request_on(port, &raw, Duration::from_secs(5))
    };
    wait_until(T, "the socket answers", || ask(key).is_ok());
    assert_eq!(ask(key).unwrap()["ok"], true);
    assert_eq!(ask("not-the-key").unwrap()["ok"], false);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(key),
        "key visible in ps"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn apikey_from_a_file_the_environment_or_the_config_file() {
    let dir = harness::temp_dir("apikey-sources");
    let file = dir.join("apikey");
    std::fs::write(&file, "from-the-file-0123456789\n").unwrap();
    let port = harness::free_port();
    let child = spawn(&dir, port, &["--apikey-file", file.to_str().unwrap()], &[]);
    answers_with(child, port, "from-the-file-0123456789");

    let dir = harness::temp_dir("apikey-env");
    let port = harness::free_port();
    let env = [("ROCKETCHATD_APIKEY", "from-the-env-0123456789")];
    answers_with(
        spawn(&dir, port, &[], &env),
        port,
        "from-the-env-0123456789",
    );

    let dir = harness::temp_dir("apikey-config");
    let config = dir.join("rocketchatd.json");
    let body = json!({"apikey-file": file.to_str().unwrap()});
    std::fs::write(&config, body.to_string()).unwrap();
    let port = harness::free_port();
    let child = spawn(&dir, port, &["--config", config.to_str().unwrap()], &[]);
    answers_with(child, port, "from-the-file-0123456789");
}

#[test]
fn a_missing_apikey_names_every_way_to_give_it() {
    let out = harness::command()
        .args(["--url", "http://h", "--user", "u", "--password", "p"])
        .env_remove("ROCKETCHATD_APIKEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in ["--apikey", "--apikey-file", "ROCKETCHATD_APIKEY"] {
        assert!(err.contains(needle), "{needle} in {err}");
    }
}

/// A daemon whose Rocket.Chat cannot be reached, posting to `callback`.
fn start_with_callback(name: &str, callback: &str) -> Daemon {
    let url = unreachable_url();
    let args = [
        "--url",
        &url,
        "--user",
        "bot",
        "--password",
        "pw",
        "--callback",
        callback,
    ];
    let d = Daemon::start_in(&harness::temp_dir(name), &args);
    d.wait_ready();
    d
}

/// `http://127.0.0.1:port/path` with `user:password@` added.
fn with_userinfo(url: &str, userinfo: &str) -> String {
    url.replacen("://", &format!("://{userinfo}@"), 1)
}

#[test]
fn a_password_in_the_callback_url_is_never_logged() {
    let jeedom = FakeJeedom::start(APIKEY);
    let cb = with_userinfo(&jeedom.url(), "jeedom:Cb-Pa55word");
    let d = start_with_callback("cb-userinfo", &cb);
    // The callback is tested at start-up and its URL logged (debug level).
    d.wait_log("Jeedom callback", T);
    jeedom.wait_event(T, "status", |_| true);
    let log = d.log_text();
    assert!(
        log.contains("jeedom:***@127.0.0.1"),
        "shown, redacted:\n{log}"
    );
    assert!(!log.contains("Cb-Pa55word"), "password in the log:\n{log}");
}

#[test]
fn a_callback_url_key_and_password_are_never_logged_when_it_fails() {
    // Nothing listens there: the callback test fails and is logged with
    // the URL, at warning level, and so is every failed delivery.
    let cb = format!(
        "http://jeedom:Cb-Pa55word@127.0.0.1:{}/cb?apikey=Url-Key-0123456789",
        harness::free_port()
    );
    let d = start_with_callback("cb-url-key", &cb);
    let line = d.wait_log_line("test failed", T);
    assert!(
        line.contains("WARN") && line.contains("http://jeedom:***@127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("/cb?apikey=***"), "{line}");
    let log = d.log_text();
    for secret in ["Cb-Pa55word", "Url-Key-0123456789", APIKEY] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn check_output_hides_url_passwords_and_keys() {
    let jeedom = FakeJeedom::start(APIKEY);
    let cb = format!(
        "{}?apikey=Url-Key-0123456789",
        with_userinfo(&jeedom.url(), "jeedom:Cb-Pa55word")
    );
    let url = unreachable_url();
    let args = [
        "--check",
        "--url",
        &url,
        "--user",
        "bot",
        "--password",
        "pw",
        "--callback",
        &cb,
        "--apikey",
        APIKEY,
    ];
    let child = harness::command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("callback"))
        .unwrap_or_else(|| panic!("no callback line:\n{text}"));
    assert!(
        line.contains("http://jeedom:***@127.0.0.1:") && line.contains("?apikey=***"),
        "the URL shown, its secrets masked: {line}"
    );
    for secret in ["Cb-Pa55word", "Url-Key-0123456789", APIKEY] {
        assert!(!text.contains(secret), "{secret} shown:\n{text}");
    }
}

#[test]
fn a_refused_url_is_shown_without_its_password() {
    let out = harness::command()
        .args(["--apikey", "k", "--user", "u", "--password", "p"])
        .args(["--url", "https://bot:Url-Pa55word@chat.example.org"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid --url") && err.contains("bot:***@"),
        "{err}"
    );
    assert!(!err.contains("Url-Pa55word"), "{err}");
}
