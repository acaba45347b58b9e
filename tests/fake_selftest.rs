//! Self tests of the test doubles, driven over real sockets.
use crate::support;
use std::time::Duration;
use support::http::{HttpServer, Reply, Response};

/// A ureq agent that returns every status as a response.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

#[test]
fn http_server_parses_and_answers() {
    let srv = HttpServer::start(|req| {
        let body = format!(
            "{} {} q={:?} h={:?} b={}",
            req.method,
            req.path,
            req.query.get("a"),
            req.header("x-test"),
            String::from_utf8_lossy(&req.body)
        );
        Reply::Send(Response::text(201, &body))
    });
    let url = format!("http://127.0.0.1:{}/p%20x?a=b%2Bc+d", srv.port());
    let mut r = agent()
        .post(&url)
        .header("X-Test", "yes")
        .send("hello")
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(text, "POST /p x q=Some(\"b+c d\") h=Some(\"yes\") b=hello");
}

#[test]
fn http_server_close_and_down() {
    let srv = HttpServer::start(|_| Reply::Close);
    let url = format!("http://127.0.0.1:{}/", srv.port());
    assert!(agent().get(&url).call().is_err());
    srv.set_down(true);
    assert!(std::net::TcpStream::connect(("127.0.0.1", srv.port())).is_err());
    srv.set_down(false);
    assert!(std::net::TcpStream::connect(("127.0.0.1", srv.port())).is_ok());
}

/// As Node.js and Apache: the connection stays open for the next request,
/// unless the client asked `Connection: close`, and the idle timeout closes it.
#[test]
fn http_server_keeps_the_connection_alive_until_idle() {
    use std::io::{Read, Write};
    let srv = HttpServer::start(|req| Reply::Send(Response::text(200, &req.path)));
    let mut c = std::net::TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let read_answer = |c: &mut std::net::TcpStream, want: &str| {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !String::from_utf8_lossy(&got).ends_with(want) {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    c.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let first = read_answer(&mut c, "/one");
    assert!(first.contains("Keep-Alive: timeout=5"), "{first}");
    c.write_all(b"GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let second = read_answer(&mut c, "/two");
    assert!(second.contains("Connection: close"), "{second}");
    assert_eq!(c.read(&mut [0u8; 16]).unwrap(), 0, "closed after close");
    // An idle connection is closed by the server after its timeout.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    idle.write_all(b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    read_answer(&mut idle, "/three");
    let start = std::time::Instant::now();
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap(), 0, "closed when idle");
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "closed before the idle timeout"
    );
}

#[test]
fn wait_until_panics_with_message() {
    let r = std::panic::catch_unwind(|| {
        support::wait::wait_until(Duration::from_millis(30), "the moon", || false)
    });
    let err = r.unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("the moon"), "{msg}");
}

mod jeedom {
    use super::agent;
    use serde_json::json;
    use std::time::{Duration, Instant};
    use support::fake_jeedom::{FakeJeedom, JeedomMode};

    use crate::support;

    fn post(url: &str, key: &str, body: &serde_json::Value) -> Result<(u16, String), ureq::Error> {
        let mut r = agent()
            .post(&format!("{url}?apikey={key}"))
            .header("Content-Type", "application/json")
            .send(body.to_string())?;
        Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
    }

    #[test]
    fn key_test_and_batches() {
        let j = FakeJeedom::start("k3y");
        let get = |k: &str| {
            let u = format!("{}?test=1&apikey={k}", j.url());
            agent()
                .get(&u)
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap()
        };
        assert_eq!(get("k3y"), "OK");
        assert_eq!(get("bad"), "");
        assert_eq!(j.test_requests(), 2);
        let b = json!({"events":[{"type":"status"},{"type":"message","id":"1"}]});
        assert_eq!(post(&j.url(), "k3y", &b).unwrap().0, 200);
        assert_eq!(post(&j.url(), "bad", &b).unwrap(), (200, String::new()));
        assert_eq!(j.batches().len(), 1);
        assert_eq!(j.events_of_type("message")[0]["id"], "1");
        let ev = j.wait_events(Duration::from_secs(1), "2 events", |e| e.len() == 2);
        assert_eq!(ev[0]["type"], "status");
        assert_eq!(j.post_attempts(), 2);
    }

    #[test]
    fn refusing_modes() {
        let j = FakeJeedom::start("k");
        let b = json!({"events":[{"type":"status"}]});
        j.set_mode(JeedomMode::Status(503));
        assert_eq!(post(&j.url(), "k", &b).unwrap().0, 503);
        j.set_mode(JeedomMode::WrongKey);
        assert_eq!(post(&j.url(), "k", &b).unwrap(), (200, String::new()));
        j.set_mode(JeedomMode::Close);
        assert!(post(&j.url(), "k", &b).is_err());
        j.set_mode(JeedomMode::Hang);
        let t = Instant::now();
        let a: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(300)))
            .build()
            .into();
        let u = format!("{}?apikey=k", j.url());
        assert!(a.post(&u).send(b.to_string()).is_err());
        assert!(t.elapsed() >= Duration::from_millis(250));
        assert!(j.events().is_empty());
        assert_eq!(j.post_attempts(), 4);
        j.set_mode(JeedomMode::Ok);
        assert_eq!(post(&j.url(), "k", &b).unwrap().0, 200);
        assert_eq!(j.events().len(), 1);
    }
}

mod rc_common;
mod rc_ddp;
mod rc_limits;
mod rc_rest;

#[test]
fn http_server_reads_chunked_and_expect_continue() {
    use std::io::{Read, Write};
    let srv = HttpServer::start(|req| {
        Reply::Send(Response::text(200, &String::from_utf8_lossy(&req.body)))
    });
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // `Connection: close`: the answer is read to its end, and a kept-alive
    // connection would only end after the server's idle time (5 s), as long
    // as this read's timeout.
    let head = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                Expect: 100-continue\r\nConnection: close\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nhello world"),
        "{out}"
    );
}

/// `settings.public` answers like the real route of each version: 7.x
/// filters on `_id` and refuses a parameter it does not know, 6.x ignores
/// `_id`; both page by `count` (50 by default, 100 at most) and `offset`.
#[test]
fn fake_settings_public_filters_and_pages_by_version() {
    use support::fake_rc::{FakeRcOptions, FakeRocketChat};
    let get = |rc: &FakeRocketChat, params: &str| -> (u16, serde_json::Value) {
        let url = format!("{}/api/v1/settings.public?{params}", rc.url());
        let mut r = agent().get(&url).call().unwrap();
        let body = r.body_mut().read_to_string().unwrap();
        (r.status().as_u16(), serde_json::from_str(&body).unwrap())
    };
    let size = |a: &serde_json::Value| {
        let s = a["settings"].as_array().unwrap();
        s.iter()
            .find(|s| s["_id"] == "Message_MaxAllowedSize")
            .map(|s| s["value"].clone())
    };
    let new = FakeRocketChat::start(FakeRcOptions::default());
    let (status, a) = get(&new, "_id=Message_MaxAllowedSize,Site_Name");
    assert_eq!((status, a["total"].as_u64()), (200, Some(2)), "{a}");
    assert_eq!(size(&a), Some(serde_json::json!(5000)));
    assert_eq!(get(&new, "fields=%7B%7D").0, 400);
    let old = FakeRocketChat::start(FakeRcOptions {
        version: "6.10.0".into(),
        ..Default::default()
    });
    for i in 0..40 {
        let id = format!("Accounts_OAuth_Custom-P{i}-url");
        old.set_setting(&id, serde_json::json!(""));
    }
    let (_, first) = get(&old, "_id=Message_MaxAllowedSize");
    assert_eq!(first["count"], 50, "one default page of all");
    assert_eq!(size(&first), None, "past the first page");
    let (_, big) = get(&old, "count=500");
    assert_eq!(big["count"], 100, "count is capped");
    let (_, rest) = get(&old, "count=100&offset=100");
    assert_eq!(rest["offset"], 100);
    let total = big["total"].as_u64().unwrap();
    assert_eq!(rest["count"].as_u64(), Some(total - 100));
    assert!(size(&rest).is_some(), "on the second page");
}
