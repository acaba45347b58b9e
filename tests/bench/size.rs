//! Binary sizes: the measured binary and every other build of this tree found under target/.
use crate::common::target_dir;
use crate::report::Row;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::fs::DirEntry;
use std::path::{Path, PathBuf};

/// "static" or "dynamic" (has a `PT_INTERP` program header), from the ELF
/// header of a little-endian binary, 32-bit (ARMv6, ARMv7) or 64-bit.
pub fn linkage(path: &Path) -> &'static str {
    let Ok(b) = std::fs::read(path) else {
        return "?";
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[5] != 1 {
        return "?";
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
    // e_phoff, e_phentsize and e_phnum sit at other offsets in ELF32 and ELF64.
    let (phoff, phentsize, phnum) = match b[4] {
        1 => (u32_at(28), u16_at(42), u16_at(44)),
        2 => {
            let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap_or([0; 8]));
            (phoff as usize, u16_at(54), u16_at(56))
        }
        _ => return "?",
    };
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 <= b.len() && u32_at(o) == 3 {
            return "dynamic";
        }
    }
    "static"
}

/// The measured binary first, then the other builds of this tree:
/// <target>/<triple>/release/rocketchatd (cargo --target),
/// target/cross/<triple>/release/rocketchatd and
/// target/dist/rocketchatd-<version>-<triple> (cross/build.sh).
fn builds(bin: &Path) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = vec![("measured".into(), bin.to_path_buf())];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = target_dir();
    let host = target_dir.join("release").join("rocketchatd");
    if host != bin {
        found.push(("host".into(), host));
    }
    for dir in [
        target_dir.clone(),
        target_dir.join("cross"),
        root.join("target").join("cross"),
    ] {
        found.extend(scan(&dir, triple_build));
    }
    found.extend(scan(&target_dir.join("dist"), dist_build));
    found
}

/// The builds `pick` finds among the entries of `dir` (none when it does not exist).
fn scan(dir: &Path, pick: fn(&DirEntry) -> Option<(String, PathBuf)>) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten().filter_map(|e| pick(&e)).collect()
}

/// `<triple>/release/rocketchatd`; a triple has at least two dashes, which
/// tells it from `release`, `debug` and the like.
fn triple_build(e: &DirEntry) -> Option<(String, PathBuf)> {
    let triple = e.file_name().to_string_lossy().to_string();
    let p = e.path().join("release").join("rocketchatd");
    (triple.matches('-').count() >= 2 && p.is_file()).then_some((triple, p))
}

/// `rocketchatd-<version>-<triple>`, leaving out the Debian packages.
fn dist_build(e: &DirEntry) -> Option<(String, PathBuf)> {
    let name = e.file_name().to_string_lossy().to_string();
    let rest = name.strip_prefix("rocketchatd-")?;
    if name.ends_with(".deb") || !e.path().is_file() {
        return None;
    }
    let triple = rest.split_once('-').map(|(_, t)| t).unwrap_or(rest);
    Some((format!("{triple} (dist)"), e.path()))
}

fn size_label(what: &str, kind: &str) -> String {
    match what {
        "measured" => format!("binary size, measured binary ({kind})"),
        "host" => format!("binary size, host build ({kind})"),
        _ => format!("binary size, {what} ({kind})"),
    }
}

fn size_key(what: &str) -> String {
    format!(
        "binary_size_{}",
        what.split(' ').next().unwrap_or(what).replace('-', "_")
    )
}

pub fn binary_sizes(bin: &Path, rows: &mut Vec<Row>, details: &mut Map<String, Value>) {
    // With the default target dir, <target>/cross and target/cross are one
    // folder: its builds come twice.
    let mut seen = HashSet::new();
    let mut list = Vec::new();
    for (what, p) in builds(bin) {
        let canon = p.canonicalize().unwrap_or(p.clone());
        if !seen.insert(canon) {
            continue;
        }
        let Ok(m) = std::fs::metadata(&p) else {
            continue;
        };
        let kind = linkage(&p);
        let label = size_label(&what, kind);
        // A build left from an older commit is listed too: its age tells it.
        let age = m.modified().ok().and_then(|t| t.elapsed().ok());
        let age = age.map_or(String::new(), |d| {
            format!(", built {} min ago", d.as_secs() / 60)
        });
        rows.push(
            Row::new(&size_key(&what), &label, m.len() as f64 / 1024.0, "KiB")
                .note(format!("{}{age}", p.display())),
        );
        list.push(json!({"what": what, "path": p.display().to_string(), "bytes": m.len(), "linkage": kind}));
    }
    details.insert("binaries".into(), json!(list));
}
