//! Log output: Jeedom levels, one safe line per record on stderr, no timestamps under journald.
use log::{LevelFilter, Log, Metadata, Record};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest message kept in a line, in characters: a 900 KB value sent to the
/// socket must not make a 1.8 MB log line.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// Crates held at warnings: their debug output can include HTTP headers, and
/// those carry the tokens.
const NOISY: [&str; 5] = ["ureq", "ureq_proto", "rustls", "tungstenite", "webpki"];

/// The logger. Written here rather than taken from simple_logger, whose
/// `eprintln!` panics when stderr is a broken pipe (the reader of the
/// daemon's output went away) and so aborts the daemon on its next line.
struct Logger {
    level: LevelFilter,
    timestamps: bool,
}

/// Starts the logger. A second call (tests) is harmless.
pub fn init(level: LevelFilter) {
    let logger = Logger {
        level,
        // journald stamps each line itself.
        timestamps: std::env::var_os("JOURNAL_STREAM").is_none(),
    };
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(level);
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let target = metadata.target();
        let noisy = NOISY.iter().any(|n| {
            target
                .strip_prefix(n)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        });
        let level = if noisy {
            self.level.min(LevelFilter::Warn)
        } else {
            self.level
        };
        metadata.level() <= level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = String::with_capacity(128);
        if self.timestamps {
            line.push_str(&utc_stamp(SystemTime::now()));
            line.push(' ');
        }
        let _ = write!(line, "{:<5} [{}] ", record.level(), record.target());
        line.push_str(&safe_text(&record.args().to_string()));
        line.push('\n');
        // One write of the whole line; a failure (EPIPE, full disk) is dropped:
        // losing a log line is better than losing the daemon.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// A message made fit for one log line: control characters escaped (a
/// newline in a room name cannot forge a line), cut after
/// [`MAX_MESSAGE_CHARS`] with the original length in bytes.
pub fn safe_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS + 32));
    for (kept, c) in text.chars().enumerate() {
        if kept == MAX_MESSAGE_CHARS {
            let _ = write!(out, "… (cut, {} bytes)", text.len());
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Line and paragraph separators end a line for some viewers.
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// `2026-12-05T16:44:21.123Z`, as simple_logger wrote it.
fn utc_stamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn control_characters_are_escaped() {
        let forged = "kitchen\n2026-01-01T00:00:00.000Z ERROR [x] forged\r\t\u{1b}[31m";
        let safe = safe_text(forged);
        assert!(!safe.contains(['\n', '\r', '\t', '\u{1b}']), "{safe}");
        assert!(safe.starts_with("kitchen\\n2026"), "{safe}");
        assert!(safe.ends_with("\\r\\t\\u{1b}[31m"), "{safe}");
        assert_eq!(safe_text("café ☕"), "café ☕");
        assert_eq!(safe_text("a\u{2028}b\u{85}c"), "a\\u{2028}b\\u{85}c");
    }

    #[test]
    fn long_messages_are_cut_with_their_length() {
        let long = "é".repeat(5000);
        let safe = safe_text(&long);
        assert!(safe.ends_with("… (cut, 10000 bytes)"), "{}", &safe[1990..]);
        assert_eq!(
            safe.chars().filter(|&c| c == 'é').count(),
            MAX_MESSAGE_CHARS
        );
        let exact = "x".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(safe_text(&exact), exact);
    }

    #[test]
    fn timestamps_are_utc_iso() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(utc_stamp(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(utc_stamp(t), "2099-12-31T23:59:59.000Z");
    }
}
