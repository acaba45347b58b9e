//! The question message with its answer buttons, as Rocket.Chat shows it.
use crate::bridge::answers::{accepts_anything, button_answers};
use crate::model::{OutKind, Outgoing};
use serde_json::{json, Value};

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
}
