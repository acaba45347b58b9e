//! The README's examples are the tested ones: its PHP blocks are cut from tests/php/, its Quick start runs.
use crate::harness;
use crate::php::php_dir;
use crate::support;
use harness::stack::T;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use support::fake_rc::{FakeRcOptions, FakeRocketChat};
use support::wait::{wait_for, wait_until};

const README: &str = include_str!("../README.md");

/// The code blocks of `text` in language `lang`, each as its lines.
fn blocks(text: &str, lang: &str) -> Vec<Vec<String>> {
    let fence = format!("```{lang}");
    let mut blocks = Vec::new();
    let mut block: Option<Vec<String>> = None;
    for line in text.lines() {
        match (&mut block, line.trim()) {
            (None, l) if l == fence => block = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(block.take()),
            (Some(b), _) => b.push(line.to_string()),
            (None, _) => {}
        }
    }
    blocks
}

/// Whether `block` is cut from `file`: its parts between `// ...` lines are
/// runs of the file's lines (indentation aside), in the file's order.
fn cut_from(block: &[String], file: &str) -> bool {
    let lines: Vec<&str> = file.lines().map(str::trim).collect();
    let block: Vec<String> = block.iter().map(|l| l.trim().to_string()).collect();
    let mut from = 0;
    for part in block.split(|l| l == "// ...") {
        let found = (from..=lines.len().saturating_sub(part.len())).find(|&at| {
            lines[at..].starts_with(&part.iter().map(String::as_str).collect::<Vec<_>>())
        });
        match found {
            Some(at) => from = at + part.len(),
            None => return false,
        }
    }
    true
}

/// What a plugin author copies from the README is what these tests run:
/// every PHP block of the README is cut from a file of tests/php/.
#[test]
fn the_readme_php_is_cut_from_the_tested_files() {
    let files: Vec<(String, String)> = std::fs::read_dir(php_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "php"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    let blocks = blocks(README, "php");
    assert!(
        blocks.len() >= 4,
        "{} PHP blocks in the README",
        blocks.len()
    );
    for block in &blocks {
        let from = files.iter().find(|(_, text)| cut_from(block, text));
        assert!(
            from.is_some(),
            "this README PHP block is in no file of tests/php/:\n{}",
            block.join("\n")
        );
    }
}

/// Whether `tool` is on the PATH; under CI a missing one fails the test
/// (`.ci/run` installs it), elsewhere the test is skipped with a note.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{tool} is missing"
        );
        eprintln!("SKIPPED: {tool} is missing");
    }
    found
}

/// `block` with each `(from, to)` replaced, each found at least once.
fn adapted(block: &[String], swaps: &[(&str, &str)]) -> String {
    let mut text = block.join("\n");
    for (from, to) in swaps {
        assert!(text.contains(from), "{from:?} is no longer in:\n{text}");
        text = text.replace(from, to);
    }
    text
}

/// The Quick start's first terminal: its process group gets a SIGKILL and
/// its `DIR` is removed when the test ends, passed or failed.
struct Terminal {
    child: Child,
    dir: Option<String>,
}

impl Terminal {
    /// Ctrl-C: a SIGINT to the terminal's foreground process group.
    fn ctrl_c(&self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-INT", "--", &group]).status();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The README's Quick start as written, but against the fake Rocket.Chat, with
/// the built binary for `cargo run --release` and a free port for 55071: it
/// shows the API key, the socket answers, Ctrl-C stops the daemon cleanly, and
/// nothing is left in the directory it was run from.
#[test]
fn the_quick_start_runs_as_written() {
    if !have("nc") {
        return;
    }
    let rc = FakeRocketChat::start(FakeRcOptions::default());
    let quick = &README[README.find("### Quick start").unwrap()..];
    let quick = &quick[..quick[4..].find("\n### ").unwrap()];
    let sh = blocks(quick, "sh");
    assert_eq!(sh.len(), 2, "the daemon's terminal and the socket's");
    let port = harness::free_port().to_string();
    let (bin, url) = (harness::binary().display().to_string(), rc.url());
    let first = adapted(
        &sh[0],
        &[
            ("cargo run --release --bin rocketchatd --", &bin),
            ("https://chat.example.org", &url),
            (
                "--loglevel info",
                &format!("--loglevel info --socketport {port}"),
            ),
        ],
    );
    let checkout = harness::temp_dir("readme-quick-start");
    let child = Command::new("bash")
        .args(["-c", &first])
        .current_dir(&checkout)
        .process_group(0) // a terminal's foreground job, for its Ctrl-C
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut term = Terminal { child, dir: None };
    let (tx, shown) = std::sync::mpsc::channel();
    let out = BufReader::new(term.child.stdout.take().unwrap());
    std::thread::spawn(move || {
        out.lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx.send(l)))
    });
    let dir = shown.recv_timeout(T).expect("DIR=...");
    let dir = dir.strip_prefix("DIR=").expect("DIR=...").to_string();
    term.dir = Some(dir.clone());
    let key = shown.recv_timeout(T).expect("the API key, shown");
    // tee may write its output before the file.
    let file = wait_for(T, "the key file written", || {
        std::fs::read_to_string(format!("{dir}/apikey"))
            .ok()
            .filter(|k| k.ends_with('\n'))
    });
    assert_eq!(file.trim(), key, "the key shown is the key file's");
    let status = format!(r#"{{"apikey":"{key}","action":"status"}}"#);
    wait_until(T, "the daemon connected", || {
        harness::request_on(port.parse().unwrap(), &status, T).is_ok_and(|v| v["connected"] == true)
    });

    let dir_line = format!("DIR={dir};");
    let second = adapted(
        &sh[1],
        &[("DIR=/tmp/tmp.XXXXXXXXXX;", &dir_line), ("55071", &port)],
    );
    let out = Command::new("timeout")
        .args(["20", "bash", "-c", &second])
        .current_dir(&checkout)
        .output()
        .unwrap();
    let replies = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = replies.lines().collect();
    assert_eq!(lines.len(), 2, "{replies}");
    assert!(lines[0].contains(r#""connected":true"#), "{replies}");
    assert_eq!(lines[1], r#"{"ok":true}"#);
    wait_until(T, "Hello posted in #general", || {
        rc.messages("GENERAL").iter().any(|m| m["msg"] == "Hello")
    });

    term.ctrl_c();
    let status = wait_for(T, "the daemon to stop on Ctrl-C", || {
        term.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0), "a clean stop");
    let left: Vec<_> = std::fs::read_dir(&checkout)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left in the checkout: {left:?}");
    assert!(std::path::Path::new(&dir).join("state.json").exists());
}
