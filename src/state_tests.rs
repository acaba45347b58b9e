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
            seen: VecDeque::from(vec![Seen {
                id: "m1".into(),
                ts_ms: 5,
            }]),
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
        r.remember(&format!("m{i}"), 1000 + i as i64);
    }
    assert_eq!(r.seen.len(), SEEN_PER_ROOM);
    assert!(r.has_seen("m10") && !r.has_seen("m9"));
    // Once acknowledged, only the ids at the watermark's time are kept.
    r.acknowledged(1000 + SEEN_PER_ROOM as i64);
    r.acknowledged(1000);
    assert_eq!(r.watermark_ms, Some(1000 + SEEN_PER_ROOM as i64));
    let left: Vec<&str> = r.seen.iter().map(|s| s.id.as_str()).collect();
    let want: Vec<String> = (SEEN_PER_ROOM..SEEN_PER_ROOM + 10)
        .map(|i| format!("m{i}"))
        .collect();
    assert_eq!(left, want);
}

#[test]
fn seen_ids_are_written_with_their_time_and_bare_ids_still_read() {
    let r: RoomState = serde_json::from_value(serde_json::json!({
        "id": "r", "name": "r", "kind": "group", "seen": ["old", ["new", 7]]
    }))
    .unwrap();
    assert_eq!(
        r.seen[0],
        Seen {
            id: "old".into(),
            ts_ms: i64::MAX
        }
    );
    let back = serde_json::to_value(&r).unwrap();
    assert_eq!(back["seen"][1], serde_json::json!(["new", 7]));
}
