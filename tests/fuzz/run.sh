#!/usr/bin/env bash
# Fuzzes every target of rocketchatd for SECONDS each (default 60), one after
# the other: DDP frames, command-socket requests, the options string, the
# state file. Needs the nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
# New inputs go to tests/fuzz/corpus/<target>/ (not committed); a crash is
# written to tests/fuzz/artifacts/<target>/ and the script exits non-zero:
# copy the file to tests/fuzz/regressions/<target>/ so that `cargo test`
# (`cargo test --test it fuzz_regressions::`) replays it once fixed.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(ddp_frame socket_request options state_file)
fi
failed=()
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${secs} s"
  mkdir -p "corpus/$t"
  # -max_len: frames and requests of interest are small; the state file seeds are larger.
  maxlen=65536
  if cargo +nightly fuzz run --fuzz-dir . "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 2>&1 | tee "fuzz-$t.log" | grep -E '^(#[0-9]+ *DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|thread .* panicked)'; then
    :
  fi
  if grep -qE 'panicked|==[0-9]+==ERROR|deadly signal|Test unit written' "fuzz-$t.log"; then
    echo "!! $t: crash, see tests/fuzz/fuzz-$t.log and tests/fuzz/artifacts/$t/"
    failed+=("$t")
  else
    echo "   $t: no crash"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]}"
  exit 1
fi
echo "all targets ran ${secs} s without a crash"
