//! Upload: the daemon's peak RSS while it posts a 64 MiB file from the spool (issue 12: idle + 8 MiB at most).
use crate::common::{mib, Fakes};
use crate::report::{num, Row};
use crate::{procfs, Config};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::{Duration, Instant};

const SIZE: usize = 64 * 1024 * 1024;

/// Writes the file in 1 MiB pieces: the bench process stays small too.
fn write_video(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).expect("create the video");
    let piece: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for _ in 0..SIZE / piece.len() {
        f.write_all(&piece).expect("write the video");
    }
}

pub fn upload(cfg: &Config, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    let f = Fakes::start();
    let d = f.connected_daemon(cfg, "bench-upload");
    let pid = d.pid();
    let idle = procfs::rss_kib(pid);
    let path = d.dir.join("night.mp4");
    write_video(&path);
    let t0 = Instant::now();
    let reply = d.request(json!({"action": "send", "room": "#general",
        "files": [path.to_string_lossy()], "ref": "upload"}));
    assert_eq!(reply["ok"], true, "{reply}");
    f.jeedom
        .wait_event(Duration::from_secs(300), "sent", |e| e["ref"] == "upload");
    let secs = t0.elapsed().as_secs_f64();
    let after = procfs::rss_kib(pid);
    let growth = after.1.saturating_sub(idle.1);
    println!(
        "\n== upload: 64 MiB posted in {secs:.1} s; peak RSS {} KiB, idle peak {} KiB (+{growth} KiB)",
        after.1, idle.1
    );
    rows.push(
        Row::new(
            "upload_rss_growth_mib",
            "peak RSS over a 64 MiB upload, above the idle peak",
            mib(growth),
            "MiB",
        )
        .at_most(8.0)
        .note(format!(
            "idle peak {} MiB, peak {} MiB, {} s accept to sent",
            num(mib(idle.1)),
            num(mib(after.1)),
            num(secs)
        )),
    );
    details.insert(
        "upload".into(),
        json!({"bytes": SIZE, "idle_hwm_kib": idle.1, "hwm_kib": after.1, "rss_kib": after.0,
               "seconds": secs}),
    );
    d.stop();
}
