//! Mentions of the bot and the query Jeedom's interaction engine reads.

/// Whether the bot is mentioned: the server listed it in `mentions`, or the
/// text holds `@botname` as a whole word (any case). `@all` and `@here` never
/// count, and neither does `@botnamex` or `mail@botname.org`.
pub fn is_mentioned(text: &str, mentions: &[String], bot_username: &str) -> bool {
    let bot = bot_username.trim_start_matches('@');
    if bot.is_empty() || is_group_mention(bot) {
        return false;
    }
    if mentions.iter().any(|m| eq_ci(m, bot)) {
        return true;
    }
    text.match_indices('@').any(|(at, _)| {
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_name_char(c));
        before_ok && strip_prefix_ci(&text[at + 1..], bot).is_some_and(ends_name)
    })
}

/// The text with a leading `@botname` (and a `:` or `,` after it) removed,
/// trimmed: what Jeedom's interaction engine should read.
pub fn query(text: &str, bot_username: &str) -> String {
    let bot = bot_username.trim_start_matches('@');
    let trimmed = text.trim();
    let rest = trimmed
        .strip_prefix('@')
        .filter(|_| !bot.is_empty())
        .and_then(|r| strip_prefix_ci(r, bot))
        .filter(|r| ends_name(r));
    match rest {
        Some(r) => {
            let r = r.trim_start();
            r.strip_prefix([':', ',']).unwrap_or(r).trim().to_string()
        }
        None => trimmed.to_string(),
    }
}

fn is_group_mention(name: &str) -> bool {
    eq_ci(name, "all") || eq_ci(name, "here")
}

/// Characters that continue a username (Rocket.Chat also allows `.`,
/// handled in [`ends_name`]).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Characters that, right before an `@`, make it part of a word or an
/// address rather than a mention.
fn is_name_char(c: char) -> bool {
    is_word_char(c) || c == '.' || c == '@'
}

/// Whether the text after a name ends it: a dot counts as punctuation only
/// when no name character follows it (`@bot.` yes, `@bot.org` no), and
/// `@bot@other.server` is a user of another server.
fn ends_name(rest: &str) -> bool {
    let mut chars = rest.chars();
    match chars.next() {
        None => true,
        Some('.') => chars.next().is_none_or(|c| !is_word_char(c)),
        Some(c) => !is_word_char(c) && c != '@',
    }
}

/// Whether two names are equal, ignoring case.
pub fn eq_ci(a: &str, b: &str) -> bool {
    strip_prefix_ci(a, b).is_some_and(str::is_empty)
}

/// `s` without `prefix`, compared case-insensitively (Unicode-aware).
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let mut rest = s;
    for p in prefix.chars() {
        let mut it = rest.chars();
        let c = it.next()?;
        if !c.to_lowercase().eq(p.to_lowercase()) {
            return None;
        }
        rest = it.as_str();
    }
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mention_table() {
        let none: &[String] = &[];
        let cases = [
            ("@jeedombot turn on the radio", true),
            ("hey @jeedombot", true),
            ("hey @JeedomBot, status?", true),
            ("(@jeedombot)", true),
            ("@jeedombot: lights", true),
            ("@jeedombot. lights", true),
            ("hello @jeedombot.", true),
            ("@jeedombot!", true),
            ("line1\n@jeedombot", true),
            ("@jeedombotx hello", false),
            ("@jeedombot_2 hello", false),
            ("@jeedombot-dev hello", false),
            ("email@jeedombot.org", false),
            ("write to jeedombot@example.org", false),
            ("@jeedombot.org", false),
            ("@jeedombot@other.server hi", false),
            ("jeedombot hello", false),
            ("@all turn on", false),
            ("@here anyone?", false),
            ("@ jeedombot", false),
            ("", false),
        ];
        for (text, want) in cases {
            assert_eq!(is_mentioned(text, none, "jeedombot"), want, "{text:?}");
        }
    }

    #[test]
    fn mention_from_the_server_list() {
        let list = vec!["alice".to_string(), "JeedomBot".to_string()];
        assert!(is_mentioned("no name in the text", &list, "jeedombot"));
        let groups = vec!["all".to_string(), "here".to_string()];
        assert!(!is_mentioned("@all @here", &groups, "jeedombot"));
        assert!(!is_mentioned("@all", &groups, "all"));
        assert!(!is_mentioned("@x", &[], ""));
    }

    #[test]
    fn query_table() {
        let cases = [
            ("@jeedombot turn on the radio", "turn on the radio"),
            ("  @JeedomBot:  turn on  ", "turn on"),
            ("@jeedombot, status", "status"),
            ("@jeedombot", ""),
            ("turn on the radio", "turn on the radio"),
            ("hey @jeedombot turn on", "hey @jeedombot turn on"),
            ("@jeedombotx turn on", "@jeedombotx turn on"),
            ("@all turn on", "@all turn on"),
            ("  spaced  ", "spaced"),
        ];
        for (text, want) in cases {
            assert_eq!(query(text, "jeedombot"), want, "{text:?}");
        }
    }

    #[test]
    fn odd_text_never_panics() {
        for text in [
            "@",
            "@@",
            "é@É",
            "@\u{0130}",
            "\u{0130}@jeedombot",
            "@jeedombot\u{0301}",
        ] {
            let _ = is_mentioned(text, &[], "jeedombot");
            let _ = query(text, "jeedombot");
            let _ = is_mentioned(text, &[], "\u{0130}");
        }
    }
}
