//! (temporary: replaced by the realtime branch) mention detection and query extraction.

/// Whether the bot is mentioned.
pub fn is_mentioned(text: &str, mentions: &[String], bot_username: &str) -> bool {
    mentions
        .iter()
        .any(|m| m.eq_ignore_ascii_case(bot_username))
        || text
            .to_lowercase()
            .contains(&format!("@{}", bot_username.to_lowercase()))
}

/// Text without a leading `@botname`.
pub fn query(text: &str, bot_username: &str) -> String {
    let t = text.trim();
    let at = format!("@{bot_username}");
    match t.get(..at.len()) {
        Some(h) if h.eq_ignore_ascii_case(&at) => t[at.len()..]
            .trim_start_matches([':', ','])
            .trim()
            .to_string(),
        _ => t.to_string(),
    }
}
