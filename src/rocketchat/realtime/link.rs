//! One websocket to Rocket.Chat: connect, DDP keep-alive, frames in and out.
use super::inbox::{Feed, Inbox, Source, Waited};
use super::Halt;
use crate::config::ServerUrl;
use crate::error::{Error, Protocol, Refusal};
use crate::rocketchat::ddp::{self, ClientFrame, Ids, ServerFrame};
use log::{debug, warn};
use rustls::ClientConfig;
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, HandshakeError, Message, WebSocket};

/// How often the short-lived waits (connecting, handshakes, catch-up) look
/// at `shutdown` and at what they wait for. The idle link does not tick: it
/// sleeps until input comes or its heartbeat is due (see [`Inbox`]).
pub(super) const TICK: Duration = Duration::from_millis(200);
/// Longest a write may block before the link is declared dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Debug lines longer than this are cut (catch-up answers can be large).
const LOG_MAX: usize = 2000;

/// An open, DDP-connected websocket, read by its own thread (see [`Inbox`]).
pub(super) struct Link<'a> {
    ws: WebSocket<MaybeTlsStream<Feed>>,
    source: Source<'a>,
    tcp: Closer,
    heartbeat: Duration,
    last_rx: Instant,
    ping_sent: Option<Instant>,
    shutdown: Arc<AtomicBool>,
    pub ids: Ids,
    /// Frames read while waiting for another one, handled later in order.
    pub backlog: VecDeque<ServerFrame>,
}

/// The link's own handle on its socket: shutting the socket down when the
/// link goes, whatever the path, ends its reader thread.
struct Closer(TcpStream);

impl Drop for Closer {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// How to open a [`Link`], besides the server.
pub(super) struct Opening<'a> {
    pub tls: Arc<ClientConfig>,
    /// Bounds the TCP connection, and the TLS and websocket handshakes.
    pub timeout: Duration,
    pub heartbeat: Duration,
    pub shutdown: Arc<AtomicBool>,
    pub inbox: &'a Inbox,
}

impl<'a> Link<'a> {
    /// Connects the TCP socket, TLS and the websocket, within `timeout` each,
    /// giving up as soon as `shutdown` is set or the core is gone.
    pub fn open(server: &ServerUrl, o: Opening<'a>) -> Result<Link<'a>, Halt> {
        let (host, port, timeout) = (server.host.clone(), server.port, o.timeout);
        let tcp = interruptible(&o.shutdown, move || connect_tcp(&host, port, timeout))??;
        let io_err = |e| Error::io(format!("socket to {}", server.host), e);
        tcp.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io_err)?;
        let tcp = Closer(tcp);
        let (source, feed) = o.inbox.connect(&tcp.0).map_err(io_err)?;
        let ws = handshake(server, feed, &source, o.tls, timeout, &o.shutdown)?;
        Ok(Link {
            ws,
            source,
            tcp,
            heartbeat: o.heartbeat,
            last_rx: Instant::now(),
            ping_sent: None,
            shutdown: o.shutdown,
            ids: Ids::default(),
            backlog: VecDeque::new(),
        })
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: &ClientFrame) -> Result<(), Halt> {
        let text = frame.to_text();
        debug!("-> {}", shown(&text));
        Ok(self.ws.send(Message::text(text)).map_err(ws_error)?)
    }

    /// Sends a `method` or `sub` frame built by `make` and returns its id.
    pub fn request(&mut self, make: impl FnOnce(&mut Ids) -> ClientFrame) -> Result<String, Halt> {
        let frame = make(&mut self.ids);
        self.send(&frame)?;
        Ok(ddp::frame_id(&frame).unwrap_or_default().to_string())
    }

    /// The next frame to handle, waiting at most `wait` for it (less when the
    /// heartbeat is due first); `None` when the wait ended without one, e.g.
    /// for a command (see [`Inbox::take_command`]). Answers the server's
    /// pings and keeps the heartbeat; an error means the link is gone.
    pub fn recv(&mut self, wait: Duration) -> Result<Option<ServerFrame>, Halt> {
        if let Some(frame) = self.backlog.pop_front() {
            return Ok(Some(frame));
        }
        let deadline = Instant::now() + wait.min(self.until_heartbeat());
        loop {
            // What was received before may already hold whole frames.
            match self.ws.read() {
                Ok(message) => return self.on_message(message),
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(ws_error(e).into()),
            }
            // Bounded even while bytes trickle in without making a frame.
            let left = deadline.saturating_duration_since(Instant::now());
            let waited = if left.is_zero() {
                Waited::Timeout
            } else {
                self.source.wait(left)
            };
            match waited {
                Waited::Fed => {}
                Waited::Command => return Ok(None),
                Waited::Stop => return Err(Halt::Stopping),
                Waited::Timeout => return self.check_heartbeat().map(|()| None),
            }
        }
    }

    /// The inbox this link is fed from.
    pub fn inbox(&self) -> &'a Inbox {
        self.source.inbox()
    }

    fn on_message(&mut self, message: Message) -> Result<Option<ServerFrame>, Halt> {
        match message {
            Message::Text(text) => {
                self.heard();
                self.on_text(text.as_str())
            }
            Message::Close(close) => {
                let why = close.map(|c| c.reason.to_string()).unwrap_or_default();
                let e = io::Error::new(
                    ErrorKind::ConnectionAborted,
                    format!("closed by the server {why}"),
                );
                Err(Error::io("websocket", e).into())
            }
            _ => {
                self.heard();
                Ok(None)
            }
        }
    }

    /// Reads until `pick` accepts a frame, or fails after `timeout`. Frames
    /// not picked are kept, in order, for the caller's later `recv`s.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&ServerFrame) -> Option<T>,
    ) -> Result<T, Halt> {
        let deadline = Instant::now() + timeout;
        let mut skipped = VecDeque::new();
        let found = loop {
            if self.shutdown.load(Ordering::Relaxed) || self.inbox().core_gone() {
                break Err(Halt::Stopping);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let e = io::Error::new(
                    ErrorKind::TimedOut,
                    format!("no answer within {} s", timeout.as_secs()),
                );
                break Err(Error::io(format!("waiting for {what}"), e).into());
            }
            // Ticks: `shutdown` alone must still end a session being set up.
            match self.recv(left.min(TICK)) {
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

    /// Waits `d` (the server's rate limiter asked for it), answering pings;
    /// frames that come meanwhile are kept, in order, for later `recv`s.
    pub fn pause(&mut self, d: Duration) -> Result<(), Halt> {
        let deadline = Instant::now() + d;
        let mut kept = VecDeque::new();
        let end = loop {
            if self.shutdown.load(Ordering::Relaxed) || self.inbox().core_gone() {
                break Err(Halt::Stopping);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(());
            }
            match self.recv(left.min(TICK)) {
                Ok(Some(frame)) => kept.push_back(frame),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        kept.append(&mut self.backlog);
        self.backlog = kept;
        end
    }

    /// Runs a blocking call off the thread, watching this link's `shutdown`.
    pub fn interruptible<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Halt> {
        interruptible(&self.shutdown, f)
    }

    /// Best-effort websocket close, bounded by the write timeout; the socket
    /// is then shut down (by [`Closer`]).
    pub fn close(mut self) {
        let _ = self
            .tcp
            .0
            .set_write_timeout(Some(Duration::from_millis(500)));
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }

    fn heard(&mut self) {
        self.last_rx = Instant::now();
        self.ping_sent = None;
    }

    fn on_text(&mut self, text: &str) -> Result<Option<ServerFrame>, Halt> {
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

    /// Time left before [`Link::check_heartbeat`] has something to do.
    fn until_heartbeat(&self) -> Duration {
        let since = self.ping_sent.unwrap_or(self.last_rx);
        (since + self.heartbeat).saturating_duration_since(Instant::now())
    }

    /// Pings after `heartbeat` of silence; a link silent for as long again
    /// after the ping is dead (half-open TCP never reports an error).
    fn check_heartbeat(&mut self) -> Result<(), Halt> {
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
                Err(Error::io("websocket heartbeat", e).into())
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

/// TLS and websocket handshakes, resumed whenever input comes.
fn handshake(
    server: &ServerUrl,
    feed: Feed,
    source: &Source,
    tls: Arc<ClientConfig>,
    timeout: Duration,
    shutdown: &AtomicBool,
) -> Result<WebSocket<MaybeTlsStream<Feed>>, Halt> {
    let deadline = Instant::now() + timeout;
    let url = server.websocket.as_str();
    // tungstenite zero-fills the free part of its read buffer before every
    // read (`FrameCodec::read_in`), 128 KiB by default: that memset was a
    // tenth of the realtime thread's time per frame. A read never brings
    // more than one `realtime-rx` chunk (`inbox::CHUNK`); larger frames
    // still arrive whole, over several reads.
    let config = WebSocketConfig::default().read_buffer_size(super::inbox::CHUNK);
    let mut attempt =
        tungstenite::client_tls_with_config(url, feed, Some(config), Some(Connector::Rustls(tls)));
    loop {
        let mid = match attempt {
            Ok((ws, _response)) => return Ok(ws),
            Err(HandshakeError::Failure(e)) => return Err(handshake_error(server, e).into()),
            Err(HandshakeError::Interrupted(mid)) => mid,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if shutdown.load(Ordering::Relaxed) {
            return Err(Halt::Stopping);
        }
        if left.is_zero() {
            return Err(no_answer(server).into());
        }
        if source.wait(left.min(TICK)) == Waited::Stop {
            return Err(Halt::Stopping);
        }
        attempt = mid.handshake();
    }
}

/// Runs a blocking call (DNS, connect, REST) on its own thread so that
/// `shutdown` is still seen every tick; on shutdown the call is abandoned.
pub(super) fn interruptible<T: Send + 'static>(
    shutdown: &AtomicBool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Halt> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("realtime-io".into())
        .spawn(move || drop(tx.send(f())))
        .map_err(|e| Error::io("starting a thread", e))?;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) if !shutdown.load(Ordering::Relaxed) => {}
            Err(RecvTimeoutError::Timeout) => return Err(Halt::Stopping),
            Err(RecvTimeoutError::Disconnected) => return Err(Protocol::CallLost.into()),
        }
    }
}

/// Resolves `host` and tries each address in turn.
fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Halt> {
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
    )
    .into())
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
            refusal: Refusal::Other,
        },
        tungstenite::Error::Io(io)
            if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            no_answer(server)
        }
        other => ws_error(other),
    }
}

/// The handshake got no answer in time; over TLS, a plain HTTP server that
/// waits for the end of a request head would look the same.
fn no_answer(server: &ServerUrl) -> Error {
    let text = match server.tls {
        true => {
            "no answer to the TLS and websocket handshakes (if this port speaks plain \
                 HTTP, use http:// in --url)"
        }
        false => "no answer to the websocket handshake",
    };
    let e = io::Error::new(ErrorKind::TimedOut, text);
    Error::io(format!("connecting to {}", server.websocket), e)
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
    use rustls::InvalidMessage::InvalidContentType;
    match e {
        rustls::Error::InvalidCertificate(_) => {
            format!(
                "the server certificate was refused ({})",
                crate::tls::hint(e)
            )
        }
        // A plain HTTP server answers the TLS hello with an HTTP error
        // ("HTTP/1.1 400"), whose first byte is no TLS record type.
        rustls::Error::InvalidMessage(InvalidContentType) => {
            "the server answered in plain HTTP, not TLS: use http:// in --url, or the port \
             where the server speaks TLS"
                .into()
        }
        _ => "secure connection to Rocket.Chat failed".into(),
    }
}
