//! Tests of the realtime loop against a scripted websocket server.
use super::test_peer::*;
use super::*;
use crate::config::parse_url;
use crate::fake_http::HttpServer;
use crate::rocketchat::ddp::sha256_hex;
use serde_json::json;
use std::net::TcpListener;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};

const PASSWORD: &str = "pass-W0rd-never-logged";

struct Harness {
    core: Receiver<CoreMsg>,
    commands: Option<ToRealtime>,
    shutdown: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    peers: Receiver<Peer>,
    _server: HttpServer,
    alive: Arc<AtomicUsize>,
}

impl Harness {
    fn start(heartbeat: Duration, resume: Option<(String, Secret)>) -> Harness {
        let (server, peers) = server();
        let port = server.port();
        let alive = Arc::new(AtomicUsize::new(0));
        let count = alive.clone();
        let cfg = RealtimeConfig {
            server: parse_url(&format!("http://127.0.0.1:{port}")).expect("url"),
            credentials: Credentials::Password {
                user: "jeedombot".into(),
                password: Secret::new(PASSWORD),
            },
            tls: crate::tls::client_config(None).expect("tls"),
            heartbeat,
            resume,
            alive: Arc::new(move || {
                count.fetch_add(1, Ordering::Relaxed);
            }),
            alive_every: None,
        };
        let (to_core, core) = mpsc::channel();
        let shutdown = Arc::new(AtomicBool::new(false));
        let (handle, commands) = spawn(cfg, to_core, shutdown.clone()).expect("spawn");
        Harness {
            core,
            commands: Some(commands),
            shutdown,
            handle: Some(handle),
            peers,
            _server: server,
            alive,
        }
    }

    fn peer(&self) -> Peer {
        self.peers.recv_timeout(WAIT).expect("a connection")
    }

    fn event(&self) -> RtEvent {
        match self.core.recv_timeout(WAIT) {
            Ok(CoreMsg::Realtime(ev)) => ev,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("no event: {e}"),
        }
    }

    /// Expects Connected then Rooms, answers the watermark request; without
    /// watermarks, also the (empty) end of the catch-up.
    fn connected(&self, marks: Vec<(String, i64)>) -> Session {
        let RtEvent::Connected(session) = self.event() else {
            panic!("not connected");
        };
        assert!(matches!(self.event(), RtEvent::Rooms(r) if r.len() == 2));
        let RtEvent::Watermarks { reply } = self.event() else {
            panic!("no watermark request");
        };
        let replay = marks.is_empty();
        reply.send(marks).expect("reply");
        if replay {
            assert!(matches!(self.event(),
                RtEvent::Replayed { messages, rooms } if messages.is_empty() && rooms.is_empty()));
        }
        session
    }

    fn no_event_for(&self, d: Duration) {
        match self.core.recv_timeout(d) {
            Err(RecvTimeoutError::Timeout) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

impl Harness {
    fn command(&self, c: RtCommand) {
        self.commands.as_ref().expect("running").send(c);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // The daemon's stop: the flag, and the wake-up (the core's sender goes).
        self.shutdown.store(true, Ordering::Relaxed);
        drop(self.commands.take());
        if let Some(h) = self.handle.take() {
            let started = Instant::now();
            let _ = h.join();
            assert!(started.elapsed() < Duration::from_secs(2), "slow shutdown");
        }
    }
}

fn message_ids(ev: RtEvent) -> Vec<String> {
    match ev {
        RtEvent::Messages(list) => list.into_iter().map(|m| m.id).collect(),
        RtEvent::Replayed { messages, rooms } => {
            assert_eq!(rooms, ["GENERAL"], "rooms caught up");
            messages.into_iter().map(|m| m.id).collect()
        }
        other => panic!("not messages: {other:?}"),
    }
}

#[test]
fn session_reports_the_user_and_rooms() {
    let h = Harness::start(Duration::from_secs(30), None);
    let mut peer = h.peer();
    let params = peer.accept_session("TOKEN-1");
    assert_eq!(params["user"], json!({"username": "jeedombot"}));
    assert_eq!(params["password"]["digest"], sha256_hex(PASSWORD));
    let session = h.connected(vec![]);
    assert_eq!(session.user_id, UID);
    assert_eq!(session.username, "jeedombot");
    assert_eq!(session.token.expose(), "TOKEN-1");
    assert_eq!(session.server_version, "unknown");
    std::thread::sleep(Duration::from_millis(500));
    assert!(h.alive.load(Ordering::Relaxed) > 0, "alive() is fed");
}

#[test]
fn heartbeat_answers_pings_and_detects_a_dead_link() {
    let h = Harness::start(Duration::from_secs(1), None);
    let mut peer = h.peer();
    peer.accept_session("T");
    h.connected(vec![]);
    peer.send(json!({"msg": "ping", "id": "p1"}));
    assert_eq!(peer.next_raw(), json!({"msg": "pong", "id": "p1"}));
    let quiet = Instant::now();
    assert_eq!(peer.next_raw(), json!({"msg": "ping"}));
    assert!(
        quiet.elapsed() >= Duration::from_millis(800),
        "pinged too early"
    );
    // No answer: the link is declared dead a heartbeat later.
    let RtEvent::Disconnected { error } = h.event() else {
        panic!("not disconnected");
    };
    assert!(error.contains("heartbeat"), "{error}");
    assert!(quiet.elapsed() < Duration::from_secs(4));
    // And the thread reconnects, resuming with the token it got.
    let mut again = h.peer();
    let params = again.accept_session("T2");
    assert_eq!(params, json!({"resume": "T"}));
}

/// The catch-up itself reads REST history: see catchup/tests.rs and the
/// integration tests (tests/reconnect.rs) against the fake server.
#[test]
fn live_messages_flow_and_only_new_ones_from_people() {
    let h = Harness::start(Duration::from_secs(30), None);
    let mut peer = h.peer();
    peer.accept_session("T");
    let now = crate::bridge::clock::now_ms();
    h.connected(vec![]);
    peer.send(live_frame(chat("live2", now)));
    assert_eq!(message_ids(h.event()), ["live2"]);
    // Own messages, edits and system messages never reach the core.
    let mut own = chat("own", now);
    own["u"] = json!({"_id": UID, "username": "jeedombot"});
    let mut edit = chat("live2", now);
    edit["editedAt"] = json!({"$date": now});
    let mut join = chat("j", now);
    join["t"] = json!("uj");
    for m in [own, edit, join] {
        peer.send(live_frame(m));
    }
    h.no_event_for(Duration::from_millis(500));
}

#[test]
fn a_rate_limited_edit_is_sent_again_after_the_time_the_server_said() {
    let h = Harness::start(Duration::from_secs(30), None);
    let mut peer = h.peer();
    peer.accept_session("T");
    h.connected(vec![]);
    let cmd = RtCommand::UpdateMessage {
        message_id: "q1".into(),
        room_id: "GENERAL".into(),
        text: "closed".into(),
    };
    h.command(cmd);
    let call = peer.next();
    assert_eq!(call["method"], "updateMessage");
    let refused = Instant::now();
    peer.send(json!({"msg": "result", "id": call["id"], "error": {
        "isClientSafe": true, "error": "too-many-requests",
        "reason": "Error, too many requests. Please slow down. You must wait 1 seconds before trying again.",
        "details": {"timeToReset": 700}, "errorType": "Meteor.Error"}}));
    let again = peer.next();
    assert!(
        refused.elapsed() >= Duration::from_millis(700),
        "sent again too early"
    );
    assert_eq!(again["method"], "updateMessage");
    assert_eq!(again["params"], call["params"]);
    assert_ne!(again["id"], call["id"]);
    peer.send(json!({"msg": "result", "id": again["id"]}));
    assert!(
        matches!(h.event(), RtEvent::Updated { message_id, error: None } if message_id == "q1")
    );
}

#[test]
fn update_message_and_room_changes() {
    let h = Harness::start(Duration::from_secs(30), None);
    let mut peer = h.peer();
    peer.accept_session("T");
    h.connected(vec![]);
    let cmd = RtCommand::UpdateMessage {
        message_id: "q1".into(),
        room_id: "GENERAL".into(),
        text: "answered by alice".into(),
    };
    h.command(cmd);
    let call = peer.next();
    assert_eq!(call["method"], "updateMessage");
    let expected =
        json!([{"_id": "q1", "rid": "GENERAL", "msg": "answered by alice", "attachments": []}]);
    assert_eq!(call["params"], expected);
    peer.send(json!({"msg": "result", "id": call["id"],
        "error": {"error": "error-action-not-allowed", "reason": "Not allowed"}}));
    assert!(
        matches!(h.event(), RtEvent::Updated { message_id, error: Some(e) }
        if message_id == "q1" && e == "Not allowed")
    );

    peer.send(
        json!({"msg": "changed", "collection": "stream-notify-user", "id": "id",
        "fields": {"eventName": format!("{UID}/subscriptions-changed"),
                   "args": ["inserted", {"_id": "s9", "rid": "dm2", "t": "d", "name": "bob"}]}}),
    );
    let call = peer.next();
    assert_eq!(call["method"], "rooms/get");
    let mut list = rooms();
    if let Some(l) = list.as_array_mut() {
        l.push(json!({"_id": "dm2", "t": "d", "usernames": ["bob", "jeedombot"]}));
    }
    peer.send(json!({"msg": "result", "id": call["id"], "result": list}));
    let RtEvent::Rooms(rooms) = h.event() else {
        panic!("no rooms");
    };
    assert!(rooms.iter().any(|r| r.id == "dm2" && r.name == "bob"));
    // A new last message in a known room is not a change of the list.
    peer.send(json!({"msg": "changed", "collection": "stream-notify-user", "id": "id",
        "fields": {"eventName": format!("{UID}/rooms-changed"),
                   "args": ["updated", {"_id": "GENERAL", "name": "general", "t": "c", "lm": {"$date": 9}}]}}));
    h.no_event_for(Duration::from_millis(500));
}

#[test]
fn refused_resume_falls_back_to_the_password_and_relogin_drops_it() {
    let logs = capture_logs();
    let h = Harness::start(
        Duration::from_secs(30),
        Some((UID.into(), Secret::new("OLD-TOKEN-x1"))),
    );
    let mut peer = h.peer();
    peer.send(json!({"server_id": "0"}));
    assert_eq!(peer.next()["msg"], "connect");
    peer.send(json!({"msg": "connected", "session": "S"}));
    let first = peer.next();
    assert_eq!(first["params"][0], json!({"resume": "OLD-TOKEN-x1"}));
    peer.send(
        json!({"msg": "result", "id": first["id"], "error": {"error": 403,
        "reason": "You've been logged out by the server. Please log in again."}}),
    );
    let second = peer.next();
    assert!(second["params"][0]["password"].is_object());
    peer.answer_login(&second, "NEW-TOKEN-y2");
    peer.serve_subscriptions(rooms());
    let session = h.connected(vec![]);
    assert_eq!(session.token.expose(), "NEW-TOKEN-y2");
    h.command(RtCommand::Relogin);
    assert!(matches!(h.event(), RtEvent::Disconnected { .. }));
    let mut again = h.peer();
    let params = again.accept_session("NEW-TOKEN-z3");
    assert!(params["password"].is_object(), "{params}");
    h.connected(vec![]);
    if logs {
        let all = logged();
        for secret in [
            PASSWORD,
            &sha256_hex(PASSWORD),
            "OLD-TOKEN-x1",
            "NEW-TOKEN-y2",
            "NEW-TOKEN-z3",
        ] {
            assert!(!all.contains(secret), "{secret} was logged");
        }
        assert!(all.contains("\"login\""), "debug frames were captured");
    }
}

#[test]
fn wrong_password_is_reported_and_retried() {
    let logs = capture_logs();
    let h = Harness::start(Duration::from_secs(30), None);
    for _ in 0..2 {
        let mut peer = h.peer();
        peer.send(json!({"server_id": "0"}));
        assert_eq!(peer.next()["msg"], "connect");
        peer.send(json!({"msg": "connected", "session": "S"}));
        let login = peer.next();
        peer.send(
            json!({"msg": "result", "id": login["id"], "error": {"isClientSafe": true,
            "error": 403, "reason": "Incorrect password", "message": "Incorrect password [403]",
            "errorType": "Meteor.Error"}}),
        );
        let RtEvent::Disconnected { error } = h.event() else {
            panic!("not disconnected");
        };
        assert_eq!(error, "login failed: incorrect password");
    }
    if logs {
        let all = logged();
        assert!(
            all.contains("ERROR cannot connect to Rocket.Chat: login failed: incorrect password")
        );
        assert!(!all.contains(PASSWORD) && !all.contains(&sha256_hex(PASSWORD)));
    }
}

#[test]
fn totp_and_unreachable_servers_have_clear_errors() {
    let e = session::login_error(&crate::rocketchat::ddp::DdpError {
        error: json!("totp-required"),
        reason: Some("TOTP Required".into()),
        ..Default::default()
    });
    assert!(matches!(e, Error::TotpRequired { method } if method == "totp"));
    let e = session::login_error(&crate::rocketchat::ddp::DdpError {
        error: json!(403),
        reason: Some("User not found".into()),
        ..Default::default()
    });
    assert!(e.to_string().contains("incorrect password"), "{e}");

    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let cfg = RealtimeConfig {
        server: parse_url(&format!("http://127.0.0.1:{port}")).expect("url"),
        credentials: Credentials::Password {
            user: "u".into(),
            password: Secret::new("p"),
        },
        tls: crate::tls::client_config(None).expect("tls"),
        heartbeat: Duration::from_secs(30),
        resume: None,
        alive: Arc::new(|| {}),
        alive_every: None,
    };
    let (step, e) = probe(&cfg, Duration::from_secs(2)).expect_err("refused");
    assert_eq!(step, Progress::Connect);
    let text = e.chain().to_string();
    assert!(text.contains("connection refused"), "{text}");
    let mut bad_dns = cfg.clone();
    bad_dns.server = parse_url("http://no-such-host.invalid").expect("url");
    let (_, e) = probe(&bad_dns, Duration::from_secs(2)).expect_err("dns");
    assert!(
        e.to_string()
            .contains("cannot resolve no-such-host.invalid"),
        "{e}"
    );
}

#[test]
fn tls_failure_names_the_certificate_problem() {
    // A plain TCP server that answers the TLS hello with garbage is a TLS
    // failure too, but not a certificate one; a real certificate check needs
    // a TLS server, which the fake Rocket.Chat provides. Here: the mapping.
    let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
    let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
    let e = link::ws_error(tungstenite::Error::Io(io));
    let text = e.chain().to_string();
    assert!(
        text.contains("--ca-file") && text.contains("UnknownIssuer"),
        "{text}"
    );
}

/// The rate limiter's refusal while setting up a session (a login, a
/// subscription, `rooms/get`) is waited out and the request made again.
#[test]
fn rate_limited_session_setup_is_made_again() {
    let h = Harness::start(Duration::from_secs(30), None);
    let mut peer = h.peer();
    peer.send(json!({"server_id": "0"}));
    assert_eq!(peer.next()["msg"], "connect");
    peer.send(json!({"msg": "connected", "session": "S1"}));
    let limited = json!({"isClientSafe": true, "error": "too-many-requests",
        "reason": "Error, too many requests.", "details": {"timeToReset": 300},
        "errorType": "Meteor.Error"});
    let login = peer.next();
    peer.send(json!({"msg": "result", "id": login["id"], "error": limited}));
    let login2 = peer.next();
    assert_eq!(login2["method"], "login");
    assert_eq!(login2["params"], login["params"]);
    peer.answer_login(&login2, "T");
    let (mut subs, mut refused_once) = (Vec::new(), false);
    let mut rooms_answered = false;
    while subs.len() < 3 || !rooms_answered {
        let f = peer.next();
        match (f["msg"].as_str(), refused_once) {
            (Some("sub"), false) => {
                refused_once = true;
                peer.send(json!({"msg": "nosub", "id": f["id"], "error": limited}));
            }
            (Some("sub"), true) => subs.push(f["id"].clone()),
            _ => {
                assert_eq!(f["method"], "rooms/get");
                peer.send(json!({"msg": "result", "id": f["id"], "result": rooms()}));
                rooms_answered = true;
            }
        }
    }
    peer.send(json!({"msg": "ready", "subs": subs}));
    let RtEvent::Connected(session) = h.event() else {
        panic!("not connected");
    };
    assert_eq!(session.token.expose(), "T");
}

#[test]
fn only_documents_that_name_the_room_replace_asking_for_the_list() {
    use live::complete;
    assert!(complete(&json!({"_id": "R", "t": "c", "name": "general"})));
    assert!(complete(
        &json!({"_id": "R", "t": "p", "name": "x1", "fname": "Garage", "prid": "G"})
    ));
    assert!(
        !complete(&json!({"_id": "R", "t": "p", "name": "x1", "prid": "G"})),
        "no title"
    );
    assert!(complete(
        &json!({"_id": "D", "t": "d", "usernames": ["alice", "jeedombot"]})
    ));
    assert!(
        !complete(&json!({"_id": "s", "rid": "D", "t": "d", "name": "alice"})),
        "a DM subscription"
    );
    assert!(
        !complete(&json!({"_id": "R", "lm": {"$date": 1}})),
        "a partial update"
    );
    assert!(!complete(&json!({"_id": "L", "t": "l", "name": "guest"})));
}
