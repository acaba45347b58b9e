//! Test doubles shared by the integration tests: fake Jeedom, fake Rocket.Chat, helpers.
#![allow(dead_code)]

pub mod ddp_client;
pub mod fake_jeedom;
pub mod fake_rc;
pub mod http;
pub mod wait;
