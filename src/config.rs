//! Command line and JSON configuration file, merged and validated into [`Config`].
use crate::error::{Error, Result};
use crate::jeedom::files;
use crate::model::Secret;
use argh::FromArgs;
use log::LevelFilter;
use serde_json::{Map, Value};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// rocketchatd: bridge between a Jeedom box and a Rocket.Chat server through a bot account.
#[derive(FromArgs, Debug, Default, PartialEq)]
pub struct Args {
    /// log level: debug, info, notice, warning, error (default), critical, none
    #[argh(option)]
    pub loglevel: Option<String>,
    /// address of the command socket (default 127.0.0.1)
    #[argh(option)]
    pub sockethost: Option<String>,
    /// port of the command socket, 1024..65535 (default 55071)
    #[argh(option)]
    pub socketport: Option<String>,
    /// the Jeedom callback URL (without it, events are only logged)
    #[argh(option)]
    pub callback: Option<String>,
    /// shared secret with Jeedom, for the command socket and the callback (prefer --apikey-file or ROCKETCHATD_APIKEY)
    #[argh(option)]
    pub apikey: Option<String>,
    /// file holding the API key (first line)
    #[argh(option)]
    pub apikey_file: Option<String>,
    /// pid file path
    #[argh(option)]
    pub pid: Option<String>,
    /// accepted for the Jeedom plugin's usual command line (0 < cycle < 10); no effect
    #[argh(option)]
    pub cycle: Option<String>,
    /// the Rocket.Chat base URL, http(s)://host[:port][/path]
    #[argh(option)]
    pub url: Option<String>,
    /// bot username (or e-mail)
    #[argh(option)]
    pub user: Option<String>,
    /// bot password (prefer --password-file or ROCKETCHAT_PASSWORD)
    #[argh(option)]
    pub password: Option<String>,
    /// file holding the bot password
    #[argh(option)]
    pub password_file: Option<String>,
    /// user id of a personal access token (with --token)
    #[argh(option)]
    pub user_id: Option<String>,
    /// personal access token (with --user-id)
    #[argh(option)]
    pub token: Option<String>,
    /// extra PEM CA certificate(s) to trust
    #[argh(option)]
    pub ca_file: Option<String>,
    /// seconds of silence before pinging the server, and again before declaring the link dead (default 30)
    #[argh(option)]
    pub heartbeat: Option<String>,
    /// state file path
    #[argh(option)]
    pub state: Option<String>,
    /// JSON file with any of these options (the command line wins)
    #[argh(option)]
    pub config: Option<String>,
    /// directory whose files a request may post; repeat for several (default: Jeedom's)
    #[argh(option)]
    pub files_dir: Vec<String>,
    /// largest file a request may post, in MiB (default 50)
    #[argh(option)]
    pub max_file_size: Option<String>,
    /// connect, log in, list rooms, test the callback, print a report and exit
    #[argh(switch)]
    pub check: bool,
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
}

/// How the bot logs in.
#[derive(Clone, Debug)]
pub enum Credentials {
    Password { user: String, password: Secret },
    Token { user_id: String, token: Secret },
}

/// The Rocket.Chat server address in the forms the daemon needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerUrl {
    /// `http(s)://host[:port][/path]`, no trailing slash: REST base.
    pub base: String,
    /// `ws(s)://host[:port][/path]/websocket`.
    pub websocket: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub log_level: LevelFilter,
    pub socket: SocketAddr,
    pub callback: Option<String>,
    pub apikey: Secret,
    pub pid: Option<PathBuf>,
    pub server: ServerUrl,
    pub credentials: Credentials,
    pub ca_file: Option<PathBuf>,
    pub heartbeat: Duration,
    pub state: PathBuf,
    pub check: bool,
    /// Where a request's files may come from (empty: the Jeedom defaults).
    pub files_dirs: Vec<PathBuf>,
    /// Largest file a request may post, in bytes.
    pub max_file_size: u64,
    /// Files holding secrets (config, password), never posted.
    pub secret_files: Vec<PathBuf>,
}

/// Names of the options a configuration file may hold.
const FILE_KEYS: &[&str] = &[
    "loglevel",
    "sockethost",
    "socketport",
    "callback",
    "apikey",
    "apikey-file",
    "pid",
    "cycle",
    "url",
    "user",
    "password",
    "password-file",
    "user-id",
    "token",
    "ca-file",
    "heartbeat",
    "state",
    "files-dir",
    "max-file-size",
];

/// Switches that choose what a run does, not how: a service's file that
/// said `"check": true` would make every start a check that exits.
const COMMAND_LINE_ONLY: &[&str] = &["check", "config", "version", "help"];

impl Args {
    /// Fills every option missing from the command line with the file's value.
    pub fn merge_file(&mut self, file: &Map<String, Value>) -> Result<()> {
        for key in file.keys() {
            if COMMAND_LINE_ONLY.contains(&key.as_str()) {
                return Err(Error::usage(
                    "config",
                    format!("\"{key}\" is not read from a file: give --{key} on the command line"),
                ));
            }
            if !FILE_KEYS.contains(&key.as_str()) {
                return Err(Error::usage("config", format!("unknown key \"{key}\"")));
            }
        }
        if self.files_dir.is_empty() {
            self.files_dir = file_list("files-dir", file.get("files-dir"))?;
        }
        for (key, slot) in self.slots() {
            if slot.is_none() {
                if let Some(v) = file.get(key) {
                    *slot = Some(file_value(key, v)?);
                }
            }
        }
        Ok(())
    }

    fn slots(&mut self) -> [(&'static str, &mut Option<String>); 18] {
        [
            ("loglevel", &mut self.loglevel),
            ("sockethost", &mut self.sockethost),
            ("socketport", &mut self.socketport),
            ("callback", &mut self.callback),
            ("apikey", &mut self.apikey),
            ("apikey-file", &mut self.apikey_file),
            ("pid", &mut self.pid),
            ("cycle", &mut self.cycle),
            ("url", &mut self.url),
            ("user", &mut self.user),
            ("password", &mut self.password),
            ("password-file", &mut self.password_file),
            ("user-id", &mut self.user_id),
            ("token", &mut self.token),
            ("ca-file", &mut self.ca_file),
            ("heartbeat", &mut self.heartbeat),
            ("state", &mut self.state),
            ("max-file-size", &mut self.max_file_size),
        ]
    }
}

/// A configuration file value as the command line would have spelled it.
fn file_value(key: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(Error::usage(
            "config",
            format!("\"{key}\" must be a string or a number"),
        )),
    }
}

/// A list in a configuration file: a JSON list of strings, or one string.
fn file_list(key: &str, v: Option<&Value>) -> Result<Vec<String>> {
    let bad = || Error::usage("config", format!("\"{key}\" must be a list of strings"));
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(String::from).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// Reads a JSON configuration file.
pub fn read_config_file(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage("config", format!("cannot read {}: {e}", path.display())))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::usage(
            "config",
            format!("{} must hold a JSON object", path.display()),
        )),
        Err(e) => Err(Error::usage(
            "config",
            format!("{}: invalid JSON: {e}", path.display()),
        )),
    }
}

/// Parses the command line (without the program name), merges the config file.
pub fn parse(args: Args) -> Result<Config> {
    let mut args = args;
    if let Some(path) = args.config.clone() {
        let map = read_config_file(Path::new(&path))?;
        args.merge_file(&map)?;
    }
    let env = std::env::vars().collect::<Vec<_>>();
    Config::from_args(&args, &env)
}

impl Config {
    /// Validates merged arguments; `env` holds the environment variables used.
    pub fn from_args(a: &Args, env: &[(String, String)]) -> Result<Config> {
        let getenv = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let pid = a.pid.as_ref().map(PathBuf::from);
        let state = match &a.state {
            Some(s) => PathBuf::from(s),
            None => default_state(getenv("STATE_DIRECTORY"), pid.as_deref()),
        };
        let apikey = apikey(a, getenv(APIKEY_ENV))?;
        // Still accepted and checked (README "Options"), though nothing waits on it any more.
        parse_seconds("cycle", a.cycle.as_deref(), 0.5, (0.0, 10.0))?;
        Ok(Config {
            log_level: parse_level(a.loglevel.as_deref().unwrap_or("error"))?,
            socket: parse_socket(a.sockethost.as_deref(), a.socketport.as_deref())?,
            callback: a.callback.as_deref().map(parse_callback).transpose()?,
            apikey,
            pid,
            server: parse_url(
                a.url
                    .as_deref()
                    .ok_or_else(|| Error::usage("url", "is required"))?,
            )?,
            credentials: credentials(a, getenv("ROCKETCHAT_PASSWORD"))?,
            ca_file: a.ca_file.as_ref().map(PathBuf::from),
            heartbeat: parse_seconds("heartbeat", a.heartbeat.as_deref(), 30.0, (0.0, 3600.0))?,
            state,
            check: a.check,
            files_dirs: files::parse_dirs(&a.files_dir)?,
            max_file_size: files::parse_max_size(a.max_file_size.as_deref())?,
            secret_files: [&a.config, &a.password_file, &a.apikey_file]
                .into_iter()
                .flatten()
                .map(PathBuf::from)
                .collect(),
        })
    }
}

fn default_state(state_dir: Option<String>, pid: Option<&Path>) -> PathBuf {
    if let Some(dir) = state_dir.filter(|d| !d.is_empty()) {
        // systemd passes a colon-separated list when several are configured.
        let first = dir.split(':').next().unwrap_or(&dir).to_string();
        return Path::new(&first).join("state.json");
    }
    match pid.and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("rocketchatd-state.json"),
        _ => PathBuf::from("rocketchatd-state.json"),
    }
}

/// Maps Jeedom's level names onto `log` levels.
pub fn parse_level(s: &str) -> Result<LevelFilter> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "debug" => LevelFilter::Debug,
        "info" => LevelFilter::Info,
        "notice" | "warning" | "warn" => LevelFilter::Warn,
        "error" | "critical" | "none" => LevelFilter::Error,
        _ => {
            return Err(Error::usage(
                "loglevel",
                format!(
                    "unknown level \"{s}\" (debug, info, notice, warning, error, critical, none)"
                ),
            ))
        }
    })
}

fn parse_socket(host: Option<&str>, port: Option<&str>) -> Result<SocketAddr> {
    let port: u16 = match port {
        None => 55071,
        Some(p) => match p.trim().parse::<u32>() {
            Ok(n) if (1024..=65535).contains(&n) => n as u16,
            _ => {
                return Err(Error::usage(
                    "socketport",
                    format!("\"{p}\" is not a port in 1024..65535"),
                ))
            }
        },
    };
    let host = host.unwrap_or("127.0.0.1");
    let bad = |why: String| Error::usage("sockethost", format!("\"{host}\": {why}"));
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?;
    addrs.next().ok_or_else(|| bad("no address".into()))
}

fn parse_seconds(
    option: &'static str,
    v: Option<&str>,
    default: f64,
    range: (f64, f64),
) -> Result<Duration> {
    let Some(v) = v else {
        return Ok(Duration::from_secs_f64(default));
    };
    match v.trim().parse::<f64>() {
        Ok(x) if x > range.0 && x < range.1 => Ok(Duration::from_secs_f64(x)),
        _ => Err(Error::usage(
            option,
            format!(
                "\"{v}\" is not a number of seconds between {} and {} (exclusive)",
                range.0, range.1
            ),
        )),
    }
}

fn parse_callback(s: &str) -> Result<String> {
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(s.to_string()),
        _ => Err(Error::usage(
            "callback",
            format!("\"{}\" is not an http(s) URL", shown(s)),
        )),
    }
}

/// Splits `http(s)://host[:port][/path]` into the REST base and websocket URL.
pub fn parse_url(s: &str) -> Result<ServerUrl> {
    let bad = |why: &str| Error::usage("url", format!("\"{}\": {why}", shown(s)));
    let (tls, rest) = if let Some(r) = strip_prefix_ci(s, "https://") {
        (true, r)
    } else if let Some(r) = strip_prefix_ci(s, "http://") {
        (false, r)
    } else {
        return Err(bad("must start with http:// or https://"));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
        return Err(bad("expected http(s)://host[:port][/path]"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| bad("invalid host or port"))?;
    let port = port.unwrap_or(if tls { 443 } else { 80 });
    let path = path.trim_end_matches('/');
    let scheme = if tls { "https" } else { "http" };
    Ok(ServerUrl {
        base: format!("{scheme}://{authority}{path}"),
        websocket: format!(
            "{}://{authority}{path}/websocket",
            if tls { "wss" } else { "ws" }
        ),
        tls,
        host,
        port,
    })
}

/// A URL as an error may show it: no `user:password@` password, no `apikey=` value.
fn shown(url: &str) -> String {
    crate::jeedom::callback::shown_url(url, &Secret::default())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        (&rest[..end], rest[end + 1..].strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => None,
    };
    Some((host.to_string(), port))
}

fn credentials(a: &Args, env_password: Option<String>) -> Result<Credentials> {
    match (&a.user_id, &a.token) {
        (Some(id), Some(tok)) if !id.is_empty() && !tok.is_empty() => {
            return Ok(Credentials::Token {
                user_id: id.clone(),
                token: Secret::new(tok.clone()),
            })
        }
        (Some(_), None) => return Err(Error::usage("token", "is required with --user-id")),
        (None, Some(_)) => return Err(Error::usage("user-id", "is required with --token")),
        _ => {}
    }
    let user = a.user.clone().filter(|u| !u.is_empty());
    let user =
        user.ok_or_else(|| Error::usage("user", "is required (or --user-id and --token)"))?;
    let password = match (&a.password, &a.password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) => read_password_file(path)?,
        (None, None) => env_password.unwrap_or_default(),
    };
    if password.is_empty() {
        return Err(Error::usage(
            "password",
            "is required (--password, --password-file or ROCKETCHAT_PASSWORD)",
        ));
    }
    Ok(Credentials::Password {
        user,
        password: Secret::new(password),
    })
}

fn read_password_file(path: &str) -> Result<String> {
    read_secret_file("password-file", path)
}

/// The environment variable holding the API key when neither `--apikey` nor
/// `--apikey-file` is given (as `ROCKETCHAT_PASSWORD` for the password).
pub const APIKEY_ENV: &str = "ROCKETCHATD_APIKEY";

/// The API key: `--apikey`, else `--apikey-file`, else the environment.
fn apikey(a: &Args, env_key: Option<String>) -> Result<Secret> {
    let key = match (&a.apikey, &a.apikey_file) {
        (Some(k), _) => k.clone(),
        (None, Some(path)) => read_secret_file("apikey-file", path)?,
        (None, None) => env_key.unwrap_or_default(),
    };
    match (key.is_empty(), a.check, &a.apikey_file) {
        (false, _, _) => Ok(Secret::new(key)),
        (true, _, Some(path)) => Err(Error::usage("apikey-file", format!("{path} is empty"))),
        (true, true, None) => Ok(Secret::default()),
        (true, false, None) => Err(Error::usage(
            "apikey",
            format!("is required (--apikey, --apikey-file or {APIKEY_ENV})"),
        )),
    }
}

/// The first line of a secret file, without its line end.
fn read_secret_file(option: &'static str, path: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(option, format!("cannot read {path}: {e}")))?;
    let first = text.lines().next().unwrap_or_default();
    Ok(first.trim_end_matches('\r').to_string())
}

#[cfg(test)]
mod tests;
