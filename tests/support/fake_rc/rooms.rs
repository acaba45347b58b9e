//! Room changes of the fake Rocket.Chat, with the notifications and system messages of the real one.
use super::util::new_id;
use super::world::{Removal, Room, World, BOT_ID};
use serde_json::{json, Map};

impl World {
    /// Creates a room with these members (user ids); tells each of them. Returns the id.
    pub fn create_room(&mut self, t: char, name: &str, members: Vec<String>) -> String {
        let id = self.store_room(t, name, name, members, None);
        self.announce_room(&id);
        id
    }

    /// Stores a new room without telling anyone yet; returns its id.
    fn store_room(
        &mut self,
        t: char,
        name: &str,
        fname: &str,
        members: Vec<String>,
        prid: Option<String>,
    ) -> String {
        let now = self.now();
        let id = if t == 'd' { dm_id(&members) } else { new_id() };
        self.rooms.push(Room {
            id: id.clone(),
            t,
            name: name.into(),
            fname: fname.into(),
            members,
            ts: now,
            updated: now,
            msgs: 0,
            last_message: None,
            prid,
        });
        id
    }

    /// Tells the members of a new room: room and subscription `inserted`.
    fn announce_room(&mut self, id: &str) {
        self.notify_room(id, "inserted");
        self.notify_subs(id, "inserted");
    }

    /// Creates a discussion of `parent` titled `title`: a private group whose
    /// `name` is a random id and `fname` the title, with `prid` set
    /// (apps/meteor/app/discussion/server/methods/createDiscussion.ts:
    /// `name = Random.id()`, `fname = t_name`; the type follows the parent,
    /// `c` or `p`: here always `p`). Returns its id.
    pub fn create_discussion(&mut self, parent: &str, title: &str, members: Vec<String>) -> String {
        let name = new_id();
        let id = self.store_room('p', &name, title, members, Some(parent.into()));
        self.announce_room(&id);
        id
    }

    /// A person's first message to `to` as `chat.postMessage` with `channel:"@to"`
    /// does it: the direct room is created and the message posted in one call.
    /// The message's `__my_messages__` frame goes out first; the room and
    /// subscription notifications follow, because the server sends those
    /// asynchronously (apps/meteor/app/lib/server/functions/createDirectRoom.ts
    /// inserts the subscriptions, whose change-stream watchers notify later:
    /// apps/meteor/server/modules/watchers/watchers.module.ts), while
    /// sendMessage broadcasts the message as soon as it is inserted.
    /// Returns `(room id, message id)`.
    pub fn post_to_new_direct(&mut self, from: &str, to: &str, text: &str) -> (String, String) {
        let (id, existing) = match self.room(&dm_id(&[from.into(), to.into()])) {
            Some(r) => (r.id.clone(), true),
            None => {
                let members = vec![from.to_string(), to.to_string()];
                (self.store_room('d', "", "", members, None), false)
            }
        };
        let mid = self.post(&id, from, text);
        if !existing {
            self.announce_room(&id);
        }
        (id, mid)
    }

    /// The direct room of two users, created (and announced) if needed; `(id, created)`.
    pub fn open_direct(&mut self, a: &str, b: &str) -> (String, bool) {
        let id = dm_id(&[a.to_string(), b.to_string()]);
        if self.room(&id).is_some() {
            return (id, false);
        }
        let mut members = vec![a.to_string(), b.to_string()];
        members.dedup();
        (self.create_room('d', "", members), true)
    }

    /// Adds a member: their new subscription, the room update, a `uj` system message.
    pub fn add_member(&mut self, rid: &str, uid: &str) {
        if self.is_member(rid, uid) {
            return;
        }
        let now = self.now();
        let room = self.room_mut(rid);
        room.members.push(uid.to_string());
        room.updated = now;
        self.notify_sub(rid, uid, "inserted");
        self.notify_room(rid, "updated");
        let name = self.username_of(uid);
        self.system_message(rid, "uj", &name, uid);
    }

    /// Removes a member: a `ul` system message, the removed subscription, the room update.
    pub fn remove_member(&mut self, rid: &str, uid: &str) {
        if !self.is_member(rid, uid) {
            return;
        }
        let name = self.username_of(uid);
        self.system_message(rid, "ul", &name, uid);
        self.notify_sub(rid, uid, "removed");
        let now = self.now();
        let room = self.room_mut(rid);
        room.members.retain(|m| m != uid);
        room.updated = now;
        let removal = Removal {
            uid: uid.into(),
            rid: rid.into(),
            at: now,
            room_deleted: false,
        };
        self.removals.push(removal);
        self.notify_room(rid, "updated");
    }

    /// Renames a channel or group: room and subscriptions updated, an `r` system message.
    pub fn rename_room(&mut self, rid: &str, new_name: &str) {
        let now = self.now();
        let room = self.room_mut(rid);
        room.name = new_name.into();
        room.fname = new_name.into();
        room.updated = now;
        let actor = room.members.iter().find(|m| *m != BOT_ID).cloned();
        self.notify_room(rid, "updated");
        self.notify_subs(rid, "updated");
        self.system_message(rid, "r", new_name, &actor.unwrap_or_else(|| BOT_ID.into()));
    }

    /// Deletes a room: `removed` room and subscriptions to every member, messages dropped.
    pub fn delete_room(&mut self, rid: &str) {
        let members = self.room_mut(rid).members.clone();
        for m in &members {
            self.notify_user(m, "rooms-changed", "removed", json!({"_id": rid}));
            self.notify_sub(rid, m, "removed");
        }
        let now = self.now();
        for m in members {
            self.removals.push(Removal {
                uid: m,
                rid: rid.into(),
                at: now,
                room_deleted: true,
            });
        }
        self.rooms.retain(|r| r.id != rid);
        self.messages.retain(|m| m["rid"] != rid);
    }

    /// Posts a system message (`t` set) authored by `uid`.
    pub fn system_message(&mut self, rid: &str, t: &str, text: &str, uid: &str) -> String {
        let mut m = Map::new();
        m.insert("rid".into(), json!(rid));
        m.insert("t".into(), json!(t));
        m.insert("msg".into(), json!(text));
        m.insert("u".into(), json!({"_id": uid}));
        m.insert("groupable".into(), json!(false));
        self.complete_message(&mut m);
        self.insert_message(m)
    }
}

/// Id of a direct room: the members' ids sorted and concatenated, as the real server does.
fn dm_id(members: &[String]) -> String {
    let mut ids = members.to_vec();
    ids.sort();
    ids.concat()
}
