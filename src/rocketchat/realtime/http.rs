//! The two small REST reads the realtime side needs: server version and username.
use crate::error::Error;
use crate::model::Secret;
use log::debug;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde_json::Value;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

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
            debug!("no server version: {e}");
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
        .ok_or_else(|| Error::Protocol("GET /api/v1/me: no username in the answer".into()))
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
    let connector = TcpConnector::default().chain(OwnTls(tls.clone()));
    ureq::Agent::with_parts(config, connector, DefaultResolver::default())
}

/// Wraps the TCP transport in rustls with a given `ClientConfig`.
#[derive(Debug)]
struct OwnTls(Arc<ClientConfig>);

impl<In: Transport> Connector<In> for OwnTls {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("invalid server name for TLS"))?;
        let mut conn = ClientConnection::new(self.0.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        let stream = StreamOwned { conn, sock };
        Ok(Some(Either::B(TlsTransport { buffers, stream })))
    }
}

struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.sock.set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.sock.set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.sock.get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
