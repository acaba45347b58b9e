//! systemd readiness, status and watchdog notifications (sd_notify protocol over `$NOTIFY_SOCKET`), without libsystemd.

use std::ffi::{OsStr, OsString};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends sd_notify messages to the service manager. Cheap to clone; clones
/// share the watchdog rate limit. Every error is logged at debug level and
/// otherwise ignored: a notification never fails the daemon.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the datagrams go: a path or an abstract (`@name`) address.
    addr: SocketAddr,
    /// Printable form of `addr`, for log lines.
    name: String,
    watchdog: Option<Duration>,
    /// When the last `WATCHDOG=1` left, for the rate limit.
    last_ping: Mutex<Option<Instant>>,
}

impl Notifier {
    /// The notifier systemd asked for through `$NOTIFY_SOCKET`, or `None`
    /// when it is unset (not started by systemd, or not `Type=notify`) or
    /// names a socket kind this module does not speak (e.g. `vsock:`).
    /// The watchdog interval comes from `$WATCHDOG_USEC` / `$WATCHDOG_PID`.
    pub fn from_env() -> Option<Notifier> {
        Self::from_vars(
            std::env::var_os("NOTIFY_SOCKET"),
            std::env::var_os("WATCHDOG_USEC"),
            std::env::var_os("WATCHDOG_PID"),
            std::process::id(),
        )
    }

    fn new(addr: SocketAddr, name: String, watchdog: Option<Duration>) -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                addr,
                name,
                watchdog,
                last_ping: Mutex::new(None),
            }),
        }
    }

    /// `from_env` without reading the environment, so tests need not change it.
    fn from_vars(
        notify_socket: Option<OsString>,
        watchdog_usec: Option<OsString>,
        watchdog_pid: Option<OsString>,
        our_pid: u32,
    ) -> Option<Notifier> {
        let socket = notify_socket?;
        let bytes = socket.as_bytes();
        let addr = if let Some(name) = bytes.strip_prefix(b"@") {
            SocketAddr::from_abstract_name(name)
        } else if bytes.starts_with(b"/") {
            SocketAddr::from_pathname(Path::new(&socket))
        } else {
            log::debug!("sd_notify: unsupported NOTIFY_SOCKET {socket:?}, notifications disabled");
            return None;
        };
        let addr = match addr {
            Ok(addr) => addr,
            Err(e) => {
                log::debug!("sd_notify: bad NOTIFY_SOCKET {socket:?}: {e}");
                return None;
            }
        };
        let watchdog = parse_watchdog(watchdog_usec.as_deref(), watchdog_pid.as_deref(), our_pid);
        Some(Notifier::new(
            addr,
            socket.to_string_lossy().into_owned(),
            watchdog,
        ))
    }

    /// `READY=1`: start-up is finished (the command socket listens).
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// `STATUS=<text>`: one line shown by `systemctl status`. Newlines
    /// would start new assignments, so they become spaces.
    pub fn status(&self, text: &str) {
        let line: String = text
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        self.send(&format!("STATUS={line}"));
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// `WATCHDOG=1`, sent at most once per quarter of the watchdog interval
    /// (so calling it on every loop turn is fine), and never when systemd
    /// set no watchdog for this process.
    pub fn watchdog(&self) {
        let Some(interval) = self.inner.watchdog else {
            return;
        };
        let now = Instant::now();
        {
            let mut last = self
                .inner
                .last_ping
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(t) = *last {
                if now.duration_since(t) < interval / 4 {
                    return;
                }
            }
            *last = Some(now);
        }
        self.send("WATCHDOG=1");
    }

    /// The watchdog interval systemd enforces on this process
    /// (`WatchdogSec=`), if any.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.inner.watchdog
    }

    fn send(&self, message: &str) {
        // A fresh unbound socket per message, as libsystemd does: nothing to
        // keep open, and nothing stale after an error.
        let result = UnixDatagram::unbound()
            .and_then(|sock| sock.send_to_addr(message.as_bytes(), &self.inner.addr));
        match result {
            Ok(_) => log::debug!("sd_notify: {message}"),
            Err(e) => log::debug!("sd_notify to {} failed ({message}): {e}", self.inner.name),
        }
    }
}

/// `$WATCHDOG_USEC` as a duration, when set, positive, and meant for us
/// (`$WATCHDOG_PID`, when set, must be our pid).
fn parse_watchdog(usec: Option<&OsStr>, pid: Option<&OsStr>, our_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.to_str()?.trim().parse::<u32>().ok()? != our_pid {
            return None;
        }
    }
    let usec: u64 = usec?.to_str()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A datagram socket bound in a fresh temporary directory, standing in
    /// for systemd's notification socket; the directory goes away on drop.
    struct FakeSystemd {
        dir: PathBuf,
        path: PathBuf,
        sock: UnixDatagram,
    }

    impl FakeSystemd {
        fn new() -> FakeSystemd {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "rocketchatd-notify-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("notify");
            let sock = UnixDatagram::bind(&path).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            FakeSystemd { dir, path, sock }
        }

        fn recv(&self) -> String {
            let mut buf = [0u8; 4096];
            let n = self.sock.recv(&mut buf).expect("a datagram");
            String::from_utf8(buf[..n].to_vec()).unwrap()
        }

        fn assert_nothing_pending(&self) {
            self.sock.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 4096];
            match self.sock.recv(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                other => panic!("unexpected datagram: {other:?}"),
            }
            self.sock.set_nonblocking(false).unwrap();
        }
    }

    impl Drop for FakeSystemd {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    /// A notifier for the socket at `path`, as `$NOTIFY_SOCKET` and
    /// `$WATCHDOG_USEC` would give it.
    fn notifier(path: &Path, watchdog: Option<Duration>) -> Notifier {
        let usec = watchdog.map(|d| OsString::from(d.as_micros().to_string()));
        Notifier::from_vars(Some(path.as_os_str().into()), usec, None, 1).unwrap()
    }

    #[test]
    fn ready_status_stopping_reach_the_socket() {
        let sd = FakeSystemd::new();
        let n = notifier(&sd.path, None);
        n.ready();
        assert_eq!(sd.recv(), "READY=1");
        n.status("connected to https://chat.example.org (7.4.1)");
        assert_eq!(
            sd.recv(),
            "STATUS=connected to https://chat.example.org (7.4.1)"
        );
        n.stopping();
        assert_eq!(sd.recv(), "STOPPING=1");
        sd.assert_nothing_pending();
    }

    #[test]
    fn status_newlines_cannot_inject_assignments() {
        let sd = FakeSystemd::new();
        let n = notifier(&sd.path, None);
        n.status("line one\nREADY=1");
        assert_eq!(sd.recv(), "STATUS=line one READY=1");
    }

    #[test]
    fn watchdog_is_rate_limited_to_a_quarter_interval() {
        let sd = FakeSystemd::new();
        let n = notifier(&sd.path, Some(Duration::from_secs(120)));
        n.watchdog();
        assert_eq!(sd.recv(), "WATCHDOG=1");
        // Clones share the limit.
        let clone = n.clone();
        for _ in 0..10 {
            n.watchdog();
            clone.watchdog();
        }
        sd.assert_nothing_pending();
    }

    #[test]
    fn watchdog_pings_again_after_a_quarter_interval() {
        let sd = FakeSystemd::new();
        let n = notifier(&sd.path, Some(Duration::from_millis(40)));
        n.watchdog();
        assert_eq!(sd.recv(), "WATCHDOG=1");
        std::thread::sleep(Duration::from_millis(30)); // > 40 ms / 4
        n.watchdog();
        assert_eq!(sd.recv(), "WATCHDOG=1");
    }

    #[test]
    fn no_watchdog_interval_means_no_ping() {
        let sd = FakeSystemd::new();
        let n = notifier(&sd.path, None);
        assert_eq!(n.watchdog_interval(), None);
        n.watchdog();
        sd.assert_nothing_pending();
    }

    #[test]
    fn errors_are_ignored() {
        let sd = FakeSystemd::new();
        let gone = sd.dir.join("nobody-listens-here");
        let n = notifier(&gone, Some(Duration::from_secs(1)));
        n.ready();
        n.status("x");
        n.watchdog();
        n.stopping();
        let too_long = format!("/{}", "x".repeat(200));
        assert!(Notifier::from_vars(os(&too_long), None, None, 1).is_none());
    }

    #[test]
    fn from_vars_path_socket() {
        let sd = FakeSystemd::new();
        let n =
            Notifier::from_vars(Some(sd.path.clone().into_os_string()), None, None, 42).unwrap();
        assert_eq!(n.watchdog_interval(), None);
        n.ready();
        assert_eq!(sd.recv(), "READY=1");
    }

    #[test]
    fn from_vars_abstract_socket() {
        let name = format!("rocketchatd-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::from_vars(os(&format!("@{name}")), os("2000000"), None, 42).unwrap();
        n.status("hello");
        n.watchdog();
        let mut buf = [0u8; 64];
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STATUS=hello");
        let len = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn from_vars_without_or_with_unsupported_socket() {
        assert!(Notifier::from_vars(None, os("1000"), None, 1).is_none());
        assert!(Notifier::from_vars(os("relative/path"), None, None, 1).is_none());
        assert!(Notifier::from_vars(os("vsock:2:1234"), None, None, 1).is_none());
        assert!(Notifier::from_vars(os(""), None, None, 1).is_none());
    }

    #[test]
    fn watchdog_interval_from_usec_and_pid() {
        let sock = os("/run/systemd/notify");
        let get = |usec: Option<&str>, pid: Option<&str>| {
            Notifier::from_vars(sock.clone(), usec.and_then(os), pid.and_then(os), 4242)
                .unwrap()
                .watchdog_interval()
        };
        assert_eq!(get(Some("120000000"), None), Some(Duration::from_secs(120)));
        assert_eq!(
            get(Some("120000000"), Some("4242")),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            get(Some("120000000"), Some("4243")),
            None,
            "meant for another process"
        );
        assert_eq!(get(Some("120000000"), Some("junk")), None);
        assert_eq!(get(Some("0"), None), None);
        assert_eq!(get(Some("soon"), None), None);
        assert_eq!(get(None, Some("4242")), None);
    }

    #[test]
    fn notifier_is_send_and_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Notifier>();
    }
}
