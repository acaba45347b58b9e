//! Unit tests of the core's routing between its parts: messages, watermarks, asks, replays.
use super::*;
use crate::bus::{CallbackJob, CallbackReport, RtCommand, RtEvent};
use crate::model::{Incoming, Room, RoomKind};
use crate::state::PendingAsk;
use std::sync::mpsc::{self, Receiver};

struct Rig {
    core: Core,
    callback: Receiver<CallbackJob>,
    realtime: Receiver<RtCommand>,
    sender: Receiver<SendJob>,
    /// The saver thread's reports (`Saved`), handed to the core by [`settle`].
    saved: Receiver<CoreMsg>,
    path: std::path::PathBuf,
    /// Last: removed once the core (and its saver) are gone.
    _dir: crate::test_dir::TestDir,
}

fn rig() -> Rig {
    let mut state = State::fresh("http://x", "jeedombot");
    state.username = Some("jeedombot".into());
    rig_with(state)
}

fn rig_with(state: State) -> Rig {
    let (cb_tx, callback) = mpsc::channel();
    let (send_tx, send_rx) = mpsc::channel();
    let (rt_tx, realtime) = mpsc::channel();
    let rt_tx = ToRealtime::new(move |c| {
        if let Some(c) = c {
            let _ = rt_tx.send(c);
        }
    });
    let dir = crate::test_dir::TestDir::new("core");
    let path = dir.join("state.json");
    let (saved_tx, saved) = mpsc::channel();
    let saver = Saver::spawn(path.clone(), saved_tx, Duration::ZERO).expect("saver");
    let cfg = CoreConfig {
        on_status: Box::new(|_| {}),
    };
    let links = Links {
        callback: Some(cb_tx),
        sender: send_tx,
        realtime: rt_tx,
    };
    Rig {
        core: Core::new(cfg, links, state, saver),
        callback,
        realtime,
        sender: send_rx,
        saved,
        path,
        _dir: dir,
    }
}

/// Pumps, then hands the saver's reports to the core until none is pending.
fn settle(r: &mut Rig) {
    r.core.pump();
    while r.core.replies.syncing() {
        let msg = r
            .saved
            .recv_timeout(Duration::from_secs(10))
            .expect("a saver report");
        r.core.handle(msg);
    }
}

/// The state file and its journal, read back as a restart would, equal the
/// state in memory.
fn assert_journal_matches(r: &mut Rig) {
    r.core.pump();
    let (mut loaded, how) = crate::state::load(&r.path, "http://x", "jeedombot");
    assert_eq!(how, crate::state::Loaded::Resumed);
    loaded.journal_applied = r.core.state.journal_applied;
    assert_eq!(
        serde_json::to_value(&loaded).unwrap(),
        r.core
            .whole(|_, state| serde_json::to_value(&*state).unwrap())
    );
}

fn general() -> Room {
    Room {
        last_message_ms: Some(1000),
        ..fixtures::room("GENERAL")
    }
}

fn msg(id: &str, ts: i64, user: &str, text: &str) -> Incoming {
    fixtures::incoming("GENERAL", id, user, text, ts)
}

/// The events queued for Jeedom.
fn queued(core: &Core) -> Vec<crate::state::QueuedEvent> {
    core.queue.iter().cloned().collect()
}

/// Open questions, as read from a state file.
fn asks_of(list: Vec<PendingAsk>) -> asks::Asks {
    let mut state = State {
        asks: list,
        ..State::default()
    };
    asks::Asks::take(&mut state)
}

fn types(core: &Core) -> Vec<String> {
    queued(core)
        .iter()
        .map(|e| e.value()["type"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn new_rooms_start_at_their_last_message_and_updates_are_not_messages() {
    let mut r = rig();
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general()])));
    assert_eq!(
        r.core.rooms.get("GENERAL").unwrap().watermark_ms,
        Some(1000)
    );
    let m = msg("m1", 2000, "alice", "hello");
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Messages(vec![m.clone(), m])));
    // An older message (an update of something already handled) is dropped too.
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "old", 500, "alice", "reaction",
    )])));
    assert_eq!(types(&r.core), ["rooms", "message"]);
}

#[test]
fn watermark_advances_only_when_jeedom_acknowledges() {
    let mut r = rig();
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general()])));
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "m1", 2000, "alice", "a",
    )])));
    r.core.pump();
    let CallbackJob::Batch { events } = r.callback.try_recv().expect("a batch");
    assert_eq!(events.len(), 2);
    assert_eq!(
        r.core.rooms.get("GENERAL").unwrap().watermark_ms,
        Some(1000)
    );
    r.core.handle(CoreMsg::Callback(CallbackReport::Delivered {
        upto_seq: events[1].0,
    }));
    assert_eq!(
        r.core.rooms.get("GENERAL").unwrap().watermark_ms,
        Some(2000)
    );
    assert_eq!(r.core.queue.len(), 0);
}

fn pending(ask_id: &str, mention: Option<&str>) -> PendingAsk {
    fixtures::pending(ask_id, mention, i64::MAX)
}

#[test]
fn newest_pending_ask_gets_the_reply_and_it_is_not_a_message() {
    let mut r = rig();
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general()])));
    r.core.asks = asks_of(vec![pending("1", None), pending("2", Some("alice"))]);
    r.core.conn.up(fixtures::session());
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "a1", 3000, "bob", " no ",
    )])));
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "a2", 3001, "alice", "YES",
    )])));
    let evs: Vec<_> = queued(&r.core).iter().map(|e| e.value()).collect();
    let answers: Vec<(String, String)> = evs
        .iter()
        .filter(|e| e["type"] == "ask_answer")
        .map(|e| {
            (
                e["ask_id"].as_str().unwrap().to_string(),
                e["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Bob may not answer ask 2 (mention alice), so his reply goes to ask 1.
    assert_eq!(
        answers,
        [
            ("1".to_string(), "No".to_string()),
            ("2".to_string(), "Yes".to_string())
        ]
    );
    assert!(!evs.iter().any(|e| e["type"] == "message"));
    let edits: Vec<RtCommand> = r.realtime.try_iter().collect();
    assert_eq!(edits.len(), 2, "both questions are closed");
}

/// A state as a run left it: one room acknowledged up to 2000, one event queued.
fn left_by_a_run(clean_stop: bool) -> State {
    let mut r = rig();
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general()])));
    ack_all(&mut r);
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "queued", 3000, "alice", "a",
    )])));
    let mut state = r.core.into_state();
    state.rooms.get_mut("GENERAL").unwrap().watermark_ms = Some(2000);
    state.clean_stop = clean_stop;
    state
}

fn replayed(core: &mut Core, ids: &[&str], rooms: &[&str]) {
    let messages = ids.iter().map(|id| msg(id, 4000, "alice", "b")).collect();
    let rooms = rooms.iter().map(|r| r.to_string()).collect();
    core.handle(CoreMsg::Realtime(RtEvent::Replayed { messages, rooms }));
}

fn flags(core: &Core) -> Vec<(String, bool)> {
    let flag = |e: &crate::state::QueuedEvent| e.value()["replay"] == true;
    let id = |e: &crate::state::QueuedEvent| e.value()["id"].as_str().unwrap_or("").to_string();
    queued(core).iter().map(|e| (id(e), flag(e))).collect()
}

#[test]
fn after_a_crash_what_may_have_been_delivered_is_marked_as_replay() {
    let mut r = rig_with(left_by_a_run(false));
    assert_eq!(flags(&r.core), [("queued".to_string(), true)]);
    replayed(&mut r.core, &["missed"], &["GENERAL"]);
    // Once the room is caught up, later catch-ups and live messages are new.
    replayed(&mut r.core, &["later"], &["GENERAL"]);
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "live", 5000, "alice", "c",
    )])));
    let want = [
        ("queued", true),
        ("missed", true),
        ("later", false),
        ("live", false),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(i, f)| (i.to_string(), *f)).collect();
    assert_eq!(flags(&r.core), want);
}

#[test]
fn a_room_whose_catch_up_failed_stays_suspect() {
    let mut r = rig_with(left_by_a_run(false));
    replayed(&mut r.core, &[], &[]);
    replayed(&mut r.core, &["missed"], &["GENERAL"]);
    assert_eq!(flags(&r.core)[1], ("missed".to_string(), true));
}

#[test]
fn after_a_clean_stop_nothing_is_marked_and_the_file_says_running_at_once() {
    let mut r = rig_with(left_by_a_run(true));
    replayed(&mut r.core, &["missed"], &["GENERAL"]);
    assert_eq!(
        flags(&r.core),
        [("queued".to_string(), false), ("missed".to_string(), false)]
    );
    r.core.pump();
    let text = std::fs::read_to_string(&r.path).unwrap();
    let on_disk: State = serde_json::from_str(&text).unwrap();
    assert!(
        !on_disk.clean_stop,
        "a crash from now on must not look clean"
    );
}

#[test]
fn a_clean_stop_marks_the_batch_in_flight_and_says_clean() {
    let mut r = rig_with(left_by_a_run(true));
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "new", 5000, "alice", "c",
    )])));
    r.core.pump();
    assert!(r.callback.try_recv().is_ok(), "a batch in flight");
    r.core.handle(CoreMsg::Stop);
    let state = r.core.run(mpsc::channel().1);
    assert!(state.clean_stop);
    let flagged: Vec<bool> = state
        .events
        .iter()
        .map(|e| e.value()["replay"] == true)
        .collect();
    assert_eq!(flagged, [true, true], "both events were being posted");
}

#[test]
fn after_a_crash_the_outcome_of_a_request_left_in_the_outbox_is_marked() {
    let mut state = left_by_a_run(false);
    let item: crate::model::Outgoing = serde_json::from_value(serde_json::json!({
        "key": "k1", "kind": "send", "room": "GENERAL", "text": "hi",
        "reference": "r1", "accepted_ms": 1
    }))
    .unwrap();
    state.outbox.push_back(item);
    let mut r = rig_with(state);
    let sent = |key: &str| crate::bus::SendOutcome::Sent {
        key: key.into(),
        room: general(),
        message_id: format!("{key}-0"),
    };
    r.core.handle(CoreMsg::Send(sent("k1")));
    let last = queued(&r.core).last().unwrap().value();
    assert_eq!(
        (&last["type"], &last["replay"]),
        (&"sent".into(), &true.into())
    );
}

/// A refused closing edit: the ask ends, a notice is queued behind the
/// other requests, and its outcome reaches Jeedom as `ask_close_failed`
/// (never as `sent`); an accepted edit just ends the ask.
#[test]
fn a_refused_closing_edit_queues_a_notice_that_ends_in_ask_close_failed() {
    let mut r = rig();
    let mut closed = pending("1", None);
    closed.closing = Some("Call?\n⌛ No answer in time".into());
    let mut accepted = pending("2", None);
    accepted.closing = Some("Call?\n✅ Yes — answered by @bob".into());
    r.core.asks = asks_of(vec![closed, accepted]);
    let updated = |id: &str, error: Option<&str>| {
        CoreMsg::Realtime(RtEvent::Updated {
            message_id: id.into(),
            error: error.map(String::from),
        })
    };
    r.core.handle(updated("q2", None));
    assert!(r.core.outbox.len() == 0);
    r.core
        .handle(updated("q1", Some("Message editing is blocked")));
    assert!(r.core.asks.len() == 0);
    let notice = r
        .core
        .outbox
        .iter()
        .next()
        .expect("a notice queued")
        .clone();
    assert!(
        notice.text.starts_with("Question closed: \"Call?\""),
        "{}",
        notice.text
    );
    r.core.handle(CoreMsg::Send(crate::bus::SendOutcome::Sent {
        key: notice.key.clone(),
        room: general(),
        message_id: "N1".into(),
    }));
    assert_eq!(types(&r.core), ["ask_close_failed"]);
    let ev = queued(&r.core).last().unwrap().value();
    assert_eq!(ev["ask_id"], "1");
    assert_eq!(ev["error"], "Message editing is blocked");
    assert_eq!(ev["notice_id"], "N1");
}

/// Delivers the queue to Jeedom (as a 2xx answer would).
fn ack_all(r: &mut Rig) {
    r.core.pump();
    while let Ok(CallbackJob::Batch { events }) = r.callback.try_recv() {
        let upto = events.last().map(|e| e.0).unwrap_or(0);
        r.core.handle(CoreMsg::Callback(CallbackReport::Delivered {
            upto_seq: upto,
        }));
        r.core.pump();
    }
}

#[test]
fn ids_not_server_times_decide_what_was_delivered() {
    let mut r = rig();
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general()])));
    let now = crate::bridge::clock::now_ms();
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "b", now, "alice", "second",
    )])));
    ack_all(&mut r);
    // Another server instance stamped this one 1 ms earlier.
    let earlier = msg("a", now - 1, "bob", "first");
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Messages(vec![earlier.clone()])));
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Messages(vec![earlier])));
    let ids: Vec<_> = queued(&r.core)
        .iter()
        .map(|e| e.value()["id"].clone())
        .collect();
    assert_eq!(ids, [serde_json::json!("a")], "delivered once");
}

#[test]
fn a_message_stamped_an_hour_ahead_does_not_become_the_watermark() {
    let mut r = rig();
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general()])));
    let now = crate::bridge::clock::now_ms();
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "ahead",
        now + 3_600_000,
        "alice",
        "from the future",
    )])));
    ack_all(&mut r);
    let w = r.core.rooms.get("GENERAL").unwrap().watermark_ms.unwrap();
    assert!(
        w <= crate::bridge::clock::now_ms(),
        "watermark {w} ahead of now {now}"
    );
    // The room is not silenced: the next message (correct clock) goes through.
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![msg(
        "next",
        now + 10,
        "alice",
        "now",
    )])));
    assert_eq!(types(&r.core), ["message"]);
}

#[test]
fn a_direct_message_before_its_room_is_known_is_direct() {
    let mut r = rig();
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general()])));
    ack_all(&mut r);
    let mut m = msg("d1", 5000, "carol", "turn on the radio");
    m.room_id = "carolidbotid".into();
    m.room_kind = Some(RoomKind::Direct);
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(vec![m])));
    assert_eq!(types(&r.core), ["rooms", "message"], "the room first");
    let rooms = &queued(&r.core)[0].value()["rooms"];
    assert!(rooms
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == "carolidbotid"));
    let ev = queued(&r.core).last().unwrap().value();
    assert_eq!(ev["room"]["kind"], "direct");
    assert_eq!(ev["direct"], true);
    assert_eq!(ev["interaction"], true);
    assert_eq!(ev["room"]["name"], "carol");
    assert_journal_matches(&mut r);
}

mod durability;
