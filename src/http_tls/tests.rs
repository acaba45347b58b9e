//! Tests of REST over TLS with a private CA, against a local rustls server.
use super::*;
use crate::error::Error;
use crate::fake_http::{HttpServer, Reply, Response};
use crate::rocketchat::rest::Rest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// A private CA and a `localhost` / `127.0.0.1` certificate it signed
/// (valid 2000–2126).
const CA: &str = include_str!("../rocketchat/testdata/test-ca.pem");
const CERT: &str = include_str!("../rocketchat/testdata/test-server.pem");
const KEY: &str = include_str!("../rocketchat/testdata/test-server.key");

/// An HTTPS server answering `/api/info`.
fn https_server() -> HttpServer {
    let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(CERT.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let info = serde_json::json!({"version": "7.4.1", "success": true});
    let answer = move |_| Reply::Send(Response::json(200, &info));
    HttpServer::start_with(0, Some(Arc::new(config)), Arc::new(answer))
}

fn rest(url: &str, ca: Option<&str>) -> Rest {
    let ca_path = ca.map(|pem| {
        let path = std::env::temp_dir().join(format!("rcd-rest-ca-{}.pem", std::process::id()));
        std::fs::write(&path, pem).unwrap();
        path
    });
    let tls = crate::tls::client_config(ca_path.as_deref()).unwrap();
    // Read whole by now.
    ca_path.map(std::fs::remove_file);
    Rest::new(&crate::config::parse_url(url).unwrap(), tls).unwrap()
}

#[test]
fn https_with_the_ca_file_works_by_name_and_by_ip() {
    let server = https_server();
    let port = server.port();
    for host in ["localhost", "127.0.0.1"] {
        let r = rest(&format!("https://{host}:{port}"), Some(CA));
        assert_eq!(r.version(None).unwrap(), "7.4.1", "{host}");
    }
}

#[test]
fn unknown_ca_is_refused_with_the_ca_file_hint() {
    let server = https_server();
    let port = server.port();
    let r = rest(&format!("https://localhost:{port}"), None);
    let e = r.version(None).unwrap_err();
    assert!(matches!(e, Error::Http { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("--ca-file"), "{text}");
}

#[test]
fn ip_hosts_need_no_lookup_and_names_do() {
    let addr = |u: &str| ip_address(&u.parse::<Uri>().unwrap()).map(|a| a.to_string());
    assert_eq!(
        addr("http://127.0.0.1/plugins/rocketchat/core/php/jeeRocketchat.php?x=1").as_deref(),
        Some("127.0.0.1:80")
    );
    assert_eq!(addr("https://[::1]/api").as_deref(), Some("[::1]:443"));
    assert_eq!(
        addr("http://192.168.1.5:8080/").as_deref(),
        Some("192.168.1.5:8080")
    );
    assert_eq!(addr("https://chat.example.org/api"), None);
    assert_eq!(addr("http://localhost:3000/"), None);
}
