//! TLS client configuration: webpki roots plus the admin's `--ca-file`.
use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// Builds the one TLS configuration used by REST and the websocket.
/// Verification is always on: there is no switch to turn it off.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        add_pem_file(&mut roots, path)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Tls {
            what: "TLS set-up".into(),
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    let bad = |reason: String| Error::usage("ca-file", format!("{shown}: {reason}"));
    let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&data) {
        let cert = cert.map_err(|e| bad(format!("invalid PEM: {e:?}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(bad("no PEM certificate found".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn bad_ca_file_names_the_option() {
        let dir = std::env::temp_dir().join(format!("rcd-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "not a certificate").unwrap();
        let e = client_config(Some(&f)).unwrap_err().to_string();
        assert!(e.contains("--ca-file"), "{e}");
        let e = client_config(Some(&dir.join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ca-file"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
