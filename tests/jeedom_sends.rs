//! Jeedom's real send pattern: PHP connects, writes, closes, never reads the
//! reply. Every send of a scenario loop must be posted, once, in order, also
//! on a slow disk and while another process holds idle connections open.
use crate::harness;
use crate::support;
use harness::disk::SmallDisk;
use harness::stack::{Stack, T};
use harness::{Daemon, APIKEY};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;
use support::fake_jeedom::FakeJeedom;
use support::fake_rc::{FakeRcOptions, FakeRocketChat, BOT_ID};
use support::wait::{assert_never, wait_until};

/// Deadline for a whole loop to be posted (the fake takes a few ms per post).
const LOOP_TIME: Duration = Duration::from_secs(60);

/// Jeedom's PHP: one connection per request, write, close, never read.
fn php_send(port: u16, text: &str) {
    let req = json!({"apikey": APIKEY, "action": "send", "room": "#general", "message": text});
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(req.to_string().as_bytes()).expect("write");
    drop(s);
}

fn posted_texts(s: &Stack) -> Vec<String> {
    s.rc.messages("GENERAL")
        .into_iter()
        .filter(|m| m["u"]["_id"] == BOT_ID && m["t"].is_null())
        .map(|m: Value| m["msg"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Runs a loop of `n` back-to-back sends; checks all are posted once, in order.
fn loop_is_posted_whole_in_order(s: &Stack, n: usize) {
    let port = s.daemon.port;
    let texts: Vec<String> = (0..n).map(|i| format!("loop {i}")).collect();
    for t in &texts {
        php_send(port, t);
    }
    wait_until(LOOP_TIME, &format!("{n} posted messages"), || {
        posted_texts(s).len() >= n
    });
    let posted = posted_texts(s);
    assert_eq!(posted, texts, "{}", s.daemon.log_text());
}

fn stack(name: &str, env: &[(&str, &str)]) -> Stack {
    let s = Stack::start_env(
        name,
        FakeRocketChat::start(FakeRcOptions::default()),
        &[],
        env,
    );
    s.wait_connected();
    s
}

#[test]
fn a_loop_of_200_sends_is_posted_whole_and_in_order() {
    let s = stack("php-loop", &[]);
    loop_is_posted_whole_in_order(&s, 200);
}

#[test]
fn a_loop_of_200_sends_on_a_slow_disk_is_posted_whole_and_in_order() {
    // Every durable write takes 300 ms, as on a slow SD card.
    let s = stack("php-loop-slow", &[("RCD_TEST_SYNC_DELAY_MS", "300")]);
    loop_is_posted_whole_in_order(&s, 200);
    // The hook did slow the writes: the replies waited for it, not the posts.
    assert!(s
        .daemon
        .log_text()
        .contains("durable writes slowed by 300 ms"));
}

/// Another local process keeping `n` idle connections open to the command
/// socket: each one the daemon closes is opened again, until dropped.
struct IdleHolder {
    stop: mpsc::Sender<()>,
    thread: Option<thread::JoinHandle<usize>>,
}

impl IdleHolder {
    fn start(port: u16, n: usize) -> IdleHolder {
        let open = move || {
            let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            c.set_nonblocking(true).expect("non-blocking");
            c
        };
        let mut conns: Vec<TcpStream> = (0..n).map(|_| open()).collect();
        let (stop, stopped) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut reopened = 0;
            // A sweep every 20 ms until told to stop.
            while stopped.recv_timeout(Duration::from_millis(20)) == Err(RecvTimeoutError::Timeout)
            {
                for c in conns.iter_mut() {
                    let closed = match c.read(&mut [0u8; 256]) {
                        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                        Ok(_) => true,
                    };
                    if closed {
                        *c = open();
                        reopened += 1;
                    }
                }
            }
            reopened
        });
        IdleHolder {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops holding; how many connections were opened again.
    fn stop(mut self) -> usize {
        let _ = self.stop.send(());
        let t = self.thread.take().expect("running");
        t.join().expect("the holder thread")
    }
}

#[test]
fn sends_get_through_while_another_process_holds_100_idle_connections() {
    let s = stack("php-idle", &[]);
    let holder = IdleHolder::start(s.daemon.port, 100);
    loop_is_posted_whole_in_order(&s, 200);
    let reopened = holder.stop();
    eprintln!("idle connections closed by the daemon and opened again: {reopened}");
    // The closes show in the log, without a line each: another process
    // reopening them must not flood the log (nor the SD card under journald).
    let log = s.daemon.log_text();
    let lines = log
        .lines()
        .filter(|l| l.contains("command socket:") && l.contains("idle"))
        .count();
    assert!(reopened > 0, "the daemon closed no idle connection");
    assert!(
        (1..=3).contains(&lines),
        "{lines} log lines for {reopened} idle connections closed"
    );
}

/// Another local process sends bad requests in a loop (wrong API key, not
/// JSON), reading each refusal: Jeedom's loop still gets through whole, and
/// the refusals show in the log without a line each.
#[test]
fn a_loop_of_bad_requests_neither_blocks_sends_nor_floods_the_log() {
    let s = stack("bad-requests", &[]);
    let port = s.daemon.port;
    let flooder = thread::spawn(move || {
        let bad = [r#"{"apikey":"wrong","action":"status"}"#, "not json"];
        (0..400)
            .map(|i| refusal(port, bad[i % 2]))
            .filter(|r| r.contains("\"ok\":false"))
            .count()
    });
    loop_is_posted_whole_in_order(&s, 50);
    let refused = flooder.join().expect("the flooder");
    assert_eq!(refused, 400, "every bad request got its refusal");
    let log = s.daemon.log_text();
    let lines = log.lines().filter(|l| l.contains("refused")).count();
    assert!(log.contains("bad apikey"), "a refusal is logged:\n{log}");
    assert!(
        (1..=6).contains(&lines),
        "{lines} log lines for 400 refused requests:\n{log}"
    );
}

/// One request written and read back, as a local client that reads would.
fn refusal(port: u16, line: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(line.as_bytes()).expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("half-close");
    let _ = c.set_read_timeout(Some(T));
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

/// A daemon whose state directory is a small tmpfs (`None` where mounting is
/// not allowed), and that tmpfs.
fn stack_on_small_disk(name: &str) -> Option<(Stack, SmallDisk)> {
    let dir = harness::temp_dir(name);
    let disk = SmallDisk::mount(&dir, "1m")?;
    let (rc, jeedom) = (
        FakeRocketChat::start(FakeRcOptions::default()),
        FakeJeedom::start(APIKEY),
    );
    let (url, cb) = (rc.url(), jeedom.url());
    let args = ["--url", &url, "--callback", &cb, "--heartbeat", "2"];
    let args = [&args[..], &["--user", "jeedombot", "--password", "s3cret"]].concat();
    let daemon = Daemon::start_env(&dir, &args, &[]);
    let s = Stack { rc, jeedom, daemon };
    s.wait_connected();
    Some((s, disk))
}

/// Fills the disk holding `dir` with a file, to the last byte it takes.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![7u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.write_all(&[7u8]);
    path
}

fn send_text(s: &Stack, text: &str) -> Value {
    s.request(json!({"action": "send", "room": "#general", "message": text}))
}

/// Issue 12, disk faults: with the state's disk full, a send gets an error
/// reply and nothing is posted or queued; once space is freed, sends are
/// accepted and posted again, without a restart.
#[test]
fn a_full_state_disk_refuses_sends_and_recovers_without_a_restart() {
    let Some((s, _disk)) = stack_on_small_disk("state-disk-full") else {
        return;
    };
    let filler = fill(&s.daemon.dir);
    // Longer than the slack left in the journal's last page: it needs room.
    let lost = format!("lost while full {}", "x".repeat(20_000));
    let reply = send_text(&s, &lost);
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(
        s.request(json!({"action": "status"}))["queues"]["outbox"],
        0
    );
    assert_never(Duration::from_millis(500), "a refused send posted", || {
        posted_texts(&s)
            .iter()
            .any(|t| t.starts_with("lost while full"))
    });
    std::fs::remove_file(filler).expect("free the disk");
    let mut n = 0;
    wait_until(T, "a send accepted after the disk was freed", || {
        n += 1;
        send_text(&s, &format!("after {n}"))["ok"] == true
    });
    let accepted = format!("after {n}");
    wait_until(T, "the accepted send posted", || {
        posted_texts(&s).contains(&accepted)
    });
    assert_eq!(
        posted_texts(&s),
        vec![accepted],
        "only the accepted send is posted"
    );
}
