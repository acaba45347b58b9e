//! (temporary: replaced by the sender branch) ask answer matching and closing text.

/// How a question ended.
pub enum Closed<'a> {
    Answered { answer: &'a str, by: &'a str },
    Expired,
}

/// The answer as spelled in `answers`, if `reply` is one.
pub fn match_answer(answers: &[String], reply: &str) -> Option<String> {
    let r = reply.trim();
    if answers.is_empty() || answers.iter().any(|a| a == "*") {
        return (!r.is_empty()).then(|| r.to_string());
    }
    answers
        .iter()
        .find(|a| a.trim().eq_ignore_ascii_case(r))
        .cloned()
}

/// The question once closed.
pub fn closed_text(question: &str, outcome: Closed) -> String {
    match outcome {
        Closed::Answered { answer, by } => format!("{question}\n✅ {answer} — answered by @{by}"),
        Closed::Expired => format!("{question}\n⌛ No answer in time"),
    }
}
