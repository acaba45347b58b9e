//! Replays the fuzz seeds and every input that once made a fuzz target fail
//! (`tests/fuzz/regressions/<target>/`) through the same checks, in `cargo test`.
//! A new crash found by `tests/fuzz/run.sh` is copied from
//! `tests/fuzz/artifacts/<target>/` to `tests/fuzz/regressions/<target>/`.
#[path = "checks.rs"]
mod checks;

use std::path::Path;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 4] = [
    ("ddp_frame", checks::ddp_frame),
    ("socket_request", checks::socket_request),
    ("options", checks::options),
    ("state_file", checks::state_file),
];

/// Runs `check` on every file of `dir` (missing dir: nothing); returns how many.
fn replay(dir: &Path, check: Check) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        eprintln!("{}", f.display());
        check(&data);
    }
    files.len()
}

#[test]
fn seeds_and_past_crashes_pass_the_fuzz_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    for (name, check) in TARGETS {
        let seeds = replay(&root.join("seeds").join(name), check);
        let past = replay(&root.join("regressions").join(name), check);
        assert!(seeds > 0, "no seeds for {name}");
        eprintln!("{name}: {seeds} seeds, {past} past crashes");
    }
    checks::cleanup();
}
