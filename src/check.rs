//! `--check`: connect, log in, list rooms, test the callback, print a report.
use crate::config::Config;
use crate::error::Result;

/// Prints the report; returns 0 when everything works, 1 otherwise.
pub fn run(_cfg: &Config) -> Result<i32> {
    println!("--check is not implemented yet");
    Ok(1)
}
