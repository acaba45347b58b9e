//! Log set-up: Jeedom levels, one line per record on stderr, no timestamps under journald.
use log::LevelFilter;
use simple_logger::SimpleLogger;

/// Starts the logger. Third-party crates are held at warnings: their debug
/// output can include HTTP headers, and those carry the tokens.
pub fn init(level: LevelFilter) {
    let mut logger = SimpleLogger::new().with_level(level);
    for noisy in ["ureq", "ureq_proto", "rustls", "tungstenite", "webpki"] {
        logger = logger.with_module_level(noisy, level.min(LevelFilter::Warn));
    }
    // journald stamps each line itself.
    logger = if std::env::var_os("JOURNAL_STREAM").is_some() {
        logger.without_timestamps()
    } else {
        logger.with_utc_timestamps()
    };
    // A second init (tests) is harmless.
    let _ = logger.init();
}
