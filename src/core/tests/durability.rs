//! Unit tests of the core's durability: work first, `ok` after the sync,
//! every change in the journal, disk faults.
use super::*;
use crate::bus::{Reply, SendOutcome, TicketState};
use crate::core::fixtures::send;
use serde_json::Value;

fn connected(r: &mut Rig) {
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Connected(fixtures::session())));
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general()])));
}

/// Hands a request to the core as connection `ticket`; returns its reply channel.
fn accept(r: &mut Rig, ticket: u64, key: &str) -> Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    let state = TicketState::Accept {
        item: Box::new(send(key)),
        reply: Reply::channel(tx),
    };
    r.core.handle(CoreMsg::Ticket { ticket, state });
    rx
}

#[test]
fn a_send_goes_out_before_its_sync_and_the_ok_comes_after() {
    let mut r = rig();
    connected(&mut r);
    let reply = accept(&mut r, 0, "k0");
    r.core.pump();
    let job = r
        .sender
        .try_recv()
        .expect("handed out without waiting for the disk");
    assert_eq!(job.item.key, "k0");
    assert!(reply.try_recv().is_err(), "no ok before the sync");
    settle(&mut r);
    assert_eq!(reply.try_recv().expect("ok after the sync")["ok"], true);
}

#[test]
fn requests_join_the_outbox_in_connection_order() {
    let mut r = rig();
    let later = accept(&mut r, 1, "second");
    assert!(r.core.outbox.len() == 0, "waits for connection 0");
    let first = accept(&mut r, 0, "first");
    let keys: Vec<_> = r.core.outbox.iter().map(|o| o.key.clone()).collect();
    assert_eq!(keys, ["first", "second"]);
    settle(&mut r);
    assert_eq!(first.try_recv().unwrap()["ok"], true);
    assert_eq!(later.try_recv().unwrap()["ok"], true);
}

#[test]
fn every_change_reaches_the_journal() {
    let mut r = rig();
    connected(&mut r);
    let _ = accept(&mut r, 0, "k0");
    let _ = accept(&mut r, 1, "k1");
    r.core.pump();
    r.core.handle(CoreMsg::Send(SendOutcome::Progress {
        key: "k0".into(),
        steps_done: 1,
    }));
    r.core.handle(CoreMsg::Send(SendOutcome::Sent {
        key: "k0".into(),
        room: general(),
        message_id: "posted".into(),
    }));
    r.core.asks = asks_of(vec![]);
    let ms: Vec<Incoming> = (0..5)
        .map(|i| msg(&format!("m{i}"), 2000 + i, "alice", "hi"))
        .collect();
    r.core.handle(CoreMsg::Realtime(RtEvent::Messages(ms)));
    r.core.pump();
    let CallbackJob::Batch { events } = r.callback.try_recv().expect("a batch");
    r.core.handle(CoreMsg::Callback(CallbackReport::Delivered {
        upto_seq: events[events.len() - 2].0,
    }));
    r.core
        .handle(CoreMsg::Realtime(RtEvent::Rooms(vec![general(), {
            let mut g = general();
            g.id = "OTHER".into();
            g.name = "other".into();
            g
        }])));
    assert_journal_matches(&mut r);
}

#[test]
fn a_full_disk_refuses_the_request_and_nothing_is_posted() {
    let mut r = rig();
    connected(&mut r);
    settle(&mut r);
    r.core.saver.break_journal();
    let reply = accept(&mut r, 0, "k0");
    r.core.pump();
    let answer = reply.try_recv().expect("an answer at once");
    assert_eq!(answer["ok"], false);
    assert!(
        answer["error"].as_str().unwrap().contains("No space left"),
        "{answer}"
    );
    assert!(r.core.outbox.len() == 0, "nothing queued");
    assert!(r.sender.try_recv().is_err(), "nothing posted");
    // While the disk is full, requests are refused at once.
    let reply = accept(&mut r, 1, "k1");
    assert_eq!(reply.try_recv().expect("refused")["ok"], false);
    // Space again: the next retry writes the state whole, requests are taken.
    r.core.saver.retry_now();
    r.core.pump();
    while r.core.saver.fault().is_some() {
        let saved = r.saved.recv_timeout(Duration::from_secs(10));
        r.core.handle(saved.expect("recovered without a restart"));
    }
    let reply = accept(&mut r, 2, "k2");
    settle(&mut r);
    assert_eq!(reply.try_recv().expect("ok")["ok"], true);
    assert_eq!(r.sender.try_recv().expect("posted").item.key, "k2");
    assert_journal_matches(&mut r);
}

#[test]
fn a_failed_sync_holds_the_ok_until_the_state_is_written() {
    let mut r = rig();
    connected(&mut r);
    let reply = accept(&mut r, 0, "k0");
    r.core.pump();
    assert!(r.sender.try_recv().is_ok(), "already on its way");
    let ticket = r.core.replies.first_ticket().expect("waits for a sync");
    // The sync failed (EIO): an error reply would say "not posted".
    let _ = r.saved.recv_timeout(Duration::from_secs(10));
    r.core.handle(CoreMsg::Saved {
        id: ticket,
        error: Some("EIO".into()),
    });
    assert!(reply.try_recv().is_err());
    r.core.saver.retry_now();
    settle(&mut r);
    assert_eq!(reply.try_recv().expect("ok once written")["ok"], true);
}

/// A request's spooled copy is synced by its group's sync: a copy that
/// cannot be synced fails that write, and the `ok` is not sent on it.
#[test]
fn the_ok_waits_for_the_spooled_copy_to_be_synced() {
    let mut r = rig();
    connected(&mut r);
    let mut item = send("k0");
    // Under the state file, as if it were a directory: the sync cannot open it.
    let copy = format!("{}/k0-0-porch.jpg", r.path.display());
    item.files = vec![crate::model::SpooledFile {
        path: copy.clone(),
        name: "porch.jpg".into(),
        size: Some(3),
    }];
    let (tx, reply) = mpsc::channel();
    let state = TicketState::Accept {
        item: Box::new(item),
        reply: Reply::channel(tx),
    };
    r.core.handle(CoreMsg::Ticket { ticket: 0, state });
    settle(&mut r);
    assert!(r.sender.try_recv().is_ok(), "posted without waiting");
    assert!(reply.try_recv().is_err(), "no ok: the copy is not durable");
    let fault = r.core.saver.fault().expect("the write failed").to_string();
    assert!(fault.contains(&copy), "names the copy: {fault}");
}
