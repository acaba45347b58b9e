//! TLS of the fake Rocket.Chat: a `localhost`/127.0.0.1 leaf certificate signed by a committed test CA.
//!
//! The PEM files in `tests/support/tls/` were made once with the openssl CLI (P-256 keys, 100 years);
//! the CA key was thrown away.
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// The certificates the fake can present, by name: `server` (signed by
/// the test CA) and the self-signed ones of `make-self-signed.sh`.
fn identity(name: &str) -> (&'static [u8], &'static [u8]) {
    match name {
        "self-signed" => (
            include_bytes!("../tls/self-signed.pem"),
            include_bytes!("../tls/self-signed.key"),
        ),
        "self-signed-other-name" => (
            include_bytes!("../tls/self-signed-other-name.pem"),
            include_bytes!("../tls/self-signed-other-name.key"),
        ),
        "self-signed-expired" => (
            include_bytes!("../tls/self-signed-expired.pem"),
            include_bytes!("../tls/self-signed-expired.key"),
        ),
        _ => (
            include_bytes!("../tls/server.pem"),
            include_bytes!("../tls/server.key"),
        ),
    }
}

/// Path of a certificate of [`identity`] (PEM), e.g. to pin it with `--ca-file`.
pub fn cert_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/support/tls/{name}.pem"))
}

/// Path of the test CA certificate (PEM), to give to the daemon as `--ca-file`.
pub fn ca_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls/ca.pem")
}

/// The rustls server configuration (ring provider, no client auth),
/// presenting the certificate `name` of [`identity`].
pub fn server_config(name: &str) -> Arc<ServerConfig> {
    let (cert, key) = identity(name);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .expect("test server certificate");
    let key = PrivateKeyDer::from_pem_slice(key).expect("test server key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate and key");
    Arc::new(cfg)
}
