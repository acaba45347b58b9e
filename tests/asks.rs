//! Asks (contract §2 `ask`, §3 `ask_answer`/`ask_expired`, §4 ask buttons): question, answers, expiry, closing edits.
use crate::harness;
use crate::support;
use harness::stack::{Stack, T};
use serde_json::{json, Value};
use std::time::Duration;
use support::fake_rc::BOT_ID;
use support::wait::{assert_never, wait_until};

const QUESTION: &str = "Alarm triggered, call the police?";

/// Posts an ask; waits for its `sent` event; returns the stored question.
fn ask(s: &Stack, req: Value) -> Value {
    let mut req = req;
    req["action"] = json!("ask");
    let ask_id = req["ask_id"].to_string().trim_matches('"').to_string();
    let reply = s.request(req);
    assert_eq!(reply["ok"], true, "{reply}");
    let ev = s
        .jeedom
        .wait_event(T, "sent", |e| e["ask_id"] == ask_id.as_str());
    let id = ev["message_id"].as_str().expect("message_id");
    s.rc.message(id)
        .expect("the question is stored under message_id")
}

fn yes_no(ask_id: &str) -> Value {
    json!({"room": "#general", "question": QUESTION, "answers": ["Yes", "No"], "ask_id": ask_id})
}

fn answer_of(s: &Stack, ask_id: &str) -> Value {
    s.jeedom
        .wait_event(T, "ask_answer", |e| e["ask_id"] == ask_id)
}

/// Waits for the `message` event of a message id (a barrier: events arrive in order).
fn message_event(s: &Stack, id: &str) -> Value {
    s.jeedom.wait_event(T, "message", |e| e["id"] == id)
}

fn has_message_event(s: &Stack, id: &str) -> bool {
    s.messages().iter().any(|e| e["id"] == id)
}

/// Waits until the stored question has been edited; returns it.
fn closed_question(s: &Stack, id: &str) -> Value {
    s.rc.wait_message(T, "the question's closing edit", |m| {
        m["_id"] == id && m["editedAt"].is_object()
    })
}

/// The question `id` was closed with `closing` as its text and no buttons,
/// by the DDP `updateMessage` call (REST `chat.update` keeps the buttons).
fn assert_closed_with(s: &Stack, id: &str, closing: &str) {
    let params = update_call(s, id);
    assert_eq!(
        params,
        json!([{"_id": id, "rid": "GENERAL", "msg": closing, "attachments": []}])
    );
    let edited = closed_question(s, id);
    assert_eq!(edited["msg"], closing);
    assert_eq!(edited["attachments"], json!([]), "buttons gone");
}

/// The `updateMessage` call that closed `id`: its only parameter.
fn update_call(s: &Stack, id: &str) -> Value {
    support::wait::wait_for(T, "updateMessage for the question", || {
        let calls = s.rc.ddp_method_calls("updateMessage");
        calls
            .into_iter()
            .find(|c| c["params"][0]["_id"] == id)
            .map(|c| c["params"].clone())
    })
}

#[test]
fn the_question_has_buttons_grouped_by_line_and_the_answers_in_its_text() {
    let s = Stack::start("ask-shape");
    s.wait_connected();
    let req = json!({"room": "#general", "question": "Heating mode?", "ask_id": 42,
        "answers": ["Comfort", "Eco", "Off"], "answers_per_line": 2, "timeout": 300});
    let q = ask(&s, req);
    let ev = s.jeedom.wait_event(T, "sent", |e| e["ask_id"] == "42");
    assert_eq!(ev["room"]["id"], "GENERAL");
    assert_eq!(q["msg"], "Heating mode?\n[Comfort] [Eco] [Off]");
    let body = &s.rc.rest_bodies("chat.sendMessage")[0]["message"];
    assert!(body.get("ts").is_none(), "{body}");
    let button = |a: &str| {
        json!({"type": "button", "text": a, "msg": a, "msg_in_chat_window": true,
               "msg_processing_type": "sendMessage"})
    };
    let want = json!([
        {"actions": [button("Comfort"), button("Eco")]},
        {"actions": [button("Off")]},
    ]);
    assert_eq!(body["attachments"], want);
    for att in body["attachments"].as_array().unwrap() {
        assert!(att.get("description").is_none(), "no caption: {att}");
    }
    assert_eq!(q["attachments"], want, "stored as sent");
    // Without answers_per_line: one line with every button.
    let q = ask(&s, yes_no("43"));
    assert_eq!(q["msg"], format!("{QUESTION}\n[Yes] [No]"));
    assert_eq!(
        q["attachments"],
        json!([{"actions": [button("Yes"), button("No")]}])
    );
}

#[test]
fn a_button_click_answers_and_closes_the_question() {
    let s = Stack::start("ask-click");
    s.wait_connected();
    let q = ask(&s, yes_no("7"));
    let qid = q["_id"].as_str().unwrap();
    // A click posts the button's `msg` as the user.
    let reply_id = s.rc.post("GENERAL", "alice", "Yes");
    let ans = answer_of(&s, "7");
    assert_eq!(ans["answer"], "Yes");
    assert_eq!(
        ans["id"],
        reply_id.as_str(),
        "the reply's id, to skip a replay by"
    );
    assert_eq!(ans["user"]["username"], "alice");
    assert_eq!(ans["user"]["id"], "aliceid");
    assert_eq!(
        ans["room"],
        json!({"id": "GENERAL", "name": "general", "kind": "channel"})
    );
    let closing = format!("{QUESTION}\n✅ Yes — answered by @alice");
    assert_closed_with(&s, qid, &closing);
    // The answer is not also a message; later messages still are.
    let later = s.rc.post("GENERAL", "alice", "Yes");
    message_event(&s, &later);
    assert!(!has_message_event(&s, &reply_id));
    assert_eq!(s.jeedom.events_of_type("ask_answer").len(), 1);
}

#[test]
fn a_typed_reply_matches_whatever_the_case_and_spaces() {
    let s = Stack::start("ask-typed");
    s.wait_connected();
    ask(&s, yes_no("8"));
    s.rc.post("GENERAL", "alice", "maybe");
    s.rc.post("GENERAL", "alice", "  yes ");
    let ans = answer_of(&s, "8");
    assert_eq!(ans["answer"], "Yes", "the list's spelling");
    let msgs = s.messages();
    assert_eq!(msgs.len(), 1, "only 'maybe' is a message: {msgs:?}");
    assert_eq!(msgs[0]["text"], "maybe");
    // Replying to the bot by name is still an answer, not an interaction.
    ask(&s, yes_no("81"));
    s.rc.post("GENERAL", "alice", "@jeedombot No");
    let ans = answer_of(&s, "81");
    assert_eq!(ans["answer"], "No");
    let later = s.rc.post("GENERAL", "alice", "thanks");
    message_event(&s, &later);
    assert_eq!(s.messages().len(), 2, "{:?}", s.messages());
}

#[test]
fn with_a_mention_only_that_user_answers() {
    let s = Stack::start("ask-mention");
    s.wait_connected();
    s.rc.add_member("GENERAL", "bob");
    let mut req = yes_no("9");
    req["mention"] = json!("alice");
    let q = ask(&s, req);
    assert!(q["msg"].as_str().unwrap().starts_with("@alice "), "{q}");
    let from_bob = s.rc.post("GENERAL", "bob", "Yes");
    let m = message_event(&s, &from_bob);
    assert_eq!(m["user"]["username"], "bob");
    assert!(s.jeedom.events_of_type("ask_answer").is_empty());
    s.rc.post("GENERAL", "alice", "no");
    let ans = answer_of(&s, "9");
    assert_eq!(
        (&ans["answer"], &ans["user"]["username"]),
        (&json!("No"), &json!("alice"))
    );
    let edited = closed_question(&s, q["_id"].as_str().unwrap());
    assert!(edited["msg"].as_str().unwrap().starts_with("@alice "));
    assert!(edited["msg"]
        .as_str()
        .unwrap()
        .ends_with("answered by @alice"));
}

#[test]
fn a_star_accepts_any_reply() {
    let s = Stack::start("ask-star");
    s.wait_connected();
    let req = json!({"room": "#general", "question": "When are you back?", "answers": "*",
        "ask_id": "10"});
    let q = ask(&s, req);
    assert_eq!(q["msg"], "When are you back?\n(any reply is accepted)");
    assert!(
        q["attachments"].as_array().is_none_or(|a| a.is_empty()),
        "no buttons: {q}"
    );
    let id = s.rc.post("GENERAL", "alice", " in ten minutes ");
    let ans = answer_of(&s, "10");
    assert_eq!(ans["answer"], "in ten minutes");
    let edited = closed_question(&s, q["_id"].as_str().unwrap());
    assert!(edited["msg"]
        .as_str()
        .unwrap()
        .ends_with("✅ in ten minutes — answered by @alice"));
    let later = s.rc.post("GENERAL", "alice", "see you");
    message_event(&s, &later);
    assert!(!has_message_event(&s, &id));
}

#[test]
fn no_answer_in_time_expires_and_closes_the_question() {
    let s = Stack::start("ask-expire");
    s.wait_connected();
    let mut req = yes_no("11");
    req["timeout"] = json!(1);
    let q = ask(&s, req);
    let qid = q["_id"].as_str().unwrap();
    let ev = s
        .jeedom
        .wait_event(T, "ask_expired", |e| e["ask_id"] == "11");
    assert_eq!(ev, json!({"type": "ask_expired", "ask_id": "11"}));
    let closing = format!("{QUESTION}\n⌛ No answer in time");
    assert_closed_with(&s, qid, &closing);
    // A late reply is an ordinary message.
    let late = s.rc.post("GENERAL", "alice", "Yes");
    message_event(&s, &late);
    assert!(s.jeedom.events_of_type("ask_answer").is_empty());
    wait_until(T, "the ask gone from the state", || {
        s.daemon.state()["asks"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });
    assert_never(Duration::from_secs(2), "a second expiry or edit", || {
        s.jeedom.events_of_type("ask_expired").len() > 1
            || s.rc.ddp_method_calls("updateMessage").len() > 1
    });
}

/// Kills the daemon once the pending ask is on disk, restarts it, waits for the new session.
fn crash_and_restart(s: &mut Stack, ask_id: &str, while_down: impl FnOnce(&Stack)) {
    wait_until(T, "the pending ask saved", || {
        let st = s.daemon.state();
        let asks = st["asks"].as_array().cloned().unwrap_or_default();
        asks.iter().any(|a| a["ask_id"] == ask_id)
    });
    let connected = |s: &Stack| {
        let st = s.jeedom.events_of_type("status");
        st.iter().filter(|e| e["connected"] == true).count()
    };
    let before = connected(s);
    s.daemon.kill9();
    while_down(s);
    s.daemon.restart();
    s.daemon.wait_ready();
    wait_until(T, "the restarted daemon connected", || {
        connected(s) > before
    });
}

#[test]
fn an_ask_pending_across_a_restart_is_still_answered() {
    let mut s = Stack::start("ask-restart");
    s.wait_connected();
    let q = ask(&s, yes_no("12"));
    crash_and_restart(&mut s, "12", |_| {});
    s.rc.post("GENERAL", "alice", "No");
    let ans = answer_of(&s, "12");
    assert_eq!(ans["answer"], "No");
    let edited = closed_question(&s, q["_id"].as_str().unwrap());
    assert!(edited["msg"]
        .as_str()
        .unwrap()
        .ends_with("answered by @alice"));
    assert_eq!(s.jeedom.events_of_type("ask_answer").len(), 1);
}

#[test]
fn an_answer_given_while_the_daemon_is_down_counts_after_the_restart() {
    let mut s = Stack::start("ask-down");
    s.wait_connected();
    let q = ask(&s, yes_no("13"));
    crash_and_restart(&mut s, "13", |s| {
        s.rc.post("GENERAL", "alice", "yes");
    });
    let ans = answer_of(&s, "13");
    assert_eq!(ans["answer"], "Yes");
    let edited = closed_question(&s, q["_id"].as_str().unwrap());
    assert_eq!(edited["attachments"], json!([]));
    assert!(s.messages().is_empty(), "{:?}", s.messages());
}

#[test]
fn with_several_asks_in_a_room_the_newest_pending_gets_the_reply() {
    let s = Stack::start("ask-several");
    s.wait_connected();
    let q1 = ask(&s, yes_no("21"));
    let q2 = ask(&s, yes_no("22"));
    s.rc.post("GENERAL", "alice", "yes");
    let a2 = answer_of(&s, "22");
    assert_eq!(a2["answer"], "Yes");
    closed_question(&s, q2["_id"].as_str().unwrap());
    s.rc.post("GENERAL", "alice", "no");
    let a1 = answer_of(&s, "21");
    assert_eq!(a1["answer"], "No");
    closed_question(&s, q1["_id"].as_str().unwrap());
    let third = s.rc.post("GENERAL", "alice", "yes");
    message_event(&s, &third);
    assert_eq!(s.jeedom.events_of_type("ask_answer").len(), 2);
    let bot = s.rc.messages("GENERAL");
    assert_eq!(
        bot.iter().filter(|m| m["u"]["_id"] == BOT_ID).count(),
        2,
        "no extra post: the questions are edited in place"
    );
}

#[test]
fn an_ask_to_a_user_opens_the_direct_room_and_takes_the_reply_there() {
    let s = Stack::start("ask-dm");
    s.wait_connected();
    let req = json!({"room": "@bob", "question": "Open the gate?", "answers": ["Yes", "No"],
        "ask_id": "30"});
    let q = ask(&s, req);
    let rid = format!("bobid{BOT_ID}");
    assert_eq!(q["rid"], rid.as_str());
    // A "Yes" elsewhere is not the answer.
    let elsewhere = s.rc.post("GENERAL", "alice", "Yes");
    message_event(&s, &elsewhere);
    s.rc.post(&rid, "bob", "yes");
    let ans = answer_of(&s, "30");
    assert_eq!(ans["answer"], "Yes");
    assert_eq!(ans["user"]["username"], "bob");
    assert_eq!(ans["room"]["id"], rid.as_str());
    assert_eq!(ans["room"]["kind"], "direct");
    closed_question(&s, q["_id"].as_str().unwrap());
}

#[test]
fn a_question_expired_while_rocket_chat_is_down_is_closed_on_reconnection() {
    let s = Stack::start("ask-expire-down");
    s.wait_connected();
    let mut req = yes_no("31");
    req["timeout"] = json!(2);
    let q = ask(&s, req);
    let qid = q["_id"].as_str().unwrap();
    s.rc.set_down(true);
    s.jeedom
        .wait_event(T, "ask_expired", |e| e["ask_id"] == "31");
    assert!(s.rc.ddp_method_calls("updateMessage").is_empty());
    s.rc.set_down(false);
    let params = update_call(&s, qid);
    assert_eq!(params[0]["attachments"], json!([]));
    let edited = closed_question(&s, qid);
    assert!(edited["msg"]
        .as_str()
        .unwrap()
        .ends_with("⌛ No answer in time"));
    assert_eq!(s.jeedom.events_of_type("ask_expired").len(), 1);
}

/// The bot's messages in GENERAL that say a question is closed.
fn notices(s: &Stack) -> Vec<Value> {
    let all = s.rc.messages("GENERAL");
    all.into_iter()
        .filter(|m| {
            m["u"]["_id"] == BOT_ID
                && m["msg"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Question closed")
        })
        .collect()
}

fn close_failed(s: &Stack, ask_id: &str) -> Value {
    s.jeedom
        .wait_event(T, "ask_close_failed", |e| e["ask_id"] == ask_id)
}

/// A bot without the `bot` role under an edit time limit: the answer comes
/// after the limit, the edit is refused, and a notice in the room says the
/// question is closed and how; Jeedom learns it with `ask_close_failed`.
#[test]
fn an_edit_blocked_by_the_time_limit_is_replaced_by_a_notice() {
    let s = Stack::start("ask-edit-limit");
    s.wait_connected();
    s.rc.set_edit_limit(5, false);
    let q = ask(&s, yes_no("21"));
    let qid = q["_id"].as_str().unwrap();
    s.rc.age_message(qid, 10);
    s.rc.post("GENERAL", "alice", "yes");
    assert_eq!(answer_of(&s, "21")["answer"], "Yes");
    let ev = close_failed(&s, "21");
    assert_eq!(ev["error"], "Message editing is blocked", "{ev}");
    let posted = notices(&s);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(ev["notice_id"], posted[0]["_id"]);
    assert_eq!(
        posted[0]["msg"],
        format!("Question closed: \"{QUESTION}\"\n✅ Yes — answered by @alice (its buttons above no longer count)")
    );
    let question = s.rc.message(qid).unwrap();
    assert!(
        question["editedAt"].is_null(),
        "the server refused the edit"
    );
    // The notice is the daemon's own: no `sent` nor `send_failed` for it.
    assert_never(
        Duration::from_secs(2),
        "an event for the notice or a second one",
        || {
            s.jeedom.events_of_type("sent").len() > 1
                || !s.jeedom.events_of_type("send_failed").is_empty()
                || notices(&s).len() > 1
        },
    );
}

/// Editing turned off (`Message_AllowEditing`), a question expires: the
/// notice says so.
#[test]
fn with_editing_off_an_expired_question_gets_a_notice() {
    let s = Stack::start("ask-edit-off");
    s.wait_connected();
    s.rc.set_allow_editing(false);
    let mut req = yes_no("22");
    req["timeout"] = json!(1);
    ask(&s, req);
    s.jeedom
        .wait_event(T, "ask_expired", |e| e["ask_id"] == "22");
    let ev = close_failed(&s, "22");
    assert_eq!(ev["error"], "Message editing not allowed", "{ev}");
    let posted = notices(&s);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(posted[0]["msg"]
        .as_str()
        .unwrap()
        .contains("⌛ No answer in time"));
}

/// A room turned read-only (or the bot muted) after the question: the edit
/// and the notice are both refused; Jeedom gets both reasons, and the
/// request queue goes on.
#[test]
fn in_a_read_only_room_jeedom_learns_that_the_question_still_looks_open() {
    let s = Stack::start("ask-read-only");
    s.wait_connected();
    let q = ask(&s, yes_no("23"));
    s.rc.set_read_only("GENERAL", true);
    s.rc.post("GENERAL", "alice", "No");
    answer_of(&s, "23");
    let ev = close_failed(&s, "23");
    assert_eq!(ev["error"], "Internal server error", "{ev}");
    assert_eq!(ev["notice_id"], Value::Null);
    let why = ev["notice_error"].as_str().unwrap();
    assert!(why.contains("the room is readonly"), "{ev}");
    assert!(notices(&s).is_empty());
    let question = s.rc.message(q["_id"].as_str().unwrap()).unwrap();
    assert!(question["editedAt"].is_null());
    // Muted in a writable room: the same.
    s.rc.set_read_only("GENERAL", false);
    let q2 = ask(&s, yes_no("24"));
    s.rc.mute("GENERAL", "jeedombot");
    s.rc.post("GENERAL", "alice", "Yes");
    let ev = close_failed(&s, "24");
    assert!(
        ev["notice_error"].as_str().unwrap().contains("muted"),
        "{ev}"
    );
    assert!(s.rc.message(q2["_id"].as_str().unwrap()).unwrap()["editedAt"].is_null());
}
