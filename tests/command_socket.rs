//! The command socket against bad input: every row gets its error, the daemon keeps serving.
use crate::harness;
use crate::support;
use harness::{Daemon, APIKEY};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn daemon(name: &str) -> Daemon {
    let dir = harness::temp_dir(name);
    let url = format!("http://127.0.0.1:{}", harness::free_port());
    let d = Daemon::start_in(
        &dir,
        &["--url", &url, "--user", "jeedombot", "--password", "pw"],
    );
    d.wait_ready();
    d
}

fn assert_still_serving(d: &Daemon) {
    let r = d.request(&json!({"apikey": APIKEY, "action": "status"}));
    assert_eq!(
        r["ok"],
        true,
        "daemon stopped serving: {r}\n{}",
        d.log_text()
    );
}

fn error_of(reply: &Value) -> String {
    assert_eq!(reply["ok"], false, "expected an error, got {reply}");
    reply["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn bad_input_table() {
    let d = daemon("badinput");
    let dir = d.dir.join("a directory");
    std::fs::create_dir_all(&dir).unwrap();
    let send = |extra: Value| {
        let mut v =
            json!({"apikey": APIKEY, "action": "send", "room": "#general", "message": "hi"});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v.to_string()
    };
    let rows: Vec<(&str, String, &str)> = vec![
        ("not JSON", "hello there".into(), "invalid JSON"),
        ("JSON array", "[1,2,3]".into(), "must be a JSON object"),
        (
            "missing apikey",
            json!({"action": "status"}).to_string(),
            "bad apikey",
        ),
        (
            "wrong apikey",
            json!({"apikey": "nope", "action": "status"}).to_string(),
            "bad apikey",
        ),
        (
            "unknown action",
            json!({"apikey": APIKEY, "action": "dance"}).to_string(),
            "unknown action \"dance\"",
        ),
        (
            "missing action",
            json!({"apikey": APIKEY}).to_string(),
            "missing field \"action\"",
        ),
        (
            "missing field",
            json!({"apikey": APIKEY, "action": "send", "message": "x"}).to_string(),
            "missing field \"room\"",
        ),
        (
            "wrong type",
            send(json!({"message": 12})),
            "field \"message\" must be a string",
        ),
        (
            "wrong list type",
            send(json!({"files": "/etc/hostname"})),
            "field \"files\" must be a list",
        ),
        (
            "file outside --files-dir",
            send(json!({"files": ["/etc/hostname"]})),
            "file \"/etc/hostname\": outside the allowed directories (--files-dir)",
        ),
        (
            "missing file",
            send(json!({"files": ["/nonexistent/snap.jpg"]})),
            "/nonexistent/snap.jpg",
        ),
        (
            "directory",
            send(json!({"files": [dir.to_string_lossy()]})),
            "not a regular file (a directory)",
        ),
        (
            "bad options",
            send(json!({"options": "file=\"/a b.jpg"})),
            "unterminated quote",
        ),
        ("empty request", "".into(), "empty request"),
    ];
    for (what, raw, expected) in rows {
        let reply = d
            .try_request(&raw)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let err = error_of(&reply);
        assert!(
            err.contains(expected),
            "{what}: got {err:?}, expected {expected:?}"
        );
        assert_still_serving(&d);
    }
    // Nothing was queued by any of them.
    let status = d.request(&json!({"apikey": APIKEY, "action": "status"}));
    assert_eq!(status["queues"]["outbox"], 0, "{status}");
}

#[test]
fn newline_or_eof_ends_a_request() {
    let d = daemon("framing");
    // PHP: writes the object, closes its side, never reads.
    let r = d
        .raw(
            json!({"apikey": APIKEY, "action": "status"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert!(r.contains("\"ok\":true"), "{r}");
    // nc: a line, connection kept open.
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{}\n", json!({"apikey": APIKEY, "action": "status"})).as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.ends_with('\n') && out.contains("\"ok\":true"),
        "{out:?}"
    );
}

#[test]
fn oversized_request_is_refused() {
    let d = daemon("oversized");
    let big = format!(
        "{{\"apikey\":\"{APIKEY}\",\"action\":\"send\",\"room\":\"#g\",\"message\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    let reply = d.try_request(&big).expect("a reply even for 2 MiB");
    assert!(error_of(&reply).contains("larger than 1 MiB"));
    assert_still_serving(&d);
}

#[test]
fn slow_client_is_cut_off_after_5_s() {
    let d = daemon("slow");
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"{\"apikey\":").unwrap();
    let t = Instant::now();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let reply: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(error_of(&reply).contains("within 5 s"), "{reply}");
    assert!(
        t.elapsed() >= Duration::from_secs(4),
        "cut off too early: {:?}",
        t.elapsed()
    );
    assert_still_serving(&d);
}

#[test]
fn hundred_idle_connections_do_not_starve_the_socket() {
    let d = daemon("parallel");
    // Another local process holds 100 connections open and says nothing.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", d.port)).unwrap())
        .collect();
    // A request still gets its answer while they are open.
    assert_still_serving(&d);
    // Once idle, the oldest of them were closed to make room, without a reply.
    let mut closed = 0;
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 256];
        if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert!(
        closed >= 100 - 64,
        "only {closed} idle connections were closed over the limit"
    );
    // And 100 real requests in parallel all get an answer (ok or a clear refusal).
    let port = d.port;
    let handles: Vec<_> = (0..100)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.write_all(
                    json!({"apikey": APIKEY, "action": "status"})
                        .to_string()
                        .as_bytes(),
                )
                .unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.contains("\"ok\":true"), "{out:?}");
    }
    support::wait::wait_until(Duration::from_secs(10), "daemon serves again", || {
        d.try_request(&json!({"apikey": APIKEY, "action": "status"}).to_string())
            .is_ok_and(|v| v["ok"] == true)
    });
}

#[test]
fn send_and_ask_are_accepted_and_files_spooled() {
    let d = daemon("accept");
    let snap = d.dir.join("cam snap.jpg");
    std::fs::write(&snap, b"\xff\xd8jpeg").unwrap();
    let opts = format!("file=\"{}\" description=\"my cam\"", snap.display());
    let r = d.request(&json!({"apikey": APIKEY, "action": "send", "room": "#general", "message": "look", "options": opts}));
    assert_eq!(r["ok"], true, "{r}");
    // Jeedom deletes some files right after the command returns.
    std::fs::remove_file(&snap).unwrap();
    let r = d.request(&json!({"apikey": APIKEY, "action": "ask", "room": "@alice", "question": "Call?", "answers": ["Yes", "No"], "ask_id": 42}));
    assert_eq!(r["ok"], true, "{r}");
    let status = d.request(&json!({"apikey": APIKEY, "action": "status"}));
    assert_eq!(status["queues"]["outbox"], 2, "{status}");
    let outbox = &d.state()["outbox"];
    assert_eq!(outbox[0]["description"], "my cam");
    let spooled = outbox[0]["files"][0]["path"].as_str().unwrap();
    assert_eq!(
        std::fs::read(spooled).unwrap(),
        b"\xff\xd8jpeg",
        "spooled copy kept"
    );
    assert_eq!(outbox[1]["ask_id"], "42");
}

#[test]
fn a_burst_of_sends_is_accepted_whole() {
    // Jeedom's PHP never reads the reply: a request refused for too many
    // connections would be lost silently. A scenario looping over 64 sends
    // must see all of them accepted.
    let d = daemon("burst");
    let port = d.port;
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let handle = std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let req = json!({"apikey": APIKEY, "action": "send", "room": "#general", "message": format!("m{i}")});
                s.write_all(req.to_string().as_bytes()).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out
            });
            std::thread::sleep(Duration::from_millis(2));
            handle
        })
        .collect();
    let replies: Vec<String> = clients.into_iter().map(|h| h.join().unwrap()).collect();
    let refused: Vec<&String> = replies
        .iter()
        .filter(|r| !r.contains("\"ok\":true"))
        .collect();
    assert!(
        refused.is_empty(),
        "{} of 64 refused: {:?}",
        refused.len(),
        refused.first()
    );
    let status = d.request(&json!({"apikey": APIKEY, "action": "status"}));
    assert_eq!(status["queues"]["outbox"], 64, "{status}");
}
