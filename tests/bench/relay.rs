//! The relay's own cost per hop, measured before any traffic because it is counted in the daemon's figures.
use crate::common::{dur, T};
use crate::report::{num, percentiles, Row};
use crate::tap::Tap;
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Instant;

/// Round trips per way of timing.
const ROUNDS: usize = 500;

/// A loopback server that answers `ok` to every chunk and reports the
/// moment it read each.
fn echo_server() -> (u16, Receiver<Instant>) {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let (tx, rx) = channel::<Instant>();
    std::thread::spawn(move || {
        for c in server.incoming() {
            let Ok(mut c) = c else { break };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(k) = c.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    let _ = tx.send(Instant::now());
                    let _ = c.write_all(b"ok");
                }
            });
        }
    });
    (port, rx)
}

/// p50 in ms from writing 300 bytes to port `p` to the server reading them,
/// on a new connection each time (`fresh`) or on one kept open.
fn hop_p50(p: u16, fresh: bool, rx: &Receiver<Instant>) -> f64 {
    let payload = vec![b'x'; 300];
    let mut v = Vec::new();
    let mut keep: Option<TcpStream> = None;
    for _ in 0..ROUNDS {
        if fresh || keep.is_none() {
            let c = TcpStream::connect(("127.0.0.1", p)).expect("connect");
            let _ = c.set_nodelay(true);
            keep = Some(c);
        }
        let c = keep.as_mut().expect("connection");
        let t = Instant::now();
        c.write_all(&payload).expect("write");
        let got = rx.recv_timeout(T).expect("server read");
        let mut ok = [0u8; 2];
        let _ = c.read_exact(&mut ok);
        v.push(dur(t, got));
        if fresh {
            keep = None;
        }
    }
    percentiles(&mut v).0
}

/// What a tap adds to one hop: a loopback server timed directly and through
/// a tap, for a new connection (callback POSTs, REST calls: one connection
/// each) and for a chunk on an open connection (DDP frames).
pub fn calibrate(rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let n = ROUNDS;
    let (port, rx) = echo_server();
    let tap = Tap::start(port, Arc::new(|_, _, _, _| {}));
    let direct_new = hop_p50(port, true, &rx);
    let tap_new = hop_p50(tap.port(), true, &rx);
    let direct_open = hop_p50(port, false, &rx);
    let tap_open = hop_p50(tap.port(), false, &rx);
    let (extra_new, extra_open) = (tap_new - direct_new, tap_open - direct_open);
    println!(
        "\n== relay overhead (p50 of {n}): new connection +{extra_new:.3} ms, open connection +{extra_open:.3} ms"
    );
    rows.push(
        Row::new(
            "relay_overhead_ms",
            "relay overhead per hop, new connection",
            extra_new,
            "ms",
        )
        .note(format!(
            "p50; {} ms on an open connection; counted in the daemon's latencies",
            num(extra_open)
        )),
    );
    details.insert(
        "relay_overhead_ms".into(),
        json!({"new_connection": extra_new, "open_connection": extra_open,
               "direct_new": direct_new, "tap_new": tap_new,
               "direct_open": direct_open, "tap_open": tap_open}),
    );
}
