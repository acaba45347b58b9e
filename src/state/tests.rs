//! Unit tests of state loading and atomic saving.
use super::*;
use crate::model::RoomKind;
use crate::test_dir::TestDir;
use std::os::unix::fs::PermissionsExt;

fn dir(name: &str) -> TestDir {
    TestDir::new(&format!("state-{name}"))
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
            seen: VecDeque::from(vec![Seen {
                id: "m1".into(),
                ts_ms: 5,
            }]),
            ..RoomState::new(room, Some(42))
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
    let mut r = room_state(None);
    const MINUTE: i64 = 60_000;
    for i in 0..(SEEN_PER_ROOM + 10) {
        r.remember(&format!("m{i}"), i as i64 * MINUTE);
    }
    assert_eq!(r.seen.len(), SEEN_PER_ROOM);
    assert!(r.has_seen("m10") && !r.has_seen("m9"));
    // Once acknowledged, the ids of the last ID_MEMORY_MS before the
    // watermark are kept, so that a message stamped a little earlier than
    // the last one delivered is still told apart by its id.
    let last = (SEEN_PER_ROOM + 9) as i64 * MINUTE;
    r.acknowledged(last);
    r.acknowledged(1000);
    assert_eq!(r.watermark_ms, Some(last));
    assert_eq!(r.horizon(), Some(last - ID_MEMORY_MS));
    let kept = (ID_MEMORY_MS / MINUTE) as usize + 1;
    let left: Vec<&str> = r.seen.iter().map(|s| s.id.as_str()).collect();
    let want: Vec<String> = (SEEN_PER_ROOM + 10 - kept..SEEN_PER_ROOM + 10)
        .map(|i| format!("m{i}"))
        .collect();
    assert_eq!(left, want);
}

fn room_state(watermark: Option<i64>) -> RoomState {
    let room = Room {
        id: "r".into(),
        name: "r".into(),
        kind: RoomKind::Group,
        users: vec![],
        last_message_ms: None,
    };
    RoomState::new(room, watermark)
}

#[test]
fn a_message_stamped_just_before_the_last_delivered_one_is_not_old() {
    let mut r = room_state(Some(0));
    r.remember("a", 10_000);
    r.acknowledged(10_000);
    assert!(r.has_seen("a"));
    assert!(!r.is_old(9_999), "1 ms earlier is judged by its id");
    assert!(r.is_old(10_000 - ID_MEMORY_MS - 1), "beyond the id memory");
}

#[test]
fn a_message_from_the_future_neither_silences_the_room_nor_is_forgotten() {
    let mut r = room_state(Some(1_000));
    let hour = 3_600_000;
    r.remember("future", 2_000 + hour);
    // The core acknowledges a future stamp clamped to its own clock.
    r.acknowledged(2_000);
    assert!(r.has_seen("future"), "its id stays until time catches up");
    assert!(!r.is_old(2_001));
    for i in 0..SEEN_PER_ROOM + 5 {
        r.remember(&format!("m{i}"), 3_000 + i as i64);
    }
    assert!(
        r.horizon() <= r.watermark_ms,
        "ids falling off never move the horizon past the watermark"
    );
}

#[test]
fn files_of_earlier_versions_remember_ids_from_the_watermark() {
    let r: RoomState = serde_json::from_value(serde_json::json!({
        "id": "r", "name": "r", "kind": "group", "watermark_ms": 5000, "seen": [["x", 5000]]
    }))
    .unwrap();
    assert_eq!(r.horizon(), Some(5000));
    assert!(r.is_old(4999) && !r.is_old(5000));
    let mut r = r;
    r.acknowledged(5000 + 2 * ID_MEMORY_MS);
    assert_eq!(r.horizon(), Some(5000 + ID_MEMORY_MS));
    let back = serde_json::to_value(&r).unwrap();
    assert_eq!(back["ids_from_ms"], 5000 + ID_MEMORY_MS);
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
