//! The command line entry: parse, set up logging, run, map errors to exit codes.
use crate::config::{self, Args};
use crate::error::{Error, EXIT_USAGE};
use argh::FromArgs;
use std::io::Write;

/// What `-h` and a bare `rocketchatd` print.
const USAGE: &str = "\
usage: rocketchatd --url URL (--user NAME --password-file FILE | --user-id ID --token TOKEN)
                   --apikey KEY [--callback URL] [--socketport PORT] [--state FILE] [OPTIONS]
       rocketchatd --check --url URL ...   (test the server, the login and the callback, then exit)
`rocketchatd --help` lists every option.";

/// Runs the program with these arguments (program name first); returns the exit status.
pub fn main_with_args(argv: &[String]) -> i32 {
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (name, rest) = strs
        .split_first()
        .map_or(("rocketchatd", &[][..]), |(n, r)| (*n, r));
    match rest.first() {
        None => return err_line(USAGE, EXIT_USAGE),
        Some(&"-h") => return out_line(USAGE),
        Some(_) => {}
    }
    let args = match Args::from_args(&[name], rest) {
        Ok(a) => a,
        Err(early) => return early_exit(early),
    };
    if args.version {
        return out_line(&format!("rocketchatd {}", env!("CARGO_PKG_VERSION")));
    }
    let cfg = match config::parse(args) {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    crate::logging::init(cfg.log_level);
    let result = if cfg.check {
        crate::check::run(&cfg)
    } else {
        crate::daemon::run(cfg).map(|()| 0)
    };
    result.unwrap_or_else(|e| report(&e))
}

/// `--help` goes to stdout with status 0; a parse error to stderr with status 2.
fn early_exit(early: argh::EarlyExit) -> i32 {
    match early.status {
        Ok(()) => out_line(&early.output),
        Err(()) => err_line(
            &format!("rocketchatd: {}", parse_error(&early.output)),
            EXIT_USAGE,
        ),
    }
}

/// argh's parse errors in the one format of start-up errors,
/// `invalid --<option>: <reason>`, with a pointer to `--help`.
fn parse_error(argh_text: &str) -> String {
    let text = argh_text.trim_end();
    if let Some(given) = text.strip_prefix("Unrecognized argument: ") {
        // With argh's fuzzy search: `"--bogus". Did you mean "--loglevel"?`
        let (given, hint) = given.split_once(". ").unwrap_or((given, ""));
        let given = given.trim_matches('"');
        let hint = if hint.is_empty() { hint } else { " " }.to_string() + hint;
        return match given.starts_with('-') {
            true => format!("invalid {given}: unknown option{hint} (`rocketchatd --help` lists them)"),
            false => format!(
                "unexpected argument \"{given}\": every value follows its option (`rocketchatd --help`)"
            ),
        };
    }
    let quoted = |s: &str| s.split('\'').nth(1).map(str::to_string);
    if text.starts_with("No value provided for option") {
        if let Some(opt) = quoted(text) {
            return format!("invalid {opt}: no value given");
        }
    }
    if text.starts_with("Error parsing option") && text.ends_with("duplicate values provided") {
        if let Some(opt) = quoted(text) {
            return format!("invalid {opt}: given more than once");
        }
    }
    format!("{text} (`rocketchatd --help` lists the options)")
}

/// Start-up errors go to stderr in one format, `rocketchatd: invalid
/// --<option>: <reason>` when an option is behind them; the run has not
/// started, so the log is not the place (Jeedom and journald keep stderr).
fn report(e: &Error) -> i32 {
    err_line(&format!("rocketchatd: {}", e.chain()), e.exit_code())
}

/// Prints on stdout and returns 0; a closed pipe (`--help | head -1`) is
/// not an error worth a panic.
fn out_line(text: &str) -> i32 {
    let _ = writeln!(std::io::stdout(), "{text}");
    0
}

/// Prints on stderr and returns `code`; a write error is ignored.
fn err_line(text: &str, code: i32) -> i32 {
    let _ = writeln!(std::io::stderr(), "{text}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argh_errors_name_the_option() {
        assert_eq!(
            parse_error("Unrecognized argument: --bogus\n"),
            "invalid --bogus: unknown option (`rocketchatd --help` lists them)"
        );
        assert_eq!(
            parse_error("No value provided for option '--url'.\n"),
            "invalid --url: no value given"
        );
        assert_eq!(
            parse_error("Error parsing option '--url' with value 'x': duplicate values provided\n"),
            "invalid --url: given more than once"
        );
        assert!(parse_error("Unrecognized argument: extra\n")
            .starts_with("unexpected argument \"extra\""));
    }
}
