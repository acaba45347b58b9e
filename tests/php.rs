//! The PHP examples of tests/php/ (what a Jeedom plugin does), run with php-cli against the real daemon.
//!
//! The callback is `tests/php/jeeRocketchat.php` served by `php -S`; the
//! daemon is started, stopped and sent requests by `tests/php/plugin.php`.
use crate::harness;
use crate::support;
use harness::stack::T;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use support::fake_rc::{FakeRcOptions, FakeRocketChat};
use support::wait::{wait_for, wait_until};

const PASSWORD: &str = "s3cret";

/// `php`, or `None` (with a note) on a machine without it; under CI a
/// missing php-cli fails the tests: `.ci/run` installs it.
fn php() -> Option<&'static str> {
    let found = Command::new("php")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match (found, std::env::var("CI").as_deref()) {
        (true, _) => Some("php"),
        (false, Ok("true")) => {
            panic!("php is missing: `apt-get install -y php-cli` (.ci/run does)")
        }
        (false, _) => {
            eprintln!("SKIPPED: php is missing (apt-get install -y php-cli); CI=true makes this a failure");
            None
        }
    }
}

fn php_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/php")
}

/// A Jeedom made of the PHP examples: the callback under `php -S`, the
/// plugin's settings, and what the callback handled.
struct PhpJeedom {
    server: Child,
    dir: PathBuf,
    settings: PathBuf,
    handled: PathBuf,
    router: &'static str,
    pub callback: String,
}

impl PhpJeedom {
    fn start(name: &str, rc: &FakeRocketChat) -> PhpJeedom {
        PhpJeedom::start_with(name, rc, "jeeRocketchat.php")
    }

    /// With `router` as the script of `php -S`.
    fn start_with(name: &str, rc: &FakeRocketChat, router: &'static str) -> PhpJeedom {
        let dir = harness::temp_dir(name);
        let port = harness::free_port();
        let callback =
            format!("http://127.0.0.1:{port}/plugins/rocketchat/core/php/jeeRocketchat.php");
        let (handled, settings) = (dir.join("handled.jsonl"), dir.join("settings.json"));
        let password_file = dir.join("password");
        std::fs::write(&password_file, PASSWORD).unwrap();
        let socketport = harness::free_port();
        let values = json!({
            "binary": harness::binary(), "url": rc.url(), "user": "jeedombot",
            "password_file": password_file, "apikey": harness::APIKEY,
            "socketport": socketport.to_string(), "callback": callback, "loglevel": "info",
            "tmp": dir.join("tmp"), "log": dir, "state": dir.join("data/state.json"),
            "handled": handled, "hold": dir.join("hold"),
        });
        std::fs::write(&settings, values.to_string()).unwrap();
        let server = serve(port, &settings, router);
        PhpJeedom {
            server,
            dir,
            settings,
            handled,
            router,
            callback,
        }
    }

    /// Jeedom away (Apache stopped), then back on the same port.
    fn stop_server(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }

    fn restart_server(&mut self) {
        let port: u16 = self
            .callback
            .split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        self.server = serve(port, &self.settings, self.router);
    }

    /// `php plugin.php ARGS...`, as Jeedom would call the plugin's methods.
    fn plugin(&self, args: &[&str]) -> Output {
        self.plugin_with_path(args, &std::env::var("PATH").unwrap_or_default())
    }

    fn plugin_with_path(&self, args: &[&str], path: &str) -> Output {
        Command::new("php")
            .arg(php_dir().join("plugin.php"))
            .args(args)
            .env("RCD_PHP_CONFIG", &self.settings)
            .env("PATH", path)
            .output()
            .expect("php plugin.php")
    }

    fn plugin_ok(&self, args: &[&str]) -> String {
        let out = self.plugin(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "php plugin.php {args:?}: {text}{err}\ndaemon log:\n{}",
            self.daemon_log()
        );
        text
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("tmp/rocketchat/deamon.pid")
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rocketchat_daemon")).unwrap_or_default()
    }

    /// What the PHP callback handled so far, one JSON object per event.
    fn handled(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.handled).unwrap_or_default();
        // Whole lines only: PHP may be appending the last one right now.
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Waits until the callback handled an entry with `key` for which `pred` holds.
    fn wait(&self, key: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let what = format!("PHP to handle a {key:?} entry");
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(T, &what, || {
                self.handled()
                    .into_iter()
                    .find(|h| h.get(key).is_some() && pred(h))
            })
        }));
        found.unwrap_or_else(|_| {
            panic!(
                "{what}: handled {:#?}\ndaemon log:\n{}",
                self.handled(),
                self.daemon_log()
            )
        })
    }

    fn count(&self, key: &str, value: &Value) -> usize {
        self.handled().iter().filter(|h| &h[key] == value).count()
    }
}

/// `php -S` on `port` with the callback (or `router`) as its router script.
fn serve(port: u16, settings: &Path, router: &str) -> Child {
    let server = Command::new("php")
        .args(["-S", &format!("127.0.0.1:{port}")])
        .arg(php_dir().join(router))
        .env("RCD_PHP_CONFIG", settings)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("php -S");
    wait_until(T, "php -S listening", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    server
}

impl Drop for PhpJeedom {
    fn drop(&mut self) {
        let _ = self.plugin(&["stop"]);
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A raw HTTP GET; returns the status line and the body.
fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn php_starts_and_stops_the_daemon_as_jeedom_does() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = PhpJeedom::start("php-lifecycle", &rc);
    let info: Value = serde_json::from_str(&jeedom.plugin_ok(&["info"])).unwrap();
    assert_eq!(
        (info["state"].as_str(), info["launchable"].as_str()),
        (Some("nok"), Some("ok")),
        "{info}"
    );
    jeedom.plugin_ok(&["start"]);
    let pid: u32 = std::fs::read_to_string(jeedom.pid_file())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let info: Value = serde_json::from_str(&jeedom.plugin_ok(&["info"])).unwrap();
    assert_eq!(info["state"], "ok", "{info}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(cmdline.contains("--apikey-file"), "{cmdline}");
    assert!(
        !cmdline.contains(harness::APIKEY),
        "the API key is not shown by ps"
    );
    let key_file = jeedom.dir.join("tmp/rocketchat/apikey");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is the daemon's user's only");
    // The daemon's start-up test of the callback got "OK" from the PHP.
    let status = jeedom.wait("status", |h| h["status"] == "connected");
    assert_eq!(
        (status["server_version"].as_str(), status["bot"].as_str()),
        (Some("7.4.1"), Some("jeedombot"))
    );
    let rooms = jeedom.wait("rooms", |_| true);
    assert_eq!(rooms["rooms"]["GENERAL"], "channel general", "{rooms}");
    assert!(
        !jeedom.daemon_log().contains("rejected the API key"),
        "{}",
        jeedom.daemon_log()
    );

    jeedom.plugin_ok(&["stop"]);
    assert!(
        !jeedom.pid_file().exists(),
        "the daemon removed its pid file"
    );
    let log = jeedom.daemon_log();
    assert!(
        log.contains("signal 15 received") && log.contains("stopped"),
        "a clean stop:\n{log}"
    );
    assert!(
        jeedom.dir.join("data/state.json").exists(),
        "state written in the data folder"
    );
    assert!(
        !Path::new(&format!("/proc/{pid}/cmdline")).exists() || proc_is_zombie(pid),
        "pid {pid} still runs"
    );
    let info: Value = serde_json::from_str(&jeedom.plugin_ok(&["info"])).unwrap();
    assert_eq!(info["state"], "nok", "{info}");
}

#[test]
fn php_does_not_start_a_second_daemon_beside_systemd() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = PhpJeedom::start("php-systemd", &rc);
    // A systemctl that says the service runs, first on the PATH.
    let bin = jeedom.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let systemctl = bin.join("systemctl");
    let script = "#!/bin/sh\n[ \"$*\" = \"is-active --quiet rocketchatd.service\" ]\n";
    std::fs::write(&systemctl, script).unwrap();
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let out = jeedom.plugin_with_path(&["info"], &path);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["launchable"], "nok", "{info}");
    assert!(
        info["launchable_message"]
            .as_str()
            .unwrap()
            .contains("systemd"),
        "{info}"
    );
    let out = jeedom.plugin_with_path(&["start"], &path);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("systemd service"));
    assert!(
        !jeedom.pid_file().exists() && jeedom.daemon_log().is_empty(),
        "not started"
    );
}

/// An exited child of nobody who reaps it stays as a zombie.
fn proc_is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
}

#[test]
fn the_php_callback_refuses_a_wrong_api_key_and_answers_the_test() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = PhpJeedom::start("php-apikey", &rc);
    let ok = http_get(&format!(
        "{}?test=1&apikey={}",
        jeedom.callback,
        harness::APIKEY
    ));
    assert!(
        ok.starts_with("HTTP/1.0 200") && ok.ends_with("\r\n\r\nOK"),
        "{ok}"
    );
    let refused = http_get(&format!("{}?test=1&apikey=wrong", jeedom.callback));
    assert!(refused.starts_with("HTTP/1.0 403"), "{refused}");
}

#[test]
fn php_sends_and_asks_through_the_socket_and_reads_every_event() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = PhpJeedom::start("php-events", &rc);
    jeedom.plugin_ok(&["start"]);
    jeedom.wait("status", |h| h["status"] == "connected");
    rc.wait_bot_listening(T);

    jeedom.plugin_ok(&["send", "#general", "The washing machine is done", "cmd-42"]);
    let sent = jeedom.wait("sent", |h| h["sent"] == "cmd-42");
    assert_eq!(
        (sent["room"].as_str(), sent["ask_id"].is_null()),
        (Some("GENERAL"), true),
        "{sent}"
    );
    let posted = rc
        .message(sent["message_id"].as_str().unwrap())
        .expect("posted");
    assert_eq!(posted["msg"], "The washing machine is done");

    jeedom.plugin_ok(&["send", "#nowhere", "lost", "cmd-43"]);
    let failed = jeedom.wait("send_failed", |h| h["send_failed"] == "cmd-43");
    assert!(
        failed["error"].as_str().unwrap().contains("nowhere"),
        "{failed}"
    );

    jeedom.plugin_ok(&[
        "ask",
        "#general",
        "Alarm triggered, call the police?",
        "Yes;No",
        "q1",
        "120",
    ]);
    let asked = jeedom.wait("sent", |h| h["ask_id"] == "q1");
    assert!(
        asked["sent"].is_null(),
        "an ask's sent has ref null: {asked}"
    );
    rc.post("GENERAL", "alice", "yes");
    let answer = jeedom.wait("ask_answer", |h| h["ask_answer"] == "q1");
    assert_eq!(
        (answer["answer"].as_str(), answer["by"].as_str()),
        (Some("Yes"), Some("alice"))
    );

    jeedom.plugin_ok(&[
        "ask",
        "#general",
        "Lights still on, switch off?",
        "Yes;No",
        "q2",
        "1",
    ]);
    jeedom.wait("ask_expired", |h| h["ask_expired"] == "q2");

    let id = rc.post("GENERAL", "alice", "@jeedombot turn on the radio");
    let m = jeedom.wait("message", |h| h["message"] == id.as_str());
    assert_eq!(
        (m["room"].as_str(), m["from"].as_str()),
        (Some("GENERAL"), Some("alice"))
    );
    assert_eq!(
        (m["interaction"].as_bool(), m["query"].as_str()),
        (Some(true), Some("turn on the radio"))
    );
    assert!(jeedom
        .handled()
        .iter()
        .all(|h| h.get("unknown").is_none() && h.get("skipped").is_none()));
}

/// The events of things going wrong, read by the same PHP: an ask that
/// cannot be posted, a closing edit the server refuses, the server lost.
#[test]
fn php_reads_a_failed_ask_a_refused_closing_edit_and_a_lost_server() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = PhpJeedom::start("php-failures", &rc);
    jeedom.plugin_ok(&["start"]);
    jeedom.wait("status", |h| h["status"] == "connected");
    rc.wait_bot_listening(T);

    jeedom.plugin_ok(&["ask", "#nowhere", "Anyone?", "Yes;No", "q0", "60"]);
    let failed = jeedom.wait("send_failed", |h| h["ask_id"] == "q0");
    assert!(failed["send_failed"].is_null(), "ref null: {failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("nowhere"),
        "{failed}"
    );

    rc.set_allow_editing(false); // Message_AllowEditing off
    jeedom.plugin_ok(&[
        "ask",
        "#general",
        "Close the shutters?",
        "Yes;No",
        "q3",
        "120",
    ]);
    jeedom.wait("sent", |h| h["ask_id"] == "q3");
    rc.post("GENERAL", "alice", "no");
    jeedom.wait("ask_answer", |h| h["ask_answer"] == "q3");
    let close = jeedom.wait("ask_close_failed", |h| h["ask_close_failed"] == "q3");
    assert!(
        close["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{close}"
    );
    let notice = close["notice_id"].as_str().expect("the notice was posted");
    assert!(rc.message(notice).is_some(), "{close}");

    rc.set_down(true);
    let down = jeedom.wait("status", |h| h["status"] == "disconnected");
    assert!(
        down["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    rc.set_down(false);
    wait_until(T, "connected again, at PHP", || {
        let handled = jeedom.handled();
        let last = handled.iter().rev().find(|h| h.get("status").is_some());
        last.is_some_and(|h| h["status"] == "connected")
    });
    assert!(jeedom.handled().iter().all(|h| h.get("unknown").is_none()));
}

/// Holds back the PHP callback's answer (tests/php/hold_router.php) while
/// `f` runs, then lets it go: the daemon never gets it.
fn holding<T>(jeedom: &PhpJeedom, f: impl FnOnce() -> T) -> T {
    // `php -S` serves one request at a time: once this one is answered, the
    // batch PHP may still be answering is answered too, and is not held.
    let idle = http_get(&format!(
        "{}?test=1&apikey={}",
        jeedom.callback,
        harness::APIKEY
    ));
    assert!(idle.ends_with("OK"), "{idle}");
    let hold = jeedom.dir.join("hold");
    std::fs::write(&hold, "").unwrap();
    let out = f();
    std::fs::remove_file(&hold).unwrap();
    out
}

#[test]
fn php_skips_the_replays_of_a_crash_it_has_already_handled() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = PhpJeedom::start_with("php-replay", &rc, "hold_router.php");
    // Started by the harness for its kill -9.
    let (url, cb) = (rc.url(), jeedom.callback.clone());
    let args = [
        "--url",
        &url,
        "--user",
        "jeedombot",
        "--password",
        PASSWORD,
        "--callback",
        &cb,
    ];
    let mut daemon = harness::Daemon::start_in(&jeedom.dir, &args);
    jeedom.wait("status", |h| h["status"] == "connected");
    jeedom.wait("rooms", |_| true); // nothing else to deliver: the hold is for what comes
    rc.wait_bot_listening(T);

    // A crash while Jeedom's answer to a batch it handled is on its way:
    // after the restart the batch comes again, marked, and PHP skips it.
    let id = holding(&jeedom, || {
        let id = rc.post("GENERAL", "alice", "are you there?");
        jeedom.wait("message", |h| h["message"] == id.as_str());
        daemon.kill9();
        id
    });
    daemon.restart();
    let message_key = format!("message:{id}");
    jeedom.wait("skipped", |h| h["skipped"] == message_key.as_str());
    wait_until(T, "the restart's rooms event at PHP", || {
        jeedom
            .handled()
            .iter()
            .filter(|h| h.get("rooms").is_some())
            .count()
            == 2
    });

    let send = json!({"apikey": harness::APIKEY, "action": "send", "room": "#general", "message": "hello", "ref": "r1"});
    holding(&jeedom, || {
        assert_eq!(daemon.request(&send)["ok"], true);
        jeedom.wait("sent", |h| h["sent"] == "r1");
        daemon.kill9();
    });
    daemon.restart();
    jeedom.wait("skipped", |h| h["skipped"] == "sent:ref:r1");

    let handled = jeedom.handled();
    assert_eq!(jeedom.count("message", &json!(id)), 1, "{handled:#?}");
    assert_eq!(jeedom.count("sent", &json!("r1")), 1, "{handled:#?}");
    let posted = rc.messages("GENERAL");
    assert_eq!(
        posted.iter().filter(|m| m["msg"] == "hello").count(),
        1,
        "posted once"
    );
}

/// About 100 s in a debug build on 2 cores (10,000 messages queued, the
/// callback's 30 s retry delay, 10,000 events through PHP): run by hand.
#[test]
#[ignore = "100 s; run with `cargo test --test it php:: -- --ignored`"]
fn php_reads_the_dropped_count_after_a_long_outage() {
    let Some(_) = php() else { return };
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let mut jeedom = PhpJeedom::start("php-dropped", &rc);
    jeedom.plugin_ok(&["start"]);
    jeedom.wait("status", |h| h["status"] == "connected");
    jeedom.wait("rooms", |_| true);
    rc.wait_bot_listening(T);
    jeedom.stop_server();
    // Past 10,000 waiting events the oldest messages give way to one
    // `dropped` event that counts them.
    let n = 10_050;
    for i in 0..n {
        rc.post("GENERAL", "alice", &format!("flood {i}"));
    }
    let last = rc.post("GENERAL", "alice", "the last one");
    let long = Duration::from_secs(180);
    wait_until(long, "the daemon to queue the last message", || {
        jeedom.daemon_log().contains(&last)
    });
    jeedom.restart_server();
    // The callback's retry delay has grown during the outage (up to 30 s).
    wait_until(long, "the last message handled by PHP", || {
        jeedom
            .handled()
            .iter()
            .any(|h| h["message"] == last.as_str())
    });
    let handled = jeedom.handled();
    let delivered = handled
        .iter()
        .filter(|h| h.get("message").is_some())
        .count();
    let dropped: u64 = handled.iter().filter_map(|h| h["dropped"].as_u64()).sum();
    assert!(
        dropped > 0,
        "no dropped event; {delivered} messages delivered"
    );
    assert_eq!(
        delivered as u64 + dropped,
        n + 1,
        "every message delivered or counted"
    );
}

/// The README's PHP blocks, each as its lines (trimmed).
fn readme_php_blocks() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut block: Option<Vec<String>> = None;
    for line in readme.lines().map(str::trim) {
        match (&mut block, line) {
            (None, "```php") => block = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(block.take()),
            (Some(b), l) => b.push(l.to_string()),
            (None, _) => {}
        }
    }
    blocks
}

/// Whether `block` is cut from `file`: its parts between `// ...` lines are
/// runs of the file's lines (indentation aside), in the file's order.
fn cut_from(block: &[String], file: &str) -> bool {
    let lines: Vec<&str> = file.lines().map(str::trim).collect();
    let mut from = 0;
    for part in block.split(|l| l == "// ...") {
        let found = (from..=lines.len().saturating_sub(part.len())).find(|&at| {
            lines[at..].starts_with(&part.iter().map(String::as_str).collect::<Vec<_>>())
        });
        match found {
            Some(at) => from = at + part.len(),
            None => return false,
        }
    }
    true
}

/// What a plugin author copies from the README is what these tests run:
/// every PHP block of the README is cut from a file of tests/php/.
#[test]
fn the_readme_php_is_cut_from_the_tested_files() {
    let files: Vec<(String, String)> = std::fs::read_dir(php_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "php"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    let blocks = readme_php_blocks();
    assert!(
        blocks.len() >= 4,
        "{} PHP blocks in the README",
        blocks.len()
    );
    for block in &blocks {
        let from = files.iter().find(|(_, text)| cut_from(block, text));
        assert!(
            from.is_some(),
            "this README PHP block is in no file of tests/php/:\n{}",
            block.join("\n")
        );
    }
}
