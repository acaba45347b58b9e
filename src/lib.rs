//! rocketchatd: bridge between a Jeedom box and a Rocket.Chat server.
#![forbid(unsafe_code)]

mod backoff;
mod bridge;
mod bus;
mod cert_dates;
mod check;
mod cli;
mod config;
mod core;
mod daemon;
mod error;
mod http_tls;
mod instance;
mod jeedom;
mod journal;
mod logging;
mod model;
mod pidfile;
mod rocketchat;
mod safe_file;
mod state;
mod systemd;
mod tls;

pub use cli::main_with_args;

/// The one fake HTTP server (plain, TLS, websocket upgrades), that of the
/// integration tests' fakes, for the unit tests too. A crate cannot see
/// tests/ through its own modules, and exporting the fake from the library
/// would compile test code into the daemon: it is included here, once, for
/// the unit tests only.
#[cfg(test)]
mod test_dir;

#[cfg(test)]
#[path = "../tests/support/http/mod.rs"]
#[allow(dead_code)] // The unit tests use a part of it.
mod fake_http;

/// What the tests outside the crate use (fuzz targets and their replay test,
/// endurance, the harness): the parsers under fuzz and the state file as a
/// restart reads it. Not an API.
#[doc(hidden)]
pub mod testing {
    pub use crate::journal::replay_files;
    pub use crate::model::Secret;
    pub mod ddp {
        pub use crate::rocketchat::ddp::{parse_frame, redacted, ServerFrame};
    }
    pub mod message {
        pub use crate::rocketchat::message::{parse, parse_missed, parse_room, parse_rooms};
    }
    pub mod options {
        pub use crate::jeedom::options::parse;
    }
    pub mod request {
        pub use crate::jeedom::request::parse;
    }
    pub mod state {
        pub use crate::state::{load, Loaded, State};
    }
}
