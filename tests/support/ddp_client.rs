//! A small blocking DDP client over tungstenite, for driving the fake Rocket.Chat in tests.
use super::fake_rc::util::sha256_hex;
use super::wait::wait_for;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

/// Read timeout of one poll of the socket.
const POLL: Duration = Duration::from_millis(20);
/// Timeout of the handshake and of `call`/`sub`.
const STEP: Duration = Duration::from_secs(5);

/// A DDP client; frames not yet asked for are kept in order.
pub struct DdpClient {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<Value>,
    next_id: u64,
}

/// rustls client configuration trusting only the PEM CA at `ca`.
pub fn client_tls_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("read CA file") {
        roots.add(c.expect("CA certificate")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

fn tcp_of(ws: &WebSocket<MaybeTlsStream<TcpStream>>) -> &TcpStream {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => s,
        MaybeTlsStream::Rustls(s) => &s.sock,
        _ => unreachable!("only plain and rustls streams are used"),
    }
}

impl DdpClient {
    /// Opens the websocket (`ws://` or `wss://` trusting `ca`) without sending `connect`.
    pub fn open(ws_url: &str, ca: Option<&Path>) -> DdpClient {
        let hostport = ws_url.split('/').nth(2).expect("host:port in the URL");
        let addr = hostport.replace("localhost", "127.0.0.1");
        let sock = addr.parse().expect("socket address");
        let tcp = TcpStream::connect_timeout(&sock, STEP).expect("connect to the fake");
        tcp.set_read_timeout(Some(STEP)).expect("timeout");
        let connector = ca.map(|ca| Connector::Rustls(client_tls_config(ca)));
        let (ws, _) = tungstenite::client_tls_with_config(ws_url, tcp, None, connector)
            .expect("websocket handshake");
        tcp_of(&ws).set_read_timeout(Some(POLL)).expect("timeout");
        DdpClient {
            ws,
            pending: VecDeque::new(),
            next_id: 0,
        }
    }

    /// Opens the websocket and does the DDP `connect`; returns the client after `connected`.
    pub fn connect(ws_url: &str, ca: Option<&Path>) -> DdpClient {
        let mut c = DdpClient::open(ws_url, ca);
        c.send(json!({"msg": "connect", "version": "1", "support": ["1"]}));
        c.expect(STEP, |f| f["msg"] == "connected");
        c
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .expect("send a DDP frame");
    }

    /// Reads one frame from the socket within `timeout`.
    fn read_one(&mut self, timeout: Duration) -> Option<Value> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            match self.read_step() {
                Step::Text(t) => return serde_json::from_str(&t).ok(),
                Step::Quiet => {}
                Step::Closed => return None,
            }
        }
        None
    }

    /// One read: a text frame, nothing yet (read timeout, other frames), or the end.
    fn read_step(&mut self) -> Step {
        match self.ws.read() {
            Ok(Message::Text(t)) => Step::Text(t.as_str().to_string()),
            Ok(_) => Step::Quiet,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Step::Quiet
            }
            Err(_) => Step::Closed,
        }
    }

    /// The next frame matching `pred` (others are kept), or `None` after `timeout`.
    pub fn next_matching(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i);
        }
        let start = Instant::now();
        while start.elapsed() < timeout {
            let Some(f) = self.read_one(POLL) else {
                continue;
            };
            if pred(&f) {
                return Some(f);
            }
            self.pending.push_back(f);
        }
        None
    }

    /// Like `next_matching`, panicking on timeout.
    pub fn expect(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        wait_for(timeout, "a matching DDP frame", || {
            self.next_matching(POLL, &pred)
        })
    }

    /// Every frame received so far and not yet taken, plus what arrives within `wait`.
    pub fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let start = Instant::now();
        while start.elapsed() < wait {
            if let Some(f) = self.read_one(POLL) {
                self.pending.push_back(f);
            }
        }
        self.pending.drain(..).collect()
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    /// Calls a method; returns its `result` frame (with `result` or `error`).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.new_id();
        self.send(json!({"msg": "method", "id": id, "method": method, "params": params}));
        self.expect(STEP, |f| f["msg"] == "result" && f["id"] == id.as_str())
    }

    /// Logs in with a username and a password (sent as a SHA-256 digest).
    pub fn login(&mut self, username: &str, password: &str) -> Value {
        let digest = json!({"digest": sha256_hex(password), "algorithm": "sha-256"});
        self.call(
            "login",
            json!([{"user": {"username": username}, "password": digest}]),
        )
    }

    /// Subscribes; returns the `ready` or `nosub` frame.
    pub fn sub(&mut self, name: &str, params: Value) -> Value {
        let id = self.new_id();
        self.send(json!({"msg": "sub", "id": id, "name": name, "params": params}));
        let is_answer = |f: &Value| {
            (f["msg"] == "ready" && f["subs"][0] == id.as_str())
                || (f["msg"] == "nosub" && f["id"] == id.as_str())
        };
        self.expect(STEP, is_answer)
    }

    /// True when the server closed the connection (reads fail).
    pub fn is_closed(&mut self, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            match self.read_step() {
                Step::Text(t) => {
                    let v = serde_json::from_str(&t).unwrap_or(Value::Null);
                    self.pending.push_back(v);
                }
                Step::Quiet => {}
                Step::Closed => return true,
            }
        }
        false
    }
}

/// What one read of the websocket gave.
enum Step {
    Text(String),
    Quiet,
    Closed,
}
