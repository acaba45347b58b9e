//! Tests of the REST shapes, with answers taken from the Rocket.Chat OpenAPI examples.
use super::*;

#[test]
fn text_message_has_our_id_and_no_ts() {
    let m = text_message("abcdefghijkmnopqr", "GENERAL", "hi", None);
    assert_eq!(
        send_message_body(&m),
        json!({"message": {"_id": "abcdefghijkmnopqr", "rid": "GENERAL", "msg": "hi"}})
    );
    let t = text_message("id", "R", "x", Some("root"));
    assert_eq!(t["tmid"], "root");
    assert!(t.get("ts").is_none());
}

#[test]
fn confirm_body_and_upload_fields_skip_missing_values() {
    assert_eq!(confirm_body(None, None), json!({}));
    assert_eq!(
        confirm_body(Some("my snapshot"), Some("T1")),
        json!({"description": "my snapshot", "tmid": "T1"})
    );
    assert_eq!(confirm_body(Some(""), None), json!({}));
    assert_eq!(
        upload_fields(Some("cap"), Some("T1")),
        [("description", "cap"), ("tmid", "T1")]
    );
    assert!(upload_fields(None, None).is_empty());
}

#[test]
fn content_types_by_extension() {
    for (name, mime) in [
        ("a.jpg", "image/jpeg"),
        ("A.JPEG", "image/jpeg"),
        ("b.png", "image/png"),
        ("c.gif", "image/gif"),
        ("d.webp", "image/webp"),
        ("e.mp4", "video/mp4"),
        ("tts.mp3", "audio/mpeg"),
        ("note.ogg", "audio/ogg"),
        ("clip.MOV", "video/quicktime"),
        ("f.pdf", "application/pdf"),
        ("g.txt", "text/plain"),
        ("h.json", "application/json"),
        ("i.tar.gz", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ] {
        assert_eq!(content_type(name), mime, "{name}");
    }
}

#[test]
fn multipart_body_is_well_formed() {
    let (head, tail) = multipart_frame(
        "XyZ",
        &[("description", "my snapshot")],
        "snap \"1\".jpg",
        "image/jpeg",
    );
    let body = [head.as_slice(), b"\xff\xd8data", tail.as_slice()].concat();
    let mut expected = b"--XyZ\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nmy snapshot\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"snap %221%22.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    expected.extend_from_slice(b"\xff\xd8data\r\n--XyZ--\r\n");
    assert_eq!(body, expected);
}

#[test]
fn success_answers_are_parsed() {
    let ok = r#"{"message":{"rid":"GENERAL","msg":"123456789","_id":"LnCSJxxNkCy6K9X8X"},"success":true}"#;
    let v = check_answer("chat.sendMessage", 200, None, ok).unwrap();
    assert_eq!(v["message"]["_id"], "LnCSJxxNkCy6K9X8X");
    let e = check_answer("x", 200, None, "<html>maintenance</html>").unwrap_err();
    assert!(
        matches!(e, Error::Protocol(Protocol::NotJson { .. })),
        "{e}"
    );
    let e = check_answer("x", 200, None, r#"{"success":false,"error":"nope"}"#).unwrap_err();
    assert!(
        matches!(e, Error::Status { status: 200, ref reason, .. } if reason == "nope"),
        "{e}"
    );
}

#[test]
fn openapi_error_examples_keep_status_and_reason() {
    let cases = [
        (
            401,
            r#"{"status":"error","message":"You must be logged in to do this."}"#,
            "You must be logged in to do this.",
        ),
        (
            400,
            r#"{"success":false,"error":"The \"message\" parameter must be provided. [error-invalid-params]","errorType":"error-invalid-params"}"#,
            "The \"message\" parameter must be provided. [error-invalid-params]",
        ),
        (
            403,
            r#"{"success":false,"error":"User does not have the permissions required for this action [error-unauthorized]"}"#,
            "User does not have the permissions required for this action [error-unauthorized]",
        ),
        (
            400,
            r#"{"success":false,"error":"[invalid-file]","errorType":"invalid-file"}"#,
            "[invalid-file]",
        ),
        (
            413,
            "<html><body>413 Request Entity Too Large</body></html>",
            "Request Entity Too Large",
        ),
        (502, "", "Bad Gateway"),
        (404, "Not found", "Not found"),
    ];
    for (status, body, reason) in cases {
        match check_answer("call", status, None, body).unwrap_err() {
            Error::Status {
                what,
                status: s,
                reason: r,
                ..
            } => {
                assert_eq!((what.as_str(), s, r.as_str()), ("call", status, reason));
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn rate_limit_keeps_the_reset_time() {
    let body = r#"{"success":false,"error":"Error, too many requests. Please slow down. You must wait 56 seconds before trying this endpoint again. [error-too-many-requests]"}"#;
    let e = check_answer("chat.sendMessage", 429, Some("1700000056000"), body).unwrap_err();
    match &e {
        Error::RateLimited {
            reset_ms, reason, ..
        } => {
            assert_eq!(*reset_ms, Some(1_700_000_056_000));
            assert!(reason.contains("too many requests"));
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("HTTP 429"));
    let e = check_answer("x", 429, None, "").unwrap_err();
    assert!(matches!(e, Error::RateLimited { reset_ms: None, .. }));
}

#[test]
fn rate_limit_wait_is_bounded() {
    let now = 1_700_000_000_000;
    assert_eq!(rate_limit_wait(now + 56_000, now), Duration::from_secs(56));
    assert_eq!(rate_limit_wait(now - 5_000, now), Duration::from_secs(1));
    assert_eq!(rate_limit_wait(now + 86_400_000, now), MAX_RATE_LIMIT_WAIT);
}

#[test]
fn duplicate_id_errors_are_recognised() {
    assert!(is_duplicate_id(
        "E11000 duplicate key error collection: rocketchat_message"
    ));
    assert!(is_duplicate_id(
        "Message already exists [error-message-already-exists]"
    ));
    assert!(!is_duplicate_id("error-room-does-not-exist"));
    assert!(!is_duplicate_id(
        "The 'rid' property on the message object is missing."
    ));
}

#[test]
fn the_starred_crash_is_not_taken_for_a_duplicate_without_a_lookup() {
    // An app that prevents a message crashes the route the same way.
    assert!(!is_duplicate_id(
        "Cannot read properties of undefined (reading 'starred')"
    ));
    assert!(!is_duplicate_id(
        "Cannot read property 'starred' of undefined"
    ));
}

#[test]
fn a_posted_copy_is_the_bots_message_in_the_same_room() {
    let msg = json!({"_id": "abc", "rid": "GENERAL", "msg": "hi"});
    let found = |rid: &str, uid: &str| json!({"message": {"_id": "abc", "rid": rid, "msg": "hi", "u": {"_id": uid}}, "success": true});
    let copy = posted_copy(&found("GENERAL", "bot"), &msg, "bot").unwrap();
    assert_eq!(copy["_id"], "abc");
    assert_eq!(posted_copy(&found("OTHER", "bot"), &msg, "bot"), None);
    assert_eq!(posted_copy(&found("GENERAL", "alice"), &msg, "bot"), None);
    assert_eq!(posted_copy(&json!({"success": true}), &msg, "bot"), None);
    let other_id = json!({"message": {"_id": "xyz", "rid": "GENERAL", "u": {"_id": "bot"}}});
    assert_eq!(posted_copy(&other_id, &msg, "bot"), None);
}

#[test]
fn versions() {
    assert_eq!(
        info_version(&json!({"version":"7.4.1","success":true})).as_deref(),
        Some("7.4.1")
    );
    assert_eq!(
        info_version(&json!({"info":{"version":"0.58.2"},"success":true})).as_deref(),
        Some("0.58.2")
    );
    assert_eq!(info_version(&json!({"success":true})), None);
    assert_eq!(version_at_least("6.10.0", 6, 10), Some(true));
    assert_eq!(version_at_least("6.9.3", 6, 10), Some(false));
    assert_eq!(version_at_least("8.0.0-rc.1", 6, 10), Some(true));
    assert_eq!(version_at_least("5", 6, 10), Some(false));
    assert_eq!(version_at_least("unknown", 6, 10), None);
    assert_eq!(version_at_least("", 6, 10), None);
}

#[test]
fn answer_fields() {
    let im = json!({"room":{"t":"d","rid":"PMrDaS4axRqkjY7errocket.cat","usernames":["g1","rocket.cat"]},"success":true});
    assert_eq!(
        im_room_id(&im).as_deref(),
        Some("PMrDaS4axRqkjY7errocket.cat")
    );
    assert_eq!(
        im_room_id(&json!({"room":{"_id":"R2"}})).as_deref(),
        Some("R2")
    );
    assert_eq!(im_room_id(&json!({"success":true})), None);
    let media = json!({"file":{"_id":"67109d6c25682c7469486008","url":"/file-upload/67109d6c25682c7469486008/a.png"},"success":true});
    assert_eq!(
        media_file_id(&media).as_deref(),
        Some("67109d6c25682c7469486008")
    );
    assert_eq!(media_file_id(&json!({"success":true})), None);
    let settings =
        json!({"settings":[{"_id":"Message_MaxAllowedSize","value":8000}],"success":true});
    assert_eq!(max_message_size(&settings), Some(8000));
    let as_text = json!({"settings":[{"_id":"Message_MaxAllowedSize","value":"300"}]});
    assert_eq!(max_message_size(&as_text), Some(300));
    assert_eq!(max_message_size(&json!({"settings":[]})), None);
    let page = json!({"settings":[{"_id":"A"},{"_id":"B"}],"count":2,"offset":0,"total":90});
    assert_eq!(settings_page(&page), (2, Some(90)));
    assert_eq!(settings_page(&json!({"success":false})), (0, None));
}

#[test]
fn file_message_is_found_by_file_id_and_author() {
    let history = json!({"messages": [
        {"_id": "m3", "u": {"_id": "alice"}, "file": {"_id": "F1"}},
        {"_id": "m2", "u": {"_id": "bot"}, "msg": "text"},
        {"_id": "m1", "u": {"_id": "bot"}, "files": [{"_id": "F0"}, {"_id": "F1"}]},
    ], "success": true});
    let found = file_message(&history, "F1", "bot").expect("found");
    assert_eq!(found["_id"], "m1");
    assert_eq!(file_message(&history, "F9", "bot"), None);
    assert_eq!(file_message(&json!({"success": true}), "F1", "bot"), None);
    assert!(is_invalid_file("[invalid-file]"));
    assert!(!is_invalid_file("File exceeds allowed size"));
}

#[test]
fn refusals_are_read_once_from_the_answer() {
    let refusal_of = |status, body| match check_answer("x", status, None, body) {
        Err(Error::Status { refusal, .. }) => refusal,
        other => panic!("{other:?}"),
    };
    let dup = r#"{"success":false,"error":"E11000 duplicate key error"}"#;
    assert_eq!(refusal_of(400, dup), Refusal::DuplicateId);
    let gone = r#"{"success":false,"error":"Invalid file [invalid-file]"}"#;
    assert_eq!(refusal_of(400, gone), Refusal::FileExpired);
    assert_eq!(refusal_of(200, gone), Refusal::FileExpired);
    let crash =
        r#"{"success":false,"error":"Cannot read properties of undefined (reading 'starred')"}"#;
    assert_eq!(refusal_of(400, crash), Refusal::Other);
}
