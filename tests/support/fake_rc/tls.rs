//! TLS of the fake Rocket.Chat: a `localhost`/127.0.0.1 leaf certificate signed by a committed test CA.
//!
//! The PEM files in `tests/support/tls/` were made once with the openssl CLI (P-256 keys, 100 years);
//! the CA key was thrown away.
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::PathBuf;
use std::sync::Arc;

const SERVER_CERT: &[u8] = include_bytes!("../tls/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("../tls/server.key");

/// Path of the test CA certificate (PEM), to give to the daemon as `--ca-file`.
pub fn ca_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls/ca.pem")
}

/// The rustls server configuration (ring provider, no client auth).
pub fn server_config() -> Arc<ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(SERVER_CERT)
        .collect::<Result<_, _>>()
        .expect("test server certificate");
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).expect("test server key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate and key");
    Arc::new(cfg)
}
