//! The bridge's own rules, shared by both sides and the core: neither Jeedom's nor Rocket.Chat's protocol.
//!
//! `jeedom/` and `rocketchat/` import this module and never each other; the
//! core imports this module, `bus`, `model` and `state`, never a side.
pub(crate) mod answers;
pub(crate) mod clock;
pub(crate) mod events;
pub(crate) mod mention;

use serde_json::{json, Value};

/// The refusal a command-socket request gets, from the socket or the core.
pub fn error_json(error: &str) -> Value {
    json!({"ok": false, "error": error})
}
