//! Which files a `send` may post (README "Which files can be sent"): secrets, system trees, FIFOs, size and disk limits.
use crate::harness;
use crate::support;
use harness::disk::SmallDisk;
use harness::stack::{Stack, T};
use harness::APIKEY;
use serde_json::{json, Value};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::fake_rc::{FakeRcOptions, BOT_ID};
use support::wait::{assert_never, wait_until};

/// The bot's messages in `#general`.
fn bot_messages(s: &Stack) -> Vec<Value> {
    let all = s.rc.messages("GENERAL");
    all.into_iter()
        .filter(|m| m["u"]["_id"] == BOT_ID)
        .collect()
}

fn spool_dir(s: &Stack) -> PathBuf {
    s.daemon.dir.join("rocketchatd-spool")
}

fn spool_is_empty(s: &Stack) -> bool {
    std::fs::read_dir(spool_dir(s)).map_or(true, |mut d| d.next().is_none())
}

/// A `send` of `path` with a text that would show in the room if it got through.
fn send_file(s: &Stack, path: &Path, r: &str) -> Value {
    s.request(
        json!({"action": "send", "room": "#general", "message": format!("leak {r}"),
        "files": [path.to_str().unwrap()], "ref": r}),
    )
}

fn refused(s: &Stack, path: &Path, rule: &str) {
    refused_reply(send_file(s, path, "refused"), path, rule);
}

/// The same file named by the options' `file=`, in a direct message.
fn refused_in_options(s: &Stack, path: &Path, rule: &str) {
    let reply = s.request(json!({"action": "send", "room": "@alice",
        "message": "leak refused", "options": format!("file=\"{}\"", path.display())}));
    refused_reply(reply, path, rule);
}

fn refused_reply(reply: Value, path: &Path, rule: &str) {
    assert_eq!(
        reply["ok"],
        false,
        "{} was accepted: {reply}",
        path.display()
    );
    let error = reply["error"].as_str().unwrap();
    let named = format!("file \"{}\": ", path.display());
    assert!(error.starts_with(&named), "names the file: {error}");
    assert!(
        error.contains(rule),
        "{}: expected {rule:?}, got {error}",
        path.display()
    );
}

fn mkfifo(p: &Path) {
    let made = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", p.display());
}

/// Issue 13: the daemon's own secrets, the system trees, links out of the
/// allowed directories and files outside them are refused; nothing of it
/// is posted, and a snapshot in an allowed directory still is.
#[test]
fn secrets_and_files_outside_the_allowed_directories_are_refused() {
    let secrets = harness::temp_dir("files-secrets");
    let (pw, cfg) = (secrets.join("password"), secrets.join("rocketchatd.json"));
    let key = secrets.join("apikey");
    std::fs::write(&pw, "s3cret\n").unwrap();
    std::fs::write(&key, format!("{APIKEY}\n")).unwrap();
    std::fs::write(&cfg, r#"{"cycle": 0.5}"#).unwrap();
    let outside = harness::temp_dir("files-outside").join("outside.jpg");
    std::fs::write(&outside, b"not for the chat").unwrap();
    let (pw_s, cfg_s, key_s, dir_s) = (
        pw.to_str().unwrap(),
        cfg.to_str().unwrap(),
        key.to_str().unwrap(),
        secrets.to_str().unwrap(),
    );
    let extra = [
        "--user",
        "jeedombot",
        "--password-file",
        pw_s,
        "--config",
        cfg_s,
        "--apikey-file",
        key_s,
        "--files-dir",
        dir_s,
    ];
    let s = Stack::start_with("files-secrets", FakeRcOptions::default(), &extra);
    s.wait_connected();
    let state = s.daemon.state_path.clone();
    let link = |name: &str, to: &Path| {
        let p = secrets.join(name);
        symlink(to, &p).unwrap();
        p
    };
    const SYSTEM: &str = "files in /proc, /sys and /dev are never sent";
    const OWN: &str = "one of the daemon's own files";
    const OUTSIDE: &str = "outside the allowed directories (--files-dir): ";
    refused(&s, Path::new("/proc/self/environ"), SYSTEM);
    refused(&s, Path::new("/proc/self/cmdline"), SYSTEM);
    refused_in_options(&s, Path::new("/proc/self/environ"), SYSTEM);
    refused(&s, Path::new("/sys/kernel/hostname"), SYSTEM);
    refused(&s, Path::new("/dev/zero"), SYSTEM);
    refused(&s, &link("zero.jpg", Path::new("/dev/zero")), SYSTEM);
    refused(
        &s,
        &link("env.jpg", Path::new("/proc/self/environ")),
        SYSTEM,
    );
    refused(&s, &pw, OWN);
    refused(&s, &cfg, OWN);
    refused(&s, &key, OWN);
    refused_in_options(&s, &key, OWN);
    refused(&s, &link("state.jpg", &state), OWN);
    refused(&s, &link("pid.jpg", &s.daemon.pid_path), OWN);
    refused(&s, &state, OWN);
    // A file in the spool (the copies of other requests' files).
    let spooled = spool_dir(&s).join("planted.jpg");
    std::fs::write(&spooled, b"someone's snapshot").unwrap();
    refused(&s, &spooled, OWN);
    refused(&s, &link("spooled.jpg", &spooled), OWN);
    std::fs::remove_file(&spooled).unwrap();
    let sub = secrets.join("album.jpg");
    std::fs::create_dir(&sub).unwrap();
    refused(&s, &sub, "not a regular file (a directory)");
    // Refused by its type before any open (open(2) would fail with ENXIO).
    let sock = secrets.join("sock.jpg");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    refused(&s, &sock, "not a regular file (a socket)");
    refused(&s, &outside, OUTSIDE);
    refused(&s, &link("away.jpg", &outside), OUTSIDE);
    let snap = secrets.join("snap.jpg");
    std::fs::write(&snap, b"\xff\xd8camera").unwrap();
    assert_eq!(send_file(&s, &snap, "snap")["ok"], true);
    s.sent("snap");
    let ups = s.rc.uploads();
    assert_eq!(ups.len(), 1, "only the snapshot was uploaded");
    assert_eq!(
        (ups[0].0.as_str(), ups[0].2.as_slice()),
        ("snap.jpg", &b"\xff\xd8camera"[..])
    );
    let texts: Vec<Value> = bot_messages(&s).iter().map(|m| m["msg"].clone()).collect();
    assert!(texts.iter().all(|t| t != "leak refused"), "{texts:?}");
    assert!(s.jeedom.events_of_type("send_failed").is_empty());
    wait_until(T, "the spool emptied", || spool_is_empty(&s));
}

/// A FIFO gets an error reply instead of holding its connection: more of
/// them than the socket serves at once, and the socket still answers.
#[test]
fn fifos_are_refused_at_once_and_the_socket_keeps_serving() {
    let s = Stack::start("files-fifo");
    s.wait_connected();
    let fifo = s.daemon.dir.join("pipe.jpg");
    mkfifo(&fifo);
    let req = json!({"apikey": APIKEY, "action": "send", "room": "#general",
        "message": "x", "files": [fifo.to_str().unwrap()]})
    .to_string();
    for i in 0..40 {
        // Nobody ever writes to the FIFO: a daemon that opened it blocking
        // would never answer within the deadline.
        let reply = harness::request_on(s.daemon.port, &req, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("FIFO request {i}: no reply: {e}"));
        assert_eq!(reply["ok"], false);
        let error = reply["error"].as_str().unwrap();
        assert!(error.contains("not a regular file (a FIFO)"), "{error}");
    }
    let status = s.request(json!({"action": "status"}));
    assert_eq!(status["ok"], true, "{status}");
    assert!(bot_messages(&s).is_empty());
}

/// Issue 12: a file over `--max-file-size` is refused by its size before
/// any copy (a sparse 300 MB file leaves nothing in the spool); a file at
/// the limit is posted.
#[test]
fn files_over_the_size_limit_are_refused_before_copying() {
    let s = Stack::start_with(
        "files-limit",
        FakeRcOptions::default(),
        &["--max-file-size", "1"],
    );
    s.wait_connected();
    let sparse = s.daemon.dir.join("sparse.mp4");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(300_000_000)
        .unwrap();
    let over = s.daemon.dir.join("over.jpg");
    std::fs::write(&over, vec![1u8; 1024 * 1024 + 1]).unwrap();
    for (p, size) in [
        (&sparse, "286.1 MiB (300000000 bytes)"),
        (&over, "1.0 MiB (1048577 bytes)"),
    ] {
        let reply = send_file(&s, p, "big");
        assert_eq!(reply["ok"], false, "{reply}");
        let expected = format!("{size} is over the limit of 1 MiB (--max-file-size)");
        assert!(
            reply["error"].as_str().unwrap().ends_with(&expected),
            "{reply}"
        );
        assert!(spool_is_empty(&s), "nothing copied");
    }
    let at = s.daemon.dir.join("at.jpg");
    std::fs::write(&at, vec![2u8; 1024 * 1024]).unwrap();
    assert_eq!(send_file(&s, &at, "at")["ok"], true);
    s.sent("at");
    assert_eq!(s.rc.uploads().len(), 1);
    assert_eq!(s.rc.uploads()[0].2.len(), 1024 * 1024);
    let texts: Vec<Value> = bot_messages(&s).iter().map(|m| m["msg"].clone()).collect();
    assert_eq!(
        texts,
        [json!("leak at"), json!("")],
        "the text, then the file"
    );
}

/// Issue 12: a file that does not fit on the spool's disk is an error reply
/// (nothing posted, nothing queued, the partial copy deleted); the next
/// file that fits goes through without a restart.
#[test]
fn a_full_disk_refuses_the_file_and_recovers() {
    let s = Stack::start("files-disk-full");
    s.wait_connected();
    let Some(_disk) = SmallDisk::mount(&spool_dir(&s), "512k") else {
        return;
    };
    let big = s.daemon.dir.join("big.jpg");
    std::fs::write(&big, vec![3u8; 2 * 1024 * 1024]).unwrap();
    let reply = send_file(&s, &big, "full");
    assert_eq!(reply["ok"], false, "{reply}");
    let expected = format!(
        "file \"{}\": not enough free disk space to copy it into {}",
        big.display(),
        spool_dir(&s).display()
    );
    assert_eq!(reply["error"], expected.as_str());
    assert!(spool_is_empty(&s), "the partial copy is deleted");
    let status = s.request(json!({"action": "status"}));
    assert_eq!(status["queues"]["outbox"], 0, "nothing queued: {status}");
    let small = s.daemon.dir.join("small.jpg");
    std::fs::write(&small, vec![4u8; 100 * 1024]).unwrap();
    assert_eq!(send_file(&s, &small, "fits")["ok"], true);
    s.sent("fits");
    assert_never(
        Duration::from_millis(500),
        "the refused request posted",
        || bot_messages(&s).iter().any(|m| m["msg"] == "leak full"),
    );
    assert_eq!(s.rc.uploads().len(), 1);
    wait_until(T, "the spool emptied", || spool_is_empty(&s));
}

/// A daemon killed when dropped (started without the harness's `--files-dir`).
struct Bare(std::process::Child);

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn send_on(port: u16, path: &Path) -> Value {
    let raw = json!({"apikey": APIKEY, "action": "send", "room": "#general",
        "message": "x", "files": [path.to_str().unwrap()]});
    harness::request_on(port, &raw.to_string(), Duration::from_secs(10)).unwrap()
}

/// Without `--files-dir`, the Jeedom directories of README "Which files can
/// be sent"; `--files-dir` repeated allows each directory given, and only those.
#[test]
fn the_allowed_directories_default_to_jeedom_s_and_the_option_repeats() {
    let url = format!("http://127.0.0.1:{}", harness::free_port());
    let dir = harness::temp_dir("files-defaults");
    let port = harness::free_port();
    let state = dir.join("state.json");
    let _bare = Bare(
        harness::command()
            .args(["--apikey", APIKEY, "--socketport", &port.to_string()])
            .args(["--state", state.to_str().unwrap()])
            .args(["--url", &url, "--user", "bot", "--password", "pw"])
            .current_dir(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let status = json!({"apikey": APIKEY, "action": "status"}).to_string();
    wait_until(T, "the socket answers", || {
        harness::request_on(port, &status, Duration::from_secs(5)).is_ok()
    });
    let mine = dir.join("snap.jpg");
    std::fs::write(&mine, b"jpeg").unwrap();
    let reply = send_on(port, &mine);
    let expected = format!(
        "file \"{}\": outside the allowed directories (--files-dir): \
         /var/www/html/plugins/camera/data, /var/www/html/data, /tmp/jeedom/history_export",
        mine.display()
    );
    assert_eq!(reply["error"], expected.as_str(), "{reply}");

    let (a, b) = (
        harness::temp_dir("files-dir-a"),
        harness::temp_dir("files-dir-b"),
    );
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    let d = harness::Daemon::start_in(
        &harness::temp_dir("files-repeat"),
        &["--url", &url, "--user", "bot", "--password", "pw"]
            .into_iter()
            .chain(["--files-dir", a_s, "--files-dir", b_s])
            .collect::<Vec<_>>(),
    );
    d.wait_ready();
    for p in [a.join("1.jpg"), b.join("2.jpg")] {
        std::fs::write(&p, b"jpeg").unwrap();
        assert_eq!(send_on(d.port, &p)["ok"], true, "{}", p.display());
    }
    let own_dir = d.dir.join("3.jpg");
    std::fs::write(&own_dir, b"jpeg").unwrap();
    let error = send_on(d.port, &own_dir)["error"].to_string();
    assert!(
        error.contains(&format!("(--files-dir): {a_s}, {b_s}\"")),
        "{error}"
    );
}
