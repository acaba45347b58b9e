//! File uploads of the fake Rocket.Chat: multipart parsing, `rooms.media`, `rooms.mediaConfirm`, `rooms.upload`.
use super::rest::{failure, send, Answer};
use super::util::{new_id, to_rest};
use super::world::{Upload, World};
use super::Shared;
use crate::support::http::Request;
use serde_json::{json, Map, Value};

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// First `needle` in `hay` from `from`: a scan for its first byte, then a
/// compare, so that a 64 MiB upload is parsed in well under a second even
/// in a debug build (the fake must not be what an upload waits for).
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (first, rest) = needle.split_first()?;
    let mut at = from;
    loop {
        at += hay.get(at..)?.iter().position(|b| b == first)?;
        if hay.get(at + 1..at + needle.len()) == Some(rest) {
            return Some(at);
        }
        at += 1;
    }
}

/// Value of a `key=value` or `key="value"` parameter of a header.
fn header_param(header: &str, key: &str) -> Option<String> {
    header.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Parses a `multipart/form-data` body; `None` when it is not one.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = header_param(content_type, "boundary")?;
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut pos = find(body, &delim, 0)? + delim.len();
    while !body[pos..].starts_with(b"--") {
        let head_start = pos + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)?;
        let next = find(body, &[b"\r\n", delim.as_slice()].concat(), head_end)?;
        let head = String::from_utf8_lossy(&body[head_start..head_end]).into_owned();
        parts.push(part(&head, body[head_end + 4..next].to_vec()));
        pos = next + 2 + delim.len();
    }
    Some(parts)
}

fn part(head: &str, data: Vec<u8>) -> Part {
    let mut p = Part {
        name: String::new(),
        filename: None,
        content_type: None,
        data,
    };
    for line in head.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("content-disposition") {
            p.name = header_param(v, "name").unwrap_or_default();
            p.filename = header_param(v, "filename");
        } else if k.trim().eq_ignore_ascii_case("content-type") {
            p.content_type = Some(v.trim().to_string());
        }
    }
    p
}

/// Percent-encodes a file name for a URL path.
fn encode(name: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b".-_~".contains(&b);
    let enc = |b: u8| {
        if keep(b) {
            (b as char).to_string()
        } else {
            format!("%{b:02X}")
        }
    };
    name.bytes().map(enc).collect()
}

/// Dispatches the upload endpoints (`args` are the path segments after the endpoint name).
pub fn route(shared: &Shared, uid: &str, name: &str, args: &[&str], req: &Request) -> Answer {
    let rid = args.first().copied().unwrap_or_default();
    let mut w = shared.world();
    if !w.is_member(rid, uid) {
        return failure("error-not-allowed", "error-not-allowed");
    }
    match name {
        "rooms.mediaConfirm" => confirm(&mut w, uid, rid, args.get(1).copied(), req),
        _ => receive(&mut w, shared.opts.max_upload, uid, rid, name, req),
    }
}

/// The room checks of posting the file's message (`canSendMessage.ts`, through
/// `sendFileMessage`): a read-only room or a muted user, as a plain `Error`.
fn refused_post(w: &World, uid: &str, rid: &str) -> Option<Answer> {
    let username = w.user(uid).map(|u| u.username.clone()).unwrap_or_default();
    let text = w.edit_policy.can_send(rid, &username).err()?;
    Some(send(400, json!({"success": false, "error": text})))
}

fn receive(w: &mut World, max: usize, uid: &str, rid: &str, name: &str, req: &Request) -> Answer {
    if let Some(refused) = refused_post(w, uid, rid).filter(|_| name == "rooms.upload") {
        return refused;
    }
    let ctype = req.header("content-type").unwrap_or_default();
    let mut parts = parse_multipart(ctype, &req.body).unwrap_or_default();
    let at = parts.iter().position(|p| p.name == "file");
    let Some(file) = at.map(|i| parts.remove(i)).filter(|p| p.filename.is_some()) else {
        return failure("[invalid-field]", "invalid-field");
    };
    let field = |n: &str| parts.iter().find(|p| p.name == n);
    if file.data.len() > max {
        let e = format!("File exceeds allowed size of {max} bytes [error-file-too-large]");
        return failure(&e, "error-file-too-large");
    }
    let up = Upload {
        id: new_id(),
        rid: rid.into(),
        uid: uid.into(),
        name: file.filename.unwrap_or_default(),
        ctype: file
            .content_type
            .unwrap_or("application/octet-stream".into()),
        bytes: file.data.into(),
        confirmed: name == "rooms.upload",
    };
    w.uploads.push(up.clone());
    if name == "rooms.media" {
        let url = format!("/file-upload/{}/{}", up.id, encode(&up.name));
        return send(
            200,
            json!({"file": {"_id": up.id, "url": url}, "success": true}),
        );
    }
    let text = |n: &str| field(n).map(|p| String::from_utf8_lossy(&p.data).into_owned());
    let opts =
        json!({"msg": text("msg"), "description": text("description"), "tmid": text("tmid")});
    file_message(w, &up, &opts)
}

fn confirm(w: &mut World, uid: &str, rid: &str, fid: Option<&str>, req: &Request) -> Answer {
    if let Some(refused) = refused_post(w, uid, rid) {
        return refused;
    }
    let found = w
        .uploads
        .iter_mut()
        .find(|u| Some(u.id.as_str()) == fid && u.rid == rid && u.uid == uid && !u.confirmed);
    let Some(up) = found else {
        return failure("[invalid-file]", "invalid-file");
    };
    up.confirmed = true;
    let up = up.clone();
    file_message(w, &up, &req.json().unwrap_or(json!({})))
}

/// Posts the message of an uploaded file: `file`, `files` and one attachment, like the real server.
fn file_message(w: &mut World, up: &Upload, opts: &Value) -> Answer {
    let link = format!("/file-upload/{}/{}", up.id, encode(&up.name));
    let file = json!({"_id": up.id, "name": up.name, "type": up.ctype, "size": up.bytes.len()});
    let mut att =
        json!({"title": up.name, "title_link": link, "title_link_download": true, "type": "file"});
    if let Some(d) = opts["description"].as_str() {
        att["description"] = json!(d);
    }
    let kind = up.ctype.split('/').next().unwrap_or_default();
    if matches!(kind, "image" | "audio" | "video") {
        att[format!("{kind}_url")] = json!(link);
        att[format!("{kind}_type")] = json!(up.ctype);
        att[format!("{kind}_size")] = json!(up.bytes.len());
    }
    let mut m = Map::new();
    m.insert("rid".into(), json!(up.rid));
    m.insert(
        "msg".into(),
        json!(opts["msg"].as_str().unwrap_or_default()),
    );
    m.insert("u".into(), json!({"_id": up.uid}));
    m.insert("file".into(), file.clone());
    m.insert("files".into(), json!([file]));
    m.insert("attachments".into(), json!([att]));
    if let Some(t) = opts["tmid"].as_str().filter(|t| !t.is_empty()) {
        m.insert("tmid".into(), json!(t));
    }
    w.complete_message(&mut m);
    let id = w.insert_message(m);
    let stored = w.messages[w.msg_index(&id).expect("just stored")].clone();
    send(200, json!({"message": to_rest(&stored), "success": true}))
}
