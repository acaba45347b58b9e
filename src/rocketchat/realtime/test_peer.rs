//! The scripted server end of the realtime tests: a websocket peer that plays
//! Rocket.Chat's frames, and a capture of the test binary's logs.
use super::*;
use crate::fake_http::{self, HttpServer, Reply, Stream};
use serde_json::{json, Value};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use tungstenite::{Message, WebSocket};

pub(super) const UID: &str = "botUid1";
pub(super) const WAIT: Duration = Duration::from_secs(10);

/// Every log line of the test binary, to check that no secret leaks.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if let Ok(mut lines) = LINES.lock() {
            lines.push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

/// Installs the capturing logger; false when another one was installed
/// first (then the log checks are skipped).
pub(super) fn capture_logs() -> bool {
    static LOGGER: Capture = Capture;
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let ours = log::set_logger(&LOGGER).is_ok();
        if ours {
            log::set_max_level(log::LevelFilter::Debug);
        }
        ours
    })
}

pub(super) fn logged() -> String {
    LINES.lock().map(|l| l.join("\n")).unwrap_or_default()
}

/// The server end of one accepted websocket, plain or TLS.
pub(super) struct Peer {
    pub ws: WebSocket<Stream>,
}

impl Peer {
    pub(super) fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).expect("send");
    }

    /// The next text frame of the client, pongs included.
    pub(super) fn next_raw(&mut self) -> Value {
        loop {
            match self.ws.read().expect("client frame") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
                _ => continue,
            }
        }
    }

    /// The next client frame that is not a pong.
    pub(super) fn next(&mut self) -> Value {
        loop {
            let v = self.next_raw();
            if v["msg"] != "pong" {
                return v;
            }
        }
    }

    /// Plays a server up to `ready`; returns the login parameters received.
    pub(super) fn accept_session(&mut self, token: &str) -> Value {
        self.send(json!({"server_id": "0"}));
        assert_eq!(self.next()["msg"], "connect");
        self.send(json!({"msg": "connected", "session": "S1"}));
        let login = self.next();
        assert_eq!(login["method"], "login");
        self.answer_login(&login, token);
        self.serve_subscriptions(rooms());
        login["params"][0].clone()
    }

    pub(super) fn answer_login(&mut self, login: &Value, token: &str) {
        self.send(json!({"msg": "added", "collection": "users", "id": UID,
                         "fields": {"username": "jeedombot"}}));
        self.send(json!({"msg": "result", "id": login["id"],
            "result": {"id": UID, "token": token, "tokenExpires": {"$date": 0}}}));
    }

    pub(super) fn serve_subscriptions(&mut self, rooms: Value) {
        let mut subs = Vec::new();
        for _ in 0..4 {
            let f = self.next();
            if f["msg"] == "sub" {
                subs.push(f["id"].clone());
            } else {
                assert_eq!(f["method"], "rooms/get");
                self.send(json!({"msg": "result", "id": f["id"], "result": rooms}));
            }
        }
        self.send(json!({"msg": "ready", "subs": subs}));
    }
}

pub(super) fn rooms() -> Value {
    json!([
        {"_id": "GENERAL", "name": "general", "t": "c", "lm": {"$date": 1}},
        {"_id": "dm1", "t": "d", "usernames": ["alice", "jeedombot"]}
    ])
}

pub(super) fn chat(id: &str, ts: i64) -> Value {
    json!({"_id": id, "rid": "GENERAL", "msg": format!("text {id}"), "ts": {"$date": ts},
           "u": {"_id": "u1", "username": "alice"}, "_updatedAt": {"$date": ts}})
}

pub(super) fn live_frame(m: Value) -> Value {
    json!({"msg": "changed", "collection": "stream-room-messages", "id": "id",
           "fields": {"eventName": "__my_messages__",
                      "args": [m, {"roomParticipant": true, "roomType": "c"}]}})
}

/// A server that hands every websocket it accepts to the test; plain HTTP
/// requests (the REST `/api/info`) are closed unanswered. TLS with `tls`.
/// A websocket keeps the server's read timeout (10 s, as `WAIT`).
pub(super) fn server_with(tls: Option<Arc<rustls::ServerConfig>>) -> (HttpServer, Receiver<Peer>) {
    let (tx, rx) = mpsc::channel();
    let handler = move |req: fake_http::Request| {
        if !req.is_websocket() {
            return Reply::Close;
        }
        let tx = tx.clone();
        fake_http::websocket(&req, move |ws| {
            let _ = tx.send(Peer { ws });
        })
    };
    (HttpServer::start_with(0, tls, Arc::new(handler)), rx)
}

/// A plain server, see [`server_with`].
pub(super) fn server() -> (HttpServer, Receiver<Peer>) {
    server_with(None)
}
