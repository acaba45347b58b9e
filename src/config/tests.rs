//! Unit tests of option parsing and of the config-file merge.
use super::*;
use serde_json::json;

fn args(list: &[&str]) -> Args {
    Args::from_args(&["rocketchatd"], list).expect("valid command line")
}

fn base() -> Vec<&'static str> {
    vec![
        "--apikey",
        "k",
        "--url",
        "http://chat.local:3000",
        "--user",
        "bot",
        "--password",
        "pw",
    ]
}

fn config(extra: &[&str]) -> Result<Config> {
    let mut v = base();
    v.extend_from_slice(extra);
    Config::from_args(&args(&v), &[])
}

fn reason(r: Result<Config>) -> String {
    r.expect_err("must be rejected").to_string()
}

#[test]
fn defaults_match_the_contract() {
    let c = config(&[]).unwrap();
    assert_eq!(c.socket.to_string(), "127.0.0.1:55071");
    assert_eq!(c.heartbeat, Duration::from_secs(30));
    assert_eq!(c.log_level, LevelFilter::Error);
    assert_eq!(c.state, PathBuf::from("rocketchatd-state.json"));
    assert!(c.callback.is_none());
}

#[test]
fn url_forms() {
    let u = parse_url("https://host.example/chat/").unwrap();
    assert_eq!(u.base, "https://host.example/chat");
    assert_eq!(u.websocket, "wss://host.example/chat/websocket");
    assert_eq!(
        (u.host.as_str(), u.port, u.tls),
        ("host.example", 443, true)
    );
    let u = parse_url("http://127.0.0.1:3000").unwrap();
    assert_eq!(u.websocket, "ws://127.0.0.1:3000/websocket");
    assert_eq!(u.port, 3000);
    let u = parse_url("HTTP://[::1]:8080/").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
    for bad in [
        "chat.example.org",
        "ftp://x",
        "http://",
        "http://h:99999",
        "http://h:x",
        "http://h/?a=1",
    ] {
        assert!(parse_url(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn bad_values_name_the_option() {
    assert!(reason(config(&["--socketport", "80"])).contains("--socketport"));
    assert!(reason(config(&["--socketport", "70000"])).contains("--socketport"));
    assert!(reason(config(&["--loglevel", "loud"])).contains("--loglevel"));
    assert!(reason(config(&["--cycle", "0"])).contains("--cycle"));
    assert!(reason(config(&["--cycle", "10"])).contains("--cycle"));
    assert!(reason(config(&["--heartbeat", "abc"])).contains("--heartbeat"));
    assert!(reason(config(&["--callback", "jeedom.local"])).contains("--callback"));
    assert!(reason(config(&["--user-id", "u"])).contains("--token"));
}

#[test]
fn required_options() {
    let r = Config::from_args(
        &args(&["--url", "http://h", "--user", "u", "--password", "p"]),
        &[],
    );
    assert!(reason(r).contains("--apikey"));
    let r = Config::from_args(
        &args(&["--apikey", "k", "--user", "u", "--password", "p"]),
        &[],
    );
    assert!(reason(r).contains("--url"));
    let r = Config::from_args(
        &args(&["--apikey", "k", "--url", "http://h", "--password", "p"]),
        &[],
    );
    assert!(reason(r).contains("--user"));
    let r = Config::from_args(
        &args(&["--apikey", "k", "--url", "http://h", "--user", "u"]),
        &[],
    );
    assert!(reason(r).contains("--password"));
    // --check needs no API key.
    let c = Config::from_args(
        &args(&[
            "--check",
            "--url",
            "http://h",
            "--user",
            "u",
            "--password",
            "p",
        ]),
        &[],
    );
    assert!(c.is_ok());
}

#[test]
fn password_from_environment_and_token_login() {
    let env = vec![("ROCKETCHAT_PASSWORD".to_string(), "envpw".to_string())];
    let c = Config::from_args(
        &args(&["--apikey", "k", "--url", "http://h", "--user", "u"]),
        &env,
    )
    .unwrap();
    match c.credentials {
        Credentials::Password { password, .. } => assert_eq!(password.expose(), "envpw"),
        other => panic!("unexpected {other:?}"),
    }
    let c = Config::from_args(
        &args(&[
            "--apikey",
            "k",
            "--url",
            "http://h",
            "--user-id",
            "id",
            "--token",
            "t",
        ]),
        &[],
    );
    assert!(matches!(c.unwrap().credentials, Credentials::Token { .. }));
}

#[test]
fn jeedom_levels() {
    assert_eq!(parse_level("notice").unwrap(), LevelFilter::Warn);
    assert_eq!(parse_level("none").unwrap(), LevelFilter::Error);
    assert_eq!(parse_level("DEBUG").unwrap(), LevelFilter::Debug);
}

#[test]
fn state_path_defaults() {
    let c = config(&["--pid", "/tmp/jeedom/rocketchat/daemon.pid"]).unwrap();
    assert_eq!(
        c.state,
        PathBuf::from("/tmp/jeedom/rocketchat/rocketchatd-state.json")
    );
    let env = vec![(
        "STATE_DIRECTORY".to_string(),
        "/var/lib/rocketchatd".to_string(),
    )];
    let mut v = base();
    v.extend_from_slice(&["--pid", "/run/x.pid"]);
    let c = Config::from_args(&args(&v), &env).unwrap();
    assert_eq!(c.state, PathBuf::from("/var/lib/rocketchatd/state.json"));
}

#[test]
fn command_line_wins_over_config_file() {
    let mut a = args(&["--socketport", "56000", "--loglevel", "debug"]);
    let file = json!({"socketport": 57000, "url": "http://h:3000", "loglevel": "info", "user": "bot",
                      "password": "pw", "apikey": "key", "cycle": 1.5});
    a.merge_file(file.as_object().unwrap()).unwrap();
    assert_eq!(a.socketport.as_deref(), Some("56000"));
    assert_eq!(a.loglevel.as_deref(), Some("debug"));
    assert_eq!(a.url.as_deref(), Some("http://h:3000"));
    let c = Config::from_args(&a, &[]).unwrap();
    assert_eq!(c.socket.port(), 56000);
    assert_eq!(a.cycle.as_deref(), Some("1.5"));
}

#[test]
fn config_file_rejects_unknown_keys_and_bad_types() {
    let mut a = Args::default();
    let e = a
        .merge_file(json!({"sockteport": 1}).as_object().unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("--config") && e.to_string().contains("sockteport"));
    let e = a
        .merge_file(json!({"url": ["x"]}).as_object().unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("\"url\""));
}

#[test]
fn config_file_says_which_switches_stay_on_the_command_line() {
    for key in ["check", "config", "version", "help"] {
        let mut file = serde_json::Map::new();
        file.insert(key.into(), json!(true));
        let e = Args::default().merge_file(&file).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("invalid --config: \"{key}\" is not read from a file: give --{key} on the command line")
        );
    }
}

#[test]
fn files_dirs_repeat_and_come_from_the_config_file_as_a_list() {
    let c = config(&[]).unwrap();
    assert!(c.files_dirs.is_empty(), "empty: the Jeedom defaults");
    assert_eq!(c.max_file_size, 50 * 1024 * 1024);
    let c = config(&[
        "--files-dir",
        "/a",
        "--files-dir",
        "/b b",
        "--max-file-size",
        "0.5",
    ])
    .unwrap();
    assert_eq!(c.files_dirs, [PathBuf::from("/a"), PathBuf::from("/b b")]);
    assert_eq!(c.max_file_size, 512 * 1024);
    let mut a = args(&base());
    let file = json!({"files-dir": ["/x", "/y"], "max-file-size": 10});
    a.merge_file(file.as_object().unwrap()).unwrap();
    let c = Config::from_args(&a, &[]).unwrap();
    assert_eq!(c.files_dirs, [PathBuf::from("/x"), PathBuf::from("/y")]);
    assert_eq!(c.max_file_size, 10 * 1024 * 1024);
    let mut a = args(&[&base()[..], &["--files-dir", "/cli"]].concat());
    a.merge_file(file.as_object().unwrap()).unwrap();
    assert_eq!(a.files_dir, ["/cli"], "the command line wins");
    let e = reason(config(&["--files-dir", "relative/dir"]));
    assert!(e.contains("--files-dir") && e.contains("absolute"), "{e}");
    let e = reason(config(&["--max-file-size", "0"]));
    assert!(e.contains("--max-file-size"), "{e}");
    let e = Args::default()
        .merge_file(json!({"files-dir": [1]}).as_object().unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("files-dir"), "{e}");
}

#[test]
fn the_config_password_and_apikey_files_are_secret_files() {
    let dir = crate::test_dir::TestDir::new("cfg-secret");
    let pw = dir.join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let mut v = base();
    v.retain(|a| *a != "--password" && *a != "pw");
    let key = dir.join("key");
    std::fs::write(&key, "k\n").unwrap();
    let (pw_s, key_s) = (pw.to_string_lossy(), key.to_string_lossy());
    v.retain(|a| *a != "--apikey" && *a != "k");
    v.extend_from_slice(&["--password-file", &pw_s, "--config", "/etc/rc.json"]);
    v.extend_from_slice(&["--apikey-file", &key_s]);
    let c = Config::from_args(&args(&v), &[]).unwrap();
    assert_eq!(c.secret_files, [PathBuf::from("/etc/rc.json"), pw, key]);
}

#[test]
fn apikey_from_file_or_environment() {
    let rest = ["--url", "http://h", "--user", "u", "--password", "p"];
    let env = vec![(APIKEY_ENV.to_string(), "envkey".to_string())];
    let c = Config::from_args(&args(&rest), &env).unwrap();
    assert_eq!(c.apikey.expose(), "envkey");
    let dir = crate::test_dir::TestDir::new("keyfile");
    let file = dir.join("key");
    std::fs::write(&file, "filekey\r\nsecond line\n").unwrap();
    let path = file.to_str().unwrap();
    let with_file = [&rest[..], &["--apikey-file", path]].concat();
    let c = Config::from_args(&args(&with_file), &env).unwrap();
    assert_eq!(
        c.apikey.expose(),
        "filekey",
        "the file wins over the environment"
    );
    let both = [&with_file[..], &["--apikey", "cli"]].concat();
    assert_eq!(
        Config::from_args(&args(&both), &env)
            .unwrap()
            .apikey
            .expose(),
        "cli"
    );
    std::fs::write(&file, "\n").unwrap();
    let e = reason(Config::from_args(&args(&with_file), &env));
    assert!(e.contains("--apikey-file") && e.contains("empty"), "{e}");
    std::fs::remove_dir_all(&*dir).unwrap();
    let e = reason(Config::from_args(&args(&with_file), &env));
    assert!(
        e.contains("--apikey-file") && e.contains("cannot read"),
        "{e}"
    );
    let e = reason(Config::from_args(&args(&rest), &[]));
    assert!(e.contains("--apikey") && e.contains(APIKEY_ENV), "{e}");
}

#[test]
fn refused_urls_are_shown_without_their_secrets() {
    let with = |extra: &[&str]| {
        let mut v = vec!["--apikey", "k", "--user", "bot", "--password", "pw"];
        v.extend_from_slice(extra);
        reason(Config::from_args(&args(&v), &[]))
    };
    let e = with(&["--url", "https://bot:Url-Pa55@chat.example.org"]);
    assert!(
        e.contains("--url") && e.contains("bot:***@") && !e.contains("Url-Pa55"),
        "{e}"
    );
    let cb = "ftp://j:Cb-Pa55@h/cb?apikey=K3y-123";
    let e = with(&["--url", "http://h", "--callback", cb]);
    assert!(
        e.contains("--callback") && !e.contains("Cb-Pa55") && !e.contains("K3y-123"),
        "{e}"
    );
}
