//! Unit tests of state loading and atomic saving.
use super::*;
use crate::model::RoomKind;
use std::os::unix::fs::PermissionsExt;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rcd-state-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

const URL: &str = "http://chat.local";

fn bot() -> &'static str {
    "jeedombot"
}

#[test]
fn missing_file_is_a_first_run() {
    let d = dir("missing");
    let (s, how) = load(&d.join("state.json"), URL, bot());
    assert_eq!(how, Loaded::FirstRun);
    assert_eq!(s.schema, SCHEMA);
}

#[test]
fn save_then_load_round_trips_with_mode_0600() {
    let d = dir("roundtrip");
    let p = d.join("state.json");
    let mut s = State::fresh(URL, bot());
    let room = Room {
        id: "GENERAL".into(),
        name: "general".into(),
        kind: RoomKind::Channel,
        users: vec![],
        last_message_ms: None,
    };
    s.rooms.insert(
        "GENERAL".into(),
        RoomState {
            room,
            watermark_ms: Some(42),
            seen: VecDeque::from(vec!["m1".to_string()]),
        },
    );
    save(&p, &s).unwrap();
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (back, how) = load(&p, URL, bot());
    assert_eq!(how, Loaded::Resumed);
    assert_eq!(back.rooms["GENERAL"].watermark_ms, Some(42));
    assert!(!d.join("state.json.tmp").exists());
}

#[test]
fn corrupt_file_is_moved_aside() {
    let d = dir("corrupt");
    let p = d.join("state.json");
    fs::write(&p, b"{\"schema\": 1, \"rooms\": {").unwrap();
    let (_, how) = load(&p, URL, bot());
    match how {
        Loaded::MovedAside(aside, _) => {
            assert!(aside.to_string_lossy().contains("state.json.corrupt-"));
            assert!(aside.exists());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!p.exists());
}

#[test]
fn state_of_another_server_or_user_is_not_reused() {
    let d = dir("other");
    let p = d.join("state.json");
    save(&p, &State::fresh("http://other.server", bot())).unwrap();
    assert_eq!(load(&p, URL, bot()).1, Loaded::OtherAccount);
    save(&p, &State::fresh(URL, "someoneelse")).unwrap();
    assert_eq!(load(&p, URL, bot()).1, Loaded::OtherAccount);
}

#[test]
fn seen_ids_are_bounded() {
    let room = Room {
        id: "r".into(),
        name: "r".into(),
        kind: RoomKind::Group,
        users: vec![],
        last_message_ms: None,
    };
    let mut r = RoomState {
        room,
        watermark_ms: None,
        seen: VecDeque::new(),
    };
    for i in 0..(SEEN_PER_ROOM + 10) {
        r.remember(&format!("m{i}"));
    }
    assert_eq!(r.seen.len(), SEEN_PER_ROOM);
    assert_eq!(r.seen.front().map(String::as_str), Some("m10"));
}
