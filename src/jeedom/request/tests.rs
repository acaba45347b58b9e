//! Unit tests of request validation.
use super::*;

fn key() -> Secret {
    Secret::new("k3y")
}

fn p(json: &str) -> Result<Request, RequestError> {
    parse(json.as_bytes(), &key())
}

fn err(json: &str) -> String {
    p(json).expect_err("must be refused").to_string()
}

#[test]
fn api_key_is_checked_first() {
    assert_eq!(err(r##"{"action":"nope"}"##), "bad apikey");
    assert_eq!(
        err(r##"{"apikey":"wrong","action":"status"}"##),
        "bad apikey"
    );
    assert_eq!(err(r##"{"apikey":42,"action":"status"}"##), "bad apikey");
    assert_eq!(
        p(r##"{"apikey":"k3y","action":"status"}"##),
        Ok(Request::Status)
    );
}

#[test]
fn malformed_requests_name_the_problem() {
    assert!(err("not json").starts_with("invalid JSON"));
    assert_eq!(err("[1,2]"), "the request must be a JSON object");
    assert_eq!(err(r##"{"apikey":"k3y"}"##), "missing field \"action\"");
    assert!(err(r##"{"apikey":"k3y","action":"dance"}"##).starts_with("unknown action \"dance\""));
    assert_eq!(
        err(r##"{"apikey":"k3y","action":"send","message":"hi"}"##),
        "missing field \"room\""
    );
    assert_eq!(
        err(r##"{"apikey":"k3y","action":"send","room":5,"message":"hi"}"##),
        "field \"room\" must be a string"
    );
    assert_eq!(
        err(r##"{"apikey":"k3y","action":"send","room":"#a","message":"hi","files":"x"}"##),
        "field \"files\" must be a list of strings"
    );
    assert_eq!(
        err(r##"{"apikey":"k3y","action":"send","room":"#a"}"##),
        "missing field \"message\""
    );
    assert!(err(
        r##"{"apikey":"k3y","action":"send","room":"#a","message":"x","files":["rel.jpg"]}"##
    )
    .contains("absolute"));
    assert!(
        err(r##"{"apikey":"k3y","action":"send","room":"#","message":"x"}"##)
            .starts_with("field \"room\"")
    );
    assert!(err(
        r##"{"apikey":"k3y","action":"send","room":"#a","message":"x","options":"file=\"/a"}"##
    )
    .contains("unterminated"));
    assert_eq!(
        err(r##"{"apikey":"k3y","action":"ask","room":"#a","question":"q?","answers":["y"]}"##),
        "missing field \"ask_id\""
    );
    assert!(err(r##"{"apikey":"k3y","action":"ask","room":"#a","question":"q?","answers":["y"],"ask_id":1,"timeout":-3}"##).contains("timeout"));
}

#[test]
fn send_merges_files_and_options() {
    let r = p(r##"{"apikey":"k3y","action":"send","room":"@alice","message":"hello","mention":"@bob",
                 "files":["/a.jpg"],"options":"file=\"/b c.jpg\" description=\"my cam\"","ref":12}"##).unwrap();
    let Request::Send(s) = r else {
        panic!("not a send")
    };
    assert_eq!(s.room, "@alice");
    assert_eq!(s.mention.as_deref(), Some("bob"));
    assert_eq!(s.files, ["/a.jpg", "/b c.jpg"]);
    assert_eq!(s.description.as_deref(), Some("my cam"));
    assert_eq!(s.reference.as_deref(), Some("12"));
}

#[test]
fn ask_fields_and_defaults() {
    let r = p(r##"{"apikey":"k3y","action":"ask","room":"#home","question":"Call the police?","answers":"Yes; No","ask_id":42}"##).unwrap();
    let Request::Ask(a) = r else {
        panic!("not an ask")
    };
    assert_eq!(a.answers, ["Yes", "No"]);
    assert_eq!(a.ask_id, "42");
    assert_eq!(a.timeout_s, DEFAULT_ASK_TIMEOUT_S);
    let r = p(r##"{"apikey":"k3y","action":"ask","room":"#home","question":"q","answers":["*"],"ask_id":"7","timeout":"30","answers_per_line":2}"##).unwrap();
    let Request::Ask(a) = r else {
        panic!("not an ask")
    };
    assert_eq!((a.timeout_s, a.answers_per_line), (30, Some(2)));
}

#[test]
fn enormous_ask_timeouts_are_capped() {
    for t in [
        "9223372036854775808",
        "18446744073709551615",
        "\"99999999999999999999999\"",
        "1e30",
        "31622401",
    ] {
        let line = format!(
            r##"{{"apikey":"k3y","action":"ask","room":"#a","question":"q","answers":["y"],"ask_id":1,"timeout":{t}}}"##
        );
        let Ok(Request::Ask(a)) = p(&line) else {
            panic!("refused: {t}")
        };
        assert_eq!(a.timeout_s, MAX_ASK_TIMEOUT_S, "{t}");
    }
    assert!(err(r##"{"apikey":"k3y","action":"ask","room":"#a","question":"q?","answers":["y"],"ask_id":1,"timeout":1.5}"##).contains("timeout"));
}

#[test]
fn constant_time_comparison() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(!constant_time_eq(b"", b"a"));
    assert!(constant_time_eq(b"", b""));
}

#[test]
fn a_discussion_title_with_spaces_is_a_room_name() {
    let ok = p(r##"{"apikey":"k3y","action":"send","room":"#Front door","message":"x"}"##);
    assert!(ok.is_ok(), "{ok:?}");
    assert!(
        err(r##"{"apikey":"k3y","action":"send","room":"GEN ERAL","message":"x"}"##)
            .contains("is not a room id")
    );
    assert!(
        err(r##"{"apikey":"k3y","action":"send","room":"@al ice","message":"x"}"##)
            .contains("is not a room id")
    );
}

#[test]
fn the_first_problem_in_field_order_is_named_whatever_the_key_order() {
    let one = r##"{"apikey":"k3y","action":"send","files":"x","room":5,"message":"hi"}"##;
    let other = r##"{"room":5,"message":"hi","files":"x","action":"send","apikey":"k3y"}"##;
    assert_eq!(err(one), "field \"room\" must be a string");
    assert_eq!(err(other), "field \"room\" must be a string");
    let ask = r##"{"apikey":"k3y","action":"ask","timeout":true,"room":"#a","ask_id":1}"##;
    assert_eq!(err(ask), "missing field \"question\"");
}

#[test]
fn unknown_fields_and_null_are_ignored() {
    let r = p(r##"{"apikey":"k3y","action":"status","room":[],"colour":"red"}"##);
    assert_eq!(r, Ok(Request::Status));
    let r = p(
        r##"{"apikey":"k3y","action":"send","room":"#a","message":"x","files":null,
                 "mention":null,"thread":"","ref":null,"priority":3}"##,
    );
    let Ok(Request::Send(s)) = r else {
        panic!("refused: {r:?}")
    };
    assert_eq!((s.files.len(), s.mention, s.thread), (0, None, None));
}

#[test]
fn answers_absent_is_missing_null_accepts_any_reply() {
    let base = r##""apikey":"k3y","action":"ask","room":"#a","question":"q","ask_id":1"##;
    assert_eq!(err(&format!("{{{base}}}")), "missing field \"answers\"");
    let Ok(Request::Ask(a)) = p(&format!("{{{base},\"answers\":null}}")) else {
        panic!("null answers refused")
    };
    assert!(a.answers.is_empty());
    assert_eq!(
        err(&format!("{{{base},\"answers\":{{}}}}")),
        "field \"answers\" must be a list of strings"
    );
}

#[test]
fn wrong_types_name_what_was_expected() {
    let ask = |extra: &str| {
        err(&format!(
            r##"{{"apikey":"k3y","action":"ask","room":"#a","question":"q","answers":["y"],{extra}}}"##
        ))
    };
    assert_eq!(
        ask(r#""ask_id":true"#),
        "field \"ask_id\" must be a string or a number"
    );
    assert_eq!(
        ask(r#""ask_id":1,"answers_per_line":"0""#),
        "field \"answers_per_line\" must be a positive whole number"
    );
    assert_eq!(
        err(r##"{"apikey":"k3y","action":5}"##),
        "field \"action\" must be a string"
    );
}
