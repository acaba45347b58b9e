//! The demo (`cargo run --example fake-servers`): the command it prints runs the daemon, and events show one per line.
use crate::harness;
use harness::stack::T;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

/// The example's binary, built by `cargo test` next to the test binaries.
fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    debug_dir.join("examples/fake-servers")
}

struct Demo {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Demo {
    fn start() -> Demo {
        let mut child = Command::new(demo_binary())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the fake-servers example: `cargo test` builds it (or `cargo build --example fake-servers`)");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        Demo {
            child,
            stdin,
            lines,
        }
    }

    /// The next printed line containing `needle` (the lines before it are skipped).
    fn line_with(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("the demo never printed {needle:?}"),
            }
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_demo_prints_a_working_command_and_one_line_per_event() {
    let mut demo = Demo::start();
    let key_line = demo.line_with("API key of the demo");
    let key = key_line.rsplit(' ').next().unwrap().to_string();
    let command = demo.line_with("cargo run --release --bin rocketchatd -- ");
    let args: Vec<String> = command
        .split(" -- ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let value = |name: &str| {
        let at = args.iter().position(|a| a == name).unwrap();
        args[at + 1].clone()
    };
    assert_eq!(value("--apikey"), key);
    let state = PathBuf::from(value("--state"));
    assert!(state.starts_with(std::env::temp_dir()), "{state:?}");
    let port: u16 = value("--socketport").parse().unwrap();
    let send = demo.line_with("| nc 127.0.0.1");
    assert!(send.ends_with(&format!("| nc 127.0.0.1 {port}")), "{send}");
    let request = send.split('\'').nth(1).unwrap().to_string();

    let mut daemon = harness::command()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    demo.line_with("<< Jeedom received rooms: {");
    let reply = harness::raw_on(port, format!("{request}\n").as_bytes(), T).unwrap();
    assert_eq!(reply.trim(), r#"{"ok":true}"#);
    let sent = demo.line_with("<< Jeedom received sent: {");
    assert!(sent.ends_with(r#""type":"sent"}"#), "one line: {sent}");
    demo.line_with("<< bot posted in GENERAL");
    let stdin = demo.stdin.as_mut().unwrap();
    writeln!(stdin, "general alice @jeedombot turn on the radio").unwrap();
    let message = demo.line_with("<< Jeedom received message: {");
    assert!(
        message.contains(r#""query":"turn on the radio""#),
        "{message}"
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(state.parent().unwrap());
}

/// A demo ended (its stdin closed) before any daemon ran leaves nothing in
/// the temporary directory: the daemon makes its state directory itself.
#[test]
fn the_demo_leaves_no_directory_behind() {
    let mut demo = Demo::start();
    let command = demo.line_with("cargo run --release --bin rocketchatd -- ");
    let state = command
        .split_whitespace()
        .skip_while(|a| *a != "--state")
        .nth(1)
        .map(PathBuf::from)
        .unwrap();
    drop(demo.stdin.take());
    let deadline = std::time::Instant::now() + T;
    let status = loop {
        if let Some(st) = demo.child.try_wait().unwrap() {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "the demo did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let dir = state.parent().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
}
