//! Tests of the send worker against a tiny scripted HTTP responder on 127.0.0.1.
use super::*;
use crate::fake_http::{HttpServer, Reply as Answer};
use crate::model::{OutKind, Secret, Session, SpooledFile};
use crate::test_dir::TestDir;
use responder::{Reply, Req, Responder};
use serde_json::json;
use std::sync::mpsc::channel;
use std::time::{SystemTime, UNIX_EPOCH};

fn ok(body: Value) -> Reply {
    (200, vec![], body.to_string())
}

/// Answers `chat.sendMessage` with the message as sent, like the server.
fn echo_message(req: &Req) -> Reply {
    ok(json!({"message": req.json()["message"], "success": true}))
}

fn session(version: &str) -> Session {
    Session {
        user_id: "U1".into(),
        username: "jeedombot".into(),
        token: Secret::new("T0k3n-secret"),
        server_version: version.into(),
    }
}

fn rooms() -> Vec<Room> {
    vec![Room {
        id: "GENERAL".into(),
        name: "general".into(),
        kind: RoomKind::Channel,
        users: vec![],
        last_message_ms: None,
    }]
}

fn item(key: &str, room: &str, text: &str) -> Outgoing {
    Outgoing {
        key: key.into(),
        kind: OutKind::Send,
        room: room.into(),
        text: text.into(),
        mention: None,
        files: vec![],
        description: None,
        thread: None,
        reference: Some("r1".into()),
        accepted_ms: 0,
        steps_done: 0,
    }
}

/// Spooled files in a directory of their own, removed with the returned guard.
fn spool(tag: &str, names: &[&str]) -> (Vec<SpooledFile>, TestDir) {
    let dir = TestDir::new(&format!("sender-{tag}"));
    let files = names
        .iter()
        .map(|n| {
            let path = dir.join(n);
            std::fs::write(&path, format!("content of {n}")).unwrap();
            SpooledFile {
                path: path.display().to_string(),
                name: n.to_string(),
                size: None,
            }
        })
        .collect();
    (files, dir)
}

/// Runs one job through a fresh worker; returns its outcomes up to the last.
fn run(server: &Responder, version: &str, item: Outgoing) -> Vec<SendOutcome> {
    let url = crate::config::parse_url(&server.base).unwrap();
    let tls = crate::tls::client_config(None).unwrap();
    let rest = Rest::new(&url, tls).unwrap();
    let (jobs_tx, jobs_rx) = channel();
    let (core_tx, core_rx) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn(rest, jobs_rx, core_tx, stop).unwrap();
    let job = SendJob {
        item,
        session: session(version),
        rooms: rooms(),
    };
    jobs_tx.send(job).unwrap();
    let mut got = Vec::new();
    while let Ok(CoreMsg::Send(o)) = core_rx.recv_timeout(Duration::from_secs(20)) {
        let last = !matches!(o, SendOutcome::Progress { .. });
        got.push(o);
        if last {
            break;
        }
    }
    drop(jobs_tx);
    handle.join().unwrap();
    got
}

fn final_outcome(got: &[SendOutcome]) -> &SendOutcome {
    got.last().expect("no outcome")
}

#[test]
fn text_is_posted_once_with_a_deterministic_id_and_credentials() {
    let server = Responder::start(|r| match r.path.as_str() {
        "/api/v1/chat.sendMessage" => echo_message(r),
        _ => (404, vec![], "{}".into()),
    });
    let got = run(&server, "7.4.1", item("k1", "#general", "hello"));
    let id = plan::message_id("k1", 0);
    assert!(matches!(&got[0], SendOutcome::Progress { key, steps_done: 1 } if key == "k1"));
    match final_outcome(&got) {
        SendOutcome::Sent {
            key,
            room,
            message_id,
        } => assert_eq!(
            (key.as_str(), room.id.as_str(), message_id),
            ("k1", "GENERAL", &id)
        ),
        other => panic!("{other:?}"),
    }
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let msg = &reqs[0].json()["message"];
    assert_eq!(msg, &json!({"_id": id, "rid": "GENERAL", "msg": "hello"}));
    assert_eq!(reqs[0].header("X-User-Id"), Some("U1"));
    assert_eq!(reqs[0].header("X-Auth-Token"), Some("T0k3n-secret"));
}

#[test]
fn rate_limit_waits_until_the_reset_time() {
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 20_000;
    let server = Responder::start(move |_| {
        let body = json!({"success": false, "error": "Error, too many requests. [error-too-many-requests]"});
        (
            429,
            vec![("X-RateLimit-Reset", reset.to_string())],
            body.to_string(),
        )
    });
    let got = run(&server, "7.4.1", item("k3", "#general", "x"));
    match final_outcome(&got) {
        SendOutcome::Retry { key, after, error } => {
            assert_eq!(key, "k3");
            assert!(*after > Duration::from_secs(15) && *after <= Duration::from_secs(20));
            assert!(error.contains("429"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_and_transport_errors_are_retried_with_backoff() {
    let server = Responder::start(|_| (503, vec![], String::new()));
    let got = run(&server, "7.4.1", item("k4", "#general", "x"));
    assert!(
        matches!(final_outcome(&got), SendOutcome::Retry { after, .. } if *after <= Duration::from_secs(1)),
        "{got:?}"
    );
    // Nothing listens on this port any more.
    let gone = Responder::gone();
    let got = run(&gone, "7.4.1", item("k5", "#general", "x"));
    assert!(
        matches!(final_outcome(&got), SendOutcome::Retry { .. }),
        "{got:?}"
    );
}

#[test]
fn refused_token_asks_for_a_new_login() {
    let server = Responder::start(|_| {
        let body = json!({"status": "error", "message": "You must be logged in to do this."});
        (401, vec![], body.to_string())
    });
    let got = run(&server, "7.4.1", item("k6", "#general", "x"));
    assert!(matches!(final_outcome(&got), SendOutcome::Unauthorized { key } if key == "k6"));
}

#[test]
fn client_errors_fail_at_once_with_the_server_reason_and_no_secret() {
    let server = Responder::start(|_| {
        let body = json!({"success": false, "error": "User does not have the permissions required for this action [error-unauthorized]"});
        (403, vec![], body.to_string())
    });
    let got = run(&server, "7.4.1", item("k7", "#general", "x"));
    match final_outcome(&got) {
        SendOutcome::Failed { error, .. } => {
            assert!(error.contains("[error-unauthorized]"), "{error}");
            assert!(!error.contains("T0k3n"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_room_fails_without_calling_the_server() {
    let server = Responder::start(echo_message);
    let got = run(&server, "7.4.1", item("k8", "#nowhere", "x"));
    assert_eq!(got.len(), 1);
    assert!(
        matches!(&got[0], SendOutcome::Failed { error, .. } if error == "unknown room #nowhere: the bot is not a member")
    );
    assert!(server.seen.lock().unwrap().is_empty());
}

#[test]
fn direct_message_opens_the_room_first() {
    let server = Responder::start(|r| match r.path.as_str() {
        "/api/v1/im.create" => ok(json!({"room": {"t": "d", "rid": "U1U2"}, "success": true})),
        "/api/v1/chat.sendMessage" => echo_message(r),
        _ => (404, vec![], "{}".into()),
    });
    let got = run(&server, "7.4.1", item("k9", "@bob", "hi bob"));
    let reqs = server.requests();
    assert_eq!(reqs[0].json(), json!({"username": "bob"}));
    assert_eq!(reqs[1].json()["message"]["rid"], "U1U2");
    match final_outcome(&got) {
        SendOutcome::Sent { room, .. } => {
            assert_eq!((room.id.as_str(), room.kind), ("U1U2", RoomKind::Direct));
            assert_eq!(room.users, ["bob", "jeedombot"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ask_posts_one_question_with_buttons() {
    let server = Responder::start(echo_message);
    let mut it = item("k10", "#general", "Open the gate?");
    it.kind = OutKind::Ask {
        ask_id: "7".into(),
        answers: vec!["Yes".into(), "No".into()],
        timeout_s: 60,
        answers_per_line: None,
    };
    it.thread = Some("ROOT".into());
    let got = run(&server, "7.4.1", it);
    let msg = &server.requests()[0].json()["message"];
    assert_eq!(msg["msg"], "Open the gate?\n[Yes] [No]");
    assert_eq!(msg["tmid"], "ROOT");
    assert_eq!(msg["attachments"][0]["actions"][1]["msg"], "No");
    assert!(
        matches!(final_outcome(&got), SendOutcome::Sent { message_id, .. } if *message_id == plan::message_id("k10", 0))
    );
}

#[test]
fn files_resume_after_done_steps_via_media_and_confirm() {
    let server = Responder::start(|r| {
        if r.path.starts_with("/api/v1/rooms.media/") {
            let n = r.seen_files();
            ok(json!({"file": {"_id": format!("F{n}")}, "success": true}))
        } else if r.path.starts_with("/api/v1/rooms.mediaConfirm/") {
            ok(json!({"message": {"_id": "M1"}, "success": true}))
        } else {
            (404, vec![], "{}".into())
        }
    });
    let mut it = item("k11", "#general", "snapshot");
    let (files, _dir) = spool("resume", &["a.jpg", "b.png"]);
    it.files = files;
    it.description = Some("my snapshot".into());
    it.steps_done = 1;
    let got = run(&server, "7.4.1", it.clone());
    assert_eq!(
        server.paths(),
        [
            "/api/v1/rooms.media/GENERAL",
            "/api/v1/rooms.mediaConfirm/GENERAL/Fa",
            "/api/v1/rooms.media/GENERAL",
            "/api/v1/rooms.mediaConfirm/GENERAL/Fb",
        ]
    );
    let reqs = server.requests();
    let form = String::from_utf8_lossy(&reqs[0].body);
    assert!(
        form.contains("filename=\"a.jpg\"\r\nContent-Type: image/jpeg"),
        "{form}"
    );
    assert!(form.contains("content of a.jpg"));
    assert_eq!(reqs[1].json(), json!({"description": "my snapshot"}));
    let steps: Vec<u32> = got
        .iter()
        .filter_map(|o| match o {
            SendOutcome::Progress { steps_done, .. } => Some(*steps_done),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [2, 3]);
    // The text step was done before: its id is still the one reported.
    assert!(
        matches!(final_outcome(&got), SendOutcome::Sent { message_id, .. } if *message_id == plan::message_id("k11", 0))
    );
    assert!(it
        .files
        .iter()
        .all(|f| !std::path::Path::new(&f.path).exists()));
}

#[test]
fn upload_falls_back_to_the_other_api_on_404() {
    let server = Responder::start(|r| {
        if r.path.starts_with("/api/v1/rooms.upload/") {
            ok(json!({"message": {"_id": "M9"}, "success": true}))
        } else {
            (
                404,
                vec![],
                json!({"success": false, "error": "Not found"}).to_string(),
            )
        }
    });
    let mut it = item("k12", "#general", "");
    let (files, _dir) = spool("fallback", &["c.txt"]);
    it.files = files;
    it.description = Some("log".into());
    let got = run(&server, "7.4.1", it);
    assert_eq!(
        server.paths(),
        [
            "/api/v1/rooms.media/GENERAL",
            "/api/v1/rooms.upload/GENERAL"
        ]
    );
    let form = String::from_utf8_lossy(&server.requests()[1].body).to_string();
    assert!(
        form.contains("name=\"description\"\r\n\r\nlog\r\n"),
        "{form}"
    );
    assert!(
        matches!(final_outcome(&got), SendOutcome::Sent { message_id, .. } if message_id == "M9")
    );
}

#[test]
fn old_servers_upload_with_rooms_upload() {
    let server = Responder::start(|_| ok(json!({"success": true})));
    let mut it = item("k13", "#general", "");
    let (files, _dir) = spool("old", &["d.pdf"]);
    it.files = files;
    let got = run(&server, "6.2.0", it);
    assert_eq!(server.paths(), ["/api/v1/rooms.upload/GENERAL"]);
    assert!(matches!(final_outcome(&got), SendOutcome::Sent { .. }));
}

#[test]
fn too_large_file_fails_naming_it_and_drops_the_spool() {
    let server = Responder::start(|r| match r.path.as_str() {
        "/api/v1/chat.sendMessage" => echo_message(r),
        _ => (413, vec![], "<html>too large</html>".into()),
    });
    let mut it = item("k14", "#general", "video");
    let (files, _dir) = spool("large", &["e.mp4"]);
    it.files = files;
    let got = run(&server, "7.4.1", it.clone());
    assert!(matches!(
        &got[0],
        SendOutcome::Progress { steps_done: 1, .. }
    ));
    match final_outcome(&got) {
        SendOutcome::Failed { error, .. } => {
            assert!(error.starts_with("e.mp4: rooms.media: HTTP 413"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!std::path::Path::new(&it.files[0].path).exists());
}

#[test]
fn long_text_goes_in_parts_within_the_server_limit() {
    let server = Responder::start(|r| {
        if r.path.contains("settings.public") {
            ok(
                json!({"settings": [{"_id": "Message_MaxAllowedSize", "value": 20}], "success": true}),
            )
        } else {
            echo_message(r)
        }
    });
    let got = run(
        &server,
        "7.4.1",
        item("k15", "#general", "first line here\nsecond line here"),
    );
    let texts: Vec<Value> = server
        .requests()
        .iter()
        .map(|r| r.json()["message"]["msg"].clone())
        .collect();
    assert_eq!(texts, [json!("first line here"), json!("second line here")]);
    let ids: Vec<Value> = server
        .requests()
        .iter()
        .map(|r| r.json()["message"]["_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            json!(plan::message_id("k15", 0)),
            json!(plan::message_id("k15", 1))
        ]
    );
    assert!(matches!(final_outcome(&got), SendOutcome::Sent { .. }));
}

#[test]
fn worker_stops_on_shutdown() {
    let url = crate::config::parse_url("http://127.0.0.1:9").unwrap();
    let rest = Rest::new(&url, crate::tls::client_config(None).unwrap()).unwrap();
    let (jobs_tx, jobs_rx) = channel::<SendJob>();
    let (core_tx, _core_rx) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn(rest, jobs_rx, core_tx, stop.clone()).unwrap();
    assert_eq!(handle.thread().name(), Some("sender"));
    // The daemon's stop: the flag, and the wake-up (the core's sender goes).
    stop.store(true, Ordering::SeqCst);
    drop(jobs_tx);
    handle.join().unwrap();
}

#[test]
fn a_job_left_in_the_channel_is_not_started_once_stopping() {
    let url = crate::config::parse_url("http://127.0.0.1:9").unwrap();
    let rest = Rest::new(&url, crate::tls::client_config(None).unwrap()).unwrap();
    let (jobs_tx, jobs_rx) = channel();
    let (core_tx, core_rx) = channel();
    let stop = Arc::new(AtomicBool::new(true));
    let job = SendJob {
        item: item("k17", "#general", "x"),
        session: session("7.4.1"),
        rooms: rooms(),
    };
    jobs_tx.send(job).unwrap();
    spawn(rest, jobs_rx, core_tx, stop).unwrap().join().unwrap();
    assert!(
        core_rx.try_recv().is_err(),
        "no outcome for a job not started"
    );
}

#[test]
fn stop_aborts_a_call_in_flight_without_an_outcome() {
    // A server that reads the request and never answers.
    let (arrived_tx, arrived) = channel();
    let server = HttpServer::start(move |_| {
        let _ = arrived_tx.send(());
        Answer::Hang
    });
    let url = crate::config::parse_url(&format!("http://127.0.0.1:{}", server.port())).unwrap();
    let rest = Rest::new(&url, crate::tls::client_config(None).unwrap()).unwrap();
    let (jobs_tx, jobs_rx) = channel();
    let (core_tx, core_rx) = channel();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn(rest.clone(), jobs_rx, core_tx, stop.clone()).unwrap();
    let job = SendJob {
        item: item("k16", "#general", "x"),
        session: session("7.4.1"),
        rooms: rooms(),
    };
    jobs_tx.send(job).unwrap();
    arrived.recv_timeout(Duration::from_secs(10)).unwrap();
    let started = std::time::Instant::now();
    stop.store(true, Ordering::SeqCst);
    rest.shutdown();
    drop(jobs_tx);
    handle.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(core_rx.try_recv().is_err(), "no outcome for a stopped job");
}

mod dup;
mod responder;
