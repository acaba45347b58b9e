//! A scripted answer per request and a record of the requests, on the one fake HTTP server (`crate::fake_http`).
use crate::fake_http::{HttpServer, Reply as Answer, Request, Response};
use serde_json::Value;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A request as the responder saw it.
#[derive(Clone, Debug)]
pub struct Req {
    /// The request target: path and query string, as sent.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    fn new(r: &Request) -> Req {
        Req {
            path: r.target.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A tag for an uploaded file: the first letter of its name.
    pub fn seen_files(&self) -> char {
        let body = String::from_utf8_lossy(&self.body);
        let at = body.find("filename=\"").map_or(0, |i| i + 10);
        body[at..].chars().next().unwrap_or('?')
    }
}

/// Status, extra headers, body (a JSON answer).
pub type Reply = (u16, Vec<(&'static str, String)>, String);

pub struct Responder {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Req>>>,
    _server: Option<HttpServer>,
}

impl Responder {
    /// Answers each request with `handler`, one request at a time.
    pub fn start(handler: impl FnMut(&Req) -> Reply + Send + 'static) -> Responder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler = Mutex::new(handler);
        let server = HttpServer::start(move |r| {
            let req = Req::new(&r);
            log.lock().unwrap().push(req.clone());
            let (status, headers, body) = (handler.lock().unwrap())(&req);
            let mut answer = Response::text(status, &body);
            answer.headers = vec![("Content-Type".into(), "application/json".into())];
            for (n, v) in headers {
                answer = answer.header(n, &v);
            }
            Answer::Send(answer)
        });
        Responder {
            base: format!("http://127.0.0.1:{}", server.port()),
            seen,
            _server: Some(server),
        }
    }

    /// A base URL of a port nobody listens on any more.
    pub fn gone() -> Responder {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", closed.local_addr().unwrap());
        Responder {
            base,
            seen: Arc::default(),
            _server: None,
        }
    }

    /// Paths requested, without the one-off settings query.
    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }

    pub fn requests(&self) -> Vec<Req> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|r| !r.path.contains("settings.public"))
            .cloned()
            .collect()
    }
}
