//! Demo: runs the fake Rocket.Chat and fake Jeedom, prints the daemon command line, posts stdin lines.
#[path = "../support/mod.rs"]
mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::io::BufRead;
use std::time::Duration;
use support::fake_jeedom::{FakeJeedom, JeedomMode};
use support::fake_rc::{FakeRcOptions, FakeRocketChat, BOT_ID};

const APIKEY: &str = "demo0123456789abcdef0123456789abcdef";

const HELP: &str = "\
Type `room user text` to post, e.g. `general alice @jeedombot turn on the radio`.
  room: a channel/group name, a room id, or @user for the DM between that user and the bot.
Commands: /help  /rooms  /newroom c|p NAME USER...  /join ROOM USER  /leave ROOM USER
  /rename ROOM NEW  /edit ID TEXT  /drop  /restart  /down  /up  /silent on|off
  /jeedom ok|hang|close|wrongkey|STATUS";

struct Args {
    rc_port: u16,
    jeedom_port: u16,
    tls: bool,
    version: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        rc_port: 0,
        jeedom_port: 0,
        tls: false,
        version: "7.4.1".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--rc-port" => a.rc_port = val().parse().expect("--rc-port: a port number"),
            "--jeedom-port" => a.jeedom_port = val().parse().expect("--jeedom-port: a port number"),
            "--version" => a.version = val(),
            "--tls" => a.tls = true,
            _ => {
                eprintln!(
                    "usage: fake-servers [--rc-port N] [--jeedom-port N] [--tls] [--version X.Y.Z]"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

fn main() {
    let a = parse_args();
    let o = FakeRcOptions {
        port: a.rc_port,
        tls: a.tls,
        version: a.version,
        ..Default::default()
    };
    let rc = FakeRocketChat::start(o);
    let jeedom = FakeJeedom::start_on(APIKEY, a.jeedom_port);
    print_command(&rc, &jeedom, a.tls);
    println!("{HELP}\n");
    std::thread::scope(|s| {
        s.spawn(|| watch(&rc, &jeedom));
        read_stdin(&rc, &jeedom);
        std::process::exit(0);
    });
}

/// A port free right now, for the daemon's command socket.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn print_command(rc: &FakeRocketChat, jeedom: &FakeJeedom, tls: bool) {
    // Pid and state files in a directory of this run, not in the checkout.
    // The daemon makes it: a demo ended without running one leaves nothing.
    let dir = std::env::temp_dir().join(format!("rocketchatd-demo-{}", std::process::id()));
    let port = free_port();
    let mut args = format!(
        "--loglevel info --socketport {port} --callback {} --apikey {APIKEY} --url {} \
         --user jeedombot --password s3cret --pid {} --state {}",
        jeedom.url(),
        rc.url(),
        dir.join("daemon.pid").display(),
        dir.join("state.json").display(),
    );
    if tls {
        args.push_str(&format!(
            " --ca-file {}",
            FakeRocketChat::ca_file().display()
        ));
    }
    println!("Fake Rocket.Chat: {}", rc.url());
    println!("Fake Jeedom callback: {}", jeedom.url());
    println!("API key of the demo (socket and callback): {APIKEY}\n");
    println!("In a second terminal, from this source checkout, run the daemon:\n");
    println!("  cargo run --release --bin rocketchatd -- {args}\n");
    println!("(or with an installed binary: rocketchatd {args})\n");
    println!("Then, in a third one, ask it to post (the reply is one JSON line):\n");
    let send = format!(
        r##"{{"apikey":"{APIKEY}","action":"send","room":"#general","message":"Hello from the house"}}"##
    );
    println!("  echo '{send}' | nc 127.0.0.1 {port}\n");
}

/// Prints each event Jeedom accepts, one line each, and the bot's own posts and edits.
fn watch(rc: &FakeRocketChat, jeedom: &FakeJeedom) {
    let mut batches_seen = 0;
    let mut bot_msgs: HashMap<String, Value> = HashMap::new();
    loop {
        let batches = jeedom.batches();
        for event in batches[batches_seen..].iter().flatten() {
            let kind = event["type"].as_str().unwrap_or("?");
            println!("<< Jeedom received {kind}: {event}");
        }
        batches_seen = batches.len();
        for m in bot_messages(rc) {
            let id = m["_id"].as_str().unwrap_or_default().to_string();
            let before = bot_msgs.insert(id.clone(), m.clone());
            let label = match &before {
                None => "posted",
                Some(b) if b["_updatedAt"] != m["_updatedAt"] => "updated",
                Some(_) => continue,
            };
            let room = m["rid"].as_str().unwrap_or_default();
            println!("<< bot {label} in {room} (id {id}): {}", bot_summary(&m));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bot_messages(rc: &FakeRocketChat) -> Vec<Value> {
    let w = rc.shared().world();
    w.messages
        .iter()
        .filter(|m| m["u"]["_id"] == BOT_ID)
        .cloned()
        .collect()
}

fn bot_summary(m: &Value) -> String {
    let mut out = m["msg"].as_str().unwrap_or_default().replace('\n', "\\n");
    for a in m["attachments"].as_array().into_iter().flatten() {
        out.push_str(&format!(" [attachment: {a}]"));
    }
    out
}

fn read_stdin(rc: &FakeRocketChat, jeedom: &FakeJeedom) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let res = match line.starts_with('/') {
            true => command(rc, jeedom, &words),
            false => post(rc, &words),
        };
        match res {
            Ok(msg) => println!(">> {msg}"),
            Err(e) => println!("!! {e}"),
        }
    }
}

/// Room id from a name, an id, or `@user` (the DM of that user with the bot, opened if needed).
fn room(rc: &FakeRocketChat, r: &str) -> Result<String, String> {
    if let Some(user) = r.strip_prefix('@') {
        known_user(rc, user)?;
        return Ok(rc.open_direct(user, "jeedombot"));
    }
    let by_id = rc.shared().world().room(r).is_some();
    if by_id {
        return Ok(r.to_string());
    }
    rc.room_id(r.trim_start_matches('#'))
        .ok_or(format!("unknown room {r}"))
}

fn known_user(rc: &FakeRocketChat, user: &str) -> Result<(), String> {
    let known = rc.shared().world().user_by_name(user).is_some();
    known.then_some(()).ok_or(format!("unknown user {user}"))
}

fn post(rc: &FakeRocketChat, w: &[&str]) -> Result<String, String> {
    let [r, user, rest @ ..] = w else {
        return Err("usage: room user text".into());
    };
    let rid = room(rc, r)?;
    known_user(rc, user)?;
    let id = rc.post(&rid, user, &rest.join(" "));
    Ok(format!("{user} posted in {rid} (id {id})"))
}

fn command(rc: &FakeRocketChat, jeedom: &FakeJeedom, w: &[&str]) -> Result<String, String> {
    match w {
        ["/help"] => Ok(HELP.into()),
        ["/rooms"] => Ok(rooms(rc)),
        ["/newroom", t @ ("c" | "p"), name, users @ ..] => {
            users.iter().try_for_each(|u| known_user(rc, u))?;
            let id = rc.add_room(t.chars().next().unwrap_or('c'), name, users);
            Ok(format!("room {name} created (id {id})"))
        }
        ["/join", r, user] => known_user(rc, user).map(|_| {
            rc.add_member(&room(rc, r).unwrap_or_default(), user);
            format!("{user} joined {r}")
        }),
        ["/leave", r, user] => room(rc, r).map(|rid| {
            rc.remove_member(&rid, user);
            format!("{user} left {r}")
        }),
        ["/rename", r, new] => room(rc, r).map(|rid| {
            rc.rename_room(&rid, new);
            format!("{r} renamed to {new}")
        }),
        ["/edit", id, text @ ..] => {
            rc.message(id).ok_or(format!("unknown message {id}"))?;
            rc.edit(id, &text.join(" "));
            Ok(format!("message {id} edited"))
        }
        _ => fault(rc, jeedom, w),
    }
}

fn fault(rc: &FakeRocketChat, jeedom: &FakeJeedom, w: &[&str]) -> Result<String, String> {
    match w {
        ["/drop"] => rc.drop_connections(),
        ["/restart"] => rc.restart(),
        ["/down"] => rc.set_down(true),
        ["/up"] => rc.set_down(false),
        ["/silent", on @ ("on" | "off")] => rc.set_silent(*on == "on"),
        ["/jeedom", mode] => jeedom.set_mode(match *mode {
            "ok" => JeedomMode::Ok,
            "hang" => JeedomMode::Hang,
            "close" => JeedomMode::Close,
            "wrongkey" => JeedomMode::WrongKey,
            n => JeedomMode::Status(n.parse().map_err(|_| format!("bad Jeedom mode {n}"))?),
        }),
        _ => return Err(format!("unknown command; {HELP}")),
    }
    Ok("done".into())
}

fn rooms(rc: &FakeRocketChat) -> String {
    let w = rc.shared().world();
    let line = |r: &support::fake_rc::world::Room| {
        let members: Vec<String> = r.members.iter().map(|m| w.username_of(m)).collect();
        format!(
            "  {} t={} name={:?} members={}",
            r.id,
            r.t,
            r.name,
            members.join(",")
        )
    };
    w.rooms.iter().map(line).collect::<Vec<_>>().join("\n")
}
