//! rocketchatd: bridge between a Jeedom box and a Rocket.Chat server.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod bus;
pub mod cert_dates;
pub mod check;
pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod error;
pub mod http_tls;
pub mod instance;
pub mod jeedom;
pub mod journal;
pub mod logging;
pub mod model;
pub mod pidfile;
pub mod rocketchat;
pub mod safe_file;
pub mod state;
pub mod systemd;
pub mod tls;
