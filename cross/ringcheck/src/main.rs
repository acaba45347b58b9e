//! Exercises ring (through rustls) on the CPU it runs on; exits 0 when every check passes.
//!
//! With `--config PATH` it instead plays the daemon's part as a systemd
//! service (see cross/check-unit.sh --live): reads the config, writes
//! `$STATE_DIRECTORY/state.json`, listens on and connects to 127.0.0.1,
//! runs the TLS checks inside the unit's sandbox, then notifies READY=1 and
//! STATUS= and pings the watchdog through the daemon's own `src/systemd.rs`
//! until SIGTERM.
#![forbid(unsafe_code)]

#[path = "../../../src/systemd.rs"]
#[allow(dead_code)] // the test constructors are unused here
mod systemd;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            let failed = run_checks(true);
            if failed == 0 {
                println!("ringcheck: all checks passed");
                ExitCode::SUCCESS
            } else {
                println!("ringcheck: {failed} check(s) failed");
                ExitCode::FAILURE
            }
        }
        [flag, path] if flag == "--config" => service(path),
        _ => {
            eprintln!("usage: ringcheck [--config PATH]");
            ExitCode::from(2)
        }
    }
}

/// Runs every check, printing one line each when `verbose`; returns the
/// number of failures.
fn run_checks(verbose: bool) -> usize {
    let mut failed = 0;
    let mut check = |name: &str, result: Result<(), String>| match result {
        Ok(()) => {
            if verbose {
                println!("ok    {name}");
            }
        }
        Err(e) => {
            eprintln!("FAIL  {name}: {e}");
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

    failed
}

/// Service mode: what the daemon's sandbox must allow, then READY=1 and
/// watchdog pings until SIGTERM. Any failure exits 1 before READY=1, so
/// `systemctl start` fails.
fn service(config: &str) -> ExitCode {
    match service_setup(config) {
        Ok((notifier, status)) => {
            eprintln!("ringcheck service: {status}");
            notifier.status(&status);
            notifier.ready();
            let term = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                if let Err(e) = signal_hook::flag::register(sig, term.clone()) {
                    eprintln!("ringcheck service: signal handler: {e}");
                    return ExitCode::FAILURE;
                }
            }
            let mut pings = 0u64;
            while !term.load(Ordering::Relaxed) {
                notifier.watchdog(); // rate-limited inside
                pings += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            notifier.stopping();
            eprintln!("ringcheck service: SIGTERM after {pings} loop turns, exiting");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringcheck service: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// True when systemd started this process (a service, or `systemd-run`).
fn started_by_systemd() -> bool {
    ["JOURNAL_STREAM", "INVOCATION_ID"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

fn service_setup(config: &str) -> Result<(systemd::Notifier, String), String> {
    if !started_by_systemd() {
        return Err("not started by systemd (no JOURNAL_STREAM/INVOCATION_ID)".into());
    }
    let notifier = systemd::Notifier::from_env().ok_or("NOTIFY_SOCKET is not set")?;
    let watchdog = notifier.watchdog_interval().ok_or("no WATCHDOG_USEC")?;

    let cfg = std::fs::read(config).map_err(|e| format!("read {config}: {e}"))?;
    let state_dir = std::env::var("STATE_DIRECTORY").map_err(|_| "no STATE_DIRECTORY")?;
    let state = Path::new(&state_dir).join("state.json");
    std::fs::write(&state, b"{\"probe\":true}\n")
        .map_err(|e| format!("write {}: {e}", state.display()))?;

    // Command socket and an outbound connection (here: to ourselves).
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listen: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let client = std::thread::spawn(move || -> Result<(), String> {
        let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.write_all(b"ping\n").map_err(|e| e.to_string())
    });
    let (mut conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut got = Vec::new();
    conn.read_to_end(&mut got).map_err(|e| e.to_string())?;
    client.join().map_err(|_| "client thread panicked")??;
    if got != b"ping\n" {
        return Err("tcp loopback exchange failed".into());
    }

    let failed = run_checks(false);
    if failed > 0 {
        return Err(format!(
            "{failed} TLS/crypto check(s) failed in the sandbox"
        ));
    }
    Ok((
        notifier,
        format!(
            "config {} bytes read, {} written, tcp ok, tls ok, watchdog {}s",
            cfg.len(),
            state.display(),
            watchdog.as_secs_f32()
        ),
    ))
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
