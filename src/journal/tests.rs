//! Unit tests of the journal: records, replay, torn and stale lines.
use super::*;
use serde_json::json;

fn state() -> State {
    State::fresh("http://x", "bot")
}

fn lines(ops: &[(u64, Op)]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (n, op) in ops {
        encode(&mut buf, *n, op).unwrap();
    }
    buf
}

fn push(seq: u64, text: &str) -> Op {
    Op::Push {
        event: QueuedEvent::new(seq, None, &json!({"type": "message", "text": text})),
    }
}

#[test]
fn records_are_replayed_in_order_once() {
    let bytes = lines(&[
        (1, push(0, "a")),
        (2, push(1, "b")),
        (3, Op::Ack { upto: 0 }),
    ]);
    let mut s = state();
    assert_eq!(replay(&mut s, &bytes), 3);
    assert_eq!(s.journal_applied, 3);
    assert_eq!(s.next_seq, 2);
    assert_eq!(s.events.len(), 1);
    assert_eq!(s.events[0].value()["text"], "b");
    assert_eq!(s.events[0].kind, crate::state::EventKind::Message);
    // The same journal again (a crash before it was removed) changes nothing.
    assert_eq!(replay(&mut s, &bytes), 0);
    assert_eq!(s.events.len(), 1);
}

#[test]
fn a_torn_last_line_and_a_gap_end_the_replay() {
    let mut bytes = lines(&[(1, push(0, "a")), (2, push(1, "b"))]);
    bytes.extend_from_slice(br#"[3,{"push":{"seq":2,"ev"#);
    let mut s = state();
    assert_eq!(replay(&mut s, &bytes), 2);
    let gap = lines(&[(5, push(4, "e"))]);
    assert_eq!(replay(&mut s, &gap), 0, "record 3 and 4 are missing");
    assert_eq!(s.events.len(), 2);
}

#[test]
fn records_already_in_the_state_file_are_skipped() {
    let bytes = lines(&[(1, push(0, "a")), (2, push(1, "b"))]);
    let mut s = state();
    s.journal_applied = 1;
    assert_eq!(replay(&mut s, &bytes), 1);
    assert_eq!(s.events[0].value()["text"], "b");
}

#[test]
fn a_record_is_one_readable_line() {
    let bytes = lines(&[(7, Op::Done { key: "k1".into() })]);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "[7,{\"done\":{\"key\":\"k1\"}}]\n"
    );
}

#[test]
fn a_room_then_its_seen_ids_and_acks() {
    let room = crate::model::Room {
        id: "R".into(),
        name: "r".into(),
        kind: crate::model::RoomKind::Channel,
        users: vec![],
        last_message_ms: None,
    };
    let seen = |id: &str, ts_ms| Op::Seen {
        room: "R".into(),
        id: id.into(),
        ts_ms,
    };
    let ops = [
        (
            1,
            Op::Room {
                room: RoomState::new(room, None),
            },
        ),
        (2, seen("m1", 10)),
        (3, seen("m2", 20)),
        (
            4,
            Op::RoomAck {
                room: "R".into(),
                ts_ms: 15,
            },
        ),
    ];
    let mut s = state();
    replay(&mut s, &lines(&ops));
    // The same calls the core makes in memory.
    let Op::Room { room: mut expected } = ops[0].1.clone() else {
        unreachable!()
    };
    expected.remember("m1", 10);
    expected.remember("m2", 20);
    expected.acknowledged(15);
    let json = |r: &RoomState| serde_json::to_value(r).unwrap();
    assert_eq!(json(&s.rooms["R"]), json(&expected));
    assert_eq!(s.rooms["R"].watermark_ms, Some(15));
    assert!(s.rooms["R"].has_seen("m2"));
}
