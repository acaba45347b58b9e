//! Ask rules: which answers get a button, answer matching, the closed question's text.

/// How a pending ask ended, for [`closed_text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed<'a> {
    /// `answer` (spelled as in the answers list) was given by `by` (a username).
    Answered { answer: &'a str, by: &'a str },
    /// The timeout ran out.
    Expired,
}

/// The answers that get a button: trimmed, non-empty, not the `*` wildcard.
pub fn button_answers(answers: &[String]) -> Vec<&str> {
    answers
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty() && *a != "*")
        .collect()
}

/// True when the list is empty (after trimming) or holds the `*` wildcard.
pub fn accepts_anything(answers: &[String]) -> bool {
    answers.iter().all(|a| a.trim().is_empty()) || answers.iter().any(|a| a.trim() == "*")
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

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
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
}
