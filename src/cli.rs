//! The command line entry: parse, set up logging, run, map errors to exit codes.
use crate::config::{self, Args};
use crate::error::{Error, EXIT_USAGE};
use argh::FromArgs;
use std::io::Write;

/// Runs the program with these arguments (program name first); returns the exit status.
pub fn main_with_args(argv: &[String]) -> i32 {
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (name, rest) = strs
        .split_first()
        .map_or(("rocketchatd", &[][..]), |(n, r)| (*n, r));
    let args = match Args::from_args(&[name], rest) {
        Ok(a) => a,
        Err(early) => return early_exit(early),
    };
    if args.version {
        println!("rocketchatd {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let cfg = match config::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rocketchatd: {e}");
            return e.exit_code();
        }
    };
    crate::logging::init(cfg.log_level);
    let result = if cfg.check {
        crate::check::run(&cfg)
    } else {
        crate::daemon::run(cfg).map(|()| 0)
    };
    match result {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// `--help` goes to stdout with status 0; a parse error to stderr with status 2.
fn early_exit(early: argh::EarlyExit) -> i32 {
    match early.status {
        Ok(()) => {
            println!("{}", early.output);
            0
        }
        Err(()) => {
            eprintln!("rocketchatd: {}", early.output.trim_end());
            EXIT_USAGE
        }
    }
}

fn report(e: &Error) -> i32 {
    match e {
        // An option refused at start-up gets the same one line as an invalid
        // one, whatever the log level; a write error on stderr is ignored.
        Error::Usage { .. } | Error::Startup { .. } => {
            let _ = writeln!(std::io::stderr(), "rocketchatd: {e}");
        }
        _ => log::error!("{e}"),
    }
    e.exit_code()
}
