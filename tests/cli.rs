//! The command line of the real binary: usage, one format for start-up errors, `--check`'s report.
use crate::harness;
use crate::support;
use std::net::TcpListener;
use std::process::Output;
use support::fake_rc::{FakeRcOptions, FakeRocketChat};

fn run(args: &[&str]) -> Output {
    harness::command()
        .args(args)
        .env_remove("ROCKETCHAT_PASSWORD")
        .output()
        .expect("run rocketchatd")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one line a start-up error prints, checked for the common format.
fn one_error_line(out: &Output, option: &str) -> String {
    let err = stderr(out);
    let prefix = format!("rocketchatd: invalid {option}: ");
    assert!(err.starts_with(&prefix), "expected {prefix:?}...:\n{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line:\n{err}");
    err.trim_end().to_string()
}

#[test]
fn no_arguments_and_dash_h_show_the_usage_and_point_to_help() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("usage: rocketchatd --url URL"), "{err}");
    assert!(
        err.contains("`rocketchatd --help` lists every option"),
        "{err}"
    );
    let out = run(&["-h"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), err, "-h prints the same usage, on stdout");
}

#[test]
fn command_line_mistakes_name_the_option() {
    let line = one_error_line(&run(&["--url"]), "--url");
    assert!(line.ends_with("no value given"), "{line}");
    let out = run(&["--url", "http://a", "--url", "http://b"]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out, "--url");
    assert!(line.ends_with("given more than once"), "{line}");
    let line = one_error_line(&run(&["--bogus"]), "--bogus");
    assert!(
        line.contains("unknown option") && line.contains("--help"),
        "{line}"
    );
}

/// The options of a daemon that would start, in `dir`, plus `extra`.
fn daemon_args(dir: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let port = harness::free_port().to_string();
    let state = dir.join("state.json");
    let mut args: Vec<String> = [
        "--url",
        &format!("http://127.0.0.1:{}", harness::free_port()),
        "--user",
        "jeedombot",
        "--password",
        "pw",
        "--apikey",
        harness::APIKEY,
        "--socketport",
        &port,
        "--state",
        &state.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_daemon(args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

#[test]
fn start_up_errors_share_one_format_naming_the_option() {
    let dir = harness::temp_dir("cli-startup");
    let missing = dir.join("missing-ca.pem");
    let out = run_daemon(&daemon_args(
        &dir,
        &["--ca-file", missing.to_str().unwrap()],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = one_error_line(&out, "--ca-file");
    assert!(line.contains("missing-ca.pem"), "{line}");

    let pid_file = dir.join("daemon.pid");
    let out = run_daemon(&daemon_args(
        &dir,
        &[
            "--pid",
            pid_file.to_str().unwrap(),
            "--ca-file",
            "/etc/hostname",
        ],
    ));
    let line = one_error_line(&out, "--ca-file");
    assert!(line.contains("no PEM certificate"), "{line}");
    assert!(
        !pid_file.exists(),
        "the pid file goes with the failed start"
    );

    let mut args = daemon_args(&dir, &[]);
    let at = args.iter().position(|a| a == "--state").unwrap();
    args[at + 1] = "/proc/rocketchatd-no-such-dir/state.json".into();
    let out = run_daemon(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = one_error_line(&out, "--state");
    assert!(line.contains("/proc/rocketchatd-no-such-dir"), "{line}");

    let out = run_daemon(&daemon_args(&dir, &["--pid", "/proc/no-such-dir/d.pid"]));
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out, "--pid");
    assert!(line.contains("/proc/no-such-dir"), "{line}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut args = daemon_args(&dir, &[]);
    let at = args.iter().position(|a| a == "--socketport").unwrap();
    args[at + 1] = port.clone();
    let out = run_daemon(&args);
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out, "--socketport");
    assert!(
        line.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{line}"
    );
}

#[test]
fn check_with_a_bad_ca_file_says_so_in_the_same_format() {
    let out = run(&[
        "--check",
        "--url",
        "https://127.0.0.1:1",
        "--user",
        "u",
        "--password",
        "p",
        "--ca-file",
        "/etc/hostname",
    ]);
    assert_eq!(out.status.code(), Some(2));
    one_error_line(&out, "--ca-file");
    assert_eq!(stdout(&out), "", "no half report before the error");
}

fn check(url: &str, password: &str) -> (i32, String) {
    let out = run(&[
        "--check",
        "--url",
        url,
        "--user",
        "jeedombot",
        "--password",
        password,
    ]);
    (
        out.status.code().unwrap_or(-1),
        stdout(&out) + &stderr(&out),
    )
}

/// The report's line for `what`, e.g. `  login    FAIL jeedombot: ...`.
fn report_line(report: &str, what: &str) -> String {
    let found = report
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{what} ")));
    found
        .unwrap_or_else(|| panic!("no {what} line in:\n{report}"))
        .to_string()
}

fn mark(line: &str) -> &str {
    line.split_whitespace().nth(1).unwrap_or_default()
}

#[test]
fn check_keeps_its_server_login_and_rooms_lines_when_the_login_fails() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let (code, report) = check(&rc.url(), "not-the-password");
    assert_eq!(code, 1, "{report}");
    let server = report_line(&report, "server");
    assert_eq!(mark(&server), "ok", "{report}");
    assert!(server.contains(&rc.url()), "{server}");
    let login = report_line(&report, "login");
    assert_eq!(mark(&login), "FAIL", "{report}");
    assert!(login.contains("jeedombot: login failed"), "{login}");
    let rooms = report_line(&report, "rooms");
    assert_eq!(mark(&rooms), "--", "{report}");
    assert!(rooms.contains("not tried"), "{rooms}");
    assert!(report.trim_end().ends_with("result: FAILED"), "{report}");

    let dead = format!("http://127.0.0.1:{}", harness::free_port());
    let (code, report) = check(&dead, "pw");
    assert_eq!(code, 1);
    assert_eq!(mark(&report_line(&report, "server")), "FAIL", "{report}");
    assert_eq!(mark(&report_line(&report, "login")), "--", "{report}");
    assert_eq!(mark(&report_line(&report, "rooms")), "--", "{report}");
}

#[test]
fn check_hints_at_plain_http_behind_an_https_url() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let https = rc.url().replacen("http://", "https://", 1);
    let (code, report) = check(&https, "s3cret");
    assert_eq!(code, 1, "{report}");
    let server = report_line(&report, "server");
    assert_eq!(mark(&server), "FAIL", "{report}");
    assert!(
        server.contains("the server answered in plain HTTP, not TLS: use http:// in --url"),
        "{server}"
    );
}

#[test]
fn the_check_switch_stays_on_the_command_line() {
    let dir = harness::temp_dir("cli-config-check");
    let file = dir.join("config.json");
    std::fs::write(
        &file,
        r#"{"url":"http://127.0.0.1:1","user":"u","password":"p","check":true}"#,
    )
    .unwrap();
    let out = run(&["--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out, "--config");
    assert!(
        line.ends_with("\"check\" is not read from a file: give --check on the command line"),
        "{line}"
    );
}
