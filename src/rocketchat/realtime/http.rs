//! The two small REST reads the realtime side needs: server version and username.
use crate::error::{Error, Protocol, Refusal};
use crate::model::Secret;
use log::debug;
use rustls::ClientConfig;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Whole-request limit of these calls.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The bot's REST identity: `X-User-Id` and `X-Auth-Token`.
pub(super) type Auth<'a> = (&'a str, &'a Secret);

/// The server version from `GET /api/info`, or "unknown" when the server
/// does not say (404 on some set-ups, or no version for anonymous callers).
pub(super) fn server_version(base: &str, tls: &Arc<ClientConfig>, auth: Auth<'_>) -> String {
    let info = match get_json(base, "/api/info", tls, auth) {
        Ok(v) => v,
        Err(e) => {
            debug!("no server version: {}", e.chain());
            return "unknown".into();
        }
    };
    let version = info
        .get("version")
        .or_else(|| info.get("info").and_then(|i| i.get("version")));
    version
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string()
}

/// The bot's username from `GET /api/v1/me`.
pub(super) fn my_username(
    base: &str,
    tls: &Arc<ClientConfig>,
    auth: Auth<'_>,
) -> Result<String, Error> {
    let me = get_json(base, "/api/v1/me", tls, auth)?;
    me.get("username")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            Error::from(Protocol::Missing {
                what: "GET /api/v1/me".into(),
                field: "username",
            })
        })
}

fn get_json(
    base: &str,
    path: &str,
    tls: &Arc<ClientConfig>,
    auth: Auth<'_>,
) -> Result<Value, Error> {
    let what = format!("GET {path}");
    let http_err = |e| Error::Http {
        what: what.clone(),
        source: Box::new(e),
    };
    let mut resp = agent(tls)
        .get(format!("{base}{path}"))
        .header("X-User-Id", auth.0)
        .header("X-Auth-Token", auth.1.expose())
        .call()
        .map_err(http_err)?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(http_err)?;
    if !(200..300).contains(&status) {
        let reason = body.chars().take(200).collect();
        return Err(Error::Status {
            what,
            status,
            reason,
            refusal: Refusal::Other,
        });
    }
    Ok(serde_json::from_str(&body)?)
}

/// An agent that verifies certificates with the daemon's own TLS config
/// (webpki roots plus `--ca-file`), like the websocket does.
fn agent(tls: &Arc<ClientConfig>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .http_status_as_error(false)
        .build();
    crate::http_tls::agent(config, tls.clone())
}
