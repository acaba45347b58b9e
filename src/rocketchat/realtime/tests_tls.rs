//! The realtime link over TLS: a private CA is refused by default (with a
//! hint about `--ca-file`) and accepted once given.
use super::test_peer::{server_with, Peer, UID};
use super::*;
use crate::config::parse_url;
use crate::fake_http::HttpServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::mpsc::Receiver;

/// A test CA and a certificate it signed for 127.0.0.1 and localhost (P-256,
/// valid until 2126), generated with openssl for these tests only.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUTzmky1RdHWbYQiSnFofmlewSv/AwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTcm9ja2V0Y2hhdGQgdGVzdCBDQTAgFw0yNjExMjUxODIxMzha
GA8yMTI2MTEwMTE4MjEzOFowHjEcMBoGA1UEAwwTcm9ja2V0Y2hhdGQgdGVzdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFbS6eHeOBIgmh/xU08CL9KufiXZ
31CVJjCqLKATuOts1EZKaCEgYh9l1GW7+Lpk1VF2PFuU/daFVwymGsFHD9mjUzBR
MB0GA1UdDgQWBBTLDSqb9KYlnB3K0N5pNBA6euPGQTAfBgNVHSMEGDAWgBTLDSqb
9KYlnB3K0N5pNBA6euPGQTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQDMwqTcbVlCcxtmv2K9uCQAXfnNQChGyiD3ZXHZgrVIiwIgR/P8Pimnymvq
DsTRad67Kb44ew1f3Vx0Vtsg62BKo2s=
-----END CERTIFICATE-----
";
const SERVER_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBwzCCAWmgAwIBAgIUBxSpgLLKw3A5nfrVbyszhilyxuYwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTcm9ja2V0Y2hhdGQgdGVzdCBDQTAgFw0yNjExMjUxODIxMzha
GA8yMTI2MTEwMTE4MjEzOFowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEJHdOHReLs5xRoBud0LYKKu/Z/EcYx21i7VDFsTs2
Ik6vMjLNNDeBPNZjfr74npzIuGVhzuz2Nb7o+uAFleLv4aOBjDCBiTAaBgNVHREE
EzARhwR/AAABgglsb2NhbGhvc3QwCQYDVR0TBAIwADALBgNVHQ8EBAMCB4AwEwYD
VR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFIsL9gSBCmUuRgGnJ1TNXFSSGsj2
MB8GA1UdIwQYMBaAFMsNKpv0piWcHcrQ3mk0EDp648ZBMAoGCCqGSM49BAMCA0gA
MEUCIQDWm1wGa76cWsRlpfabLd6KfmcmUCSE5zoDEVuQ8acdugIgQmh3qd0aAFW9
D9S81qPfaKv43r/p2hbY2JDGzNLlHbc=
-----END CERTIFICATE-----
";
const SERVER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgBQolJuTLjb32JrgH
0YgYkFB+vFhaCP6Sy0VWtlEoKgShRANCAAQkd04dF4uznFGgG53Qtgoq79n8RxjH
bWLtUMWxOzYiTq8yMs00N4E81mN+vvienMi4ZWHO7PY1vuj64AWV4u/h
-----END PRIVATE KEY-----
";

/// A TLS websocket server; each accepted peer goes to the test (failed
/// handshakes, such as the REST call or a refused certificate, are dropped).
fn tls_server() -> (HttpServer, Receiver<Peer>) {
    let cert = CertificateDer::from_pem_slice(SERVER_PEM.as_bytes()).expect("cert");
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY.as_bytes()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    server_with(Some(Arc::new(config)))
}

fn config(port: u16, tls: Arc<rustls::ClientConfig>) -> RealtimeConfig {
    RealtimeConfig {
        server: parse_url(&format!("https://127.0.0.1:{port}")).expect("url"),
        credentials: Credentials::Password {
            user: "jeedombot".into(),
            password: Secret::new("p"),
        },
        tls,
        heartbeat: Duration::from_secs(30),
        resume: None,
        alive: Arc::new(|| {}),
        alive_every: None,
    }
}

#[test]
fn private_ca_is_refused_with_a_hint() {
    let (http, _peers) = tls_server();
    let port = http.port();
    let cfg = config(port, crate::tls::client_config(None).expect("tls"));
    let (step, e) = probe(&cfg, Duration::from_secs(5)).expect_err("untrusted");
    assert_eq!(step, Progress::Connect);
    let text = e.to_string();
    assert!(matches!(e, Error::Tls { .. }), "{text}");
    assert!(
        text.contains("--ca-file") && text.contains("certificate"),
        "{text}"
    );
}

#[test]
fn private_ca_given_with_ca_file_works() {
    let (http, peers) = tls_server();
    let port = http.port();
    let dir = std::env::temp_dir().join(format!("rcd-rt-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, CA_PEM).expect("write");
    let cfg = config(port, crate::tls::client_config(Some(&ca)).expect("tls"));
    std::fs::remove_dir_all(&dir).ok();
    let server = std::thread::spawn(move || {
        let mut peer = peers.recv_timeout(Duration::from_secs(10)).expect("peer");
        peer.accept_session("TLS-TOKEN");
    });
    let (session, rooms) = probe(&cfg, Duration::from_secs(5)).expect("probe over TLS");
    assert_eq!(session.user_id, UID);
    assert_eq!(rooms.len(), 2);
    server.join().expect("server script");
}
