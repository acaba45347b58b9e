//! Self tests of the test doubles, driven over real sockets.
mod support;

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

#[test]
fn wait_until_panics_with_message() {
    let r = std::panic::catch_unwind(|| {
        support::wait::wait_until(Duration::from_millis(30), "the moon", || false)
    });
    let err = r.unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("the moon"), "{msg}");
}
