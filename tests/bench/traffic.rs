//! The traffic sections share one daemon, started once: its idle RSS first, then each section asked for.
use crate::common::{mib, Fakes};
use crate::report::{num, Row};
use crate::{idle, latency, procfs, roundtrip, sends, throughput, Config};
use serde_json::{json, Map, Value};

pub fn traffic(
    cfg: &Config,
    want: &dyn Fn(&str) -> bool,
    rows: &mut Vec<Row>,
    details: &mut Map<String, Value>,
) {
    let f = Fakes::start();
    let d = f.connected_daemon(cfg, "bench-traffic");
    let pid = d.pid();
    idle_rss(pid, rows, details);
    if want("idle") {
        idle::idle_cpu(cfg, pid, rows, details);
    }
    if want("latency") {
        latency::latency(cfg, &f, &d, rows, details);
    }
    if want("roundtrip") {
        roundtrip::round_trip(cfg, &f, &d, rows, details);
    }
    if want("throughput") {
        throughput::forward_throughput(cfg, &f, &d, rows, details);
    }
    if want("sends") {
        sends::send_throughput(cfg, &f, &d, rows, details);
    }
    let (rss, hwm) = procfs::rss_kib(pid);
    details.insert("traffic_end_rss_kib".into(), json!(rss));
    details.insert("traffic_end_hwm_kib".into(), json!(hwm));
    d.stop();
}

fn idle_rss(pid: u32, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let (rss, hwm) = procfs::rss_kib(pid);
    let (anon, file) = procfs::rss_split_kib(pid);
    println!(
        "\n== idle after start: RSS {rss} KiB (anonymous {anon}, file-backed {file}), peak {hwm} KiB, {} threads",
        procfs::threads(pid)
    );
    details.insert(
        "idle_rss_split_kib".into(),
        json!({"anonymous": anon, "file": file}),
    );
    details.insert("threads".into(), json!(procfs::threads(pid)));
    rows.push(
        Row::new("idle_rss_mib", "RSS idle after start", mib(rss), "MiB")
            .at_most(4.0)
            .note(format!(
                "peak (VmHWM) {} MiB; anonymous {} MiB, file-backed (code) {} MiB",
                num(mib(hwm)),
                num(mib(anon)),
                num(mib(file))
            )),
    );
    details.insert("idle_rss_kib".into(), json!(rss));
    details.insert("idle_hwm_kib".into(), json!(hwm));
}
