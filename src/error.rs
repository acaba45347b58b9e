//! The one error type of rocketchatd, with the exit codes it maps to.
use std::fmt;
use std::io;

/// Exit status for a run that failed after start-up (or a failed `--check`).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for an invalid command line or configuration file.
pub const EXIT_USAGE: i32 = 2;

/// Everything that can go wrong, keeping the source error where there is one.
///
/// No variant carries a password, token or API key: messages are built from
/// server answers and local context only.
#[derive(Debug)]
pub enum Error {
    /// An invalid option value: names the option and what is wrong.
    Usage {
        option: &'static str,
        reason: String,
    },
    /// An option whose value is well formed but cannot be used at start-up
    /// (a state file another daemon holds, a read-only directory): exit 1.
    Startup {
        option: &'static str,
        reason: String,
    },
    /// A file or socket operation failed on `what` (usually a path).
    Io { what: String, source: io::Error },
    /// JSON that could not be read or written.
    Json {
        what: String,
        source: serde_json::Error,
    },
    /// An HTTP call failed below the HTTP level (DNS, connect, TLS, timeout).
    Http {
        what: String,
        source: Box<ureq::Error>,
    },
    /// An HTTP call got an error status; `reason` is the server's error text,
    /// `refusal` what the caller may act on in it.
    Status {
        what: String,
        status: u16,
        reason: String,
        refusal: Refusal,
    },
    /// HTTP 429: the server's rate limiter refused the call. `reset_ms` is
    /// when it allows calls again (server clock, Unix ms, `X-RateLimit-Reset`).
    RateLimited {
        what: String,
        reason: String,
        reset_ms: Option<i64>,
    },
    /// The websocket failed.
    WebSocket(Box<tungstenite::Error>),
    /// TLS set-up failed (bad CA file, certificate problem).
    Tls { what: String, source: rustls::Error },
    /// Rocket.Chat refused the login; `reason` is the server's text.
    Login { reason: String },
    /// The bot account has two-factor authentication enabled; `method` is
    /// the server's `details.method`: `totp` (an authenticator app) or
    /// `email` (each refused login e-mails the account a code).
    TotpRequired { method: String },
    /// A peer broke the protocol (unexpected frame, missing field).
    Protocol(Protocol),
}

/// What a refusal (an HTTP error status) says beyond its status, read once
/// from the server's text where the answer is read, so that callers match a
/// variant rather than the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server already holds a document with this id (a duplicate key):
    /// for `chat.sendMessage`, the message was posted before.
    DuplicateId,
    /// `rooms.mediaConfirm` no longer knows the uploaded file (a temporary
    /// upload expires after 24 h): upload it again. The server throws
    /// `invalid-file` when `Uploads.findOneById` finds nothing
    /// (apps/meteor/app/api/server/v1/rooms.ts, `rooms.mediaConfirm/:rid/:fileId`).
    FileExpired,
    /// Nothing more than the status and the text.
    Other,
}

/// How a peer broke the protocol. No caller acts on the difference (each
/// ends the call or the session, to be retried as any failure): these only
/// say what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// A 2xx answer of `what` whose body is not JSON.
    NotJson { what: String },
    /// The answer of `what` lacks `field`, which the call needs.
    Missing { what: String, field: &'static str },
    /// A DDP login answer without a user id or token.
    NoLoginToken,
    /// The server does not speak DDP version `ours`; `offered` is its own.
    DdpVersion {
        ours: &'static str,
        offered: Option<String>,
    },
    /// The server refused a subscription; `reason` is its text.
    SubscriptionRefused { reason: String },
    /// The server ended subscription `id`; `reason` is its text, if any.
    SubscriptionEnded { id: String, reason: String },
    /// The server refused `rooms/get`; `reason` is its text.
    RoomsRefused { reason: String },
    /// The thread of a network call ended without an answer.
    CallLost,
    /// A `--check` stopped before its end.
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an `Io` error with its context.
    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Builds a `Usage` error for `option`.
    pub fn usage(option: &'static str, reason: impl Into<String>) -> Error {
        Error::Usage {
            option,
            reason: reason.into(),
        }
    }

    /// Builds a `Startup` error for `option`.
    pub fn startup(option: &'static str, reason: impl Into<String>) -> Error {
        Error::Startup {
            option,
            reason: reason.into(),
        }
    }

    /// Names the option behind this start-up failure (a pid file, a
    /// directory, a port); an error that names an option already is kept.
    pub fn for_option(self, option: &'static str) -> Error {
        match self {
            Error::Usage { .. } | Error::Startup { .. } => self,
            other => Error::startup(option, other.chain().to_string()),
        }
    }

    /// The process exit status for this error when it ends the run.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. } => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { option, reason } => write!(f, "invalid --{option}: {reason}"),
            Error::Startup { option, reason } => write!(f, "invalid --{option}: {reason}"),
            // The variants with a source leave it to `source()` (see `chain`).
            Error::Io { what, .. } => f.write_str(what),
            Error::Json { what, .. } => write!(f, "{what}: invalid JSON"),
            Error::Http { what, source } => match source.as_ref() {
                ureq::Error::Rustls(tls) => write!(f, "{what} ({})", crate::tls::hint(tls)),
                _ => f.write_str(what),
            },
            Error::Status {
                what,
                status,
                reason,
                ..
            } => write!(f, "{what}: HTTP {status}: {reason}"),
            Error::RateLimited { what, reason, .. } => write!(f, "{what}: HTTP 429: {reason}"),
            Error::WebSocket(_) => f.write_str("websocket"),
            Error::Tls { what, .. } => write!(f, "{what}: TLS"),
            Error::Login { reason } => write!(f, "login failed: {reason}"),
            Error::TotpRequired { method } if method == "email" => f.write_str(
                "login failed: the bot account has two-factor authentication by e-mail enabled \
                 (a refused password login e-mails it a code, so the daemon tries again only once an \
                 hour); disable 2FA for the bot user or log in with a personal access token \
                 (--user-id and --token)",
            ),
            Error::TotpRequired { method } => write!(
                f,
                "login failed: the bot account has two-factor authentication ({}) enabled; \
                 disable 2FA for the bot user or log in with a personal access token (--user-id and --token)",
                if method == "totp" { "TOTP, an authenticator app" } else { method }
            ),
            Error::Protocol(what) => write!(f, "protocol error: {what}"),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::NotJson { what } => write!(f, "{what}: the server's answer is not JSON"),
            Protocol::Missing { what, field } => write!(f, "{what}: no {field} in the answer"),
            Protocol::NoLoginToken => f.write_str("the login answer has no user id or token"),
            Protocol::DdpVersion { ours, offered } => write!(
                f,
                "the server does not speak DDP version {ours} (it offers {})",
                offered.as_deref().unwrap_or("none")
            ),
            Protocol::SubscriptionRefused { reason } => {
                write!(f, "the server refused a subscription: {reason}")
            }
            Protocol::SubscriptionEnded { id, reason } => {
                write!(f, "the server ended subscription {id} {reason}")
            }
            Protocol::RoomsRefused { reason } => write!(f, "rooms/get refused: {reason}"),
            Protocol::CallLost => f.write_str("a network call failed unexpectedly"),
            Protocol::Interrupted => f.write_str("the check was interrupted"),
        }
    }
}

impl From<Protocol> for Error {
    fn from(p: Protocol) -> Error {
        Error::Protocol(p)
    }
}

impl Error {
    /// The text a person reads (exit message, log lines, events, replies):
    /// this error, then `: cause`. One level only: the sources here (io,
    /// serde_json, ureq, tungstenite, rustls) already print their own causes.
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }
}

/// See [`Error::chain`].
pub struct Chain<'a>(&'a Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        match std::error::Error::source(self.0) {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Json { source, .. } => Some(source),
            Error::Http { source, .. } => Some(source.as_ref()),
            Error::WebSocket(e) => Some(e.as_ref()),
            Error::Tls { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<tungstenite::Error> for Error {
    fn from(e: tungstenite::Error) -> Error {
        Error::WebSocket(Box::new(e))
    }
}

impl From<serde_json::Error> for Error {
    fn from(source: serde_json::Error) -> Error {
        Error::Json {
            what: "JSON".into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_the_option_and_exits_2() {
        let e = Error::usage("socketport", "must be between 1024 and 65535");
        assert_eq!(
            e.to_string(),
            "invalid --socketport: must be between 1024 and 65535"
        );
        assert_eq!(e.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn a_startup_failure_names_its_option_once_and_exits_1() {
        let io = Error::io(
            "cannot create /proc/x",
            io::Error::new(io::ErrorKind::NotFound, "No such file or directory"),
        );
        let e = io.for_option("state");
        assert_eq!(
            e.to_string(),
            "invalid --state: cannot create /proc/x: No such file or directory"
        );
        assert_eq!(e.exit_code(), EXIT_FAILURE);
        let e = e.for_option("pid");
        assert!(e.to_string().starts_with("invalid --state: "), "{e}");
        let e = Error::usage("ca-file", "empty").for_option("state");
        assert_eq!(e.to_string(), "invalid --ca-file: empty");
        assert_eq!(e.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn io_error_keeps_its_source_and_the_chain_shows_it_once() {
        let e = Error::io("/tmp/x", io::Error::new(io::ErrorKind::NotFound, "gone"));
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.to_string(), "/tmp/x");
        assert_eq!(e.chain().to_string(), "/tmp/x: gone");
        assert_eq!(e.exit_code(), EXIT_FAILURE);
    }

    #[test]
    fn protocol_errors_say_what_broke() {
        let text = |p: Protocol| Error::from(p).to_string();
        let missing = Protocol::Missing {
            what: "im.create".into(),
            field: "room id",
        };
        assert_eq!(
            text(missing),
            "protocol error: im.create: no room id in the answer"
        );
        let version = Protocol::DdpVersion {
            ours: "1",
            offered: None,
        };
        assert_eq!(
            text(version),
            "protocol error: the server does not speak DDP version 1 (it offers none)"
        );
        let ended = Protocol::SubscriptionEnded {
            id: "7".into(),
            reason: "gone".into(),
        };
        assert_eq!(
            text(ended),
            "protocol error: the server ended subscription 7 gone"
        );
        assert!(std::error::Error::source(&Error::from(Protocol::CallLost)).is_none());
    }
}
