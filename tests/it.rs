//! The one integration-test binary: each `tests/<name>.rs` is its module `<name>`.
//!
//! `cargo test --test it` runs them all, `cargo test --test it php::` one file's
//! tests. One binary rather than one per file: `tests/support` and
//! `tests/harness` are compiled and linked once instead of once per file, and the
//! tests of every file share the test threads, so a long test no longer leaves
//! the other core idle while its binary finishes. Cargo's test discovery is off
//! (`autotests = false` in Cargo.toml) so that the files keep their place and
//! their history; [`every_test_file_is_a_module_here`] fails when a new file is
//! not listed below.
//!
//! The tests share one process and run in parallel: none may change the
//! process's environment, working directory or signal dispositions; each uses
//! its own directory (`harness::temp_dir`, named by pid and counter) and
//! OS-chosen ports.
mod harness;
mod support;

mod asks;
mod callback;
mod catchup;
mod cli;
mod command_socket;
mod daemon_lifecycle;
mod demo;
mod endurance;
mod fake_selftest;
mod files_refused;
// The fuzz crate (tests/fuzz/, its own workspace) shares `checks.rs` with it.
#[path = "fuzz/regressions.rs"]
mod fuzz_regressions;
mod hardening;
mod idle;
mod jeedom_sends;
mod login;
mod php;
mod php_faults;
mod readme;
mod realtime;
mod reconnect;
mod secrets;
mod sending;
mod sending_files;
mod server_limits;
mod session;

/// Cargo no longer finds `tests/*.rs` by itself: a file missing from the list
/// above would never be compiled nor run.
#[test]
fn every_test_file_is_a_module_here() {
    let root = include_str!("it.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/").flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(module) = name.strip_suffix(".rs").filter(|m| *m != "it") else {
            continue;
        };
        files += 1;
        let line = format!("\nmod {module};\n");
        assert!(
            root.contains(&line),
            "tests/{name} is not a module of tests/it.rs"
        );
    }
    assert!(files > 20, "only {files} test files in {}", dir.display());
}
