//! Unit tests of the catch-up: selection, per-room holding, retries.
use super::*;
use crate::model::RoomKind;
use serde_json::json;
use std::sync::Mutex;

fn raw(id: &str, rid: &str, ts: i64) -> Value {
    json!({"_id": id, "rid": rid, "msg": id, "ts": {"$date": ts},
           "u": {"_id": "u1", "username": "alice"}})
}

fn ids(list: &[Incoming]) -> Vec<&str> {
    list.iter().map(|m| m.id.as_str()).collect()
}

/// The ids of a finished room, each with where it came from.
fn arrivals(done: &Finished) -> Vec<(&str, Source)> {
    done.messages
        .iter()
        .map(|(m, s)| (m.id.as_str(), *s))
        .collect()
}

/// A room whose list came after every message of these tests (its
/// history's messages were missed, none is still on the stream).
fn room(id: &str) -> Room {
    listed(id, now_ms() + 60_000)
}

/// A room as the list gave it, its last message at `ms`.
fn listed(id: &str, ms: i64) -> Room {
    Room {
        id: id.into(),
        name: id.to_lowercase(),
        kind: RoomKind::Channel,
        users: vec![],
        last_message_ms: Some(ms),
    }
}

fn live(id: &str, rid: &str) -> Incoming {
    message::parse_missed(&raw(id, rid, now_ms()), "bot").unwrap()
}

/// A catch-up whose core answered `marks`.
fn started(marks: Vec<(String, i64)>) -> CatchUp {
    let (tx, rx) = mpsc::channel();
    let mut c = CatchUp::start(&tx);
    let Ok(CoreMsg::Realtime(RtEvent::Watermarks { reply })) = rx.try_recv() else {
        panic!("no watermark request");
    };
    reply.send(marks).unwrap();
    assert!(c.poll_watermarks(Instant::now()).is_some());
    c
}

/// Polls until `n` rooms finished (bounded).
fn finish(c: &mut CatchUp, n: usize) -> Vec<Finished> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "catch-up did not finish");
        out.extend(c.poll("bot"));
        // Polls the condition, as tests/support/wait.rs does.
        std::thread::sleep(Duration::from_millis(5));
    }
    out
}

#[test]
fn select_orders_oldest_first_and_drops_old_ones() {
    let now = 10 * MAX_AGE_MS;
    let answer = json!([
        raw("c", "R", now - 1000),
        raw("b", "R", now - 2000),
        raw("old", "R", now - MAX_AGE_MS - 1),
        {"_id": "bad"},
        raw("a", "R", now - 3000)
    ]);
    assert_eq!(ids(&select_missed(&answer, now, "bot")), ["a", "b", "c"]);
    assert!(select_missed(&json!(false), now, "bot").is_empty());
}

#[test]
fn select_keeps_the_500_newest() {
    let now = 10 * MAX_AGE_MS;
    let answer: Vec<Value> = (0..600)
        .map(|i| raw(&format!("m{i}"), "R", now - i))
        .collect();
    let got = select_missed(&Value::Array(answer), now, "bot");
    assert_eq!(got.len(), MAX_PER_ROOM);
    assert_eq!(got[0].id, "m499");
    assert_eq!(got[499].id, "m0");
}

#[test]
fn a_rooms_live_messages_wait_for_its_own_catch_up_only() {
    let mut c = started(vec![("A".into(), 1)]);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go = Mutex::new(go_rx);
    let now = now_ms();
    let fetch = Box::new(move |r: &Room, _: i64, _: usize| {
        let _ = go.lock().unwrap().recv();
        Ok(vec![raw("a2", &r.id, now - 10), raw("a1", &r.id, now - 20)])
    });
    let passed = c.begin(vec![(room("A"), 1)], fetch);
    assert!(passed.is_empty(), "watermarks came before any live message");
    assert!(c.live(live("a3", "A")).is_none(), "room A is loading");
    assert_eq!(c.live(live("b1", "B")).map(|m| m.id), Some("b1".into()));
    assert!(!c.done());
    go_tx.send(()).unwrap();
    let done = finish(&mut c, 1);
    assert_eq!(done[0].room, "A");
    assert!(done[0].loaded);
    let h = Source::History;
    assert_eq!(
        arrivals(&done[0]),
        [("a1", h), ("a2", h), ("a3", Source::Live)]
    );
    assert!(c.done());
    assert!(c.live(live("a4", "A")).is_some());
}

#[test]
fn early_live_messages_are_sorted_out_when_the_watermarks_come() {
    let (tx, rx) = mpsc::channel();
    let mut c = CatchUp::start(&tx);
    assert!(c.live(live("a0", "A")).is_none());
    assert!(c.live(live("b0", "B")).is_none());
    let Ok(CoreMsg::Realtime(RtEvent::Watermarks { reply })) = rx.try_recv() else {
        panic!("no watermark request");
    };
    reply.send(vec![("A".into(), 1)]).unwrap();
    assert!(c.poll_watermarks(Instant::now()).is_some());
    let fetch = Box::new(|r: &Room, _: i64, _: usize| Ok(vec![raw("a0", &r.id, now_ms())]));
    let passed = c.begin(vec![(room("A"), 1)], fetch);
    assert_eq!(ids(&passed), ["b0"], "room B is not caught up: at once");
    let done = finish(&mut c, 1);
    let once = [("a0", Source::Live)];
    assert_eq!(
        arrivals(&done[0]),
        once,
        "a0 came both ways: once, not missed"
    );
}

#[test]
fn a_failing_room_is_retried_until_it_loads_and_a_refusal_gives_up() {
    let mut c = started(vec![]);
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = calls.clone();
    let fetch = Box::new(move |r: &Room, _: i64, _: usize| {
        let mut calls = seen.lock().unwrap();
        calls.push(r.id.clone());
        let tries = calls.iter().filter(|id| **id == r.id).count();
        match (r.id.as_str(), tries) {
            ("A", 1) => Err(Error::RateLimited {
                what: "x".into(),
                reason: "slow down".into(),
                reset_ms: Some(now_ms() + 300),
            }),
            ("B", _) => Err(Error::Status {
                what: "x".into(),
                status: 403,
                reason: "not allowed".into(),
                refusal: crate::error::Refusal::Other,
            }),
            _ => Ok(vec![raw("a1", &r.id, now_ms())]),
        }
    });
    c.begin(vec![(room("A"), 1), (room("B"), 1)], fetch);
    let mut done = finish(&mut c, 2);
    done.sort_by(|a, b| a.room.cmp(&b.room));
    assert!(done[0].loaded && arrivals(&done[0]) == [("a1", Source::History)]);
    assert!(!done[1].loaded, "a refusal for good is not retried");
    assert_eq!(*calls.lock().unwrap(), ["A", "A", "B"]);
}

#[test]
fn no_watermarks_means_no_replay_and_live_flows() {
    let (tx, rx) = mpsc::channel();
    let mut c = CatchUp::start(&tx);
    drop(rx);
    let t0 = Instant::now();
    assert!(c.live(live("x", "R")).is_none());
    assert_eq!(c.poll_watermarks(t0), Some(vec![]));
    let passed = c.begin(vec![], Box::new(|_: &Room, _: i64, _: usize| Ok(vec![])));
    assert_eq!(ids(&passed), ["x"]);
    assert!(c.done());
}

/// A flood during the catch-up: the history holds messages newer than some
/// held live ones, and the stream's frames of others come after the room
/// is loaded (the CI fault of tests/README.md). The room waits for them,
/// then goes in order, each once.
#[test]
fn history_and_held_merge_in_order_and_late_copies_are_dropped() {
    let mut c = started(vec![("A".into(), 1)]);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go = Mutex::new(go_rx);
    let t = now_ms();
    let fetch = Box::new(move |r: &Room, _: i64, _: usize| {
        let _ = go.lock().unwrap().recv();
        Ok(vec![raw("m3", &r.id, t - 10), raw("m2", &r.id, t - 20)])
    });
    c.begin(vec![(listed("A", t - 25), 1)], fetch);
    let at = |id: &str, ts: i64| message::parse_missed(&raw(id, "A", ts), "bot").unwrap();
    assert!(c.live(at("m1", t - 30)).is_none(), "held");
    assert!(c.live(at("m2", t - 20)).is_none(), "held");
    go_tx.send(()).unwrap();
    settling(&mut c, "A");
    assert!(c.poll("bot").is_empty(), "m3 is on its way");
    assert!(c.live(at("m3", t - 10)).is_none(), "m3's late copy");
    let done = c.poll("bot");
    // All came live: posted since the link is up, none was missed.
    let l = Source::Live;
    assert_eq!(arrivals(&done[0]), [("m1", l), ("m2", l), ("m3", l)]);
    assert!(c.done());
    assert!(c.live(at("m3", t - 10)).is_some(), "dropped once only");
    assert!(c.live(at("m4", t)).is_some());
}

/// A message found by the history after the list that the stream never
/// sends (posted before the subscription was ready): a newer live message
/// ends the wait.
#[test]
fn a_newer_live_message_ends_the_wait() {
    let mut c = started(vec![("A".into(), 1)]);
    let t = now_ms();
    let fetch = Box::new(move |r: &Room, _: i64, _: usize| Ok(vec![raw("b2", &r.id, t - 20)]));
    c.begin(vec![(listed("A", t - 25), 1)], fetch);
    settling(&mut c, "A");
    let at = |id: &str, ts: i64| message::parse_missed(&raw(id, "A", ts), "bot").unwrap();
    assert!(c.live(at("b3", t)).is_none(), "held until the room is done");
    let done = c.poll("bot");
    let (h, l) = (Source::History, Source::Live);
    assert_eq!(arrivals(&done[0]), [("b2", h), ("b3", l)]);
}

/// Polls until `room` is loaded and waits for the stream (bounded).
fn settling(c: &mut CatchUp, room: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.settling.contains_key(room) {
        assert!(Instant::now() < deadline, "{room} never loaded");
        assert!(c.poll("bot").is_empty(), "{room} must wait");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_finished_room_goes_to_the_core_in_runs_then_caught_up() {
    let m = |id: &str| live(id, "A");
    let (h, l) = (Source::History, Source::Live);
    let done = Finished {
        room: "A".into(),
        loaded: true,
        messages: vec![(m("a1"), l), (m("a2"), h), (m("a3"), h), (m("a4"), l)],
    };
    let shape: Vec<String> = done
        .into_events()
        .iter()
        .map(|e| match e {
            RtEvent::Replayed { messages, rooms } => {
                format!("replayed {:?} {rooms:?}", ids(messages))
            }
            RtEvent::Messages(list) => format!("live {:?}", ids(list)),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        shape,
        [
            r#"live ["a1"]"#,
            r#"replayed ["a2", "a3"] []"#,
            r#"live ["a4"]"#,
            r#"replayed [] ["A"]"#
        ]
    );
}
