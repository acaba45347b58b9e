//! Self tests of the fake Rocket.Chat over REST: send, update, uploads, faults, TLS.
use super::agent;
use super::rc_common::*;
use crate::support::ddp_client::DdpClient;
use crate::support::fake_rc::{DupIdMode, FakeRcOptions, FakeRocketChat, RestFault};
use serde_json::{json, Value};

#[test]
fn rest_send_update_and_duplicates() {
    let rc = fake();
    let mut c = bot(&rc);
    let token = bot_token(&mut c);
    assert_eq!(rest(&rc, "GET", "/api/v1/me", "bad", None).0, 401);
    let msg = json!({"message": {"_id": "abc123", "rid": "GENERAL", "msg": "Q?", "attachments": [{"actions": []}]}});
    let (s, v) = rest(
        &rc,
        "POST",
        "/api/v1/chat.sendMessage",
        &token,
        Some(msg.clone()),
    );
    assert_eq!((s, v["message"]["_id"].as_str()), (200, Some("abc123")));
    assert!(v["message"]["ts"].is_string());
    c.expect(T, |f| is_msg(f, "Q?"));
    let (s, v) = rest(&rc, "POST", "/api/v1/chat.sendMessage", &token, Some(msg));
    let crash = json!({"success": false, "error": "Cannot read properties of undefined (reading 'starred')"});
    assert_eq!(
        (s, v),
        (400, crash),
        "the real server's answer to a second _id"
    );
    let (s, v) = rest(
        &rc,
        "GET",
        "/api/v1/chat.getMessage?msgId=abc123",
        &token,
        None,
    );
    assert_eq!((s, &v["message"]["rid"]), (200, &json!("GENERAL")), "{v}");
    let (s, v) = rest(
        &rc,
        "GET",
        "/api/v1/chat.getMessage?msgId=nope",
        &token,
        None,
    );
    assert_eq!((s, v), (400, json!({"success": false})));
    let ts = json!({"message": {"rid": "GENERAL", "msg": "x", "ts": "2020-01-01T00:00:00Z"}});
    assert_eq!(
        rest(&rc, "POST", "/api/v1/chat.sendMessage", &token, Some(ts)).0,
        400
    );
    let edit = |m: Value| json!([m]);
    let r = c.call(
        "updateMessage",
        edit(json!({"_id": "abc123", "rid": "GENERAL", "msg": "Q? (answered)", "attachments": []})),
    );
    assert!(r.get("error").is_none() && r.get("result").is_none(), "{r}");
    let f = c.expect(T, |f| is_msg(f, "Q? (answered)"));
    assert!(f["fields"]["args"][0]["editedAt"]["$date"].is_u64());
    assert_eq!(f["fields"]["args"][0]["attachments"], json!([]));
    let same = c.call(
        "updateMessage",
        edit(json!({"_id": "abc123", "rid": "GENERAL", "msg": "Q? (answered)"})),
    );
    assert!(same.get("error").is_none());
    let bad = c.call(
        "updateMessage",
        edit(json!({"_id": "abc123", "msg": "z", "md": []})),
    );
    assert_eq!(bad["error"]["error"], "error-invalid-update-key");
    let other = rc.post("GENERAL", "alice", "hello");
    let r = c.call(
        "updateMessage",
        edit(json!({"_id": other, "rid": "GENERAL", "msg": "hacked"})),
    );
    assert_eq!(r["error"]["error"], "error-action-not-allowed");
    assert_eq!(rc.ddp_method_calls("updateMessage").len(), 4);
    let first = rc.wait_method_call(T, "updateMessage", 1);
    assert_eq!(first["params"][0]["attachments"], json!([]));
    let stored = rc.wait_message(T, "the edited question", |m| m["_id"] == "abc123");
    assert_eq!(stored["editedBy"]["username"], "jeedombot");
    let rc2 = FakeRocketChat::start(FakeRcOptions {
        dup_id_mode: DupIdMode::Error400,
        ..Default::default()
    });
    let tok2 = rc2.issue_token("jeedombot");
    let m = json!({"message": {"_id": "x1", "rid": "GENERAL", "msg": "a"}});
    assert_eq!(
        rest(
            &rc2,
            "POST",
            "/api/v1/chat.sendMessage",
            &tok2,
            Some(m.clone())
        )
        .0,
        200
    );
    let (s, v) = rest(&rc2, "POST", "/api/v1/chat.sendMessage", &tok2, Some(m));
    assert_eq!((s, v["success"].as_bool()), (400, Some(false)));
    assert_eq!(rc2.messages("GENERAL").len(), 1);
}

/// A multipart/form-data body with one file and text fields.
fn multipart(file: &[u8], name: &str, fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let b = "XyZbOuNdArY";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").bytes(),
        );
    }
    let head = format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: image/jpeg\r\n\r\n");
    body.extend(head.bytes());
    body.extend_from_slice(file);
    body.extend(format!("\r\n--{b}--\r\n").bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn upload(rc: &FakeRocketChat, path: &str, token: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
    let mut r = agent()
        .post(&format!("{}{path}", rc.url()))
        .header("X-User-Id", "botid")
        .header("X-Auth-Token", token)
        .header("Content-Type", ct)
        .send(&body[..])
        .expect("HTTP answer");
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        r.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

#[test]
fn uploads_by_version_and_size() {
    let rc = FakeRocketChat::start(FakeRcOptions {
        max_upload: 1000,
        ..Default::default()
    });
    let tok = rc.issue_token("jeedombot");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(600).collect();
    let (ct, body) = multipart(&bytes, "snap shot.jpg", &[]);
    let (s, v) = upload(&rc, "/api/v1/rooms.media/GENERAL", &tok, &ct, body);
    assert_eq!(s, 200, "{v}");
    let fid = v["file"]["_id"].as_str().unwrap().to_string();
    assert!(v["file"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/snap%20shot.jpg"));
    let conf = json!({"msg": "", "description": "my snapshot"});
    let (s, v) = rest(
        &rc,
        "POST",
        &format!("/api/v1/rooms.mediaConfirm/GENERAL/{fid}"),
        &tok,
        Some(conf),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"]["attachments"][0]["description"], "my snapshot");
    assert_eq!(v["message"]["file"]["_id"], fid.as_str());
    let again = rest(
        &rc,
        "POST",
        &format!("/api/v1/rooms.mediaConfirm/GENERAL/{fid}"),
        &tok,
        Some(json!({})),
    );
    assert_eq!(again.1["errorType"], "invalid-file");
    let (ct, body) = multipart(b"abc", "a.jpg", &[("msg", "hi"), ("description", "d")]);
    let (s, v) = upload(&rc, "/api/v1/rooms.upload/GENERAL", &tok, &ct, body);
    assert_eq!((s, v["message"]["msg"].as_str()), (200, Some("hi")));
    let (ct, body) = multipart(&[0u8; 1001], "big.jpg", &[]);
    let (s, v) = upload(&rc, "/api/v1/rooms.media/GENERAL", &tok, &ct, body);
    assert_eq!(
        (s, v["errorType"].as_str()),
        (400, Some("error-file-too-large"))
    );
    let ups = rc.uploads();
    assert_eq!(
        (ups.len(), ups[0].0.as_str(), ups[0].2.clone()),
        (2, "snap shot.jpg", bytes)
    );
    let old = FakeRocketChat::start(FakeRcOptions {
        version: "6.9.0".into(),
        ..Default::default()
    });
    let new = FakeRocketChat::start(FakeRcOptions {
        version: "8.0.0".into(),
        ..Default::default()
    });
    let (ct, body) = multipart(b"abc", "a.jpg", &[]);
    let t_old = old.issue_token("jeedombot");
    assert_eq!(
        upload(
            &old,
            "/api/v1/rooms.media/GENERAL",
            &t_old,
            &ct,
            body.clone()
        )
        .0,
        404
    );
    assert_eq!(
        upload(
            &old,
            "/api/v1/rooms.upload/GENERAL",
            &t_old,
            &ct,
            body.clone()
        )
        .0,
        200
    );
    let t_new = new.issue_token("jeedombot");
    assert_eq!(
        upload(&new, "/api/v1/rooms.upload/GENERAL", &t_new, &ct, body).0,
        404
    );
}

#[test]
fn rest_faults_info_login_history() {
    let rc = fake();
    let tok = rc.issue_token("jeedombot");
    let (s, v) = rest(&rc, "GET", "/api/info", "", None);
    assert_eq!((s, v["version"].as_str()), (200, Some("7.4.1")));
    let login = json!({"user": "jeedombot", "password": "s3cret"});
    let (s, v) = rest(&rc, "POST", "/api/v1/login", "", Some(login));
    assert_eq!((s, v["data"]["userId"].as_str()), (200, Some("botid")));
    let (s, v) = rest(
        &rc,
        "POST",
        "/api/v1/login",
        "",
        Some(json!({"user": "jeedombot", "password": "x"})),
    );
    assert_eq!((s, v["error"].as_str()), (401, Some("Unauthorized")));
    rc.rest_fault(
        "chat.sendMessage",
        RestFault::RateLimit {
            reset_ms_from_now: 1500,
        },
        1,
    );
    let m = json!({"message": {"_id": "m1", "rid": "GENERAL", "msg": "a"}});
    let r = agent()
        .post(&format!("{}/api/v1/chat.sendMessage", rc.url()))
        .header("X-User-Id", "botid")
        .header("X-Auth-Token", &tok)
        .header("Content-Type", "application/json")
        .send(m.to_string())
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let reset: u64 = r
        .headers()
        .get("x-ratelimit-reset")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > crate::support::fake_rc::util::wall_ms());
    rc.rest_fault("chat.sendMessage", RestFault::DropAfterInsert, 1);
    let url = format!("{}/api/v1/chat.sendMessage", rc.url());
    let dropped = agent()
        .post(&url)
        .header("X-User-Id", "botid")
        .header("X-Auth-Token", &tok)
        .send(m.to_string());
    assert!(dropped.is_err());
    assert_eq!(rc.messages("GENERAL").len(), 1);
    rc.rest_fault("/api/v1/me", RestFault::Status(502), 1);
    assert_eq!(rest(&rc, "GET", "/api/v1/me", &tok, None).0, 502);
    assert_eq!(rest(&rc, "GET", "/api/v1/me", &tok, None).0, 200);
    rc.post("GENERAL", "alice", "later");
    let (s, v) = rest(
        &rc,
        "GET",
        "/api/v1/channels.history?roomId=GENERAL&oldest=2000-01-01T00:00:00.000Z&count=10",
        &tok,
        None,
    );
    assert_eq!(
        (
            s,
            v["messages"][0]["msg"].as_str(),
            v["messages"][1]["msg"].as_str()
        ),
        (200, Some("later"), Some("a"))
    );
    // A message stamped ahead of the server's clock is listed once `latest`
    // (by default the server's now) reaches it.
    let ahead = crate::support::fake_rc::util::wall_ms() + 3_600_000;
    rc.post_message(
        json!({"rid": "GENERAL", "msg": "ahead", "u": {"username": "bob"},
        "ts": crate::support::fake_rc::ejson_date(ahead)}),
    );
    let path = "/api/v1/channels.history?roomId=GENERAL&oldest=2000-01-01T00:00:00.000Z";
    let (_, v) = rest(&rc, "GET", path, &tok, None);
    assert_eq!(v["messages"].as_array().unwrap().len(), 2, "{v}");
    let later = format!("{path}&latest=2100-01-01T00:00:00.000Z");
    let (_, v) = rest(&rc, "GET", &later, &tok, None);
    assert_eq!(v["messages"][0]["msg"], "ahead", "{v}");
    let (s, v) = rest(
        &rc,
        "POST",
        "/api/v1/im.create",
        &tok,
        Some(json!({"username": "bob"})),
    );
    assert_eq!((s, v["room"]["t"].as_str()), (200, Some("d")));
    assert_eq!(
        rest(&rc, "GET", "/api/v1/rooms.get", &tok, None).1["update"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let hidden = FakeRocketChat::start(FakeRcOptions {
        info_404: true,
        ..Default::default()
    });
    assert_eq!(rest(&hidden, "GET", "/api/info", "", None).0, 404);
}

#[test]
fn tls_rest_and_wss() {
    let rc = FakeRocketChat::start(FakeRcOptions {
        tls: true,
        ..Default::default()
    });
    assert!(rc.url().starts_with("https://localhost:"));
    let ca = FakeRocketChat::ca_file();
    let pem = std::fs::read(&ca).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
            cert,
        ])))
        .build();
    let a: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(T))
        .build()
        .into();
    let text = a
        .get(&format!("{}/api/info", rc.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(text.contains("7.4.1"));
    assert!(
        agent()
            .get(&format!("{}/api/info", rc.url()))
            .call()
            .is_err(),
        "webpki roots must not trust the test CA"
    );
    let mut c = DdpClient::connect(&rc.ws_url(), Some(&ca));
    assert_eq!(c.login("jeedombot", "s3cret")["result"]["id"], "botid");
}

/// The edit and post refusals of `updateMessage.ts` and `canSendMessage.ts`, in their real shapes.
#[test]
fn edits_and_posts_refused_by_settings_and_room_flags() {
    let rc = fake();
    let mut c = bot(&rc);
    let token = bot_token(&mut c);
    let id = rc.post("GENERAL", "jeedombot", "Q?");
    let mut n = 0;
    let mut edit = |c: &mut DdpClient| {
        n += 1;
        let msg = json!({"_id": id, "rid": "GENERAL", "msg": format!("Q? {n}")});
        c.call("updateMessage", json!([msg]))["error"].clone()
    };
    rc.set_edit_limit(5, true);
    rc.age_message(&id, 10);
    assert_eq!(edit(&mut c), Value::Null, "the bot role lifts the limit");
    rc.set_edit_limit(5, false);
    assert_eq!(edit(&mut c)["error"], "error-message-editing-blocked");
    rc.set_edit_limit(0, false);
    rc.set_allow_editing(false);
    let e = edit(&mut c);
    assert_eq!(
        (&e["error"], &e["reason"]),
        (
            &json!("error-action-not-allowed"),
            &json!("Message editing not allowed")
        )
    );
    rc.set_allow_editing(true);
    rc.set_read_only("GENERAL", true);
    let e = edit(&mut c);
    assert_eq!(
        (&e["error"], &e["reason"]),
        (&json!(500), &json!("Internal server error"))
    );
    let post = json!({"message": {"rid": "GENERAL", "msg": "x"}});
    let (s, v) = rest(
        &rc,
        "POST",
        "/api/v1/chat.sendMessage",
        &token,
        Some(post.clone()),
    );
    let ro =
        json!({"success": false, "error": "You can't send messages because the room is readonly."});
    assert_eq!((s, v), (400, ro));
    rc.set_read_only("GENERAL", false);
    rc.mute("GENERAL", "jeedombot");
    assert_eq!(edit(&mut c)["error"], 500);
    let (s, v) = rest(&rc, "POST", "/api/v1/chat.sendMessage", &token, Some(post));
    assert_eq!((s, v["error"].clone()), (400, json!("You_have_been_muted")));
}
