//! DDP methods of the fake Rocket.Chat: login, rooms/get, subscriptions/get, loadMissedMessages, updateMessage.
use super::send::SendError;
use super::util::parse_version;
use super::util::{date_ms, ejson_date, meteor_error, random_id, sha256_hex};
use super::world::{Token, TokenKind, World};
use super::{FakeRcOptions, LoginMode};
use serde_json::{json, Value};

/// Fields `updateMessage` may change (as in the real server).
const EDITABLE: &[&str] = &[
    "tshow",
    "alias",
    "attachments",
    "avatar",
    "emoji",
    "msg",
    "customFields",
    "content",
    "e2eMentions",
];

/// Lifetime of a login token (90 days, Meteor's default).
const TOKEN_LIFE_MS: u64 = 90 * 24 * 3600 * 1000;

/// Runs a method for connection `cid`. `Ok(Null)` means "no result" (undefined).
pub fn call(
    w: &mut World,
    cid: u64,
    name: &str,
    params: &[Value],
    opts: &FakeRcOptions,
) -> Result<Value, Value> {
    let p0 = params.first().cloned().unwrap_or(Value::Null);
    if name == "login" {
        return login(w, cid, &p0);
    }
    // apps/meteor/server/methods/loadMissedMessages.ts is deprecated for removal
    // in 9.0.0 (`methodDeprecationLogger.method('loadMissedMessages', '9.0.0')`):
    // from 9.0 Meteor answers it like any unknown method (ddp-server, 404).
    let removed = name == "loadMissedMessages" && parse_version(&opts.version) >= (9, 0, 0);
    let known = [
        "logout",
        "rooms/get",
        "subscriptions/get",
        "loadMissedMessages",
        "updateMessage",
        "sendMessage",
    ];
    if removed || !known.contains(&name) {
        return Err(meteor_error(404, &format!("Method '{name}' not found")));
    }
    let uid = w.conns.get(&cid).and_then(|c| c.uid.clone());
    let Some(uid) = uid else {
        return Err(meteor_error("error-invalid-user", "Invalid user"));
    };
    match name {
        "logout" => logout(w, cid),
        "rooms/get" => Ok(rooms_get(w, &uid, &p0)),
        "subscriptions/get" => Ok(subs_get(w, &uid, &p0)),
        "loadMissedMessages" => load_missed(w, &uid, params),
        "updateMessage" => update_message(w, &uid, &p0),
        _ => w.user_send(&uid, &p0).map_err(|e| send_error(&e)),
    }
}

fn match_failed() -> Value {
    meteor_error(400, "Match failed")
}

fn send_error(e: &SendError) -> Value {
    match e {
        SendError::Duplicate(_) => meteor_error(500, "Internal server error"),
        SendError::Refused(msg, t) => meteor_error(t.as_str(), msg),
    }
}

/// The TOTP-required error of a login (DDP shape). `method` is `totp` (an
/// authenticator app) or `email`: apps/meteor/app/2fa/server/code/index.ts
/// (`checkCodeForUser` throws `totp-required` with `{method, codeGenerated,
/// availableMethods}`). For `email`, `processInvalidCode` in
/// apps/meteor/app/2fa/server/code/EmailCheck.ts e-mails a new code when the
/// user has no unexpired one (`Accounts_TwoFactorAuthentication_By_Email_Code_Expiration`,
/// 3600 s by default). The fake is stricter: it counts an e-mail at every
/// refusal, so that a test sees how often the daemon tries.
pub fn totp_error(method: &str) -> Value {
    let mut e = meteor_error("totp-required", "TOTP Required");
    let generated = method == "email";
    e["details"] = json!({"method": method, "codeGenerated": generated,
        "availableMethods": [method]});
    e
}

/// Checks password credentials (`user` as string or `{username}`/`{email}`; password plain or digest).
pub fn check_password(w: &mut World, user: &Value, password: &Value) -> Result<String, Value> {
    match w.login_mode {
        LoginMode::WrongPassword => return Err(meteor_error(403, "Incorrect password")),
        LoginMode::UnknownUser => return Err(meteor_error(403, "User not found")),
        _ => {}
    }
    let (username, email) = match user {
        Value::String(s) if s.contains('@') => (None, Some(s.as_str())),
        Value::String(s) => (Some(s.as_str()), None),
        o => (o["username"].as_str(), o["email"].as_str()),
    };
    let found = w.users.iter().find(|u| {
        username == Some(u.username.as_str())
            || email.is_some_and(|e| e.eq_ignore_ascii_case(&u.email))
    });
    let u = found.ok_or_else(|| meteor_error(403, "User not found"))?;
    let digest = match password {
        Value::String(p) => Some(sha256_hex(p)),
        o if o["algorithm"] == "sha-256" => o["digest"].as_str().map(str::to_lowercase),
        _ => None,
    };
    if digest.is_none() || digest != u.password.as_deref().map(sha256_hex) {
        return Err(meteor_error(403, "Incorrect password"));
    }
    match w.login_mode {
        LoginMode::Totp => return Err(totp_error("totp")),
        LoginMode::TotpEmail => {
            w.log.email_codes += 1;
            return Err(totp_error("email"));
        }
        _ => {}
    }
    Ok(u.id.clone())
}

/// Issues a new resume token for `uid`; `(token, expiry ms)`.
pub fn issue_token(w: &mut World, uid: &str) -> (String, u64) {
    let token = random_id(43);
    let expires = w.now() + TOKEN_LIFE_MS;
    let t = Token {
        token: token.clone(),
        uid: uid.into(),
        kind: TokenKind::Resume,
        expires,
    };
    w.tokens.push(t);
    (token, expires)
}

fn login(w: &mut World, cid: u64, p: &Value) -> Result<Value, Value> {
    let (uid, token, expires, kind) = if let Some(tok) = p["resume"].as_str() {
        let t = w.tokens.iter().find(|t| t.token == tok).cloned();
        let msg = "You've been logged out by the server. Please log in again.";
        let t = t.ok_or_else(|| meteor_error(403, msg))?;
        (t.uid, t.token, t.expires, "resume")
    } else if p.get("user").is_some() && p.get("password").is_some() {
        let uid = check_password(w, &p["user"], &p["password"])?;
        let (token, expires) = issue_token(w, &uid);
        (uid, token, expires, "password")
    } else {
        return Err(meteor_error(400, "Unrecognized options for login request"));
    };
    if let Some(c) = w.conns.get_mut(&cid) {
        c.uid = Some(uid.clone());
    }
    w.log.logins.push(kind.into());
    let u = w.user(&uid).cloned().expect("token of a known user");
    let added = json!({"msg": "added", "collection": "users", "id": uid, "fields": {
        "username": u.username, "name": u.name, "status": "online", "active": true,
        "emails": [{"address": u.email, "verified": true}],
    }});
    w.send_to(cid, added.to_string());
    let exp = ejson_date(expires);
    Ok(json!({"id": uid, "token": token, "tokenExpires": exp, "type": kind}))
}

fn logout(w: &mut World, cid: u64) -> Result<Value, Value> {
    if let Some(c) = w.conns.get_mut(&cid) {
        c.uid = None;
    }
    Ok(Value::Null)
}

/// Milliseconds of an EJSON date parameter; anything else means "no date" (like `instanceof Date`).
fn ejson_since(v: &Value) -> Option<u64> {
    v.get("$date").and_then(date_ms)
}

fn rooms_get(w: &World, uid: &str, since: &Value) -> Value {
    let rooms = w.rooms_of(uid);
    let Some(since) = ejson_since(since) else {
        return Value::Array(rooms.iter().map(|r| w.room_json(r)).collect());
    };
    let update: Vec<Value> = rooms
        .iter()
        .filter(|r| r.updated > since)
        .map(|r| w.room_json(r))
        .collect();
    let gone = w
        .removals
        .iter()
        .filter(|x| x.uid == uid && x.room_deleted && x.at > since);
    let remove: Vec<Value> = gone
        .map(|x| json!({"_id": x.rid, "_deletedAt": ejson_date(x.at)}))
        .collect();
    json!({"update": update, "remove": remove})
}

fn subs_get(w: &World, uid: &str, since: &Value) -> Value {
    let rooms = w.rooms_of(uid);
    let Some(since) = ejson_since(since) else {
        return Value::Array(rooms.iter().map(|r| w.sub_json(r, uid)).collect());
    };
    let fresh = rooms.iter().filter(|r| r.updated > since);
    let update: Vec<Value> = fresh.map(|r| w.sub_json(r, uid)).collect();
    let gone = w.removals.iter().filter(|x| x.uid == uid && x.at > since);
    let remove: Vec<Value> = gone
        .map(|x| json!({"_id": World::sub_id(&x.rid, uid), "_deletedAt": ejson_date(x.at)}))
        .collect();
    json!({"update": update, "remove": remove})
}

fn load_missed(w: &World, uid: &str, params: &[Value]) -> Result<Value, Value> {
    let rid = params
        .first()
        .and_then(Value::as_str)
        .ok_or_else(match_failed)?;
    let start = params
        .get(1)
        .filter(|v| v.get("$date").is_some())
        .and_then(date_ms);
    let start = start.ok_or_else(match_failed)?;
    if rid.is_empty() {
        return Err(meteor_error("error-invalid-room", "Invalid room"));
    }
    if !w.can_access(rid, uid) {
        return Ok(json!(false));
    }
    let mut out: Vec<Value> = w
        .room_messages(rid)
        .into_iter()
        .filter(|m| date_ms(&m["ts"]).is_some_and(|ts| ts > start) && m["_hidden"] != true)
        .collect();
    out.reverse();
    Ok(Value::Array(out))
}

fn update_message(w: &mut World, uid: &str, m: &Value) -> Result<Value, Value> {
    let id = m["_id"].as_str().ok_or_else(match_failed)?;
    let Some(orig) = w.msg_index(id).map(|i| w.messages[i].clone()) else {
        return Ok(Value::Null);
    };
    let obj = m.as_object().ok_or_else(match_failed)?;
    for (k, v) in obj {
        let same_scalar = !v.is_object() && !v.is_array() && *v == orig[k];
        if !EDITABLE.contains(&k.as_str()) && !same_scalar {
            let e = meteor_error(
                "error-invalid-update-key",
                &format!("Cannot update the message {k}"),
            );
            return Err(e);
        }
    }
    let caption = &orig["attachments"][0]["description"];
    let text_now = if caption.is_string() {
        caption
    } else {
        &orig["msg"]
    };
    if m.get("msg") == Some(text_now) && m.get("customFields").is_none() {
        return Ok(Value::Null);
    }
    if orig["u"]["_id"] != uid {
        return Err(meteor_error(
            "error-action-not-allowed",
            "Message editing not allowed",
        ));
    }
    if let Some(e) = w.edit_refusal(uid, &orig) {
        return Err(e);
    }
    let mut edit = obj.clone();
    if caption.is_string() {
        let mut atts = orig["attachments"].clone();
        atts[0]["description"] = edit.get("msg").cloned().unwrap_or(Value::Null);
        edit.insert("attachments".into(), atts);
        edit.insert("msg".into(), orig["msg"].clone());
    }
    edit.remove("_id");
    let text = edit.get("msg").and_then(Value::as_str).map(String::from);
    let orig_text = orig["msg"].as_str().unwrap_or_default().to_string();
    w.edit_with(id, text.as_deref().unwrap_or(&orig_text), uid, edit);
    Ok(Value::Null)
}
