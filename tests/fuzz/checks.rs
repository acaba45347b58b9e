//! What each fuzz target does with an input, shared by the cargo-fuzz targets
//! (`fuzz_targets/*.rs`) and the replay test (`regressions.rs`, part of
//! `cargo test`), which runs the seeds and every input that once crashed.
//! A check fails by panicking; the functions under test must never panic.
#![allow(dead_code)]

use rocketchatd::testing::ddp::{self, ServerFrame};
use rocketchatd::testing::message;
use rocketchatd::testing::state::{self, Loaded, State};
use rocketchatd::testing::Secret;
use rocketchatd::testing::{options, request};
use serde_json::Value;
use std::path::PathBuf;

/// The API key the socket seeds carry.
pub const FUZZ_KEY: &str = "fuzz-key";
const BOT_ID: &str = "botid";
const BOT_NAME: &str = "jeedombot";

/// A DDP frame as the realtime loop gets it: `parse_frame`, the debug-log
/// redaction, and the message/room parsers on what a frame carries.
pub fn ddp_frame(data: &[u8]) {
    // Websocket text frames are UTF-8 (tungstenite checks); take any bytes anyway.
    let text = String::from_utf8_lossy(data);
    let shown = ddp::redacted(&text);
    if serde_json::from_str::<Value>(&text).is_ok() {
        assert!(
            serde_json::from_str::<Value>(&shown).is_ok(),
            "redacted() of a JSON frame is not JSON: {shown}"
        );
    }
    let Ok(Some(frame)) = ddp::parse_frame(&text) else {
        return;
    };
    match frame {
        ServerFrame::Changed {
            fields: Some(f), ..
        }
        | ServerFrame::Added {
            fields: Some(f), ..
        } => {
            if let Some(args) = f.get("args").and_then(Value::as_array) {
                let _ = message::parse(args, BOT_ID);
                if let Some(m) = args.first() {
                    let _ = message::parse_missed(m, BOT_ID);
                }
                // `rooms-changed` / `subscriptions-changed`: [action, document].
                if let Some(doc) = args.get(1) {
                    let _ = message::parse_room(doc, BOT_NAME);
                }
            }
        }
        ServerFrame::Result {
            result: Some(r), ..
        } => {
            // `rooms/get` answers, `loadMissedMessages` answers.
            let _ = message::parse_rooms(&r, BOT_NAME);
            if let Some(list) = r.as_array() {
                for m in list {
                    let _ = message::parse_missed(m, BOT_ID);
                }
            }
        }
        ServerFrame::Result { error: Some(e), .. } | ServerFrame::Nosub { error: Some(e), .. } => {
            let _ = e.text();
            let _ = e.code();
        }
        _ => {}
    }
}

/// One command-socket request (the bytes up to EOF or the newline).
pub fn socket_request(data: &[u8]) {
    let key = Secret::new(FUZZ_KEY);
    if let Err(e) = request::parse(data, &key) {
        // The error is sent back as a reply line: it must format.
        let _ = e.to_string();
    }
}

/// The free-text options field of a Jeedom command.
pub fn options(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match options::parse(text) {
        Ok(o) => {
            for f in &o.files {
                assert!(!f.is_empty(), "empty file name from {text:?}");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The state file: the serde part (whatever loads must save and load again,
/// identically), then `state::load` on a real file.
pub fn state_file(data: &[u8]) {
    if let Ok(s) = serde_json::from_slice::<State>(data) {
        let saved = serde_json::to_vec_pretty(&s).expect("a loaded state serializes");
        let again: State = serde_json::from_slice(&saved).unwrap_or_else(|e| {
            panic!(
                "a saved state does not load: {e}\n{}",
                String::from_utf8_lossy(&saved)
            )
        });
        let saved2 = serde_json::to_vec_pretty(&again).expect("serializes");
        assert_eq!(saved, saved2, "save -> load -> save changed the file");
        let _ = s.belongs_to("http://127.0.0.1:3000", BOT_NAME);
    }
    let path = scratch().join("state.json");
    if std::fs::write(&path, data).is_ok() {
        let (_, loaded) = state::load(&path, "http://127.0.0.1:3000", BOT_NAME);
        if let Loaded::MovedAside(aside, _) = loaded {
            let _ = std::fs::remove_file(aside);
        }
    }
}

/// Removes this process's scratch directory.
pub fn cleanup() {
    let _ = std::fs::remove_dir_all(scratch());
}

/// A directory of this process for the state files.
fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rcd-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}
