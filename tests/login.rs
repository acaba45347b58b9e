//! Logging in: password, resume, personal token, refusals, TLS, and `--check`.
use crate::harness;
use crate::support;
use harness::stack::{Stack, T};
use harness::{Daemon, APIKEY};
use std::time::{Duration, Instant};
use support::fake_jeedom::FakeJeedom;
use support::fake_rc::{FakeRcOptions, FakeRocketChat, LoginMode};
use support::wait::wait_until;

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn wrong_password_keeps_running_and_backs_off() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let s = Stack::start_on(
        "login-wrongpw",
        rc,
        &["--user", "jeedombot", "--password", "not-the-password"],
    );
    s.daemon.wait_ready();
    let ev = s
        .jeedom
        .wait_event(T, "status", |e| e["connected"] == false);
    assert!(ev["error"].as_str().unwrap().contains("password"), "{ev}");
    let t = Instant::now();
    wait_until(T, "a second attempt", || {
        count(&s.daemon.log_text(), "login failed") >= 2
    });
    support::wait::wait_until(Duration::from_secs(30), "7 s of attempts", || {
        t.elapsed() >= Duration::from_secs(7)
    });
    let log = s.daemon.log_text();
    let attempts = count(&log, "login failed");
    // 1 s doubling: at most about 4 attempts in the first 8 s, each one logged once, at error.
    assert!((2..=5).contains(&attempts), "{attempts} attempts:\n{log}");
    assert!(
        log.lines()
            .filter(|l| l.contains("login failed"))
            .all(|l| l.contains("ERROR")),
        "{log}"
    );
    assert!(
        s.daemon.pid_path.exists(),
        "still running with its pid file"
    );
    assert!(!log.contains("not-the-password"));
    // Jeedom is told once, not at every attempt.
    assert_eq!(s.jeedom.events_of_type("status").len(), 1);
}

#[test]
fn restart_with_the_right_password_connects() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = FakeJeedom::start(APIKEY);
    let dir = harness::temp_dir("login-fixed");
    let (url, cb) = (rc.url(), jeedom.url());
    let with_password = |pw: &str| {
        let args = [
            "--url",
            &url,
            "--callback",
            &cb,
            "--user",
            "jeedombot",
            "--password",
            pw,
        ];
        Daemon::start_in(&dir, &args)
    };
    let mut d = with_password("wrong");
    d.wait_log("login failed", T);
    d.sigterm();
    assert_eq!(d.wait_exit(T).code(), Some(0));
    let d = with_password("s3cret");
    d.wait_ready();
    jeedom.wait_event(T, "status", |e| e["connected"] == true);
    rc.wait_bot_listening(T);
}

#[test]
fn unknown_user_and_totp_are_explained() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    rc.set_login(LoginMode::UnknownUser);
    let s = Stack::start_on("login-unknown", rc, &[]);
    s.daemon.wait_log("login failed", T);
    let line = s
        .daemon
        .log_text()
        .lines()
        .find(|l| l.contains("login failed"))
        .unwrap()
        .to_string();
    assert!(line.contains("unknown user"), "{line}");

    let rc = FakeRocketChat::start(FakeRcOptions::default());
    rc.set_login(LoginMode::Totp);
    let s = Stack::start_on("login-totp", rc, &[]);
    let ev = s
        .jeedom
        .wait_event(T, "status", |e| e["connected"] == false);
    let err = ev["error"].as_str().unwrap();
    assert!(
        err.contains("two-factor") && err.contains("personal access token"),
        "{err}"
    );
    // The method the server named (`details.method: "totp"`), not e-mail.
    assert!(err.contains("TOTP, an authenticator app"), "{err}");
    assert!(!err.contains("e-mail"), "{err}");
}

/// Two-factor by e-mail: every refused password login makes the server
/// e-mail a code. The daemon says which method it is (status, log, --check)
/// and does not try again for an hour.
#[test]
fn two_factor_by_email_is_named_and_not_retried_every_minute() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    rc.set_login(LoginMode::TotpEmail);
    let s = Stack::start_on("login-2fa-email", rc, &[]);
    let ev = s
        .jeedom
        .wait_event(T, "status", |e| e["connected"] == false);
    let err = ev["error"].as_str().unwrap();
    assert!(err.contains("two-factor authentication by e-mail"), "{err}");
    assert!(err.contains("personal access token"), "{err}");
    let status = s.request(serde_json::json!({"action": "status"}));
    assert!(
        status["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("by e-mail"),
        "{status}"
    );
    s.daemon.wait_log("retrying in 3600 s", T);
    // A password error is retried within seconds (see above); this one not.
    support::wait::assert_never(Duration::from_secs(5), "a second e-mailed code", || {
        s.rc.email_codes_sent() > 1
    });
    assert_eq!(s.rc.email_codes_sent(), 1);
    let (code, out) = check(&[
        "--url",
        &s.rc.url(),
        "--user",
        "jeedombot",
        "--password",
        "s3cret",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("by e-mail"), "{out}");
}

#[test]
fn resume_token_is_kept_and_used_after_a_restart() {
    let mut s = Stack::start("login-resume");
    s.wait_connected();
    assert_eq!(s.rc.logins().last().map(String::as_str), Some("password"));
    s.daemon.sigterm();
    s.daemon.wait_exit(T);
    let token = s.daemon.state()["resume_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!token.is_empty(), "token kept in the state");
    s.daemon.restart();
    wait_until(T, "a resume login", || {
        s.rc.logins().last().map(String::as_str) == Some("resume")
    });
    // A refused token falls back to the password.
    s.rc.invalidate_tokens();
    s.rc.drop_connections();
    wait_until(T, "a password login again", || {
        s.rc.logins().last().map(String::as_str) == Some("password") && s.rc.bot_listening()
    });
    s.daemon.sigterm();
    s.daemon.wait_exit(T);
    let log = s.daemon.log_text();
    assert!(!log.contains(&token), "the token never reaches the log");
    assert!(!log.contains("s3cret") && !log.contains(APIKEY));
}

#[test]
fn personal_access_token_login() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let (uid, token) = rc.create_personal_token("jeedombot");
    let s = Stack::start_on("login-pat", rc, &["--user-id", &uid, "--token", &token]);
    let ev = s.jeedom.wait_event(T, "status", |e| e["connected"] == true);
    assert_eq!(ev["user"]["username"], "jeedombot");
    let id = s.rc.post("GENERAL", "alice", "@jeedombot hi");
    s.jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
    assert!(!s.daemon.log_text().contains(&token));
}

#[test]
fn tls_self_signed_needs_ca_file() {
    let opts = || FakeRcOptions {
        tls: true,
        ..FakeRcOptions::default()
    };
    let s = Stack::start_with("tls-refused", opts(), &[]);
    let ev = s
        .jeedom
        .wait_event(T, "status", |e| e["connected"] == false);
    let err = ev["error"].as_str().unwrap();
    assert!(
        err.contains("--ca-file") && err.contains("authority this machine does not know"),
        "{err}"
    );
    let ca = FakeRocketChat::ca_file();
    let s = Stack::start_with("tls-ok", opts(), &["--ca-file", ca.to_str().unwrap()]);
    s.wait_connected();
    let id = s.rc.post("GENERAL", "alice", "over TLS");
    s.jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
}

/// The error of the first `status` event of a daemon refusing the server's certificate.
fn tls_refusal(name: &str, cert: &'static str, extra: &[&str]) -> String {
    let opts = FakeRcOptions {
        tls: true,
        tls_cert: cert,
        ..FakeRcOptions::default()
    };
    let s = Stack::start_with(name, opts, extra);
    let ev = s
        .jeedom
        .wait_event(T, "status", |e| e["connected"] == false);
    ev["error"].as_str().unwrap().to_string()
}

#[test]
fn a_self_signed_certificate_made_by_openssl_is_trusted_once_pinned() {
    // CA:TRUE, as `openssl req -x509` makes it (tests/support/tls/make-self-signed.sh).
    let err = tls_refusal("tls-self-unpinned", "self-signed", &[]);
    assert!(
        err.contains("CA certificate") && err.contains("exactly that certificate with --ca-file"),
        "{err}"
    );
    let opts = FakeRcOptions {
        tls: true,
        tls_cert: "self-signed",
        ..FakeRcOptions::default()
    };
    let pinned = FakeRocketChat::cert_file("self-signed");
    let pinned = pinned.to_str().unwrap();
    let s = Stack::start_with("tls-self-pinned", opts, &["--ca-file", pinned]);
    s.wait_connected();
    let id = s.rc.post("GENERAL", "alice", "over a pinned certificate");
    s.jeedom
        .wait_event(T, "message", |e| e["id"] == id.as_str());
    // REST (ureq through the same configuration) too: --check logs in over it.
    let url = s.rc.url();
    let (code, out) = check(&[
        "--url",
        &url,
        "--user",
        "jeedombot",
        "--password",
        "s3cret",
        "--ca-file",
        pinned,
    ]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_pinned_certificate_still_needs_the_right_name_and_dates() {
    let other = FakeRocketChat::cert_file("self-signed-other-name");
    let err = tls_refusal(
        "tls-pinned-name",
        "self-signed-other-name",
        &["--ca-file", other.to_str().unwrap()],
    );
    assert!(err.contains("does not name this host"), "{err}");
    let expired = FakeRocketChat::cert_file("self-signed-expired");
    let err = tls_refusal(
        "tls-pinned-expired",
        "self-signed-expired",
        &["--ca-file", expired.to_str().unwrap()],
    );
    assert!(
        err.contains("has expired") && !err.contains("--ca-file"),
        "{err}"
    );
    // Pinning one certificate does not trust another self-signed one.
    let err = tls_refusal(
        "tls-pinned-other",
        "self-signed",
        &["--ca-file", other.to_str().unwrap()],
    );
    assert!(err.contains("exactly that certificate"), "{err}");
}

fn check(args: &[&str]) -> (i32, String) {
    let out = harness::command()
        .arg("--check")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_reports_and_exit_codes() {
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let jeedom = FakeJeedom::start(APIKEY);
    let (url, cb) = (rc.url(), jeedom.url());
    let base = [
        "--url",
        url.as_str(),
        "--user",
        "jeedombot",
        "--callback",
        cb.as_str(),
        "--apikey",
        APIKEY,
    ];
    let (code, out) = check(&[&base[..], &["--password", "s3cret"]].concat());
    assert_eq!(code, 0, "{out}");
    for needle in [
        "7.4.1",
        "jeedombot",
        "#general",
        "Jeedom answered OK",
        "all ok",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let (code, out) = check(&[&base[..], &["--password", "nope"]].concat());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("incorrect password") && out.contains("FAIL"),
        "{out}"
    );
    assert!(!out.contains("nope"), "password printed:\n{out}");
    let (code, out) = check(&[
        "--url",
        &format!("http://127.0.0.1:{}", harness::free_port()),
        "--user",
        "u",
        "--password",
        "p",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused"), "{out}");
    let wrong_key = [&base[..6], &["--apikey", "wrong", "--password", "s3cret"]].concat();
    let (code, out) = check(&wrong_key);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("API key"), "{out}");
}
