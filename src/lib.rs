//! rocketchatd: bridge between Jeedom and Rocket.Chat.
#![forbid(unsafe_code)]

pub mod systemd;
