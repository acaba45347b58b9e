//! Fake Jeedom callback endpoint (`jeeRocketchat.php`): key test and event batches (contract §3).
use super::http::{HttpServer, Reply, Request, Response};
use super::wait::wait_for;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Path of the plugin's callback script.
pub const CALLBACK_PATH: &str = "/plugins/rocketchat/core/php/jeeRocketchat.php";

/// How the fake answers event POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JeedomMode {
    /// 200 and the events are recorded (when the key is right).
    Ok,
    /// This status, nothing recorded.
    Status(u16),
    /// Hold the connection without answering.
    Hang,
    /// Close the connection without answering.
    Close,
    /// 200 with an empty body, nothing recorded (as when Jeedom rejects the key).
    WrongKey,
    /// A slow Jeedom, once: the batch is recorded (Jeedom acted on it) but
    /// the answer never comes; the mode then returns to `Ok`.
    SlowOnce,
}

#[derive(Default)]
struct State {
    batches: Vec<Vec<Value>>,
    post_attempts: usize,
    test_requests: usize,
    requests: Vec<Request>,
}

struct Shared {
    apikey: String,
    mode: Mutex<JeedomMode>,
    state: Mutex<State>,
}

/// The fake Jeedom, listening on 127.0.0.1.
pub struct FakeJeedom {
    shared: Arc<Shared>,
    server: HttpServer,
}

impl FakeJeedom {
    /// Starts on an OS-chosen port.
    pub fn start(apikey: &str) -> FakeJeedom {
        FakeJeedom::start_on(apikey, 0)
    }

    /// Starts on the given port (0: OS-chosen).
    pub fn start_on(apikey: &str, port: u16) -> FakeJeedom {
        let shared = Arc::new(Shared {
            apikey: apikey.to_string(),
            mode: Mutex::new(JeedomMode::Ok),
            state: Mutex::new(State::default()),
        });
        let s2 = shared.clone();
        let server = HttpServer::start_with(port, None, Arc::new(move |r| handle(&s2, r)));
        FakeJeedom { shared, server }
    }

    /// The callback URL to give to the daemon.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.server.port())
    }

    /// The API key this Jeedom accepts.
    pub fn apikey(&self) -> String {
        self.shared.apikey.clone()
    }

    /// Changes how the next POSTs are answered.
    pub fn set_mode(&self, m: JeedomMode) {
        *self.shared.mode.lock().unwrap() = m;
    }

    /// Closes the listener (connection refused) and the open keep-alive
    /// connections, as a stopped Apache does; or listens again on the same port.
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
        if down {
            self.server.close_connections();
        }
    }

    /// Events of the accepted batches, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.batches().into_iter().flatten().collect()
    }

    /// The accepted batches, in arrival order.
    pub fn batches(&self) -> Vec<Vec<Value>> {
        self.shared.state.lock().unwrap().batches.clone()
    }

    /// Every POST received, refused ones included.
    pub fn post_attempts(&self) -> usize {
        self.shared.state.lock().unwrap().post_attempts
    }

    /// `GET ?test=1` requests received (right key or not).
    pub fn test_requests(&self) -> usize {
        self.shared.state.lock().unwrap().test_requests
    }

    /// Every request received, as parsed (method, path, query, headers, body).
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// Accepted events of one `type`.
    pub fn events_of_type(&self, t: &str) -> Vec<Value> {
        let all = self.events();
        all.into_iter().filter(|e| e["type"] == t).collect()
    }

    /// Waits until `pred` holds on all accepted events; returns them. Panics naming `what`.
    pub fn wait_events(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        wait_for(timeout, what, || {
            let ev = self.events();
            pred(&ev).then_some(ev)
        })
    }

    /// Waits for the first accepted event of type `t` for which `pred` holds; returns it.
    pub fn wait_event(&self, timeout: Duration, t: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let what = format!("a Jeedom event of type {t:?}");
        wait_for(timeout, &what, || {
            self.events_of_type(t).into_iter().find(&pred)
        })
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        *self.shared.state.lock().unwrap() = State::default();
    }
}

fn handle(shared: &Shared, req: Request) -> Reply {
    shared.state.lock().unwrap().requests.push(req.clone());
    if req.path != CALLBACK_PATH {
        return Reply::Send(Response::text(404, "Not Found"));
    }
    let key_ok = req.query.get("apikey").map(String::as_str) == Some(shared.apikey.as_str());
    match req.method.as_str() {
        "GET" if req.query.get("test").map(String::as_str) == Some("1") => {
            shared.state.lock().unwrap().test_requests += 1;
            Reply::Send(Response::text(200, if key_ok { "OK" } else { "" }))
        }
        "POST" => handle_post(shared, &req, key_ok),
        _ => Reply::Send(Response::text(200, "")),
    }
}

fn handle_post(shared: &Shared, req: &Request, key_ok: bool) -> Reply {
    shared.state.lock().unwrap().post_attempts += 1;
    let mode = *shared.mode.lock().unwrap();
    match mode {
        JeedomMode::Status(n) => return Reply::Send(Response::text(n, "")),
        JeedomMode::Hang => return Reply::Hang,
        JeedomMode::Close => return Reply::Close,
        JeedomMode::WrongKey => return Reply::Send(Response::text(200, "")),
        JeedomMode::Ok | JeedomMode::SlowOnce if !key_ok => {
            return Reply::Send(Response::text(200, ""))
        }
        JeedomMode::SlowOnce => *shared.mode.lock().unwrap() = JeedomMode::Ok,
        JeedomMode::Ok => {}
    }
    let is_json = req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"));
    let events = req.json().and_then(|v| v["events"].as_array().cloned());
    match events {
        Some(ev) if is_json => {
            shared.state.lock().unwrap().batches.push(ev);
            match mode {
                JeedomMode::SlowOnce => Reply::Hang,
                _ => Reply::Send(Response::text(200, "")),
            }
        }
        _ => Reply::Send(Response::text(
            400,
            "bad request: expected JSON {\"events\":[...]}",
        )),
    }
}
