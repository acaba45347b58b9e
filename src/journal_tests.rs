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
fn seen_ids_of_an_unknown_room_create_it_and_acks_prune_them() {
    let mut s = state();
    let ops = [
        (
            1,
            Op::Seen {
                room: "R".into(),
                id: "m1".into(),
                ts_ms: 10,
            },
        ),
        (
            2,
            Op::Seen {
                room: "R".into(),
                id: "m2".into(),
                ts_ms: 20,
            },
        ),
        (
            3,
            Op::RoomAck {
                room: "R".into(),
                ts_ms: 15,
            },
        ),
    ];
    replay(&mut s, &lines(&ops));
    let r = &s.rooms["R"];
    assert_eq!(r.watermark_ms, Some(15));
    assert!(r.has_seen("m2") && !r.has_seen("m1"));
}
