//! Minimal HTTP/1.1 server for the fakes: one thread per connection, plain or TLS, keep-alive as real servers.
//!
//! The one fake HTTP server of the project: the fakes of tests/support and
//! the crate's unit tests (`src/lib.rs` includes this module) all use it.
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::protocol::Role;
use tungstenite::WebSocket;

pub mod parse;
use parse::{read_request, write_response};

/// Read timeout while a request is being received.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll period of the accept loop.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// An idle keep-alive connection is closed after this long, as the real
/// servers do: Rocket.Chat's Node.js `http.Server` (`keepAliveTimeout`,
/// 5 s by default; Meteor's `packages/webapp/webapp_server.js` also sets a
/// 5 s socket timeout) and Jeedom's Apache (Debian's `KeepAliveTimeout 5`).
/// A client that reuses a connection the server is closing must cope.
pub const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(5);

/// A parsed HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path and query, nothing decoded.
    pub target: String,
    /// Path without the query string, percent-decoded.
    pub path: String,
    pub query: HashMap<String, String>,
    /// Headers as received (names in their original case).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Value of a header, case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let h = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name));
        h.map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// True for a websocket upgrade request.
    pub fn is_websocket(&self) -> bool {
        let up = self.header("upgrade").unwrap_or("");
        up.eq_ignore_ascii_case("websocket") && self.header("sec-websocket-key").is_some()
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a status and a text body.
    pub fn text(status: u16, body: &str) -> Response {
        let r = Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        r.header("Content-Type", "text/plain; charset=utf-8")
    }

    /// A response with a status and a JSON body.
    pub fn json(status: u16, body: &Value) -> Response {
        let r = Response {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        };
        r.header("Content-Type", "application/json")
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A connection after the request head: plain TCP or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    /// The underlying TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Takes over a connection after its request head (websocket upgrade).
pub type Upgrade = Box<dyn FnOnce(Stream) + Send>;

/// What the handler wants done with a request.
pub enum Reply {
    /// Answer, then close.
    Send(Response),
    /// Never answer; hold the connection until the peer or the server closes it.
    Hang,
    /// Close without answering.
    Close,
    /// Hand the connection to this function (it writes the handshake itself).
    Upgrade(Upgrade),
}

/// Answers a websocket upgrade request: writes the handshake, then hands the
/// server end of the websocket to `f`, on the connection's thread.
pub fn websocket(req: &Request, f: impl FnOnce(WebSocket<Stream>) + Send + 'static) -> Reply {
    let key = req.header("sec-websocket-key").unwrap_or("").to_string();
    Reply::Upgrade(Box::new(move |mut stream| {
        if handshake(&mut stream, &key).is_ok() {
            f(WebSocket::from_raw_socket(stream, Role::Server, None));
        }
    }))
}

fn handshake(stream: &mut Stream, key: &str) -> io::Result<()> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(resp.as_bytes())?;
    stream.flush()
}

/// The request handler of a server.
pub type Handler = Arc<dyn Fn(Request) -> Reply + Send + Sync>;

struct Inner {
    port: u16,
    tls: Option<Arc<ServerConfig>>,
    handler: Handler,
    listener: Mutex<Option<TcpListener>>,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
    stop: AtomicBool,
}

/// A running server bound on 127.0.0.1.
pub struct HttpServer {
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts a plain HTTP server on 127.0.0.1 with an OS-chosen port.
    pub fn start(handler: impl Fn(Request) -> Reply + Send + Sync + 'static) -> HttpServer {
        HttpServer::start_with(0, None, Arc::new(handler))
    }

    /// Starts a server on 127.0.0.1:`port` (0: OS-chosen), TLS when `tls` is given.
    pub fn start_with(port: u16, tls: Option<Arc<ServerConfig>>, handler: Handler) -> HttpServer {
        let listener = bind(port).expect("bind the fake server");
        let port = listener.local_addr().expect("local addr").port();
        let inner = Arc::new(Inner {
            port,
            tls,
            handler,
            listener: Mutex::new(Some(listener)),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let i2 = inner.clone();
        let accept = std::thread::Builder::new()
            .name(format!("fake-http-{port}"))
            .spawn(move || accept_loop(i2))
            .expect("spawn accept thread");
        HttpServer {
            inner,
            accept: Some(accept),
        }
    }

    /// The bound port (kept across `set_down` and `restart`).
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// Closes the listener (connections refused) or listens again on the same port.
    pub fn set_down(&self, down: bool) {
        let mut l = self.inner.listener.lock().unwrap();
        if down {
            *l = None;
        } else if l.is_none() {
            *l = Some(rebind(self.inner.port));
        }
    }

    /// True while the listener is closed.
    pub fn is_down(&self) -> bool {
        self.inner.listener.lock().unwrap().is_none()
    }

    /// Shuts down every open connection (requests in progress, hung ones, upgraded ones).
    pub fn close_connections(&self) {
        close_all(&self.inner);
    }

    /// Closes the listener and every connection, then listens again on the same port.
    pub fn restart(&self) {
        self.set_down(true);
        self.close_connections();
        self.set_down(false);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.listener.lock().unwrap().take();
        close_all(&self.inner);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn bind(port: u16) -> io::Result<TcpListener> {
    let l = TcpListener::bind(("127.0.0.1", port))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Binds the same port again, retrying briefly (the old socket may linger a moment).
fn rebind(port: u16) -> TcpListener {
    let start = Instant::now();
    loop {
        match bind(port) {
            Ok(l) => return l,
            Err(e) if start.elapsed() > Duration::from_secs(5) => panic!("rebind {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn close_all(inner: &Inner) {
    for (_, s) in inner.conns.lock().unwrap().drain() {
        let _ = s.shutdown(Shutdown::Both);
    }
}

fn accept_loop(inner: Arc<Inner>) {
    while !inner.stop.load(Ordering::SeqCst) {
        let got = match inner.listener.lock().unwrap().as_ref() {
            Some(l) => l.accept().ok(),
            None => None,
        };
        match got {
            Some((tcp, _)) => spawn_conn(&inner, tcp),
            None => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn spawn_conn(inner: &Arc<Inner>, tcp: TcpStream) {
    let Ok(clone) = tcp.try_clone() else { return };
    let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
    inner.conns.lock().unwrap().insert(id, clone);
    let i2 = inner.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("fake-conn-{}-{id}", inner.port))
        .spawn(move || {
            serve(&i2, tcp);
            i2.conns.lock().unwrap().remove(&id);
        });
    if spawned.is_err() {
        inner.conns.lock().unwrap().remove(&id);
    }
}

fn serve(inner: &Inner, tcp: TcpStream) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(READ_TIMEOUT));
    let mut stream = match &inner.tls {
        Some(cfg) => match ServerConnection::new(cfg.clone()) {
            Ok(c) => Stream::Tls(Box::new(StreamOwned::new(c, tcp))),
            Err(_) => return,
        },
        None => Stream::Plain(tcp),
    };
    loop {
        let Ok(req) = read_request(&mut stream) else {
            // The peer closed, or the connection sat idle past
            // KEEP_ALIVE_IDLE: the server closes its end.
            let _ = stream.tcp().shutdown(Shutdown::Both);
            return;
        };
        let keep = !req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        match (inner.handler)(req) {
            Reply::Send(resp) => {
                if write_response(&mut stream, &resp, keep).is_err() {
                    return;
                }
                if !keep {
                    return finish(stream);
                }
                let _ = stream.tcp().set_read_timeout(Some(KEEP_ALIVE_IDLE));
            }
            Reply::Hang => return hang(stream),
            Reply::Close => {
                let _ = stream.tcp().shutdown(Shutdown::Both);
                return;
            }
            Reply::Upgrade(f) => return f(stream),
        }
    }
}

/// Ends a connection politely: close_notify, half-close, drain what the peer still sends.
fn finish(mut stream: Stream) {
    if let Stream::Tls(t) = &mut stream {
        t.conn.send_close_notify();
        let _ = t.flush();
    }
    let _ = stream.tcp().shutdown(Shutdown::Write);
    let _ = stream
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    let mut tcp = stream.tcp();
    while matches!(tcp.read(&mut buf), Ok(n) if n > 0) {}
}

/// Holds a connection without answering until the peer closes it or the server shuts it down.
fn hang(stream: Stream) {
    let mut tcp = stream.tcp();
    let _ = tcp.set_read_timeout(None);
    let mut buf = [0u8; 4096];
    while matches!(tcp.read(&mut buf), Ok(n) if n > 0) {}
}
