//! Tests of send planning: steps, ids, text splitting and room resolution.
use super::*;
use crate::model::SpooledFile;

fn item(text: &str, files: usize) -> Outgoing {
    Outgoing {
        key: "key1".into(),
        kind: OutKind::Send,
        room: "#general".into(),
        text: text.into(),
        mention: None,
        files: (0..files)
            .map(|i| SpooledFile {
                path: format!("/spool/{i}"),
                name: format!("f{i}.jpg"),
                size: None,
            })
            .collect(),
        description: None,
        thread: None,
        reference: None,
        accepted_ms: 0,
        steps_done: 0,
    }
}

fn room(id: &str, name: &str, kind: RoomKind, users: &[&str]) -> Room {
    Room {
        id: id.into(),
        name: name.into(),
        kind,
        users: users.iter().map(|u| u.to_string()).collect(),
        last_message_ms: None,
    }
}

#[test]
fn ids_are_deterministic_meteor_ids() {
    let a = message_id("key1", 0);
    assert_eq!(a.len(), 17);
    assert!(a.bytes().all(|b| METEOR_ALPHABET.contains(&b)), "{a}");
    assert_eq!(a, message_id("key1", 0));
    assert_ne!(a, message_id("key1", 1));
    assert_ne!(a, message_id("key2", 0));
}

#[test]
fn steps_text_then_files() {
    let mut it = item("hello", 2);
    it.mention = Some("alice".into());
    assert_eq!(
        steps(&it, 5000),
        [
            Step::Text("@alice hello".into()),
            Step::File(0),
            Step::File(1)
        ]
    );
    assert_eq!(steps(&item("  ", 1), 5000), [Step::File(0)]);
    assert!(steps(&item("", 0), 5000).is_empty());
    assert!(!Step::File(0).has_own_id() && Step::Text("x".into()).has_own_id());
}

#[test]
fn ask_is_one_question_step() {
    let mut it = item("Open the gate?", 0);
    it.kind = OutKind::Ask {
        ask_id: "1".into(),
        answers: vec!["Yes".into(), "No".into()],
        timeout_s: 300,
        answers_per_line: None,
    };
    match &steps(&it, 5)[..] {
        [Step::Question { text, attachments }] => {
            assert_eq!(text, "Open the gate?\n[Yes] [No]");
            assert_eq!(attachments[0]["actions"].as_array().unwrap().len(), 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn short_text_is_not_split() {
    assert_eq!(split_text("a b c", 5), ["a b c"]);
    assert_eq!(split_text("", 5), [""]);
}

#[test]
fn split_prefers_lines_then_words() {
    let text = "line one\nline two is long\nthree";
    assert_eq!(
        split_text(text, 17),
        ["line one", "line two is long", "three"]
    );
    assert_eq!(
        split_text("alpha beta gamma delta", 11),
        ["alpha beta", "gamma delta"]
    );
    // An early line break would leave a tiny part: break at a space instead.
    assert_eq!(split_text("ab\ncd ef gh ij", 10), ["ab\ncd ef", "gh ij"]);
}

#[test]
fn split_cuts_words_longer_than_the_limit() {
    assert_eq!(split_text("abcdefghij", 4), ["abcd", "efgh", "ij"]);
}

#[test]
fn split_counts_utf16_units_and_keeps_characters_whole() {
    // Each emoji is 2 UTF-16 units (the server's `length`), 4 UTF-8 bytes.
    let parts = split_text("😀😀😀", 4);
    assert_eq!(parts, ["😀😀", "😀"]);
    let parts = split_text("é😀", 1);
    assert_eq!(parts, ["é", "😀"]);
}

#[test]
fn split_keeps_every_word_in_order() {
    let words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
    let text = words.join(" ");
    let parts = split_text(&text, 100);
    assert!(parts.iter().all(|p| p.len() <= 100));
    assert_eq!(parts.join(" "), text);
}

#[test]
fn resolves_ids_names_and_direct_rooms() {
    let rooms = [
        room("GENERAL", "general", RoomKind::Channel, &[]),
        room("p1", "secret", RoomKind::Group, &[]),
        room("d1", "alice", RoomKind::Direct, &["alice", "bot"]),
    ];
    let found = |t: &str| match resolve(t, &rooms) {
        Ok(Target::Room(r)) => r.id,
        other => panic!("{t}: {other:?}"),
    };
    assert_eq!(found("GENERAL"), "GENERAL");
    assert_eq!(found("#general"), "GENERAL");
    assert_eq!(found("#Secret"), "p1");
    assert_eq!(found("general"), "GENERAL");
    assert_eq!(found("@alice"), "d1");
    assert_eq!(found("@Alice"), "d1");
    assert_eq!(
        resolve("@bob", &rooms),
        Ok(Target::OpenDirect("bob".into()))
    );
    assert_eq!(
        resolve("#nope", &rooms),
        Err(Unresolved::NotMember("#nope".into()))
    );
    assert_eq!(
        Unresolved::NotMember("#nope".into()).to_string(),
        "unknown room #nope: the bot is not a member"
    );
    // A direct room is never reached by `#name`.
    assert!(resolve("#alice", &rooms).is_err());
    assert_eq!(resolve("", &rooms), Err(Unresolved::NoRoom));
    assert_eq!(resolve("@", &rooms), Err(Unresolved::NoUsername));
}

#[test]
fn a_discussion_resolves_by_its_title() {
    let rooms = [room("D1", "Front door", RoomKind::Group, &[])];
    match resolve("#Front door", &rooms) {
        Ok(Target::Room(r)) => assert_eq!(r.id, "D1"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        resolve("#front DOOR", &rooms),
        Ok(Target::Room(_))
    ));
}
