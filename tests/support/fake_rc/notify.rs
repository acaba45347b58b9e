//! Broadcasts of the fake Rocket.Chat: the message stream and the per-user notifications.
use super::world::World;
use serde_json::{json, Value};

/// A `changed` frame of a streamer collection, as the server sends it (`id` is always "id").
pub fn changed_frame(collection: &str, event: &str, args: Value) -> String {
    let f = json!({
        "msg": "changed", "collection": collection, "id": "id",
        "fields": {"eventName": event, "args": args},
    });
    f.to_string()
}

impl World {
    /// Queues a frame on one connection.
    pub fn send_to(&self, cid: u64, frame: String) {
        if let Some(c) = self.conns.get(&cid) {
            let _ = c.tx.send(frame);
        }
    }

    /// Connections (id, user) subscribed to `collection`/`event`.
    fn subscribers(&self, collection: &str, event: &str) -> Vec<(u64, Option<String>)> {
        let subscribed = |c: &super::world::Conn| {
            c.subs
                .iter()
                .any(|s| s.collection == collection && s.event == event)
        };
        let it = self.conns.iter().filter(|(_, c)| subscribed(c));
        it.map(|(id, c)| (*id, c.uid.clone())).collect()
    }

    /// Queues a message frame, or keeps it back while the stream lags (see
    /// [`World::hold_stream`]).
    fn send_stream(&mut self, cid: u64, frame: String) {
        match &mut self.stream_held {
            Some(held) => held.push((cid, frame)),
            None => self.send_to(cid, frame),
        }
    }

    /// The message stream falls behind the database (`true`) or catches up,
    /// sending what it kept back, in order. The real server broadcasts a
    /// saved message afterwards, fire and forget (`notifyOnMessageChange` in
    /// apps/meteor/app/lib/server/lib/notifyListener.ts, or the database
    /// watchers): a REST read can list a message before its stream frame
    /// leaves, and a busy server or client widens that gap.
    pub fn hold_stream(&mut self, on: bool) {
        if on {
            self.stream_held.get_or_insert_with(Vec::new);
            return;
        }
        for (cid, frame) in self.stream_held.take().unwrap_or_default() {
            self.send_to(cid, frame);
        }
    }

    /// Sends a new or updated message to the members' `__my_messages__` and room subscriptions.
    pub fn emit_message(&mut self, msg: &Value) {
        let rid = msg["rid"].as_str().unwrap_or_default();
        let Some(room) = self.room(rid) else { return };
        let mut extra = json!({"roomParticipant": true, "roomType": room.t.to_string()});
        if room.t != 'd' {
            extra["roomName"] = json!(room.name);
        }
        // server/stream/messages/index.js of 3.x servers before PR #20801 (Feb 2021)
        // passed the message inside an array: args `[[msg], info]`.
        let mine = match self.legacy_my_messages {
            true => json!([[msg], extra]),
            false => json!([msg, extra]),
        };
        for (cid, uid) in self.subscribers("stream-room-messages", "__my_messages__") {
            if uid.is_some_and(|u| self.is_member(rid, &u)) {
                let f = changed_frame("stream-room-messages", "__my_messages__", mine.clone());
                self.send_stream(cid, f);
            }
        }
        for (cid, uid) in self.subscribers("stream-room-messages", rid) {
            if uid.is_some_and(|u| self.can_access(rid, &u)) {
                let f = changed_frame("stream-room-messages", rid, json!([msg]));
                self.send_stream(cid, f);
            }
        }
    }

    /// Sends `[action, doc]` on `stream-notify-user` `<uid>/<event>` to that user's subscribers.
    pub fn notify_user(&self, uid: &str, event: &str, action: &str, doc: Value) {
        let name = format!("{uid}/{event}");
        for (cid, _) in self.subscribers("stream-notify-user", &name) {
            let args = json!([action, doc]);
            self.send_to(cid, changed_frame("stream-notify-user", &name, args));
        }
    }

    /// `rooms-changed` with the room document to every member.
    pub fn notify_room(&self, rid: &str, action: &str) {
        let Some(room) = self.room(rid) else { return };
        let doc = self.room_json(room);
        for m in &room.members {
            self.notify_user(m, "rooms-changed", action, doc.clone());
        }
    }

    /// `subscriptions-changed` with the subscription of `uid` to `rid`.
    pub fn notify_sub(&self, rid: &str, uid: &str, action: &str) {
        let Some(room) = self.room(rid) else { return };
        self.notify_user(
            uid,
            "subscriptions-changed",
            action,
            self.sub_json(room, uid),
        );
    }

    /// `subscriptions-changed` to every member.
    pub fn notify_subs(&self, rid: &str, action: &str) {
        let members = self
            .room(rid)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for m in members {
            self.notify_sub(rid, &m, action);
        }
    }

    /// Sends `args` on `stream-notify-room` `<rid>/<event>` to the subscribers who can read the room.
    pub fn notify_room_event(&self, rid: &str, event: &str, args: Value) {
        let name = format!("{rid}/{event}");
        for (cid, uid) in self.subscribers("stream-notify-room", &name) {
            if uid.is_some_and(|u| self.can_access(rid, &u)) {
                self.send_to(
                    cid,
                    changed_frame("stream-notify-room", &name, args.clone()),
                );
            }
        }
    }
}
