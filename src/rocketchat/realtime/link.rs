//! One websocket to Rocket.Chat: connect, DDP keep-alive, frames in and out.
use crate::config::ServerUrl;
use crate::error::Error;
use crate::rocketchat::ddp::{self, ClientFrame, Ids, ServerFrame};
use log::{debug, warn};
use rustls::ClientConfig;
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, HandshakeError, Message, WebSocket};

/// Longest a read blocks, so the loop can watch `shutdown`, its commands
/// and the heartbeat.
pub(super) const TICK: Duration = Duration::from_millis(200);
/// Longest a write may block before the link is declared dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Debug lines longer than this are cut (catch-up answers can be large).
const LOG_MAX: usize = 2000;

/// An open, DDP-connected websocket.
pub(super) struct Link {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    tcp: TcpStream,
    heartbeat: Duration,
    last_rx: Instant,
    ping_sent: Option<Instant>,
    shutdown: Arc<AtomicBool>,
    pub ids: Ids,
    /// Frames read while waiting for another one, handled later in order.
    pub backlog: VecDeque<ServerFrame>,
}

impl Link {
    /// Connects the TCP socket, TLS and the websocket, within `timeout` each,
    /// giving up as soon as `shutdown` is set.
    pub fn open(
        server: &ServerUrl,
        tls: Arc<ClientConfig>,
        timeout: Duration,
        heartbeat: Duration,
        shutdown: Arc<AtomicBool>,
    ) -> Result<Link, Error> {
        let (host, port) = (server.host.clone(), server.port);
        let tcp = interruptible(&shutdown, move || connect_tcp(&host, port, timeout))??;
        let io_err = |e| Error::io(format!("socket to {}", server.host), e);
        // Short reads from the start, so that a slow handshake still sees `shutdown`.
        tcp.set_read_timeout(Some(TICK)).map_err(io_err)?;
        tcp.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io_err)?;
        let own = tcp.try_clone().map_err(io_err)?;
        let ws = handshake(server, tcp, tls, timeout, &shutdown)?;
        Ok(Link {
            ws,
            tcp: own,
            heartbeat,
            last_rx: Instant::now(),
            ping_sent: None,
            shutdown,
            ids: Ids::default(),
            backlog: VecDeque::new(),
        })
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: &ClientFrame) -> Result<(), Error> {
        let text = frame.to_text();
        debug!("-> {}", shown(&text));
        self.ws.send(Message::text(text)).map_err(ws_error)
    }

    /// Sends a `method` or `sub` frame built by `make` and returns its id.
    pub fn request(&mut self, make: impl FnOnce(&mut Ids) -> ClientFrame) -> Result<String, Error> {
        let frame = make(&mut self.ids);
        self.send(&frame)?;
        Ok(ddp::frame_id(&frame).unwrap_or_default().to_string())
    }

    /// The next frame to handle, or `None` after a quiet tick. Answers the
    /// server's pings and keeps the heartbeat; an error means the link is gone.
    pub fn recv(&mut self) -> Result<Option<ServerFrame>, Error> {
        if let Some(frame) = self.backlog.pop_front() {
            return Ok(Some(frame));
        }
        match self.ws.read() {
            Ok(Message::Text(text)) => {
                self.heard();
                self.on_text(text.as_str())
            }
            Ok(Message::Close(close)) => {
                let why = close.map(|c| c.reason.to_string()).unwrap_or_default();
                let e = io::Error::new(
                    ErrorKind::ConnectionAborted,
                    format!("closed by the server {why}"),
                );
                Err(Error::io("websocket", e))
            }
            Ok(_) => {
                self.heard();
                Ok(None)
            }
            Err(tungstenite::Error::Io(e)) if is_tick(&e) => self.check_heartbeat().map(|()| None),
            Err(e) => Err(ws_error(e)),
        }
    }

    /// Reads until `pick` accepts a frame, or fails after `timeout`. Frames
    /// not picked are kept, in order, for the caller's later `recv`s.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&ServerFrame) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        let mut skipped = VecDeque::new();
        let found = loop {
            if self.shutdown.load(Ordering::Relaxed) {
                break Err(Error::Shutdown);
            }
            if Instant::now() >= deadline {
                let e = io::Error::new(
                    ErrorKind::TimedOut,
                    format!("no answer within {} s", timeout.as_secs()),
                );
                break Err(Error::io(format!("waiting for {what}"), e));
            }
            match self.recv() {
                Ok(Some(frame)) => match pick(&frame) {
                    Some(t) => break Ok(t),
                    None => skipped.push_back(frame),
                },
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        skipped.append(&mut self.backlog);
        self.backlog = skipped;
        found
    }

    /// Runs a blocking call off the thread, watching this link's `shutdown`.
    pub fn interruptible<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        interruptible(&self.shutdown, f)
    }

    /// Best-effort websocket close, bounded by the socket timeouts.
    pub fn close(mut self) {
        let _ = self.tcp.set_write_timeout(Some(Duration::from_millis(500)));
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }

    fn heard(&mut self) {
        self.last_rx = Instant::now();
        self.ping_sent = None;
    }

    fn on_text(&mut self, text: &str) -> Result<Option<ServerFrame>, Error> {
        debug!("<- {}", shown(text));
        match ddp::parse_frame(text) {
            Ok(Some(ServerFrame::Ping { id })) => {
                self.send(&ClientFrame::Pong { id }).map(|()| None)
            }
            Ok(Some(ServerFrame::Pong { .. })) | Ok(None) => Ok(None),
            Ok(Some(frame)) => Ok(Some(frame)),
            Err(e) => {
                warn!("ignoring a frame Rocket.Chat sent that is not valid DDP: {e}");
                Ok(None)
            }
        }
    }

    /// Pings after `heartbeat` of silence; a link silent for as long again
    /// after the ping is dead (half-open TCP never reports an error).
    fn check_heartbeat(&mut self) -> Result<(), Error> {
        match self.ping_sent {
            None if self.last_rx.elapsed() >= self.heartbeat => {
                self.ping_sent = Some(Instant::now());
                self.send(&ClientFrame::Ping { id: None })
            }
            Some(at) if at.elapsed() >= self.heartbeat => {
                let silent = self.last_rx.elapsed().as_secs_f64();
                let e = io::Error::new(
                    ErrorKind::TimedOut,
                    format!("no frame from the server for {silent:.1} s"),
                );
                Err(Error::io("websocket heartbeat", e))
            }
            _ => Ok(()),
        }
    }
}

/// A frame as shown in debug logs: secrets hidden, length bounded.
fn shown(text: &str) -> String {
    let mut s = ddp::redacted(text);
    if s.len() > LOG_MAX {
        let mut cut = LOG_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(&format!("… ({} bytes)", text.len()));
    }
    s
}

/// TLS and websocket handshakes, resumed after each quiet tick.
fn handshake(
    server: &ServerUrl,
    tcp: TcpStream,
    tls: Arc<ClientConfig>,
    timeout: Duration,
    shutdown: &AtomicBool,
) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, Error> {
    let deadline = Instant::now() + timeout;
    let url = server.websocket.as_str();
    let mut attempt =
        tungstenite::client_tls_with_config(url, tcp, None, Some(Connector::Rustls(tls)));
    loop {
        match attempt {
            Ok((ws, _response)) => return Ok(ws),
            Err(HandshakeError::Failure(e)) => return Err(handshake_error(server, e)),
            Err(HandshakeError::Interrupted(_)) if shutdown.load(Ordering::Relaxed) => {
                return Err(Error::Shutdown)
            }
            Err(HandshakeError::Interrupted(_)) if Instant::now() >= deadline => {
                let e = io::Error::new(ErrorKind::TimedOut, "no answer to the websocket handshake");
                return Err(Error::io(format!("connecting to {url}"), e));
            }
            Err(HandshakeError::Interrupted(mid)) => attempt = mid.handshake(),
        }
    }
}

/// Runs a blocking call (DNS, connect, REST) on its own thread so that
/// `shutdown` is still seen every tick; on shutdown the call is abandoned.
pub(super) fn interruptible<T: Send + 'static>(
    shutdown: &AtomicBool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("realtime-io".into())
        .spawn(move || drop(tx.send(f())))
        .map_err(|e| Error::io("starting a thread", e))?;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) if !shutdown.load(Ordering::Relaxed) => {}
            Err(RecvTimeoutError::Timeout) => return Err(Error::Shutdown),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::Protocol("a network call failed unexpectedly".into()))
            }
        }
    }
}

fn is_tick(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Resolves `host` and tries each address in turn.
fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("cannot resolve {host}"), e))?
        .collect();
    let mut last = io::Error::new(ErrorKind::NotFound, "no address");
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(Error::io(
        format!("cannot connect to {host}:{port}"),
        readable_connect_error(last, timeout),
    ))
}

fn readable_connect_error(e: io::Error, timeout: Duration) -> io::Error {
    let text = match e.kind() {
        ErrorKind::ConnectionRefused => {
            "connection refused (is Rocket.Chat listening on this port?)".to_string()
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            format!("timed out after {} s", timeout.as_secs())
        }
        _ => return e,
    };
    io::Error::new(e.kind(), text)
}

/// The error of a failed websocket handshake, in the admin's terms.
fn handshake_error(server: &ServerUrl, e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(resp) => Error::Status {
            what: format!("websocket handshake at {}", server.websocket),
            status: resp.status().as_u16(),
            reason: "not a Rocket.Chat websocket: check --url (and the path if Rocket.Chat is served under one)".into(),
        },
        tungstenite::Error::Io(io) if is_tick(&io) => {
            let e = io::Error::new(ErrorKind::TimedOut, "no answer to the websocket handshake");
            Error::io(format!("connecting to {}", server.websocket), e)
        }
        other => ws_error(other),
    }
}

/// Maps a websocket error, naming a TLS problem and the `--ca-file` remedy.
pub(super) fn ws_error(e: tungstenite::Error) -> Error {
    let tls = match &e {
        tungstenite::Error::Tls(tungstenite::error::TlsError::Rustls(r)) => Some((**r).clone()),
        tungstenite::Error::Io(io) => io
            .get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .cloned(),
        _ => None,
    };
    match tls {
        Some(source) => Error::Tls {
            what: tls_context(&source),
            source,
        },
        None => Error::from(e),
    }
}

fn tls_context(e: &rustls::Error) -> String {
    if matches!(e, rustls::Error::InvalidCertificate(_)) {
        "the server certificate was refused (for a self-signed certificate or a private CA, \
         pass the CA certificate with --ca-file)"
            .into()
    } else {
        "secure connection to Rocket.Chat failed".into()
    }
}
