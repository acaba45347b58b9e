//! Unit tests of message filtering and room parsing.
use super::*;
use serde_json::json;

const BOT_ID: &str = "botUserId1";

fn msg(extra: Value) -> Value {
    let mut m = json!({
        "_id": "m1", "rid": "GENERAL", "msg": "hello",
        "ts": {"$date": 1_764_064_800_123_i64},
        "u": {"_id": "u1", "username": "alice", "name": "Alice A."},
        "mentions": [], "channels": [],
        "_updatedAt": {"$date": 1_764_064_800_130_i64}
    });
    if let (Some(m), Some(e)) = (m.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

fn info(participant: bool, room_type: &str) -> Value {
    json!({"roomParticipant": participant, "roomType": room_type, "roomName": "general"})
}

#[test]
fn plain_message_from_a_person() {
    let got = parse(&[msg(json!({})), info(true, "c")], BOT_ID).unwrap();
    assert_eq!(got.id, "m1");
    assert_eq!(got.room_id, "GENERAL");
    assert_eq!(got.user.username, "alice");
    assert_eq!(got.user.name.as_deref(), Some("Alice A."));
    assert_eq!(got.text, "hello");
    assert_eq!(got.ts_ms, 1_764_064_800_123);
    assert_eq!(got.thread, None);
    assert!(got.files.is_empty() && got.mentions.is_empty());
}

#[test]
fn dropped_messages() {
    let own = msg(json!({"u": {"_id": BOT_ID, "username": "jeedombot"}}));
    let system = msg(json!({"t": "uj", "msg": "alice"}));
    let edit =
        msg(json!({"editedAt": {"$date": 1_764_064_900_000_i64}, "editedBy": {"_id": "u1"}}));
    let empty = msg(json!({"msg": "  "}));
    let hidden = msg(json!({"_hidden": true}));
    let old_update = msg(json!({"_updatedAt": {"$date": 1_764_064_800_123_i64 + 3_600_000}}));
    for (what, m) in [
        ("own", own),
        ("system", system),
        ("edit", edit),
        ("empty", empty),
    ]
    .into_iter()
    .chain([("hidden", hidden), ("update", old_update)])
    {
        assert_eq!(parse(&[m, info(true, "c")], BOT_ID), None, "{what}");
    }
    assert_eq!(parse(&[msg(json!({})), info(false, "c")], BOT_ID), None);
    assert_eq!(parse(&[msg(json!({})), info(true, "l")], BOT_ID), None);
    assert_eq!(parse(&[], BOT_ID), None);
    let extreme = msg(json!({"ts": {"$date": -1e300}, "_updatedAt": {"$date": 1e300}}));
    assert_eq!(parse(&[extreme, info(true, "c")], BOT_ID), None);
    assert_eq!(parse(&[json!("garbage"), json!(3)], BOT_ID), None);
    assert_eq!(
        parse_missed(&msg(json!({"ts": "not a date"})), BOT_ID),
        None
    );
    assert_eq!(parse_missed(&msg(json!({"u": {"_id": 5}})), BOT_ID), None);
}

#[test]
fn null_markers_do_not_drop() {
    let m = msg(json!({"t": null, "editedAt": null}));
    assert!(parse(&[m, info(true, "c")], BOT_ID).is_some());
}

#[test]
fn missed_messages_keep_old_updates() {
    // loadMissedMessages entries may have been reacted to since: still new to us.
    let m = msg(json!({"_updatedAt": {"$date": 1_764_064_800_123_i64 + 3_600_000}}));
    assert!(parse_missed(&m, BOT_ID).is_some());
    // Posted and edited while the daemon was away: new to Jeedom.
    let edited = msg(json!({"msg": "fixed", "editedAt": {"$date": 1_764_064_900_000_i64}}));
    assert_eq!(parse_missed(&edited, BOT_ID).unwrap().text, "fixed");
    // And a message without the second stream argument is accepted.
    assert!(parse(&[msg(json!({}))], BOT_ID).is_some());
}

#[test]
fn thread_and_mentions() {
    let m = msg(json!({
        "tmid": "root1", "msg": "@jeedombot status",
        "mentions": [{"_id": BOT_ID, "username": "jeedombot"}, {"_id": "here", "username": "here"}]
    }));
    let got = parse(&[m, info(true, "p")], BOT_ID).unwrap();
    assert_eq!(got.thread.as_deref(), Some("root1"));
    assert_eq!(got.mentions, ["jeedombot", "here"]);
}

#[test]
fn modern_upload_with_thumbnail() {
    let m = msg(json!({
        "msg": "",
        "file": {"_id": "F1", "name": "a b.jpg", "type": "image/jpeg"},
        "files": [
            {"_id": "F1", "name": "a b.jpg", "type": "image/jpeg", "size": 1000},
            {"_id": "F2", "name": "thumb-a b.jpg", "type": "image/jpeg", "size": 100}
        ],
        "attachments": [{
            "title": "a b.jpg", "title_link": "/file-upload/F1/a%20b.jpg",
            "title_link_download": true, "image_url": "/file-upload/F2/thumb-a%20b.jpg",
            "image_type": "image/jpeg", "type": "file", "description": "my snapshot"
        }]
    }));
    let got = parse(&[m, info(true, "c")], BOT_ID).unwrap();
    assert_eq!(got.text, "my snapshot");
    assert_eq!(
        got.files,
        [FileRef {
            name: "a b.jpg".into(),
            mime: "image/jpeg".into(),
            url: "/file-upload/F1/a%20b.jpg".into()
        }]
    );
}

#[test]
fn upload_without_attachments_builds_the_url() {
    let m = msg(
        json!({"msg": "", "file": {"_id": "F9", "name": "r é.pdf", "type": "application/pdf"}}),
    );
    let got = parse_missed(&m, BOT_ID).unwrap();
    assert_eq!(got.files[0].url, "/file-upload/F9/r%20%C3%A9.pdf");
    assert_eq!(got.files[0].mime, "application/pdf");
    assert_eq!(got.text, "");
}

#[test]
fn attachment_without_file_entry() {
    let m = msg(json!({"msg": "look", "attachments": [
        {"title": "v.mp4", "title_link": "/file-upload/X/v.mp4", "video_type": "video/mp4"},
        {"text": "a quote", "message_link": "https://chat/x"}
    ]}));
    let got = parse_missed(&m, BOT_ID).unwrap();
    assert_eq!(got.files.len(), 1);
    assert_eq!(
        (got.files[0].name.as_str(), got.files[0].mime.as_str()),
        ("v.mp4", "video/mp4")
    );
    assert_eq!(got.text, "look");
    // A quote alone, with no text and no file, is not a message for Jeedom.
    let quote = msg(json!({"msg": "", "attachments": [{"text": "q", "message_link": "x"}]}));
    assert_eq!(parse_missed(&quote, BOT_ID), None);
}

#[test]
fn rooms_from_rooms_get() {
    let result = json!([
        {"_id": "GENERAL", "name": "general", "t": "c", "_updatedAt": {"$date": 5},
         "lm": {"$date": 1_764_064_800_123_i64}},
        {"_id": "grp1", "name": "maison", "fname": "Maison", "t": "p"},
        {"_id": "abcXYZ", "t": "d", "usernames": ["alice", "jeedombot"], "uids": ["u1", BOT_ID]},
        {"_id": "live1", "name": "visitor", "t": "l"},
        {"_id": "weird", "t": "x"},
        "garbage"
    ]);
    let rooms = parse_rooms(&result, "jeedombot");
    let ids: Vec<&str> = rooms.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["GENERAL", "grp1", "abcXYZ"]);
    assert_eq!(rooms[0].last_message_ms, Some(1_764_064_800_123));
    assert_eq!(
        rooms[1].last_message_ms, None,
        "_updatedAt is not a message time"
    );
    assert_eq!(rooms[1].kind, RoomKind::Group);
    assert_eq!(rooms[1].name, "maison");
    assert_eq!(rooms[2].kind, RoomKind::Direct);
    assert_eq!(rooms[2].name, "alice");
    assert_eq!(rooms[2].users, ["alice", "jeedombot"]);
    assert!(rooms[0].users.is_empty());
}

#[test]
fn rooms_from_subscriptions_and_changes() {
    let update = json!({"update": [
        {"_id": "sub1", "rid": "dm1", "t": "d", "name": "bob", "fname": "Bob B."},
        {"_id": "sub2", "rid": "chan2", "t": "c", "name": "garage"}
    ], "remove": []});
    let rooms = parse_rooms(&update, "jeedombot");
    assert_eq!(rooms[0].id, "chan2");
    assert_eq!(rooms[1].id, "dm1");
    assert_eq!(rooms[1].name, "bob");
    assert_eq!(rooms[1].users, ["bob", "jeedombot"]);
    let self_dm = json!({"_id": "x", "t": "d", "usernames": ["jeedombot"]});
    assert_eq!(parse_room(&self_dm, "jeedombot").unwrap().name, "jeedombot");
    let group_dm = json!({"_id": "y", "t": "d", "usernames": ["alice", "JeedomBot", "bob"]});
    assert_eq!(
        parse_room(&group_dm, "jeedombot").unwrap().name,
        "alice, bob"
    );
    assert_eq!(
        parse_room(&json!({"_id": "z", "t": "c"}), "jeedombot"),
        None
    );
}

#[test]
fn same_rooms_ignores_message_times() {
    let a = parse_rooms(
        &json!([{"_id": "A", "name": "a", "t": "c", "lm": {"$date": 1}}]),
        "b",
    );
    let b = parse_rooms(
        &json!([{"_id": "A", "name": "a", "t": "c", "lm": {"$date": 2}}]),
        "b",
    );
    let c = parse_rooms(&json!([{"_id": "A", "name": "renamed", "t": "c"}]), "b");
    assert!(same_rooms(&a, &b));
    assert!(!same_rooms(&a, &c));
    assert!(!same_rooms(&a, &[]));
}

#[test]
fn odd_input_never_panics() {
    let odd = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!({}),
        json!({"_id": 1, "rid": [], "u": "x", "msg": 5, "ts": "2020-99-99T00:00:00Z"}),
        json!({"t": {}, "usernames": [1, null], "name": 3, "lm": {"$date": "nope"}}),
        json!({"_id": "a", "t": "d", "usernames": "alice"}),
        json!({"files": [1, {"_id": 2}], "attachments": [{"title_link": 3}, 4], "file": "f",
               "mentions": [null, {"username": 1}], "u": {"_id": "u", "username": "x"},
               "_id": "i", "rid": "r", "ts": {"$date": 1}, "msg": ""}),
    ];
    for v in &odd {
        let _ = parse(std::slice::from_ref(v), BOT_ID);
        let _ = parse(&[v.clone(), v.clone()], BOT_ID);
        let _ = parse_missed(v, BOT_ID);
        let _ = parse_room(v, "bot");
        let _ = parse_rooms(v, "bot");
        let _ = parse_rooms(&json!({ "update": [v] }), "bot");
    }
}

#[test]
fn both_shapes_of_my_messages_args_are_read() {
    let flat = parse(&[msg(json!({})), info(true, "d")], BOT_ID).unwrap();
    // 3.x servers before PR #20801 wrap the message in an array.
    let wrapped = parse(&[json!([msg(json!({}))]), info(true, "d")], BOT_ID).unwrap();
    assert_eq!(flat, wrapped);
    assert_eq!(wrapped.room_kind, Some(RoomKind::Direct));
    assert_eq!(wrapped.text, "hello");
    assert!(parse(&[json!([]), info(true, "c")], BOT_ID).is_none());
    assert!(parse(&[json!([msg(json!({}))]), info(false, "c")], BOT_ID).is_none());
}

#[test]
fn an_encrypted_message_is_kept_without_its_text() {
    let e2e = msg(json!({"t": "e2e", "msg": "eyJhbGciOi...ciphertext", "e2e": "pending"}));
    let got = parse(&[e2e.clone(), info(true, "d")], BOT_ID).unwrap();
    assert!(got.encrypted);
    assert_eq!(got.text, "");
    assert!(parse_missed(&e2e, BOT_ID).is_some_and(|m| m.encrypted));
    // Other `t` values are still system messages.
    assert!(parse(&[msg(json!({"t": "uj"})), info(true, "c")], BOT_ID).is_none());
}

#[test]
fn a_discussion_is_named_by_its_title() {
    let d = json!({"_id": "D1", "t": "p", "name": "xK3rT9aBcDeFgHiJk", "fname": "Front door",
                   "prid": "GENERAL"});
    assert_eq!(parse_room(&d, "jeedombot").unwrap().name, "Front door");
    let plain = json!({"_id": "G1", "t": "p", "name": "home", "fname": "Home"});
    assert_eq!(parse_room(&plain, "jeedombot").unwrap().name, "home");
}
