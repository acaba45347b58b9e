//! A tiny scripted HTTP/1.1 responder on 127.0.0.1 for the REST and send worker tests.
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

/// A request as the responder saw it.
#[derive(Clone, Debug)]
pub struct Req {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Status, extra headers, body.
pub type Reply = (u16, Vec<(&'static str, String)>, String);
type Handler = Box<dyn FnMut(&Req) -> Reply + Send>;

pub struct Responder {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Req>>>,
}

impl Responder {
    pub fn start(handler: impl FnMut(&Req) -> Reply + Send + 'static) -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut handler: Handler = Box::new(handler);
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                if let Some(req) = read_request(&conn) {
                    log.lock().unwrap().push(req.clone());
                    write_reply(conn, handler(&req));
                }
            }
        });
        Responder { base, seen }
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

/// Reads one request (headers and a `Content-Length` body).
pub fn read_request(conn: impl Read) -> Option<Req> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Req {
        path,
        headers,
        body,
    })
}

/// Writes a reply and asks the client to close the connection.
pub fn write_reply(mut conn: impl Write, (status, headers, body): Reply) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    let _ = conn.write_all(format!("{head}\r\n{body}").as_bytes());
}

impl Req {
    /// A tag for an uploaded file: the first letter of its name.
    pub fn seen_files(&self) -> char {
        let body = String::from_utf8_lossy(&self.body);
        let at = body.find("filename=\"").map_or(0, |i| i + 10);
        body[at..].chars().next().unwrap_or('?')
    }
}
