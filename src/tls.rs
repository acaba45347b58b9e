//! TLS client configuration: webpki roots plus the admin's `--ca-file`, whose certificates are also pinned.
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::Path;
use std::sync::Arc;

/// Builds the one TLS configuration used by REST, the callback and the websocket.
/// Verification is always on: there is no switch to turn it off.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let pinned = match ca_file {
        Some(path) => add_pem_file(&mut roots, path)?,
        None => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let setup = |source| Error::Tls {
        what: "TLS set-up".into(),
        source,
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| setup(rustls::Error::General(e.to_string())))?;
    let verifier = Arc::new(Pinning { webpki, pinned });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(setup)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Adds the file's certificates to `roots`; returns them, to be pinned.
fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let shown = path.display().to_string();
    let bad = |reason: String| Error::usage("ca-file", format!("{shown}: {reason}"));
    let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut added = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&data) {
        let cert = cert.map_err(|e| bad(format!("invalid PEM: {e:?}")))?;
        roots
            .add(cert.clone())
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
        added.push(cert);
    }
    if added.is_empty() {
        return Err(bad("no PEM certificate found".into()));
    }
    Ok(added)
}

/// The webpki verifier, plus one case: a server presenting exactly a
/// certificate of `--ca-file` that is marked CA:TRUE (what `openssl req
/// -x509` makes) is trusted, its host name still checked. webpki alone
/// refuses it with `CaUsedAsEndEntity`, as a CA may not serve as a leaf.
#[derive(Debug)]
struct Pinning {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Pinning {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(e) if is_ca_used_as_end_entity(&e) && self.is_pinned(end_entity) => {
                // webpki checks a leaf's dates before its basic constraints
                // (rustls-webpki verify_cert.rs, check_issuer_independent_properties),
                // so an expired one fails as Expired before this; the dates are
                // checked again here all the same, and the name.
                crate::cert_dates::check(end_entity, now)?;
                let cert = ParsedCertificate::try_from(end_entity)?;
                verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

impl Pinning {
    fn is_pinned(&self, cert: &CertificateDer<'_>) -> bool {
        self.pinned.iter().any(|p| p.as_ref() == cert.as_ref())
    }
}

/// rustls has no variant for it: it comes wrapped as `Other`.
fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if matches!(other.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity))
    )
}

/// What the admin can do about a TLS failure, one hint per refusal.
pub fn hint(e: &rustls::Error) -> &'static str {
    use CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = e else {
        return "the secure connection failed: does this port speak TLS (https)?";
    };
    match c {
        C::UnknownIssuer => {
            "the certificate is signed by an authority this machine does not know: \
             pass that CA's certificate (or the server's own self-signed certificate) with --ca-file"
        }
        C::Expired | C::ExpiredContext { .. } => {
            "the server's certificate has expired: renew it on the server \
             (or check this machine's clock)"
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet: check this machine's clock"
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the certificate does not name this host: use in --url a host name listed \
             in the certificate's subjectAltName, or reissue the certificate"
        }
        _ if is_ca_used_as_end_entity(e) => {
            "the server presents a CA certificate (CA:TRUE, as `openssl req -x509` makes) \
             as its own: pass exactly that certificate with --ca-file"
        }
        _ => "the server's certificate was refused",
    }
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

    #[test]
    fn each_refusal_has_its_own_hint() {
        use CertificateError as C;
        let hint_of = |c: C| hint(&rustls::Error::InvalidCertificate(c));
        assert!(hint_of(C::UnknownIssuer).contains("--ca-file"));
        assert!(hint_of(C::Expired).contains("expired"));
        assert!(hint_of(C::NotValidForName).contains("--url"));
        let ca = webpki::Error::CaUsedAsEndEntity;
        let other = C::Other(rustls::OtherError(Arc::new(ca)));
        assert!(hint_of(other).contains("exactly that certificate"));
        assert!(!hint_of(C::Expired).contains("--ca-file"));
        let early = hint_of(C::NotValidYet);
        assert!(
            early.contains("not valid yet") && early.contains("clock"),
            "{early}"
        );
        assert!(!early.contains("--ca-file"));
        let plain = hint(&rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert!(plain.contains("does this port speak TLS"), "{plain}");
    }
}
