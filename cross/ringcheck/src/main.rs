//! Exercises ring (through rustls) on the CPU it runs on; exits 0 when every check passes.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use rustls::crypto::ring as provider;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
    SupportedCipherSuite, SupportedProtocolVersion,
};

// Test certificates made by make-certs.sh at build time (see build.sh).
const CA: &[u8] = include_bytes!(concat!(env!("RINGCHECK_CERTS"), "/ca.pem"));
const SERVER_CERT: &[u8] = include_bytes!(concat!(env!("RINGCHECK_CERTS"), "/server.pem"));
const SERVER_KEY: &[u8] = include_bytes!(concat!(env!("RINGCHECK_CERTS"), "/server.key"));

fn main() -> ExitCode {
    let mut failed = 0;
    let mut check = |name: &str, result: Result<(), String>| match result {
        Ok(()) => println!("ok    {name}"),
        Err(e) => {
            println!("FAIL  {name}: {e}");
            failed += 1;
        }
    };

    check("sha256 known answer", sha256_kat());
    check("hmac-sha256 known answer", hmac_kat());
    check("system random", random());
    check("webpki-roots trust store", webpki_roots_store());

    let suites = [
        (
            &rustls::version::TLS13,
            provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
        ),
        (
            &rustls::version::TLS13,
            provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
        ),
        (
            &rustls::version::TLS13,
            provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ),
        (
            &rustls::version::TLS12,
            provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            &rustls::version::TLS12,
            provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ];
    let groups = [
        provider::kx_group::X25519,
        provider::kx_group::SECP256R1,
        provider::kx_group::SECP384R1,
    ];
    for (version, suite) in suites {
        for group in groups {
            let name = format!(
                "tls {:?} {:?} {:?}",
                version.version,
                suite.suite(),
                group.name()
            );
            check(&name, tls_session(version, suite, group));
        }
    }

    if failed == 0 {
        println!("ringcheck: all checks passed");
        ExitCode::SUCCESS
    } else {
        println!("ringcheck: {failed} check(s) failed");
        ExitCode::FAILURE
    }
}

fn sha256_kat() -> Result<(), String> {
    let d = ring::digest::digest(&ring::digest::SHA256, b"abc");
    let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let got: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    (got == want).then_some(()).ok_or(format!("got {got}"))
}

fn hmac_kat() -> Result<(), String> {
    // RFC 4231 test case 2.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
    let tag = ring::hmac::sign(&key, b"what do ya want for nothing?");
    let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    let got: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    (got == want).then_some(()).ok_or(format!("got {got}"))
}

fn random() -> Result<(), String> {
    use ring::rand::SecureRandom;
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    let rng = ring::rand::SystemRandom::new();
    rng.fill(&mut a).map_err(|e| format!("{e:?}"))?;
    rng.fill(&mut b).map_err(|e| format!("{e:?}"))?;
    (a != b).then_some(()).ok_or("two draws are equal".into())
}

fn webpki_roots_store() -> Result<(), String> {
    let store = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    (store.len() > 100)
        .then_some(())
        .ok_or(format!("only {} roots", store.len()))
}

/// One in-memory TLS session: handshake (certificate chain checked against
/// the test CA), then application data both ways.
fn tls_session(
    version: &'static SupportedProtocolVersion,
    suite: SupportedCipherSuite,
    group: &'static dyn SupportedKxGroup,
) -> Result<(), String> {
    let provider = Arc::new(CryptoProvider {
        cipher_suites: vec![suite],
        kx_groups: vec![group],
        ..provider::default_provider()
    });
    let err = |e: rustls::Error| e.to_string();

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA).map_err(|e| e.to_string())?)
        .map_err(err)?;
    let client_config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .map_err(err)?
        .with_root_certificates(roots)
        .with_no_client_auth();

    let chain = vec![CertificateDer::from_pem_slice(SERVER_CERT).map_err(|e| e.to_string())?];
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).map_err(|e| e.to_string())?;
    let server_config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .map_err(err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(err)?;

    let name = ServerName::try_from("ringcheck.test").map_err(|e| e.to_string())?;
    let mut client: Connection = ClientConnection::new(Arc::new(client_config), name)
        .map_err(err)?
        .into();
    let mut server: Connection = ServerConnection::new(Arc::new(server_config))
        .map_err(err)?
        .into();

    let mut rounds = 0;
    while client.is_handshaking() || server.is_handshaking() {
        rounds += 1;
        if rounds > 10 {
            return Err("handshake did not finish".into());
        }
        transfer(&mut client, &mut server)?;
        transfer(&mut server, &mut client)?;
    }
    if client.negotiated_cipher_suite() != Some(suite) {
        return Err("other cipher suite negotiated".into());
    }

    let question = b"GET /api/info HTTP/1.1\r\n\r\n";
    let answer = [0x5au8; 20_000]; // several records
    client
        .writer()
        .write_all(question)
        .map_err(|e| e.to_string())?;
    transfer(&mut client, &mut server)?;
    expect(&mut server, question)?;
    server
        .writer()
        .write_all(&answer)
        .map_err(|e| e.to_string())?;
    transfer(&mut server, &mut client)?;
    expect(&mut client, &answer)
}

/// Moves every pending TLS record from `from` to `to`.
fn transfer(from: &mut Connection, to: &mut Connection) -> Result<(), String> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).map_err(|e| e.to_string())?;
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).map_err(|e| e.to_string())?;
        to.process_new_packets().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn expect(conn: &mut Connection, want: &[u8]) -> Result<(), String> {
    let mut got = vec![0u8; want.len()];
    conn.reader()
        .read_exact(&mut got)
        .map_err(|e| e.to_string())?;
    (got == want)
        .then_some(())
        .ok_or("application data differs".into())
}
