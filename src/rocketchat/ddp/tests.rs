//! Unit tests of the DDP frames, with samples shaped like Rocket.Chat's.
use super::*;

#[test]
fn greeting_without_msg_is_ignored() {
    assert_eq!(parse_frame(r#"{"server_id":"0"}"#).unwrap(), None);
}

#[test]
fn connected_ping_pong() {
    let f = parse_frame(r#"{"msg":"connected","session":"6Mv5HAb5Ls8nwBfLS"}"#).unwrap();
    assert_eq!(
        f,
        Some(ServerFrame::Connected {
            session: Some("6Mv5HAb5Ls8nwBfLS".into())
        })
    );
    let f = parse_frame(r#"{"msg":"ping"}"#).unwrap();
    assert_eq!(f, Some(ServerFrame::Ping { id: None }));
    let f = parse_frame(r#"{"msg":"ping","id":"7"}"#).unwrap();
    assert_eq!(
        f,
        Some(ServerFrame::Ping {
            id: Some("7".into())
        })
    );
    let f = parse_frame(r#"{"msg":"failed","version":"1"}"#).unwrap();
    assert_eq!(
        f,
        Some(ServerFrame::Failed {
            version: Some("1".into())
        })
    );
}

#[test]
fn login_result_and_error() {
    let ok = r#"{"msg":"result","id":"1","result":{"id":"hw5DThnhQmxDWnavu","token":"tok-abc","tokenExpires":{"$date":1480377601000},"type":"password"}}"#;
    let Some(ServerFrame::Result { id, result, error }) = parse_frame(ok).unwrap() else {
        panic!("not a result");
    };
    assert_eq!(id, "1");
    assert!(error.is_none());
    let result = result.unwrap();
    assert_eq!(result["id"], "hw5DThnhQmxDWnavu");
    assert_eq!(date_ms(&result["tokenExpires"]), Some(1_480_377_601_000));

    let bad = r#"{"msg":"result","id":"2","error":{"isClientSafe":true,"error":403,"reason":"Incorrect password","message":"Incorrect password [403]","errorType":"Meteor.Error"}}"#;
    let Some(ServerFrame::Result { error: Some(e), .. }) = parse_frame(bad).unwrap() else {
        panic!("not an error result");
    };
    assert_eq!(e.code(), "403");
    assert_eq!(e.text(), "Incorrect password");
    assert_eq!(e.error_type.as_deref(), Some("Meteor.Error"));

    let totp = r#"{"msg":"result","id":"3","error":{"isClientSafe":true,"error":"totp-required","reason":"TOTP Required","message":"TOTP Required [totp-required]","errorType":"Meteor.Error","details":{"method":"totp","codeGenerated":false}}}"#;
    let Some(ServerFrame::Result { error: Some(e), .. }) = parse_frame(totp).unwrap() else {
        panic!("not an error result");
    };
    assert_eq!(e.code(), "totp-required");
    assert_eq!(e.details.unwrap()["method"], "totp");
}

#[test]
fn result_false_and_null() {
    let f = parse_frame(r#"{"msg":"result","id":"9","result":false}"#).unwrap();
    assert_eq!(
        f,
        Some(ServerFrame::Result {
            id: "9".into(),
            result: Some(Value::Bool(false)),
            error: None
        })
    );
    let f = parse_frame(r#"{"msg":"result","id":"9"}"#).unwrap();
    assert!(matches!(
        f,
        Some(ServerFrame::Result {
            result: None,
            error: None,
            ..
        })
    ));
}

#[test]
fn subscription_frames() {
    let f = parse_frame(r#"{"msg":"ready","subs":["2","3"]}"#).unwrap();
    assert_eq!(
        f,
        Some(ServerFrame::Ready {
            subs: vec!["2".into(), "3".into()]
        })
    );
    let f = parse_frame(r#"{"msg":"updated","methods":["1"]}"#).unwrap();
    assert_eq!(
        f,
        Some(ServerFrame::Updated {
            methods: vec!["1".into()]
        })
    );
    let nosub = r#"{"msg":"nosub","id":"4","error":{"isClientSafe":true,"error":"not-allowed","reason":"Not allowed","message":"Not allowed [not-allowed]","errorType":"Meteor.Error"}}"#;
    let Some(ServerFrame::Nosub { id, error: Some(e) }) = parse_frame(nosub).unwrap() else {
        panic!("not nosub");
    };
    assert_eq!((id.as_str(), e.code().as_str()), ("4", "not-allowed"));
    let added = r#"{"msg":"added","collection":"users","id":"hw5DThnhQmxDWnavu","fields":{"username":"jeedombot","emails":[{"address":"bot@example.org","verified":true}]}}"#;
    let Some(ServerFrame::Added {
        collection, fields, ..
    }) = parse_frame(added).unwrap()
    else {
        panic!("not added");
    };
    assert_eq!(collection, "users");
    assert_eq!(fields.unwrap()["username"], "jeedombot");
    let removed = r#"{"msg":"removed","collection":"users","id":"x"}"#;
    assert!(matches!(
        parse_frame(removed).unwrap(),
        Some(ServerFrame::Removed { .. })
    ));
}

#[test]
fn stream_changed_frame() {
    let text = r#"{"msg":"changed","collection":"stream-room-messages","id":"id","fields":{"eventName":"__my_messages__","args":[{"_id":"m1","rid":"GENERAL","msg":"hello","ts":{"$date":1764064800123},"u":{"_id":"u1","username":"alice","name":"Alice A."},"mentions":[],"channels":[],"_updatedAt":{"$date":1764064800130}},{"roomParticipant":true,"roomType":"c","roomName":"general"}]}}"#;
    let Some(ServerFrame::Changed {
        collection, fields, ..
    }) = parse_frame(text).unwrap()
    else {
        panic!("not changed");
    };
    assert_eq!(collection, "stream-room-messages");
    let fields = fields.unwrap();
    assert_eq!(fields["eventName"], "__my_messages__");
    assert_eq!(fields["args"][1]["roomType"], "c");
}

#[test]
fn unknown_msg_and_garbage() {
    assert_eq!(
        parse_frame(r#"{"msg":"something-new","x":1}"#).unwrap(),
        Some(ServerFrame::Other)
    );
    assert!(parse_frame("not json").is_err());
    assert!(parse_frame(r#"{"msg":"result"}"#).is_err());
    assert!(parse_frame(r#"{"msg":"changed","collection":5,"id":"x"}"#).is_err());
}

#[test]
fn client_frames_serialize() {
    assert_eq!(
        ClientFrame::connect().to_text(),
        r#"{"msg":"connect","version":"1","support":["1"]}"#
    );
    assert_eq!(
        ClientFrame::Pong { id: None }.to_text(),
        r#"{"msg":"pong"}"#
    );
    assert_eq!(
        ClientFrame::Pong {
            id: Some("a".into())
        }
        .to_text(),
        r#"{"msg":"pong","id":"a"}"#
    );
    let mut ids = Ids::default();
    let sub = ids.sub(
        "stream-room-messages",
        vec![json!("__my_messages__"), json!(false)],
    );
    assert_eq!(
        sub.to_text(),
        r#"{"msg":"sub","id":"1","name":"stream-room-messages","params":["__my_messages__",false]}"#
    );
    let m = ids.method("rooms/get", vec![]);
    assert_eq!(frame_id(&m), Some("2"));
    assert_eq!(
        m.to_text(),
        r#"{"msg":"method","id":"2","method":"rooms/get","params":[]}"#
    );
}

#[test]
fn password_login_uses_a_sha256_digest() {
    let p = login_password("jeedombot", "abc");
    assert_eq!(p["user"], json!({"username": "jeedombot"}));
    assert_eq!(
        p["password"]["digest"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(p["password"]["algorithm"], "sha-256");
    assert!(!p.to_string().contains("abc\""));
    let p = login_password("bot@example.org", "abc");
    assert_eq!(p["user"], json!({"email": "bot@example.org"}));
    assert_eq!(login_resume("t0k"), json!({"resume": "t0k"}));
}

#[test]
fn ejson_and_iso_dates() {
    assert_eq!(
        date_ms(&json!({"$date": 1_700_000_000_123_i64})),
        Some(1_700_000_000_123)
    );
    assert_eq!(date_ms(&json!({"$date": 1.7e12})), Some(1_700_000_000_000));
    assert_eq!(date_ms(&json!(42)), Some(42));
    assert_eq!(date_ms(&json!("1970-01-01T00:00:00Z")), Some(0));
    assert_eq!(
        date_ms(&json!("2018-01-21T21:03:43.736Z")),
        Some(1_516_568_623_736)
    );
    assert_eq!(
        date_ms(&json!({"$date": "2018-01-21T21:03:43.736Z"})),
        Some(1_516_568_623_736)
    );
    assert_eq!(
        date_ms(&json!("2018-01-21T23:03:43.7+02:00")),
        Some(1_516_568_623_700)
    );
    assert_eq!(
        date_ms(&json!("2000-02-29T00:00:00.123456Z")),
        Some(951_782_400_123)
    );
    assert_eq!(date_ms(&json!("1969-12-31T23:59:59Z")), Some(-1000));
    for bad in [
        "",
        "2018-13-01T00:00:00Z",
        "yesterday",
        "2018-01-21",
        "2018-01-21T21:03:43+2",
    ] {
        assert_eq!(date_ms(&json!(bad)), None, "{bad}");
    }
    assert_eq!(date_ms(&json!(null)), None);
    assert_eq!(date_ms(&json!({"date": 1})), None);
}

#[test]
fn redaction_hides_login_params_and_tokens() {
    let login = ClientFrame::Method {
        id: "1".into(),
        method: "login".into(),
        params: vec![login_password("jeedombot", "s3cret-pass")],
    }
    .to_text();
    let digest = sha256_hex("s3cret-pass");
    let shown = redacted(&login);
    assert!(
        !shown.contains(&digest) && !shown.contains("s3cret"),
        "{shown}"
    );
    assert!(shown.contains("login"));

    let resume = ClientFrame::Method {
        id: "2".into(),
        method: "login".into(),
        params: vec![login_resume("RESUME-TOKEN-123")],
    }
    .to_text();
    assert!(!redacted(&resume).contains("RESUME-TOKEN-123"));

    let result = r#"{"msg":"result","id":"2","result":{"id":"uid1","token":"NEW-TOKEN-456","tokenExpires":{"$date":1}}}"#;
    let shown = redacted(result);
    assert!(!shown.contains("NEW-TOKEN-456"), "{shown}");
    assert!(shown.contains("uid1"));

    let nested = r#"{"msg":"method","id":"3","method":"other","params":[{"deep":[{"resume":"DEEP-TOKEN"}]}]}"#;
    assert!(!redacted(nested).contains("DEEP-TOKEN"));
    assert!(!redacted("garbage token=XYZ").contains("XYZ"));
    assert_eq!(redacted("plain"), "plain");
    let msg = r#"{"msg":"changed","collection":"c","id":"i","fields":{"args":["hello"]}}"#;
    assert!(redacted(msg).contains("hello"));
}

#[test]
fn the_rate_limiter_refusal_says_how_long_to_wait() {
    let frame = r#"{"msg":"result","id":"7","error":{"isClientSafe":true,"error":"too-many-requests","reason":"Error, too many requests. Please slow down. You must wait 6 seconds before trying again.","details":{"timeToReset":5512},"message":"Error, too many requests. [too-many-requests]","errorType":"Meteor.Error"}}"#;
    let Some(ServerFrame::Result { error: Some(e), .. }) = parse_frame(frame).unwrap() else {
        panic!("not a result with an error");
    };
    assert_eq!(
        e.rate_limit_wait(),
        Some(std::time::Duration::from_millis(5512))
    );
    let no_details = DdpError {
        error: serde_json::json!("too-many-requests"),
        ..DdpError::default()
    };
    assert_eq!(
        no_details.rate_limit_wait(),
        Some(std::time::Duration::from_secs(10))
    );
    let other = DdpError {
        error: serde_json::json!(403),
        ..DdpError::default()
    };
    assert_eq!(other.rate_limit_wait(), None);
}
