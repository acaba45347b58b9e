//! State of the fake Rocket.Chat ("the world"): users, rooms, messages, tokens, connections, logs.
use super::util::{ejson_date, new_id, wall_ms};
use super::LoginMode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::mpsc::Sender;

/// Id of the bot user.
pub const BOT_ID: &str = "botid";

/// A user account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: String,
    pub email: String,
    pub password: Option<String>,
}

/// A room; `members` holds user ids.
#[derive(Debug, Clone)]
pub struct Room {
    pub id: String,
    pub t: char,
    pub name: String,
    pub fname: String,
    pub members: Vec<String>,
    pub ts: u64,
    pub updated: u64,
    pub msgs: u64,
    pub last_message: Option<Value>,
    /// Parent room of a discussion (then `name` is a random id, `fname` the title).
    pub prid: Option<String>,
}

/// Kinds of login tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Resume,
    Personal,
}

/// A login token.
#[derive(Debug, Clone)]
pub struct Token {
    pub token: String,
    pub uid: String,
    pub kind: TokenKind,
    pub expires: u64,
}

/// A received file.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub rid: String,
    pub uid: String,
    pub name: String,
    pub ctype: String,
    /// Shared: a 64 MiB upload is not copied at each confirmation.
    pub bytes: std::sync::Arc<Vec<u8>>,
    pub confirmed: bool,
}

/// A stream subscription of a DDP connection.
#[derive(Debug, Clone)]
pub struct Sub {
    pub id: String,
    pub collection: String,
    pub event: String,
}

/// A live DDP connection: its user, its subscriptions and its outgoing frame queue.
pub struct Conn {
    pub uid: Option<String>,
    pub subs: Vec<Sub>,
    pub tx: Sender<String>,
    pub tcp: TcpStream,
}

/// A membership that ended (left, kicked or room deleted), for the `remove` lists.
#[derive(Debug, Clone)]
pub struct Removal {
    pub uid: String,
    pub rid: String,
    pub at: u64,
    pub room_deleted: bool,
}

/// What the fake saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct Log {
    pub frames: Vec<Value>,
    pub rest: Vec<(String, String)>,
    pub rest_bodies: Vec<(String, Value)>,
    pub logins: Vec<String>,
    pub ddp_total: usize,
    /// Names of the DDP methods and subscriptions the rate limiter refused, in order.
    pub rate_limited: Vec<String>,
    /// Two-factor codes sent by e-mail (logins refused with `details.method: "email"`).
    pub email_codes: usize,
}

/// The whole state, behind one mutex.
pub struct World {
    pub users: Vec<User>,
    pub rooms: Vec<Room>,
    pub messages: Vec<Value>,
    pub tokens: Vec<Token>,
    pub uploads: Vec<Upload>,
    pub removals: Vec<Removal>,
    pub conns: HashMap<u64, Conn>,
    pub login_mode: LoginMode,
    pub log: Log,
    /// Edit and post permissions (see `edit.rs`).
    pub edit_policy: super::edit::Policy,
    pub limiter: super::ratelimit::RateLimiter,
    /// `__my_messages__` args as `[[msg], info]` (3.x before PR #20801).
    pub legacy_my_messages: bool,
    /// Message frames kept back while the stream lags (`hold_stream`).
    pub stream_held: Option<Vec<(u64, String)>>,
    /// Public settings by `_id` (see `settings.rs`).
    pub settings: std::collections::BTreeMap<String, Value>,
    clock: u64,
}

impl World {
    /// The default world: bot `jeedombot`/`s3cret`, `alice`, `bob`, room `GENERAL`.
    pub fn new() -> World {
        let mut w = World {
            users: Vec::new(),
            rooms: Vec::new(),
            messages: Vec::new(),
            tokens: Vec::new(),
            uploads: Vec::new(),
            removals: Vec::new(),
            conns: HashMap::new(),
            login_mode: LoginMode::Ok,
            log: Log::default(),
            edit_policy: Default::default(),
            limiter: Default::default(),
            legacy_my_messages: false,
            stream_held: None,
            settings: super::settings::defaults(),
            clock: 0,
        };
        w.push_user(BOT_ID, "jeedombot", "Jeedom Bot", Some("s3cret"));
        w.push_user("aliceid", "alice", "Alice A.", None);
        w.push_user("bobid", "bob", "Bob B.", None);
        let now = w.now();
        w.rooms.push(Room {
            id: "GENERAL".into(),
            t: 'c',
            name: "general".into(),
            fname: "general".into(),
            members: vec![BOT_ID.into(), "aliceid".into()],
            ts: now,
            updated: now,
            msgs: 0,
            last_message: None,
            prid: None,
        });
        w
    }

    /// The current time, not earlier than any stamp [`World::now`] gave.
    pub fn time(&self) -> u64 {
        wall_ms().max(self.clock)
    }

    /// Strictly increasing milliseconds (wall clock, bumped on ties).
    pub fn now(&mut self) -> u64 {
        self.clock = wall_ms().max(self.clock + 1);
        self.clock
    }

    /// Adds a user with a fixed id.
    pub fn push_user(&mut self, id: &str, username: &str, name: &str, password: Option<&str>) {
        self.users.push(User {
            id: id.into(),
            username: username.into(),
            name: name.into(),
            email: format!("{username}@example.org"),
            password: password.map(String::from),
        });
    }

    /// Adds a user with a random id; returns the id.
    pub fn add_user(&mut self, username: &str, name: &str) -> String {
        let id = new_id();
        self.push_user(&id, username, name, None);
        id
    }

    pub fn user(&self, uid: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == uid)
    }

    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    /// Id of a user by name; panics when unknown (control API misuse).
    pub fn uid(&self, username: &str) -> String {
        let u = self.user_by_name(username);
        u.unwrap_or_else(|| panic!("fake RC: unknown user {username:?}"))
            .id
            .clone()
    }

    /// `{_id, username, name}` of a user.
    pub fn user_ref(&self, uid: &str) -> Value {
        match self.user(uid) {
            Some(u) => json!({"_id": u.id, "username": u.username, "name": u.name}),
            None => json!({"_id": uid}),
        }
    }

    pub fn room(&self, rid: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.id == rid)
    }

    /// Mutable room; panics when unknown (control API misuse).
    pub fn room_mut(&mut self, rid: &str) -> &mut Room {
        let r = self.rooms.iter_mut().find(|r| r.id == rid);
        r.unwrap_or_else(|| panic!("fake RC: unknown room {rid:?}"))
    }

    pub fn is_member(&self, rid: &str, uid: &str) -> bool {
        self.room(rid)
            .is_some_and(|r| r.members.iter().any(|m| m == uid))
    }

    /// Public channels are readable by every user; other rooms by members only.
    pub fn can_access(&self, rid: &str, uid: &str) -> bool {
        self.room(rid).is_some_and(|r| r.t == 'c') || self.is_member(rid, uid)
    }

    /// Rooms a user is a member of.
    pub fn rooms_of(&self, uid: &str) -> Vec<&Room> {
        self.rooms
            .iter()
            .filter(|r| r.members.iter().any(|m| m == uid))
            .collect()
    }

    /// A room document, EJSON dates (DDP shape).
    pub fn room_json(&self, r: &Room) -> Value {
        let mut v = json!({
            "_id": r.id, "t": r.t.to_string(), "usersCount": r.members.len(),
            "msgs": r.msgs, "ts": ejson_date(r.ts), "_updatedAt": ejson_date(r.updated),
        });
        if r.t == 'd' {
            let names: Vec<String> = r.members.iter().map(|m| self.username_of(m)).collect();
            v["usernames"] = json!(names);
            v["uids"] = json!(r.members);
        } else {
            v["name"] = json!(r.name);
            v["fname"] = json!(r.fname);
            v["ro"] = json!(false);
            v["sysMes"] = json!(true);
            v["default"] = json!(r.id == "GENERAL");
        }
        if let Some(prid) = &r.prid {
            v["prid"] = json!(prid);
        }
        if r.t == 'l' {
            v["open"] = json!(true);
            v["v"] = json!({"_id": "visitorid", "username": "guest-1", "token": "visitortoken"});
        }
        if let Some(lm) = &r.last_message {
            v["lastMessage"] = lm.clone();
            v["lm"] = lm["ts"].clone();
        }
        v
    }

    /// Id of the subscription of `uid` to `rid`.
    pub fn sub_id(rid: &str, uid: &str) -> String {
        format!("{uid}{rid}")
    }

    /// A subscription document, EJSON dates (DDP shape).
    pub fn sub_json(&self, r: &Room, uid: &str) -> Value {
        let (name, fname) = if r.t == 'd' {
            let other = r
                .members
                .iter()
                .find(|m| *m != uid)
                .unwrap_or(&r.members[0]);
            let o = self.user(other);
            (
                self.username_of(other),
                o.map(|u| u.name.clone()).unwrap_or_default(),
            )
        } else {
            (r.name.clone(), r.fname.clone())
        };
        let u = self
            .user(uid)
            .map(|u| u.username.clone())
            .unwrap_or_default();
        let mut s = json!({
            "_id": World::sub_id(&r.id, uid), "rid": r.id, "name": name, "fname": fname,
            "t": r.t.to_string(), "u": {"_id": uid, "username": u}, "open": true,
            "alert": false, "unread": 0, "userMentions": 0, "groupMentions": 0,
            "ts": ejson_date(r.ts), "ls": ejson_date(r.ts), "_updatedAt": ejson_date(r.updated),
        });
        if let Some(prid) = &r.prid {
            s["prid"] = json!(prid);
        }
        s
    }

    pub fn username_of(&self, uid: &str) -> String {
        self.user(uid)
            .map(|u| u.username.clone())
            .unwrap_or_default()
    }

    /// Position of a message by id.
    pub fn msg_index(&self, id: &str) -> Option<usize> {
        self.messages.iter().position(|m| m["_id"] == id)
    }

    /// Messages of a room, oldest first.
    pub fn room_messages(&self, rid: &str) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .messages
            .iter()
            .filter(|m| m["rid"] == rid)
            .cloned()
            .collect();
        out.sort_by_key(|m| super::util::date_ms(&m["ts"]).unwrap_or(0));
        out
    }

    /// User id of a valid token.
    pub fn token_user(&self, token: &str) -> Option<String> {
        let t = self.tokens.iter().find(|t| t.token == token);
        t.map(|t| t.uid.clone())
    }
}
