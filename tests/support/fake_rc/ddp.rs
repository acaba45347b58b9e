//! DDP over a websocket for the fake Rocket.Chat: handshake, frame loop, pings, stream subscriptions.
use super::methods;
use super::util::{meteor_error, random_id};
use super::world::{Conn, Sub};
use super::Shared;
use crate::support::http::{self, Reply, Request, Stream};
use serde_json::{json, Value};
use std::io::ErrorKind;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// Read timeout of the frame loop: the longest an outgoing frame waits.
const POLL: Duration = Duration::from_millis(5);

/// Per-connection state of the frame loop.
struct ConnLoop {
    cid: u64,
    connected: bool,
    last_ping: Instant,
}

/// Takes over a websocket upgrade request for `/websocket`.
pub fn upgrade(shared: Arc<Shared>, req: &Request) -> Reply {
    http::websocket(req, move |ws| run(&shared, ws))
}

fn run(shared: &Shared, mut ws: WebSocket<Stream>) {
    let _ = ws.get_ref().tcp().set_read_timeout(Some(POLL));
    let Ok(tcp) = ws.get_ref().tcp().try_clone() else {
        return;
    };
    let (tx, rx) = mpsc::channel();
    let cid = shared.next_cid();
    {
        let mut w = shared.world();
        w.conns.insert(
            cid,
            Conn {
                uid: None,
                subs: Vec::new(),
                tx,
                tcp,
            },
        );
        w.log.ddp_total += 1;
        w.send_to(cid, json!({"server_id": "0"}).to_string());
    }
    let mut st = ConnLoop {
        cid,
        connected: false,
        last_ping: Instant::now(),
    };
    while !shared.stopped() && shared.world().conns.contains_key(&cid) {
        match ws.read() {
            Ok(Message::Text(t)) => on_frame(shared, &mut st, t.as_str()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        ping_if_due(shared, &mut st);
        if !flush_out(shared, &mut ws, &rx) {
            break;
        }
    }
    shared.world().conns.remove(&cid);
    let _ = ws.get_ref().tcp().shutdown(std::net::Shutdown::Both);
}

/// Sends the queued frames (drops them while silent). False when the socket is gone.
fn flush_out(shared: &Shared, ws: &mut WebSocket<Stream>, rx: &Receiver<String>) -> bool {
    for frame in rx.try_iter() {
        if shared.silent() {
            continue;
        }
        if ws.send(Message::text(frame)).is_err() {
            return false;
        }
    }
    true
}

fn ping_if_due(shared: &Shared, st: &mut ConnLoop) {
    if st.connected && st.last_ping.elapsed() >= shared.opts.ping_interval {
        st.last_ping = Instant::now();
        shared
            .world()
            .send_to(st.cid, json!({"msg": "ping"}).to_string());
    }
}

fn on_frame(shared: &Shared, st: &mut ConnLoop, text: &str) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    shared.world().log.frames.push(v.clone());
    if shared.silent() {
        return;
    }
    let msg = v["msg"].as_str().unwrap_or_default();
    let mut w = shared.world();
    if !st.connected && msg != "connect" {
        let e = json!({"msg": "error", "reason": "Must connect first", "offendingMessage": v});
        return w.send_to(st.cid, e.to_string());
    }
    let reply = match msg {
        "connect" => Some(connect(st, &v)),
        "ping" if v.get("id").is_some() => Some(json!({"msg": "pong", "id": v["id"]})),
        "ping" => Some(json!({"msg": "pong"})),
        "method" => {
            let name = v["method"].as_str().unwrap_or_default();
            let params = v["params"].as_array().cloned().unwrap_or_default();
            let res = match limited(shared, &mut w, st.cid, "method", name) {
                Some(e) => Err(e),
                None => methods::call(&mut w, st.cid, name, &params, &shared.opts),
            };
            w.send_to(st.cid, result_frame(&v["id"], res).to_string());
            Some(json!({"msg": "updated", "methods": [v["id"]]}))
        }
        "sub" => {
            let name = v["name"].as_str().unwrap_or_default();
            match limited(shared, &mut w, st.cid, "subscription", name) {
                Some(e) => Some(json!({"msg": "nosub", "id": v["id"], "error": e})),
                None => Some(sub(&mut w, st.cid, &v)),
            }
        }
        "unsub" => {
            if let Some(c) = w.conns.get_mut(&st.cid) {
                c.subs.retain(|s| v["id"] != s.id);
            }
            Some(json!({"msg": "nosub", "id": v["id"]}))
        }
        _ => None,
    };
    if let Some(r) = reply {
        w.send_to(st.cid, r.to_string());
    }
}

/// The rate limiter's refusal of a call, when it is on (the default; see ratelimit.rs).
fn limited(
    shared: &Shared,
    w: &mut super::world::World,
    cid: u64,
    kind: &str,
    name: &str,
) -> Option<Value> {
    if !shared.opts.ddp_rate_limit {
        return None;
    }
    let uid = w.conns.get(&cid).and_then(|c| c.uid.clone());
    let refused = w.limiter.check(kind, name, cid, uid.as_deref());
    if refused.is_some() {
        w.log.rate_limited.push(name.to_string());
    }
    refused
}

fn connect(st: &mut ConnLoop, v: &Value) -> Value {
    let supported = v["version"] == "1"
        || v["support"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("1")));
    if !supported {
        return json!({"msg": "failed", "version": "1"});
    }
    st.connected = true;
    st.last_ping = Instant::now();
    json!({"msg": "connected", "session": random_id(17)})
}

fn result_frame(id: &Value, res: Result<Value, Value>) -> Value {
    match res {
        Ok(Value::Null) => json!({"msg": "result", "id": id}),
        Ok(r) => json!({"msg": "result", "id": id, "result": r}),
        Err(e) => json!({"msg": "result", "id": id, "error": e}),
    }
}

/// Handles a `sub`: the three streams the daemon uses, `ready` or `nosub` with an error.
fn sub(w: &mut super::world::World, cid: u64, v: &Value) -> Value {
    let name = v["name"].as_str().unwrap_or_default();
    let event = v["params"][0].as_str().unwrap_or_default().to_string();
    let uid = w.conns.get(&cid).and_then(|c| c.uid.clone());
    let allowed = match name {
        "stream-room-messages" if event == "__my_messages__" => true,
        "stream-room-messages" => uid.is_some_and(|u| w.can_access(&event, &u)),
        "stream-notify-user" => {
            uid.is_some_and(|u| event.split_once('/').is_some_and(|(p, _)| p == u))
        }
        "stream-notify-room" => {
            let rid = event.split_once('/').map(|(r, _)| r).unwrap_or_default();
            uid.is_some_and(|u| w.can_access(rid, &u))
        }
        _ => {
            let e = meteor_error(404, &format!("Subscription '{name}' not found"));
            return json!({"msg": "nosub", "id": v["id"], "error": e});
        }
    };
    if !allowed {
        let e = meteor_error("not-allowed", "Not allowed");
        return json!({"msg": "nosub", "id": v["id"], "error": e});
    }
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let s = Sub {
        id,
        collection: name.into(),
        event,
    };
    if let Some(c) = w.conns.get_mut(&cid) {
        c.subs.push(s);
    }
    json!({"msg": "ready", "subs": [v["id"]]})
}
