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
