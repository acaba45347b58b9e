//! Tests of the callback worker against the fake HTTP server with a script, on 127.0.0.1.
use super::*;
use crate::fake_http::{HttpServer, Reply, Response};
use serde_json::json;
use std::collections::VecDeque;
use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc::{self, channel};
use std::sync::Mutex;
use ureq::http::StatusCode;

const KEY: &str = "k3y/with+odd&chars=1";
const WAIT: Duration = Duration::from_secs(5);

/// One request as the scripted server saw it.
#[derive(Debug)]
struct Seen {
    method: String,
    target: String,
    content_type: Option<String>,
    body: String,
}

/// Serves one scripted answer `(status, body)` per request, in order, and
/// reports each request on the returned channel. Status 0 (and past the
/// script): read the request, then close without answering.
fn serve(script: Vec<(u16, &'static str)>) -> (HttpServer, String, Receiver<Seen>) {
    let script = Mutex::new(VecDeque::from(script));
    let (tx, rx) = channel();
    let server = HttpServer::start(move |req| {
        let _ = tx.send(Seen {
            method: req.method.clone(),
            target: req.target.clone(),
            content_type: req.header("content-type").map(str::to_string),
            body: String::from_utf8_lossy(&req.body).into_owned(),
        });
        match script.lock().unwrap().pop_front() {
            Some((0, _)) | None => Reply::Close,
            Some((status, body)) => Reply::Send(Response::text(status, body)),
        }
    });
    let base = format!("http://127.0.0.1:{}/cb", server.port());
    (server, base, rx)
}

/// A URL nothing listens on.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/cb")
}

fn config(url: &str) -> CallbackConfig {
    CallbackConfig {
        url: url.into(),
        apikey: Secret::new(KEY),
        tls: crate::tls::client_config(None).expect("tls"),
    }
}

fn fast() -> Timing {
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(40));
    Timing {
        retry: backoff.clone(),
        probe: backoff,
    }
}

struct Running {
    jobs: Sender<CallbackJob>,
    reports: Receiver<CoreMsg>,
    shutdown: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

fn start(url: &str, timing: Timing) -> Running {
    let (jobs, job_rx) = channel();
    let (to_core, reports) = channel();
    let shutdown = Arc::new(AtomicBool::new(false));
    let handle = spawn_with(config(url), job_rx, to_core, shutdown.clone(), timing).expect("spawn");
    Running {
        jobs,
        reports,
        shutdown,
        handle,
    }
}

impl Running {
    fn next_report(&self) -> CallbackReport {
        match self.reports.recv_timeout(WAIT) {
            Ok(CoreMsg::Callback(report)) => report,
            other => panic!("expected a callback report, got {other:?}"),
        }
    }

    /// Stops the worker and checks it returns within `limit`.
    fn stop_within(self, limit: Duration) {
        // The daemon's stop: the flag, and the wake-up (the core's sender goes).
        self.shutdown.store(true, Ordering::Relaxed);
        drop(self.jobs);
        let (done, joined) = mpsc::channel();
        let handle = self.handle;
        thread::spawn(move || done.send(handle.join().is_ok()));
        assert_eq!(joined.recv_timeout(limit), Ok(true), "worker did not stop");
    }
}

fn batch(seqs: &[u64]) -> CallbackJob {
    let events = seqs
        .iter()
        .map(|&seq| {
            let ev = json!({"type": "message", "text": format!("n°{seq}")});
            (seq, serde_json::value::to_raw_value(&ev).unwrap())
        })
        .collect();
    CallbackJob::Batch { events }
}

#[test]
fn query_separator_follows_the_url() {
    assert_eq!(with_query("http://j/cb.php", "a=1"), "http://j/cb.php?a=1");
    assert_eq!(
        with_query("http://j/cb.php?p=x", "a=1"),
        "http://j/cb.php?p=x&a=1"
    );
    assert_eq!(with_query("http://j/cb.php?", "a=1"), "http://j/cb.php?a=1");
    assert_eq!(
        with_query("http://j/cb.php?p=x&", "a=1"),
        "http://j/cb.php?p=x&a=1"
    );
    assert_eq!(
        with_query("http://j/cb.php#top", "a=1"),
        "http://j/cb.php?a=1"
    );
}

#[test]
fn key_is_url_encoded() {
    assert_eq!(encode("aZ09-._~"), "aZ09-._~");
    assert_eq!(encode("a b&c/+=é"), "a%20b%26c%2F%2B%3D%C3%A9");
    let client = Client::new(&config("http://j/cb.php?plugin=rc"));
    assert_eq!(
        client.test_url,
        "http://j/cb.php?plugin=rc&test=1&apikey=k3y%2Fwith%2Bodd%26chars%3D1"
    );
    assert_eq!(
        client.post_url,
        "http://j/cb.php?plugin=rc&apikey=k3y%2Fwith%2Bodd%26chars%3D1"
    );
}

#[test]
fn redaction_hides_the_key_in_every_form() {
    let key = Secret::new(KEY);
    let text = format!(
        "bad uri: http://j/cb?apikey={} and {KEY} and ApiKey=other&x=1 (apikey=z)",
        encode(KEY)
    );
    let shown = redact(&text, &key);
    assert!(
        !shown.contains(KEY) && !shown.contains(&encode(KEY)),
        "{shown}"
    );
    assert!(!shown.contains("other") && !shown.contains("=z"), "{shown}");
    assert!(shown.contains("&x=1"), "{shown}");
    assert_eq!(redact("nothing here", &key), "nothing here");
}

#[test]
fn redaction_hides_url_passwords() {
    let key = Secret::new(KEY);
    let cases = [
        (
            "http://jeedom:pa55@j:80/cb?x=1",
            "http://jeedom:***@j:80/cb?x=1",
        ),
        (
            "see https://u:p/a@ss@j/cb now",
            "see https://u:***@j/cb now",
        ),
        (
            "http://user@j/cb and http://j/x",
            "http://user@j/cb and http://j/x",
        ),
        ("\"https://a:b@h?q=c@d\"", "\"https://a:***@h?q=c@d\""),
    ];
    for (text, shown) in cases {
        assert_eq!(redact(text, &key), shown, "{text}");
    }
    assert_eq!(
        shown_url("https://a:b@h/cb?apikey=zzz", &key),
        "https://a:***@h/cb?apikey=***"
    );
}

#[test]
fn statuses_read_well() {
    assert_eq!(
        status_text(StatusCode::INTERNAL_SERVER_ERROR),
        "HTTP 500 Internal Server Error"
    );
    assert!(status_text(StatusCode::FOUND).contains("--callback"));
}

#[test]
fn transport_failures_read_well() {
    let timeout = ureq::Error::Timeout(ureq::Timeout::Global);
    assert_eq!(describe(&timeout), "timed out");
    let io_timeout = ureq::Error::Io(io::Error::from(io::ErrorKind::TimedOut));
    assert_eq!(describe(&io_timeout), "timed out");
    let refused = ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
    assert_eq!(describe(&refused), "connection refused");
    let bad = ureq::Error::BadUri(format!("http://j/cb?apikey={KEY}"));
    let client = Client::new(&config("http://j/cb"));
    assert!(!client.describe(&bad).contains(KEY));
}

#[test]
fn batch_body_keeps_the_order() {
    let CallbackJob::Batch { events } = batch(&[3, 4]);
    let mut buf = b"left over".to_vec();
    encode_batch(&events, false, &mut buf);
    let body: Value = serde_json::from_slice(&buf).expect("json");
    assert_eq!(body["events"][0]["text"], "n°3");
    assert_eq!(body["events"][1]["text"], "n°4");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(2));
    assert!(body["events"][0].get("replay").is_none());
    encode_batch(&events, true, &mut buf);
    let body: Value = serde_json::from_slice(&buf).expect("json");
    assert_eq!(body["events"][0]["replay"], true);
    assert_eq!(body["events"][1]["replay"], true);
    assert_eq!(body["events"][1]["text"], "n°4");
}

#[test]
fn an_event_already_marked_replay_carries_the_flag_once() {
    let ev = json!({"type": "message", "text": "é\n\"x\"", "replay": true});
    let events = vec![(9, serde_json::value::to_raw_value(&ev).unwrap())];
    let mut buf = Vec::new();
    for replay in [false, true] {
        encode_batch(&events, replay, &mut buf);
        let text = String::from_utf8(buf.clone()).unwrap();
        assert_eq!(text.matches("\"replay\"").count(), 1, "{text}");
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(body["events"][0], ev, "the event's text is kept as queued");
    }
}

#[test]
fn only_failures_before_the_request_left_are_sure_refusals() {
    let io = |k| ureq::Error::Io(io::Error::from(k));
    for sure in [
        io(io::ErrorKind::ConnectionRefused),
        io(io::ErrorKind::HostUnreachable),
        ureq::Error::HostNotFound,
        ureq::Error::ConnectionFailed,
        ureq::Error::Timeout(ureq::Timeout::Connect),
    ] {
        assert!(!maybe_received(&sure), "{sure}");
    }
    for unsure in [
        io(io::ErrorKind::ConnectionReset),
        io(io::ErrorKind::UnexpectedEof),
        ureq::Error::Timeout(ureq::Timeout::Global),
        ureq::Error::Timeout(ureq::Timeout::RecvResponse),
    ] {
        assert!(maybe_received(&unsure), "{unsure}");
    }
}

/// Jeedom read the batch and the connection dropped before its answer: the
/// retry carries `"replay": true` on every event, and keeps it after a sure
/// refusal (500) that follows.
#[test]
fn a_batch_that_may_have_arrived_is_retried_marked() {
    let (_server, url, seen) = serve(vec![(200, "OK"), (0, ""), (500, ""), (200, "")]);
    let worker = start(&url, fast());
    worker.jobs.send(batch(&[5, 6])).expect("job");
    for _ in 0..2 {
        assert!(matches!(
            worker.next_report(),
            CallbackReport::Failed { .. }
        ));
    }
    assert!(matches!(
        worker.next_report(),
        CallbackReport::Delivered { upto_seq: 6 }
    ));
    assert_eq!(seen.recv_timeout(WAIT).expect("test").method, "GET");
    let bodies: Vec<Value> = (0..3)
        .map(|_| serde_json::from_str(&seen.recv_timeout(WAIT).expect("post").body).unwrap())
        .collect();
    let replays = |b: &Value| -> Vec<Value> {
        let events = b["events"].as_array().unwrap();
        events.iter().map(|e| e["replay"].clone()).collect()
    };
    assert_eq!(replays(&bodies[0]), [Value::Null, Value::Null]);
    for b in &bodies[1..] {
        assert_eq!(replays(b), [json!(true), json!(true)]);
        assert_eq!(b["events"][0]["text"], "n°5");
    }
    worker.stop_within(Duration::from_secs(1));
}

#[test]
fn startup_test_accepts_ok() {
    let (_server, url, seen) = serve(vec![(200, " OK\n")]);
    assert_eq!(test_callback(&config(&url)), Ok(()));
    let req = seen.recv_timeout(WAIT).expect("request");
    assert_eq!(req.method, "GET");
    assert_eq!(req.target, format!("/cb?test=1&apikey={}", encode(KEY)));
}

#[test]
fn startup_test_tells_a_rejection_from_a_status() {
    let (_server, url, _seen) = serve(vec![(200, "Unauthorized access"), (404, "")]);
    let cfg = config(&url);
    assert_eq!(test_callback(&cfg), Err(CallbackTestError::Rejected));
    assert_eq!(test_callback(&cfg), Err(CallbackTestError::Status(404)));
    let text = CallbackTestError::Rejected.to_string();
    assert!(text.contains("API key"), "{text}");
}

#[test]
fn startup_test_reports_unreachable_without_the_key() {
    match test_callback(&config(&dead_url())) {
        Err(CallbackTestError::Unreachable(reason)) => {
            assert_eq!(reason, "connection refused");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[test]
fn tls_failures_name_tls_and_what_to_check() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("https://{}/cb", listener.local_addr().expect("addr"));
    // A plain HTTP peer: the handshake must fail inside our TLS connector.
    thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
        }
    });
    match test_callback(&config(&url)) {
        Err(CallbackTestError::Unreachable(reason)) => {
            assert!(
                reason.starts_with("TLS") && reason.contains("does this port speak TLS"),
                "{reason}"
            );
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[test]
fn worker_retries_the_same_batch_until_delivered() {
    let (_server, url, seen) = serve(vec![(200, "OK"), (500, ""), (500, ""), (200, "")]);
    let worker = start(&url, fast());
    worker.jobs.send(batch(&[7, 8])).expect("job");
    for _ in 0..2 {
        match worker.next_report() {
            CallbackReport::Failed { error } => assert_eq!(error, "HTTP 500 Internal Server Error"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
    assert!(matches!(
        worker.next_report(),
        CallbackReport::Delivered { upto_seq: 8 }
    ));
    assert_eq!(seen.recv_timeout(WAIT).expect("test").method, "GET");
    let posts: Vec<Seen> = (0..3)
        .map(|_| seen.recv_timeout(WAIT).expect("post"))
        .collect();
    for post in &posts {
        assert_eq!(post.method, "POST");
        assert_eq!(post.target, format!("/cb?apikey={}", encode(KEY)));
        assert_eq!(post.content_type.as_deref(), Some("application/json"));
        assert_eq!(post.body, posts[0].body);
    }
    let body: Value = serde_json::from_str(&posts[0].body).expect("json");
    assert_eq!(body["events"][1]["text"], "n°8");
    assert!(worker
        .reports
        .recv_timeout(Duration::from_millis(300))
        .is_err());
    worker.stop_within(Duration::from_secs(1));
}

#[test]
fn worker_delivers_even_when_the_key_is_rejected() {
    let (_server, url, seen) = serve(vec![(200, "bad key"), (204, "")]);
    let worker = start(&url, fast());
    worker.jobs.send(batch(&[1])).expect("job");
    assert!(matches!(
        worker.next_report(),
        CallbackReport::Delivered { upto_seq: 1 }
    ));
    assert_eq!(seen.recv_timeout(WAIT).expect("test").method, "GET");
    assert_eq!(seen.recv_timeout(WAIT).expect("post").method, "POST");
    worker.stop_within(Duration::from_secs(1));
}

#[test]
fn worker_attempts_events_while_jeedom_is_down_and_stops_during_backoff() {
    // Default timing: the second attempt would wait 0.5 s, then 1 s...
    let worker = start(&dead_url(), Timing::default());
    worker.jobs.send(batch(&[5])).expect("job");
    match worker.next_report() {
        CallbackReport::Failed { error } => {
            assert_eq!(error, "connection refused");
            assert!(!error.contains(KEY));
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    // ...but shutdown must not wait for the backoff to end.
    worker.stop_within(Duration::from_millis(600));
}

#[test]
fn probe_retries_only_while_unreachable() {
    let mut probe = Probe::new(Backoff::new(
        Duration::from_secs(60),
        Duration::from_secs(60),
    ));
    assert!(probe.due());
    probe.record(Err(CallbackTestError::Unreachable("timed out".into())), "u");
    assert!(probe.next.is_some() && !probe.due());
    probe.hurry();
    assert!(probe.due());
    probe.record(Err(CallbackTestError::Status(503)), "u");
    assert!(probe.next.is_some());
    probe.record(Err(CallbackTestError::Rejected), "u");
    assert!(probe.next.is_none());
    probe.hurry();
    assert!(!probe.due());
}
