//! Self tests of the test doubles, driven over real sockets.
mod support;

use std::time::Duration;
use support::http::{HttpServer, Reply, Response};

/// A ureq agent that returns every status as a response.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

#[test]
fn http_server_parses_and_answers() {
    let srv = HttpServer::start(|req| {
        let body = format!(
            "{} {} q={:?} h={:?} b={}",
            req.method,
            req.path,
            req.query.get("a"),
            req.header("x-test"),
            String::from_utf8_lossy(&req.body)
        );
        Reply::Send(Response::text(201, &body))
    });
    let url = format!("http://127.0.0.1:{}/p%20x?a=b%2Bc+d", srv.port());
    let mut r = agent()
        .post(&url)
        .header("X-Test", "yes")
        .send("hello")
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(text, "POST /p x q=Some(\"b+c d\") h=Some(\"yes\") b=hello");
}

#[test]
fn http_server_close_and_down() {
    let srv = HttpServer::start(|_| Reply::Close);
    let url = format!("http://127.0.0.1:{}/", srv.port());
    assert!(agent().get(&url).call().is_err());
    srv.set_down(true);
    assert!(std::net::TcpStream::connect(("127.0.0.1", srv.port())).is_err());
    srv.set_down(false);
    assert!(std::net::TcpStream::connect(("127.0.0.1", srv.port())).is_ok());
}

#[test]
fn wait_until_panics_with_message() {
    let r = std::panic::catch_unwind(|| {
        support::wait::wait_until(Duration::from_millis(30), "the moon", || false)
    });
    let err = r.unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("the moon"), "{msg}");
}

mod jeedom {
    use super::agent;
    use serde_json::json;
    use std::time::{Duration, Instant};
    use support::fake_jeedom::{FakeJeedom, JeedomMode};

    use crate::support;

    fn post(url: &str, key: &str, body: &serde_json::Value) -> Result<(u16, String), ureq::Error> {
        let mut r = agent()
            .post(&format!("{url}?apikey={key}"))
            .header("Content-Type", "application/json")
            .send(body.to_string())?;
        Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
    }

    #[test]
    fn key_test_and_batches() {
        let j = FakeJeedom::start("k3y");
        let get = |k: &str| {
            let u = format!("{}?test=1&apikey={k}", j.url());
            agent()
                .get(&u)
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap()
        };
        assert_eq!(get("k3y"), "OK");
        assert_eq!(get("bad"), "");
        assert_eq!(j.test_requests(), 2);
        let b = json!({"events":[{"type":"status"},{"type":"message","id":"1"}]});
        assert_eq!(post(&j.url(), "k3y", &b).unwrap().0, 200);
        assert_eq!(post(&j.url(), "bad", &b).unwrap(), (200, String::new()));
        assert_eq!(j.batches().len(), 1);
        assert_eq!(j.events_of_type("message")[0]["id"], "1");
        let ev = j.wait_events(Duration::from_secs(1), "2 events", |e| e.len() == 2);
        assert_eq!(ev[0]["type"], "status");
        assert_eq!(j.post_attempts(), 2);
    }

    #[test]
    fn refusing_modes() {
        let j = FakeJeedom::start("k");
        let b = json!({"events":[{"type":"status"}]});
        j.set_mode(JeedomMode::Status(503));
        assert_eq!(post(&j.url(), "k", &b).unwrap().0, 503);
        j.set_mode(JeedomMode::WrongKey);
        assert_eq!(post(&j.url(), "k", &b).unwrap(), (200, String::new()));
        j.set_mode(JeedomMode::Close);
        assert!(post(&j.url(), "k", &b).is_err());
        j.set_mode(JeedomMode::Hang);
        let t = Instant::now();
        let a: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(300)))
            .build()
            .into();
        let u = format!("{}?apikey=k", j.url());
        assert!(a.post(&u).send(b.to_string()).is_err());
        assert!(t.elapsed() >= Duration::from_millis(250));
        assert!(j.events().is_empty());
        assert_eq!(j.post_attempts(), 4);
        j.set_mode(JeedomMode::Ok);
        assert_eq!(post(&j.url(), "k", &b).unwrap().0, 200);
        assert_eq!(j.events().len(), 1);
    }
}

mod rc {
    use super::agent;
    use crate::support::ddp_client::DdpClient;
    use crate::support::fake_rc::{DupIdMode, FakeRcOptions, FakeRocketChat, LoginMode, RestFault};
    use serde_json::{json, Value};
    use std::time::Duration;

    const T: Duration = Duration::from_secs(5);

    fn fake() -> FakeRocketChat {
        let o = FakeRcOptions {
            ping_interval: Duration::from_millis(200),
            ..Default::default()
        };
        FakeRocketChat::start(o)
    }

    /// A DDP client logged in as the bot and subscribed to its messages.
    fn bot(rc: &FakeRocketChat) -> DdpClient {
        let mut c = DdpClient::connect(&rc.ws_url(), None);
        assert_eq!(c.login("jeedombot", "s3cret")["result"]["type"], "password");
        assert_eq!(
            c.sub("stream-room-messages", json!(["__my_messages__", false]))["msg"],
            "ready"
        );
        c
    }

    fn rest(
        rc: &FakeRocketChat,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", rc.url());
        let req = match method {
            "GET" => agent()
                .get(&url)
                .header("X-User-Id", "botid")
                .header("X-Auth-Token", token)
                .call(),
            _ => agent()
                .post(&url)
                .header("X-User-Id", "botid")
                .header("X-Auth-Token", token)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        };
        let mut r = req.expect("HTTP answer");
        let text = r.body_mut().read_to_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::Null);
        (r.status().as_u16(), v)
    }

    fn is_msg(f: &Value, text: &str) -> bool {
        f["collection"] == "stream-room-messages" && f["fields"]["args"][0]["msg"] == text
    }

    #[test]
    fn ddp_connect_login_sub_receive() {
        let rc = fake();
        let mut c = DdpClient::open(&rc.ws_url(), None);
        assert_eq!(
            c.expect(T, |f| f.get("server_id").is_some())["server_id"],
            "0"
        );
        c.send(json!({"msg": "connect", "version": "1", "support": ["1"]}));
        c.expect(T, |f| f["msg"] == "connected");
        c.send(json!({"msg": "ping", "id": "p1"}));
        c.expect(T, |f| f["msg"] == "pong" && f["id"] == "p1");
        c.expect(T, |f| f["msg"] == "ping");
        let bad = c.login("jeedombot", "nope");
        assert_eq!(bad["error"]["reason"], "Incorrect password");
        assert_eq!(bad["error"]["message"], "Incorrect password [403]");
        assert_eq!(c.login("nobody", "x")["error"]["reason"], "User not found");
        assert_eq!(
            c.call("rooms/get", json!([]))["error"]["error"],
            "error-invalid-user"
        );
        let ok = c.login("jeedombot", "s3cret");
        assert_eq!(ok["result"]["id"], "botid");
        c.expect(T, |f| f["msg"] == "added" && f["collection"] == "users");
        assert_eq!(
            c.sub(
                "stream-room-messages",
                json!(["__my_messages__", {"useCollection": false, "args": []}])
            )["msg"],
            "ready"
        );
        assert_eq!(
            c.sub("stream-notify-user", json!(["botid/rooms-changed", false]))["msg"],
            "ready"
        );
        assert_eq!(
            c.sub(
                "stream-notify-user",
                json!(["aliceid/rooms-changed", false])
            )["msg"],
            "nosub"
        );
        assert_eq!(c.sub("nope", json!([]))["error"]["error"], 404);
        let id = rc.post("GENERAL", "alice", "@jeedombot turn on the radio");
        let f = c.expect(T, |f| is_msg(f, "@jeedombot turn on the radio"));
        let (m, extra) = (&f["fields"]["args"][0], &f["fields"]["args"][1]);
        assert_eq!(
            (m["_id"].as_str(), m["u"]["username"].as_str()),
            (Some(id.as_str()), Some("alice"))
        );
        assert_eq!(m["mentions"][0]["username"], "jeedombot");
        assert!(m["ts"]["$date"].is_u64());
        assert_eq!(
            extra,
            &json!({"roomParticipant": true, "roomType": "c", "roomName": "general"})
        );
        let rooms = c.call("rooms/get", json!([]))["result"].clone();
        assert_eq!(rooms[0]["_id"], "GENERAL");
        let since = c.call("rooms/get", json!([{"$date": 0}]))["result"].clone();
        assert!(since["update"].is_array() && since["remove"].is_array());
        let subs = c.call("subscriptions/get", json!([]))["result"].clone();
        assert_eq!(subs[0]["rid"], "GENERAL");
        assert_eq!(rc.logins(), vec!["password"]);
        assert_eq!(rc.ddp_connections(), 1);
    }

    #[test]
    fn ddp_resume_missed_and_login_modes() {
        let rc = fake();
        let mut c = bot(&rc);
        let token = c.login("jeedombot", "s3cret")["result"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        let a = rc.post("GENERAL", "alice", "one");
        let b = rc.post("GENERAL", "alice", "two");
        let ts_a = rc.message(&a).unwrap()["ts"].clone();
        let missed = c.call("loadMissedMessages", json!(["GENERAL", ts_a]))["result"].clone();
        assert_eq!(missed.as_array().unwrap().len(), 1);
        assert_eq!(missed[0]["_id"], b.as_str());
        let mut d = DdpClient::connect(&rc.ws_url(), None);
        assert_eq!(
            d.call("login", json!([{"resume": token}]))["result"]["type"],
            "resume"
        );
        rc.invalidate_tokens();
        let e = DdpClient::connect(&rc.ws_url(), None).call("login", json!([{"resume": token}]));
        assert_eq!(e["error"]["error"], 403);
        rc.set_login(LoginMode::Totp);
        let t = d.login("jeedombot", "s3cret");
        assert_eq!(
            (
                t["error"]["error"].as_str(),
                t["error"]["details"]["method"].as_str()
            ),
            (Some("totp-required"), Some("totp"))
        );
        rc.set_login(LoginMode::Ok);
        rc.set_bot_password("new");
        assert!(d.login("jeedombot", "new")["result"]["token"].is_string());
    }

    #[test]
    fn rest_send_update_and_duplicates() {
        let rc = fake();
        let mut c = bot(&rc);
        let token = c.login("jeedombot", "s3cret")["result"]["token"]
            .as_str()
            .unwrap()
            .to_string();
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
        assert_eq!((s, v), (200, json!({"success": true})));
        let ts = json!({"message": {"rid": "GENERAL", "msg": "x", "ts": "2020-01-01T00:00:00Z"}});
        assert_eq!(
            rest(&rc, "POST", "/api/v1/chat.sendMessage", &token, Some(ts)).0,
            400
        );
        let edit = |m: Value| json!([m]);
        let r = c.call("updateMessage", edit(json!({"_id": "abc123", "rid": "GENERAL", "msg": "Q? (answered)", "attachments": []})));
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
                format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                    .bytes(),
            );
        }
        let head = format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: image/jpeg\r\n\r\n");
        body.extend(head.bytes());
        body.extend_from_slice(file);
        body.extend(format!("\r\n--{b}--\r\n").bytes());
        (format!("multipart/form-data; boundary={b}"), body)
    }

    fn upload(
        rc: &FakeRocketChat,
        path: &str,
        token: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
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
    fn connection_faults() {
        let rc = fake();
        let mut c = bot(&rc);
        rc.drop_connections();
        assert!(c.is_closed(T));
        let mut c = bot(&rc);
        rc.set_silent(true);
        c.send(json!({"msg": "ping", "id": "s"}));
        assert!(c
            .next_matching(Duration::from_millis(400), |f| f["msg"] == "pong"
                || f["msg"] == "ping")
            .is_none());
        rc.set_silent(false);
        rc.restart();
        assert!(c.is_closed(T));
        rc.set_down(true);
        assert!(std::net::TcpStream::connect(("127.0.0.1", rc.port())).is_err());
        let id = rc.post("GENERAL", "alice", "while down");
        rc.set_down(false);
        let mut c = bot(&rc);
        let missed = c.call("loadMissedMessages", json!(["GENERAL", {"$date": 0}]));
        assert_eq!(missed["result"][0]["_id"], id.as_str());
        assert_eq!(rc.ddp_connections_total(), 3);
    }

    #[test]
    fn room_notifications() {
        let rc = fake();
        let mut c = bot(&rc);
        for ev in ["rooms-changed", "subscriptions-changed"] {
            assert_eq!(
                c.sub("stream-notify-user", json!([format!("botid/{ev}"), false]))["msg"],
                "ready"
            );
        }
        let notified = |f: &Value, ev: &str, action: &str| {
            f["fields"]["eventName"] == format!("botid/{ev}") && f["fields"]["args"][0] == action
        };
        let rid = rc.add_room('p', "secret", &["jeedombot", "bob"]);
        let f = c.expect(T, |f| notified(f, "rooms-changed", "inserted"));
        assert_eq!(
            (
                f["fields"]["args"][1]["_id"].as_str(),
                f["fields"]["args"][1]["t"].as_str()
            ),
            (Some(rid.as_str()), Some("p"))
        );
        c.expect(T, |f| notified(f, "subscriptions-changed", "inserted"));
        rc.rename_room(&rid, "hidden");
        c.expect(T, |f| {
            notified(f, "rooms-changed", "updated") && f["fields"]["args"][1]["name"] == "hidden"
        });
        let r = c.expect(T, |f| f["fields"]["args"][0]["t"] == "r");
        assert_eq!(r["fields"]["args"][1]["roomType"], "p");
        rc.remove_member(&rid, "jeedombot");
        c.expect(T, |f| notified(f, "subscriptions-changed", "removed"));
        let dm = rc.open_direct("alice", "jeedombot");
        let f = c.expect(T, |f| notified(f, "rooms-changed", "inserted"));
        assert_eq!(
            f["fields"]["args"][1]["usernames"],
            json!(["alice", "jeedombot"])
        );
        rc.post(&dm, "alice", "psst");
        let f = c.expect(T, |f| is_msg(f, "psst"));
        assert_eq!(
            f["fields"]["args"][1],
            json!({"roomParticipant": true, "roomType": "d"})
        );
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
}
