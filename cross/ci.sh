#!/usr/bin/env bash
# Packaging CI, called by .ci/run as `bash cross/ci.sh`. Needs root (apt)
# and network to crates.io, PyPI and Debian's apt; installs what it misses
# (zig, rust-src, qemu-user-static, debootstrap, systemd-container, openssl,
# systemd's systemd-analyze).
#
# Steps: build the static binaries for the four targets (all of them fit the
# packaging budget of about 15 minutes on 2 cores, see tests/README.md for the
# figures), run each under qemu with a strict CPU model (--version, --help,
# the ring/TLS check, and the session test once tests/session.rs exists),
# build the three .deb files, check them (contents, modes, a real dpkg
# install/upgrade/remove/purge), check the systemd unit (verify + exposure
# <= 2.0) and run it under a real systemd booted in a systemd-nspawn
# container. Ends with a "packaging: N passed, M failed" line.
#
# CI_TARGETS overrides the target list, e.g. CI_TARGETS="armv6 armv7".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
read -r -a TARGETS <<<"${CI_TARGETS:-armv6 armv7 aarch64 x86_64}"
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)

passed=0
failed=0
step() {
    # One CI step: runs it, times it, counts it; the first failure ends CI.
    local name=$1 start=$SECONDS
    shift
    echo
    echo "######## $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "######## $name: ok ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        echo "######## $name: FAILED ($((SECONDS - start)) s)"
        echo "packaging: $passed passed, $failed failed"
        exit 1
    fi
}

# The sd_notify module's own tests (host, quick).
step "unit tests of src/systemd.rs" cargo test --locked --lib systemd::
step "build + selftest + deb (${TARGETS[*]})" bash cross/build.sh --selftest --deb "${TARGETS[@]}"
step "check debs" bash cross/check-deb.sh
unit_bin=target/dist/rocketchatd-$VERSION-x86_64-unknown-linux-musl
[ -x "$unit_bin" ] || unit_bin=""
step "check unit" bash cross/check-unit.sh ${unit_bin:+"$unit_bin"}
# The unit under a real systemd (nspawn container), needs the x86_64 build.
if [ -n "$unit_bin" ]; then
    step "check service (systemd in a container)" bash cross/check-service.sh
fi

echo
echo "packaging: $passed passed, $failed failed"
