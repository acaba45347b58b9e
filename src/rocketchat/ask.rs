//! Ask logic: the question message with its answer buttons, answer matching, the closing edit.
use crate::model::{OutKind, Outgoing};
use serde_json::{json, Value};

/// How a pending ask ended, for [`closed_text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed<'a> {
    /// `answer` (spelled as in the answers list) was given by `by` (a username).
    Answered { answer: &'a str, by: &'a str },
    /// The timeout ran out.
    Expired,
}

/// Line added to a question that accepts any reply.
const ANY_REPLY: &str = "(any reply is accepted)";

/// The question's text and its `attachments` array (one attachment per line
/// of buttons). An [`OutKind::Send`] gets the plain text and no buttons.
pub fn question_message(item: &Outgoing, ask: &OutKind) -> (String, Value) {
    let question = with_mention(item.mention.as_deref(), &item.text);
    let OutKind::Ask {
        answers,
        answers_per_line,
        ..
    } = ask
    else {
        return (question, json!([]));
    };
    let buttons = button_answers(answers);
    let mut text = question;
    if !buttons.is_empty() {
        let written: Vec<String> = buttons.iter().map(|a| format!("[{a}]")).collect();
        text = format!("{text}\n{}", written.join(" "));
    }
    if accepts_anything(answers) {
        text = format!("{text}\n{ANY_REPLY}");
    }
    (text, button_attachments(&buttons, *answers_per_line))
}

/// Prefixes `text` with `@username ` when a mention is asked for.
pub fn with_mention(mention: Option<&str>, text: &str) -> String {
    match mention.map(|m| m.trim().trim_start_matches('@')) {
        Some(m) if !m.is_empty() => format!("@{m} {text}"),
        _ => text.to_string(),
    }
}

/// The answers that get a button: trimmed, non-empty, not the `*` wildcard.
fn button_answers(answers: &[String]) -> Vec<&str> {
    answers
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty() && *a != "*")
        .collect()
}

/// True when the list is empty (after trimming) or holds the `*` wildcard.
fn accepts_anything(answers: &[String]) -> bool {
    answers.iter().all(|a| a.trim().is_empty()) || answers.iter().any(|a| a.trim() == "*")
}

/// One attachment per line of buttons. No `text` nor `description`: when the
/// first attachment has a description, the server turns the closing edit into
/// that caption instead of replacing the message text.
fn button_attachments(buttons: &[&str], per_line: Option<usize>) -> Value {
    if buttons.is_empty() {
        return json!([]);
    }
    let per_line = per_line.filter(|&n| n > 0).unwrap_or(buttons.len());
    let lines: Vec<Value> = buttons
        .chunks(per_line)
        .map(|line| json!({ "actions": line.iter().map(|a| button(a)).collect::<Vec<_>>() }))
        .collect();
    Value::Array(lines)
}

/// A button whose click posts its answer in the room as the user.
fn button(answer: &str) -> Value {
    json!({
        "type": "button",
        "text": answer,
        "msg": answer,
        "msg_in_chat_window": true,
        "msg_processing_type": "sendMessage",
    })
}

/// Matches a reply against the answers: trimmed, case-insensitive, returned
/// with the list's spelling (Jeedom compares exactly). An empty list or `*`
/// accepts any non-empty reply.
pub fn match_answer(answers: &[String], reply: &str) -> Option<String> {
    let reply = reply.trim();
    if reply.is_empty() {
        return None;
    }
    let wanted = reply.to_lowercase();
    let exact = button_answers(answers)
        .into_iter()
        .find(|a| a.to_lowercase() == wanted);
    match exact {
        Some(a) => Some(a.to_string()),
        None if accepts_anything(answers) => Some(reply.to_string()),
        None => None,
    }
}

/// The question's text once closed, without the buttons (the edit drops the
/// attachments).
pub fn closed_text(question_text: &str, outcome: Closed) -> String {
    match outcome {
        Closed::Answered { answer, by } => {
            let by = by.trim_start_matches('@');
            format!("{question_text}\n✅ {answer} — answered by @{by}")
        }
        Closed::Expired => format!("{question_text}\n⌛ No answer in time"),
    }
}

/// The message posted when the closing edit is refused: the question, and
/// how it ended (the last line of `closing`, the refused edit's text), so
/// that a reader of the room knows the buttons above no longer count.
pub fn closing_notice(question_text: &str, closing: &str) -> String {
    let outcome = closing
        .strip_prefix(question_text)
        .unwrap_or(closing)
        .trim();
    format!("Question closed: \"{question_text}\"\n{outcome} (its buttons above no longer count)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(answers: &[&str], per_line: Option<usize>) -> (Outgoing, OutKind) {
        let kind = OutKind::Ask {
            ask_id: "42".into(),
            answers: answers.iter().map(|s| s.to_string()).collect(),
            timeout_s: 300,
            answers_per_line: per_line,
        };
        let item = Outgoing {
            key: "k1".into(),
            kind: kind.clone(),
            room: "#general".into(),
            text: "Alarm triggered, call the police?".into(),
            mention: None,
            files: vec![],
            description: None,
            thread: None,
            reference: None,
            accepted_ms: 0,
            steps_done: 0,
        };
        (item, kind)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn buttons_have_the_contract_shape_and_no_caption() {
        let (item, kind) = ask(&["Yes", "No"], None);
        let (text, att) = question_message(&item, &kind);
        assert_eq!(text, "Alarm triggered, call the police?\n[Yes] [No]");
        let expected = json!([{"actions": [
            {"type":"button","text":"Yes","msg":"Yes","msg_in_chat_window":true,"msg_processing_type":"sendMessage"},
            {"type":"button","text":"No","msg":"No","msg_in_chat_window":true,"msg_processing_type":"sendMessage"}
        ]}]);
        assert_eq!(att, expected);
        for a in att.as_array().unwrap() {
            assert!(a.get("description").is_none() && a.get("text").is_none());
        }
    }

    #[test]
    fn answers_per_line_groups_buttons() {
        let (item, kind) = ask(&["1", "2", "3", "4", "5"], Some(2));
        let (_, att) = question_message(&item, &kind);
        let sizes: Vec<usize> = att
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["actions"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        let (item, kind) = ask(&["1", "2", "3"], Some(0));
        assert_eq!(
            question_message(&item, &kind).1.as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn wildcard_or_empty_list_has_no_buttons() {
        for answers in [&["*"][..], &[][..], &[" "][..]] {
            let (item, kind) = ask(answers, None);
            let (text, att) = question_message(&item, &kind);
            assert_eq!(att, json!([]), "{answers:?}");
            assert_eq!(
                text,
                "Alarm triggered, call the police?\n(any reply is accepted)"
            );
        }
    }

    #[test]
    fn mention_prefixes_the_question() {
        let (mut item, kind) = ask(&["Yes"], None);
        item.mention = Some("@alice".into());
        let (text, _) = question_message(&item, &kind);
        assert!(text.starts_with("@alice Alarm"), "{text}");
        assert_eq!(with_mention(Some("bob"), "hi"), "@bob hi");
        assert_eq!(with_mention(Some(" "), "hi"), "hi");
        assert_eq!(with_mention(None, "hi"), "hi");
    }

    #[test]
    fn send_kind_gets_no_buttons() {
        let (item, _) = ask(&["Yes"], None);
        let (text, att) = question_message(&item, &OutKind::Send);
        assert_eq!(text, item.text);
        assert_eq!(att, json!([]));
    }

    #[test]
    fn matching_table() {
        let yes_no = strings(&["Yes", "No"]);
        let cases: &[(&[String], &str, Option<&str>)] = &[
            (&yes_no, "Yes", Some("Yes")),
            (&yes_no, "  yes ", Some("Yes")),
            (&yes_no, "NO", Some("No")),
            (&yes_no, "maybe", None),
            (&yes_no, "", None),
            (&[], "whatever ", Some("whatever")),
            (&[], "   ", None),
        ];
        for (answers, reply, want) in cases {
            assert_eq!(
                match_answer(answers, reply).as_deref(),
                *want,
                "{answers:?} {reply:?}"
            );
        }
        let star = strings(&["*"]);
        assert_eq!(match_answer(&star, " Later "), Some("Later".into()));
        let mixed = strings(&["Oui", "*"]);
        assert_eq!(match_answer(&mixed, "oui"), Some("Oui".into()));
        assert_eq!(match_answer(&mixed, "bof"), Some("bof".into()));
        let accents = strings(&["Été"]);
        assert_eq!(match_answer(&accents, "été"), Some("Été".into()));
    }

    #[test]
    fn closing_notices_quote_the_question_and_its_end() {
        let q = "Call the police?";
        let closed = closed_text(
            q,
            Closed::Answered {
                answer: "Yes",
                by: "alice",
            },
        );
        assert_eq!(
            closing_notice(q, &closed),
            "Question closed: \"Call the police?\"\n✅ Yes — answered by @alice (its buttons above no longer count)"
        );
        let expired = closed_text(q, Closed::Expired);
        assert!(closing_notice(q, &expired).contains("\n⌛ No answer in time ("));
    }

    #[test]
    fn closed_texts() {
        let q = "Alarm triggered, call the police?";
        let answered = Closed::Answered {
            answer: "Yes",
            by: "alice",
        };
        assert_eq!(
            closed_text(q, answered),
            "Alarm triggered, call the police?\n✅ Yes — answered by @alice"
        );
        assert_eq!(
            closed_text(q, Closed::Expired),
            "Alarm triggered, call the police?\n⌛ No answer in time"
        );
        let by_at = Closed::Answered {
            answer: "No",
            by: "@bob",
        };
        assert!(closed_text(q, by_at).ends_with("by @bob"));
    }
}
