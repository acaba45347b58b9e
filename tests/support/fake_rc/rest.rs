//! REST API of the fake Rocket.Chat (`/api/info`, `/api/v1/...`) and the `/websocket` upgrade.
use super::methods::{check_password, issue_token};
use super::send::SendError;
use super::util::{date_ms, iso, parse_iso, parse_version, to_rest, wall_ms};
use super::world::World;
use super::{ddp, upload, DupIdMode, RestFault, Shared};
use crate::support::http::{Reply, Request, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Answer of a REST route.
pub type Answer = Response;

/// JSON response.
pub fn send(status: u16, body: Value) -> Answer {
    Response::json(status, &body)
}

/// `400 {"success":false,"error":..,"errorType":..}`.
pub fn failure(error: &str, error_type: &str) -> Answer {
    send(
        400,
        json!({"success": false, "error": error, "errorType": error_type}),
    )
}

/// The 401 of a call without valid `X-User-Id`/`X-Auth-Token`.
fn unauthorized() -> Answer {
    send(
        401,
        json!({"status": "error", "message": "You must be logged in to do this."}),
    )
}

/// Entry point of every HTTP request of the fake.
pub fn handle(shared: &Arc<Shared>, req: Request) -> Reply {
    log(shared, &req);
    if shared.silent() {
        return Reply::Hang;
    }
    let fault = shared.take_fault(&req.path);
    match fault {
        Some(RestFault::Hang) => return Reply::Hang,
        Some(RestFault::Status(n)) => {
            let body = json!({"success": false, "error": format!("injected fault: HTTP {n}")});
            return Reply::Send(send(n, body));
        }
        Some(RestFault::RateLimit { reset_ms_from_now }) => {
            return Reply::Send(rate_limited(reset_ms_from_now))
        }
        _ => {}
    }
    shared.wait_history(&req.path);
    if req.path == "/websocket" && req.is_websocket() {
        return ddp::upgrade(shared.clone(), &req);
    }
    let answer = route(shared, &req);
    match fault {
        Some(RestFault::DropAfterInsert) => Reply::Close,
        Some(RestFault::HangAfterInsert) => Reply::Hang,
        _ => Reply::Send(answer),
    }
}

fn log(shared: &Shared, req: &Request) {
    let mut w = shared.world();
    w.log.rest.push((req.method.clone(), req.path.clone()));
    if let Some(body) = req.json() {
        w.log.rest_bodies.push((req.path.clone(), body));
    }
}

/// 429 with the headers and body of the real rate limiter.
fn rate_limited(reset_ms_from_now: u64) -> Answer {
    let secs = reset_ms_from_now.div_ceil(1000);
    let error = format!(
        "Error, too many requests. Please slow down. You must wait {secs} seconds before trying this endpoint again. [error-too-many-requests]"
    );
    send(429, json!({"success": false, "error": error}))
        .header("X-RateLimit-Limit", "10")
        .header("X-RateLimit-Remaining", "0")
        .header(
            "X-RateLimit-Reset",
            &(wall_ms() + reset_ms_from_now).to_string(),
        )
}

/// True when the endpoint exists for this method on the configured server version.
fn exists(shared: &Shared, method: &str, name: &str) -> bool {
    let v = parse_version(&shared.opts.version);
    match (method, name) {
        ("GET", "me" | "rooms.get" | "subscriptions.get" | "chat.getMessage") => true,
        ("GET", "channels.history" | "groups.history" | "im.history" | "dm.history") => true,
        ("POST", "login" | "logout" | "chat.sendMessage" | "im.create" | "dm.create") => true,
        ("POST", "chat.postMessage") => true,
        ("GET", "settings.public") => true,
        ("POST", "rooms.media" | "rooms.mediaConfirm") => v >= (6, 10, 0),
        ("POST", "rooms.upload") => v < (8, 0, 0),
        _ => false,
    }
}

fn route(shared: &Shared, req: &Request) -> Answer {
    let p = req.path.as_str();
    if p == "/api/info" && req.method == "GET" {
        return info(shared);
    }
    let ep = p.strip_prefix("/api/v1/").unwrap_or_default();
    let (name, args) = ep.split_once('/').unwrap_or((ep, ""));
    if !exists(shared, &req.method, name) {
        let message = format!("API endpoint \"{p}\" does not exist!");
        return send(404, json!({"status": "error", "message": message}));
    }
    if name == "login" {
        return login(shared, req);
    }
    // `authRequired: false`.
    if name == "settings.public" {
        return super::settings::public(shared, req);
    }
    let Some(uid) = auth(&shared.world(), req) else {
        return unauthorized();
    };
    let args: Vec<&str> = args.split('/').filter(|a| !a.is_empty()).collect();
    match name {
        "me" => me(&shared.world(), &uid),
        "logout" => logout(&mut shared.world(), req),
        "rooms.get" => rooms_get(&shared.world(), &uid, req),
        "subscriptions.get" => subs_get(&shared.world(), &uid),
        "chat.sendMessage" => send_message(shared, &uid, req),
        "chat.getMessage" => get_message(&shared.world(), &uid, req),
        "chat.postMessage" => super::post::post_message(shared, &uid, req),
        "im.create" | "dm.create" => im_create(&mut shared.world(), &uid, req),
        "rooms.media" | "rooms.mediaConfirm" | "rooms.upload" => {
            upload::route(shared, &uid, name, &args, req)
        }
        _ => history(&shared.world(), &uid, name, req),
    }
}

fn info(shared: &Shared) -> Answer {
    if shared.opts.info_404 {
        return send(
            404,
            json!({"status": "error", "message": "API endpoint \"/api/info\" does not exist!"}),
        );
    }
    send(
        200,
        json!({"version": shared.opts.version, "success": true}),
    )
}

/// User id of valid `X-User-Id` + `X-Auth-Token` headers.
fn auth(w: &World, req: &Request) -> Option<String> {
    let uid = req.header("x-user-id")?;
    let owner = w.token_user(req.header("x-auth-token")?)?;
    (owner == uid).then_some(owner)
}

fn login(shared: &Shared, req: &Request) -> Answer {
    let body = req.json().unwrap_or(Value::Null);
    let mut w = shared.world();
    let (uid, token, kind) = if let Some(tok) = body["resume"].as_str() {
        let Some(uid) = w.token_user(tok) else {
            return login_failed(None);
        };
        (uid, tok.to_string(), "rest:resume")
    } else {
        let user = body
            .get("user")
            .or(body.get("username"))
            .unwrap_or(&Value::Null);
        match check_password(&mut w, user, &body["password"]) {
            Ok(uid) => {
                let (token, _) = issue_token(&mut w, &uid);
                (uid, token, "rest:password")
            }
            Err(e) => return login_failed(Some(e)),
        }
    };
    w.log.logins.push(kind.into());
    let mut me = user_doc(&w, &uid);
    me.as_object_mut().map(|o| o.remove("success"));
    let data = json!({"userId": uid, "authToken": token, "me": me});
    send(200, json!({"status": "success", "data": data}))
}

fn login_failed(e: Option<Value>) -> Answer {
    if let Some(e) = e.filter(|e| e["error"] == "totp-required") {
        let body = json!({"status": "error", "error": "totp-required", "message": "TOTP Required", "details": e["details"]});
        return send(401, body);
    }
    send(
        401,
        json!({"status": "error", "error": "Unauthorized", "message": "Unauthorized"}),
    )
}

fn logout(w: &mut World, req: &Request) -> Answer {
    let tok = req.header("x-auth-token").unwrap_or_default().to_string();
    w.tokens.retain(|t| t.token != tok);
    send(
        200,
        json!({"status": "success", "data": {"message": "You've been logged out!"}}),
    )
}

fn user_doc(w: &World, uid: &str) -> Value {
    let u = w.user(uid).cloned().expect("authenticated user exists");
    json!({
        "_id": u.id, "username": u.username, "name": u.name, "status": "online",
        "statusConnection": "online", "active": true, "utcOffset": 0, "roles": ["user", "bot"],
        "emails": [{"address": u.email, "verified": true}], "settings": {"preferences": {}},
        "success": true,
    })
}

fn me(w: &World, uid: &str) -> Answer {
    send(200, user_doc(w, uid))
}

fn rooms_get(w: &World, uid: &str, req: &Request) -> Answer {
    let since = req
        .query
        .get("updatedSince")
        .and_then(|s| parse_iso(s))
        .unwrap_or(0);
    let rooms = w.rooms_of(uid).into_iter().filter(|r| r.updated > since);
    let update: Vec<Value> = rooms.map(|r| to_rest(&w.room_json(r))).collect();
    let gone = w
        .removals
        .iter()
        .filter(|x| x.uid == uid && x.room_deleted && x.at > since);
    let remove: Vec<Value> = gone
        .map(|x| json!({"_id": x.rid, "_deletedAt": iso(x.at)}))
        .collect();
    send(
        200,
        json!({"update": update, "remove": remove, "success": true}),
    )
}

fn subs_get(w: &World, uid: &str) -> Answer {
    let subs: Vec<Value> = w
        .rooms_of(uid)
        .iter()
        .map(|r| to_rest(&w.sub_json(r, uid)))
        .collect();
    send(200, json!({"update": subs, "remove": [], "success": true}))
}

fn send_message(shared: &Shared, uid: &str, req: &Request) -> Answer {
    let body = req.json().unwrap_or(Value::Null);
    let res = shared.world().user_send(uid, &body["message"]);
    match res {
        Ok(m) => send(200, json!({"message": to_rest(&m), "success": true})),
        Err(SendError::Duplicate(id)) => duplicate(shared.opts.dup_id_mode, &id),
        Err(e) => send(400, e.rest_body()),
    }
}

/// The answer to a second `chat.sendMessage` of an existing `_id` (see [`DupIdMode`]).
fn duplicate(mode: DupIdMode, id: &str) -> Answer {
    let crash = |text: &str| send(400, json!({"success": false, "error": text}));
    match mode {
        DupIdMode::StarredTypeError => {
            crash("Cannot read properties of undefined (reading 'starred')")
        }
        DupIdMode::StarredTypeErrorNode14 => crash("Cannot read property 'starred' of undefined"),
        DupIdMode::Ok200NoMessage => send(200, json!({"success": true})),
        DupIdMode::Error400 => send(400, SendError::Duplicate(id.into()).rest_body()),
    }
}

/// `chat.getMessage?msgId=` (`apps/meteor/app/api/server/v1/chat.ts`, through
/// `getSingleMessage` in `apps/meteor/app/lib/server/methods/getSingleMessage.ts`):
/// an unknown id is `API.v1.failure()`, a bare `400 {"success":false}`; a
/// message of a room the caller cannot access is the `error-not-allowed` Meteor error.
fn get_message(w: &World, uid: &str, req: &Request) -> Answer {
    let Some(id) = req.query.get("msgId").filter(|s| !s.is_empty()) else {
        let e = "The \"msgId\" query parameter must be provided.";
        return send(400, json!({"success": false, "error": e}));
    };
    let Some(i) = w.msg_index(id) else {
        return send(400, json!({"success": false}));
    };
    let m = &w.messages[i];
    let rid = m["rid"].as_str().unwrap_or_default();
    if !w.can_access(rid, uid) {
        return failure("Not allowed [error-not-allowed]", "error-not-allowed");
    }
    send(200, json!({"message": to_rest(m), "success": true}))
}

fn im_create(w: &mut World, uid: &str, req: &Request) -> Answer {
    let body = req.json().unwrap_or(Value::Null);
    let Some(other) = body["username"].as_str().and_then(|n| w.user_by_name(n)) else {
        return failure("Invalid user [error-invalid-user]", "error-invalid-user");
    };
    let other = other.id.clone();
    let (rid, _) = w.open_direct(uid, &other);
    let room = w.room(&rid).expect("direct room just opened");
    let mut doc = to_rest(&w.room_json(room));
    doc["rid"] = json!(rid);
    send(200, json!({"room": doc, "success": true}))
}

/// `channels|groups|im|dm.history?roomId=..&oldest=ISO&latest=ISO&count=N`, newest first,
/// as `getChannelHistory` (apps/meteor/app/lib/server/methods/getChannelHistory.ts)
/// answers them: `latest` defaults to the server's now (a message stamped
/// ahead of it is not listed yet), bounds exclusive unless `inclusive`,
/// hidden messages left out, sorted by `ts` descending, then `offset` and `count`.
/// Thread replies (`tmid`, not `tshow`) only with `showThreadMessages=true`:
/// the routes (apps/meteor/app/api/server/v1/channels.ts, im.ts) pass
/// `showThreadMessages === 'true'` to
/// `Messages.findVisibleByRoomIdBetweenTimestampsNotContainingTypes`.
fn history(w: &World, uid: &str, name: &str, req: &Request) -> Answer {
    let rid = req
        .query
        .get("roomId")
        .map(String::as_str)
        .unwrap_or_default();
    let want = match name {
        "channels.history" => 'c',
        "groups.history" => 'p',
        _ => 'd',
    };
    let ok = w.room(rid).is_some_and(|r| r.t == want) && w.can_access(rid, uid);
    if !ok {
        let e = "The required \"roomId\" or \"roomName\" param provided does not match any room [error-room-not-found]";
        return failure(e, "error-room-not-found");
    }
    let q = |k: &str| req.query.get(k).and_then(|s| parse_iso(s));
    let (oldest, latest) = (q("oldest").unwrap_or(0), q("latest").unwrap_or(w.time()));
    let inclusive = req.query.get("inclusive").is_some_and(|v| v == "true");
    let threads = req
        .query
        .get("showThreadMessages")
        .is_some_and(|v| v == "true");
    let shown = |m: &Value| threads || !m["tmid"].is_string() || m["tshow"] == true;
    // apps/meteor/app/api/server/helpers/getPaginationItems.ts: `offset` and
    // `count`, the count capped at API_Upper_Count_Limit (100 by default).
    let count: usize = req
        .query
        .get("count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
        .min(100);
    let offset: usize = req
        .query
        .get("offset")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let inside = |ts: u64| match inclusive {
        true => ts >= oldest && ts <= latest,
        false => ts > oldest && ts < latest,
    };
    let mut msgs: Vec<Value> = w
        .room_messages(rid)
        .into_iter()
        .filter(|m| date_ms(&m["ts"]).is_some_and(&inside) && m["_hidden"] != true && shown(m))
        .collect();
    msgs.reverse();
    let mut msgs: Vec<Value> = msgs.into_iter().skip(offset).collect();
    msgs.truncate(count);
    let msgs: Vec<Value> = msgs.iter().map(to_rest).collect();
    send(200, json!({"messages": msgs, "success": true}))
}
