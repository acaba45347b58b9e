//! Benchmark of the release `rocketchatd` against the fake Rocket.Chat and the
//! fake Jeedom of `tests/support`, on loopback (issue 6).
//!
//! `cargo bench` builds the daemon and this program with the `bench` profile
//! (it inherits `release`: opt-level z, LTO) and runs it. It prints a table
//! (figure, value, target, met/MISSED) and writes `target/bench/results.json`.
//!
//! Environment:
//! - `RCD_BENCH_QUICK=1`: short version (10 s idle, 1,000 messages for the
//!   latencies, 10,000 for the memory run), for a quick look; the figures
//!   of record come from the full run.
//! - `RCD_BENCH_IDLE_SECS`, `RCD_BENCH_LATENCY_MESSAGES`,
//!   `RCD_BENCH_MEMORY_MESSAGES`, `RCD_BENCH_THROUGHPUT_MESSAGES`,
//!   `RCD_BENCH_SENDS`, `RCD_BENCH_STARTS`: override one size.
//! - `RCD_BENCH_ONLY=startup,traffic,memory,durability`: run only these sections
//!   (`traffic` is `idle,latency,roundtrip,throughput,sends`; `relay` is the
//!   relay's own overhead, measured before any traffic).
//! - `RCD_BENCH_BURST`: messages per burst of the forwarding throughput
//!   (default 5,000: the daemon drops the oldest past 10,000 queued events).
//! - `RCD_BENCH_LOGLEVEL` (default `error`, the daemon's default).
//! - `ROCKETCHATD_BIN`: measure another binary (default: this build's).
//!
//! How the times are taken: see `tap.rs`. Each latency is given twice:
//! "daemon" from the moment the frame is handed to the daemon's socket to
//! the moment its request is handed to the peer's socket, and "with fakes"
//! from the call of the fake's API, which adds the fakes' 5 ms polling.
#![allow(clippy::print_stdout)]

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../support/mod.rs"]
mod support;

mod common;
mod daemon;
mod disk;
mod durability;
mod idle;
mod latency;
mod marks;
mod memory;
mod procfs;
mod relay;
mod report;
mod roundtrip;
mod sends;
mod size;
mod startup;
mod tap;
mod throughput;
mod traffic;
mod upload;

use report::Row;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub quick: bool,
    pub starts: usize,
    pub idle_secs: u64,
    pub latency_messages: usize,
    pub throughput_messages: usize,
    pub sends: usize,
    pub rooms: usize,
    pub memory_messages: usize,
    pub loglevel: String,
}

pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::var("RCD_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
        let pick = |full: u64, short: u64| if quick { short } else { full };
        Config {
            quick,
            starts: env_num("RCD_BENCH_STARTS", pick(10, 3)) as usize,
            idle_secs: env_num("RCD_BENCH_IDLE_SECS", pick(60, 10)),
            latency_messages: env_num("RCD_BENCH_LATENCY_MESSAGES", pick(10_000, 1_000)) as usize,
            throughput_messages: env_num("RCD_BENCH_THROUGHPUT_MESSAGES", pick(20_000, 5_000))
                as usize,
            sends: env_num("RCD_BENCH_SENDS", pick(2_000, 300)) as usize,
            rooms: 500,
            memory_messages: env_num("RCD_BENCH_MEMORY_MESSAGES", pick(100_000, 10_000)) as usize,
            loglevel: std::env::var("RCD_BENCH_LOGLEVEL").unwrap_or_else(|_| "error".into()),
        }
    }

    fn json(&self) -> Value {
        json!({
            "quick": self.quick, "starts": self.starts, "idle_secs": self.idle_secs,
            "latency_messages": self.latency_messages,
            "throughput_messages": self.throughput_messages, "sends": self.sends,
            "rooms": self.rooms, "memory_messages": self.memory_messages,
            "loglevel": self.loglevel,
        })
    }
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string();
    json!({"cpu": model, "cores": cores, "kernel": kernel, "loadavg_at_start": load})
}

/// `<target dir>/bench/results.json`.
fn results_path() -> PathBuf {
    common::target_dir().join("bench").join("results.json")
}

fn print_header(cfg: &Config, bin: &Path, m: &Value) {
    println!("rocketchatd benchmark (issue 6)");
    println!("binary:  {} ({})", bin.display(), size::linkage(bin));
    println!(
        "machine: {} x {} (kernel {}), load at start {}",
        m["cores"], m["cpu"], m["kernel"], m["loadavg_at_start"]
    );
    println!(
        "sizes:   {}",
        serde_json::to_string(&cfg.json()).unwrap_or_default()
    );
    if cfg.quick {
        println!("QUICK run (RCD_BENCH_QUICK): sizes are reduced, the figures are indicative");
    }
}

/// The sections `RCD_BENCH_ONLY` asks for (all when unset), in the order
/// of the table.
fn run_sections(cfg: &Config, bin: &Path, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let only = std::env::var("RCD_BENCH_ONLY").unwrap_or_default();
    let want = |name: &str| only.is_empty() || only.split(',').any(|x| x.trim() == name);
    let traffic_parts = ["idle", "latency", "roundtrip", "throughput", "sends"];
    let part = |name: &str| want("traffic") || want(name);
    size::binary_sizes(bin, rows, details);
    let any_traffic = want("traffic") || traffic_parts.iter().any(|p| want(p));
    if any_traffic || want("relay") {
        relay::calibrate(rows, details);
    }
    if want("startup") {
        startup::startup(cfg, rows, details);
    }
    if any_traffic {
        traffic::traffic(cfg, &part, rows, details);
    }
    if want("memory") {
        memory::memory(cfg, rows, details);
    }
    if want("upload") {
        upload::upload(cfg, rows, details);
    }
    if want("durability") {
        durability::durability(cfg, rows, details);
    }
}

fn print_summary(rows: &[Row]) {
    println!();
    print!("{}", report::table(rows));
    let missed: Vec<&str> = rows
        .iter()
        .filter(|r| r.met() == Some(false))
        .map(|r| r.key.as_str())
        .collect();
    println!(
        "\ntargets: {} met, {} missed{}",
        rows.iter().filter(|r| r.met() == Some(true)).count(),
        missed.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!(" ({})", missed.join(", "))
        }
    );
}

fn write_results(out: &Value) {
    let path = results_path();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(out).unwrap_or_default() + "\n",
    ) {
        Ok(()) => println!("written: {}", path.display()),
        Err(e) => println!("cannot write {}: {e}", path.display()),
    }
}

fn main() {
    // `cargo bench -- <filter>` passes `--bench`; nothing to filter here.
    let cfg = Config::from_env();
    let bin = harness::binary();
    let m = machine();
    print_header(&cfg, &bin, &m);
    let t0 = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut details = Map::new();
    run_sections(&cfg, &bin, &mut rows, &mut details);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    details.insert("loadavg_at_end".into(), json!(load.trim()));
    details.insert("duration_s".into(), json!(t0.elapsed().as_secs_f64()));
    print_summary(&rows);
    write_results(&json!({
        "binary": bin.display().to_string(),
        "linkage": size::linkage(&bin),
        "machine": m,
        "config": cfg.json(),
        "figures": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "details": Value::Object(details),
    }));
    println!("took {:.0} s", t0.elapsed().as_secs_f64());
}
