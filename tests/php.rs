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
use support::fake_rc::{FakeRcOptions, FakeRocketChat};
use support::wait::{wait_for, wait_until};

pub(crate) const PASSWORD: &str = "s3cret";

/// `php`, or `None` (with a note) on a machine without it; under CI a
/// missing php-cli fails the tests: `.ci/run` installs it.
pub(crate) fn php() -> Option<&'static str> {
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

pub(crate) fn php_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/php")
}

/// A Jeedom made of the PHP examples: the callback under `php -S`, the
/// plugin's settings, and what the callback handled.
pub(crate) struct PhpJeedom {
    pub(crate) server: Child,
    pub(crate) dir: PathBuf,
    pub(crate) settings: PathBuf,
    pub(crate) handled: PathBuf,
    pub(crate) router: &'static str,
    pub(crate) callback: String,
}

impl PhpJeedom {
    pub(crate) fn start(name: &str, rc: &FakeRocketChat) -> PhpJeedom {
        PhpJeedom::start_with(name, rc, "jeeRocketchat.php")
    }

    /// With `router` as the script of `php -S`.
    pub(crate) fn start_with(name: &str, rc: &FakeRocketChat, router: &'static str) -> PhpJeedom {
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
    pub(crate) fn stop_server(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }

    pub(crate) fn restart_server(&mut self) {
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
    pub(crate) fn plugin(&self, args: &[&str]) -> Output {
        self.plugin_with_path(args, &std::env::var("PATH").unwrap_or_default())
    }

    pub(crate) fn plugin_with_path(&self, args: &[&str], path: &str) -> Output {
        Command::new("php")
            .arg(php_dir().join("plugin.php"))
            .args(args)
            .env("RCD_PHP_CONFIG", &self.settings)
            .env("PATH", path)
            .output()
            .expect("php plugin.php")
    }

    pub(crate) fn plugin_ok(&self, args: &[&str]) -> String {
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

    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("tmp/rocketchat/deamon.pid")
    }

    pub(crate) fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rocketchat_daemon")).unwrap_or_default()
    }

    /// What the PHP callback handled so far, one JSON object per event.
    pub(crate) fn handled(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.handled).unwrap_or_default();
        // Whole lines only: PHP may be appending the last one right now.
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Waits until the callback handled an entry with `key` for which `pred` holds.
    pub(crate) fn wait(&self, key: &str, pred: impl Fn(&Value) -> bool) -> Value {
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

    pub(crate) fn count(&self, key: &str, value: &Value) -> usize {
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
pub(crate) fn http_get(url: &str) -> String {
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
