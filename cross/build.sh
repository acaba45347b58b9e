#!/usr/bin/env bash
# Builds static, stripped, size-optimised rocketchatd release binaries for the
# Raspberry Pi family (and x86-64), checks them, and optionally runs them under
# qemu and packages them as .deb files.
#
#   cross/build.sh [--selftest] [--deb] [TARGET...]
#
# TARGET: armv6 (Pi Zero/1, also runs on every later Pi), armv7 (Pi 2/3/4
# with a 32-bit OS), aarch64 (Pi 3/4/5 with a 64-bit OS), x86_64; or the full
# Rust triples. Default: all four.
#   --selftest  run each binary under qemu with a strict CPU model (native for
#               x86_64): --version, --help, the ring/TLS check (ringcheck), and
#               the lead's session test (tests/session.rs) when it exists.
#   --deb       build rocketchatd_<version>_{armhf,arm64,amd64}.deb (see
#               cross/mkdeb.sh) from the armv6, aarch64 and x86_64 binaries.
# Env: JOBS (cargo -j, default 2: other builds share this machine).
#
# Output: target/dist/rocketchatd-<version>-<triple>, the .deb files, and
# SHA256SUMS. Cross builds use target/cross, never the host's target/.
#
# Why zig: it is the C compiler and linker for every target (musl libc, crt
# files, libunwind and a clang for ring's C/assembly in one PyPI wheel), so no
# Debian cross gcc, no cmake and no musl-tools. cross/zig-cc adapts rustc's
# linker flags to it (what cargo-zigbuild does, in 30 lines, with nothing to
# compile). Why build-std: no prebuilt std for 32-bit ARM can be downloaded
# here, so std is compiled from the rust-src component (unstable -Z build-std,
# enabled on stable with RUSTC_BOOTSTRAP=1 on those cargo commands only).
set -euo pipefail

# Pinned together with rust-toolchain.toml: build-std and zig's linker flags
# change between releases.
ZIG_VERSION=0.17.1
SIZE_BUDGET=$((3 * 1024 * 1024)) # bytes, per binary
JOBS=${JOBS:-2}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CROSS_DIR=$ROOT/target/cross
DIST=$ROOT/target/dist
LOGS=$ROOT/target/cross-logs

die() { echo "build.sh: error: $*" >&2; exit 1; }
step() { echo; echo "==> $*"; }

# --- Targets -------------------------------------------------------------
# Per target: rust triple | zig target | zig -mcpu | rustc -C target-cpu |
# qemu command (empty: native) | .deb architecture (empty: none).
# The ARMv7 C flags match Rust's armv7 target (VFPv3-D16, Thumb-2, no NEON);
# the qemu CPU models are strict: an ARMv7 binary dies with "Illegal
# instruction" under arm1176, so the ARMv6 run really proves ARMv6.
target_info() {
    case "$1" in
        armv6 | arm-unknown-linux-musleabihf)
            echo "arm-unknown-linux-musleabihf|arm-linux-musleabihf|arm1176jzf_s|arm1176jzf-s|qemu-arm-static -cpu arm1176|armhf" ;;
        armv7 | armv7-unknown-linux-musleabihf)
            echo "armv7-unknown-linux-musleabihf|arm-linux-musleabihf|generic+v7a+vfp3d16+thumb2-neon||qemu-arm-static -cpu cortex-a7|" ;;
        aarch64 | arm64 | aarch64-unknown-linux-musl)
            echo "aarch64-unknown-linux-musl|aarch64-linux-musl|generic||qemu-aarch64-static -cpu cortex-a53|arm64" ;;
        x86_64 | amd64 | x86_64-unknown-linux-musl)
            echo "x86_64-unknown-linux-musl|x86_64-linux-musl|x86_64|||amd64" ;;
        *) return 1 ;;
    esac
}

SELFTEST=0
DEB=0
TARGETS=()
for arg in "$@"; do
    case "$arg" in
        --selftest) SELFTEST=1 ;;
        --deb) DEB=1 ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $arg (see --help)" ;;
        *) target_info "$arg" >/dev/null || die "unknown target $arg (armv6 armv7 aarch64 x86_64)"
           TARGETS+=("$arg") ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(armv6 armv7 aarch64 x86_64)

VERSION=$(cargo metadata --no-deps --format-version 1 --offline 2>/dev/null |
    python3 -c 'import json,sys; print([p for p in json.load(sys.stdin)["packages"] if p["name"]=="rocketchatd"][0]["version"])') ||
    VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$VERSION" ] || die "cannot read the version from Cargo.toml"
# Debian sorts 1.0~rc1 before 1.0; Cargo writes 1.0-rc1.
DEB_VERSION=$(sed 's/-/~/g' <<<"$VERSION")
echo "rocketchatd $VERSION: targets ${TARGETS[*]}$( ((SELFTEST)) && echo ', selftest')$( ((DEB)) && echo ', deb')"

# --- Tools ---------------------------------------------------------------
# Debian packages, installed only when missing (apt-get update first, once).
APT_UPDATED=0
need_apt() {
    local missing=() p
    for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing ${missing[*]} (apt)"
    if [ "$APT_UPDATED" -eq 0 ]; then $sudo apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

step "tools"
# file + readelf check that binaries are static; pip brings zig.
need_apt file binutils
command -v python3 >/dev/null || need_apt python3
python3 -m pip --version >/dev/null 2>&1 || need_apt python3-pip
# qemu-user-static runs the ARM binaries (explicitly, no binfmt needed).
if ((SELFTEST)); then
    for t in "${TARGETS[@]}"; do
        IFS='|' read -r _ _ _ _ qemu _ < <(target_info "$t")
        if [ -n "$qemu" ]; then need_apt qemu-user-static; break; fi
    done
fi

# zig comes from the pinned PyPI wheel, installed into its own folder (no
# venv or system site-packages needed) in the user's cache, kept across runs.
ZIG_HOME=${XDG_CACHE_HOME:-$HOME/.cache}/rocketchatd-cross/ziglang-$ZIG_VERSION
export ZIG=$ZIG_HOME/ziglang/zig
if ! [ -x "$ZIG" ] || [ "$("$ZIG" version 2>/dev/null)" != "$ZIG_VERSION" ]; then
    echo "installing ziglang==$ZIG_VERSION (pip) into $ZIG_HOME"
    rm -rf "$ZIG_HOME"
    python3 -m pip install --quiet --disable-pip-version-check --target "$ZIG_HOME" "ziglang==$ZIG_VERSION" ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages --target "$ZIG_HOME" "ziglang==$ZIG_VERSION"
fi
echo "zig $("$ZIG" version) ($ZIG)"

SYSROOT=$(rustc --print sysroot)
# std for a target: prebuilt from rustup if it can be had (x86_64 and aarch64
# musl can here), else built from source with -Z build-std (32-bit ARM).
has_prebuilt_std() { compgen -G "$SYSROOT/lib/rustlib/$1/lib/libstd-*.rlib" >/dev/null; }
ensure_std() {
    has_prebuilt_std "$1" && return 0
    if rustup target add "$1" >/dev/null 2>&1 && has_prebuilt_std "$1"; then
        echo "installed the prebuilt std for $1 (rustup target add)"
        return 0
    fi
    # No download: build std from source, which needs rust-src.
    if ! [ -d "$SYSROOT/lib/rustlib/src/rust/library" ]; then
        echo "installing rust-src (rustup) for -Z build-std"
        rustup component add rust-src >/dev/null
    fi
    return 1
}

# --- Checks before building ----------------------------------------------
step "dependency check"
# rustls must use ring only: aws-lc-rs needs cmake, cannot be cross-built
# with zig alone, and two providers make rustls panic at run time.
if out=$(cargo tree -i aws-lc-rs --target all -e normal,build 2>&1); then
    echo "$out"
    die "aws-lc-rs is in the dependency graph: use rustls with default-features = false and the ring feature"
elif ! grep -q 'did not match any packages' <<<"$out"; then
    echo "$out"
    die "cargo tree failed"
fi
echo "no aws-lc-rs (ring is the only crypto provider)"

# --- Build ---------------------------------------------------------------
mkdir -p "$DIST" "$LOGS"
SUMMARY=()
BUILT=() # triples built in this run

cargo_cross() {
    # cargo for one cross target, in its own target dir; everything zig and
    # build-std need is set on this command only (never exported).
    local triple=$1 zig_target=$2 zig_cpu=$3 rust_cpu=$4 build_std=$5
    shift 5
    local up=${triple^^}
    up=${up//-/_}
    local lo=${triple//-/_}
    # link-self-contained=no: zig brings crt files and libc; rustc's own
    # self-contained copies only exist in the (unavailable) rust-std download.
    local flags="-C link-self-contained=no${rust_cpu:+ -C target-cpu=$rust_cpu}"
    local std_args=()
    [ "$build_std" = 1 ] && std_args=(-Z "build-std=std,panic_abort")
    env -u CARGO_ENCODED_RUSTFLAGS \
        RUSTC_BOOTSTRAP=1 \
        ZIG_TARGET="$zig_target" ZIG_CPU="$zig_cpu" \
        "CARGO_TARGET_${up}_LINKER=$ROOT/cross/zig-cc" \
        "CC_${lo}=$ROOT/cross/zig-cc" "AR_${lo}=$ROOT/cross/zig-ar" \
        RUSTFLAGS="$flags${RUSTFLAGS:+ $RUSTFLAGS}" \
        cargo "$@" --release -j "$JOBS" --target "$triple" --target-dir "$CROSS_DIR" "${std_args[@]}"
}

check_binary() {
    # Fully static (no program interpreter, no dynamic section), within budget.
    local bin=$1 triple=$2 size
    file -b "$bin" | grep -q 'statically linked' || die "$bin is not statically linked: $(file -b "$bin")"
    if readelf -lW "$bin" | grep -Eq '^ *(INTERP|DYNAMIC) '; then die "$bin has INTERP/DYNAMIC program headers"; fi
    size=$(stat -c %s "$bin")
    [ "$size" -le "$SIZE_BUDGET" ] || die "$bin is $size bytes, over the $SIZE_BUDGET budget"
    # ARMv6: a single ARMv7 object would raise the merged CPU architecture tag.
    if [ "$triple" = arm-unknown-linux-musleabihf ]; then
        readelf -A "$bin" | grep -q 'Tag_CPU_arch: v6$' || die "$bin is not pure ARMv6: $(readelf -A "$bin" | grep Tag_CPU_arch)"
    fi
}

for t in "${TARGETS[@]}"; do
    IFS='|' read -r triple zig_target zig_cpu rust_cpu qemu deb_arch < <(target_info "$t")
    step "build $triple"
    build_std=0
    ensure_std "$triple" || build_std=1
    echo "std: $( ((build_std)) && echo 'built from source (-Z build-std)' || echo prebuilt)"
    log=$LOGS/$triple.log
    start=$(date +%s%N)
    if ! cargo_cross "$triple" "$zig_target" "$zig_cpu" "$rust_cpu" "$build_std" build --locked --bin rocketchatd >"$log" 2>&1; then
        tail -n 40 "$log"
        die "build for $triple failed (full log: $log)"
    fi
    ms=$((($(date +%s%N) - start) / 1000000))
    out=$DIST/rocketchatd-$VERSION-$triple
    cp "$CROSS_DIR/$triple/release/rocketchatd" "$out"
    check_binary "$out" "$triple"
    size=$(stat -c %s "$out")
    line=$(printf '%-31s %8d bytes (%4d KiB)  built in %4d.%d s  std %s' "$triple" "$size" \
        $((size / 1024)) $((ms / 1000)) $((ms % 1000 / 100)) "$( ((build_std)) && echo from-source || echo prebuilt)")
    echo "$line"
    SUMMARY+=("$line")
    BUILT+=("$t")
done

# --- Self-test -----------------------------------------------------------
run_on() {
    # Runs a target binary: under qemu with the target's strict CPU, or natively.
    local qemu=$1
    shift
    if [ -n "$qemu" ]; then $qemu "$@"; else "$@"; fi
}

if ((SELFTEST)); then
    # Test CA and server key for ringcheck, made here, never committed.
    need_apt openssl
    RINGCHECK_CERTS=$ROOT/target/ringcheck-certs
    cross/ringcheck/make-certs.sh "$RINGCHECK_CERTS"
    cp Cargo.lock cross/ringcheck/Cargo.lock # same crate versions as the daemon

    for t in "${BUILT[@]}"; do
        IFS='|' read -r triple zig_target zig_cpu rust_cpu qemu deb_arch < <(target_info "$t")
        bin=$DIST/rocketchatd-$VERSION-$triple
        step "selftest $triple (${qemu:-native})"

        # --version and --help must succeed on the target CPU.
        out=$(run_on "$qemu" "$bin" --version) || die "$triple: --version failed"
        if [ -z "$out" ]; then
            echo "warning: --version printed nothing (src/main.rs still the stub?)"
        elif ! grep -qF "$VERSION" <<<"$out"; then
            die "$triple: --version does not show $VERSION: $out"
        else
            echo "--version: $out"
        fi
        run_on "$qemu" "$bin" --help >/dev/null || die "$triple: --help failed"
        echo "--help: ok"

        # ring/rustls on this CPU: in-memory TLS 1.3/1.2 sessions with every
        # cipher suite and key exchange the daemon may negotiate.
        if ! (cd cross/ringcheck && RINGCHECK_CERTS=$RINGCHECK_CERTS cargo_cross "$triple" "$zig_target" "$zig_cpu" "$rust_cpu" \
            "$(has_prebuilt_std "$triple" && echo 0 || echo 1)" build) >"$LOGS/ringcheck-$triple.log" 2>&1; then
            tail -n 40 "$LOGS/ringcheck-$triple.log"
            die "ringcheck build for $triple failed"
        fi
        rc=$CROSS_DIR/$triple/release/ringcheck
        check_binary "$rc" "$triple"
        run_on "$qemu" "$rc" >"$LOGS/ringcheck-$triple.out" 2>&1 || { cat "$LOGS/ringcheck-$triple.out"; die "$triple: ringcheck failed"; }
        tail -n 1 "$LOGS/ringcheck-$triple.out"

        # The lead's end-to-end session test, driving this binary through the
        # runner prefix (host test harness, target binary).
        if [ -f tests/session.rs ]; then
            echo "session test (tests/session.rs) against $bin"
            if [ -n "$qemu" ]; then
                ROCKETCHATD_BIN=$bin ROCKETCHATD_RUNNER=$qemu cargo test --locked --test it session:: -- --test-threads=1
            else
                env -u ROCKETCHATD_RUNNER ROCKETCHATD_BIN="$bin" cargo test --locked --test it session:: -- --test-threads=1
            fi
        else
            echo "session test: SKIPPED, tests/session.rs does not exist yet"
        fi
    done

    # Negative control: the ARMv6 check means something only if qemu's
    # arm1176 model really rejects ARMv7 code.
    v7=$CROSS_DIR/armv7-unknown-linux-musleabihf/release/ringcheck
    if [ -x "$v7" ] && printf '%s\n' "${BUILT[@]}" | grep -qx armv7; then
        if (qemu-arm-static -cpu arm1176 "$v7") >/dev/null 2>&1; then
            die "an ARMv7 binary ran under -cpu arm1176: the ARMv6 selftest proves nothing"
        fi
        echo "control: the ARMv7 build fails under -cpu arm1176, as it must"
    fi
fi

# --- Debian packages -----------------------------------------------------
if ((DEB)); then
    for t in "${BUILT[@]}"; do
        IFS='|' read -r triple _ _ _ _ deb_arch < <(target_info "$t")
        [ -n "$deb_arch" ] || continue
        step "deb $deb_arch (from $triple)"
        "$ROOT/cross/mkdeb.sh" "$deb_arch" "$DIST/rocketchatd-$VERSION-$triple" "$DEB_VERSION" "$DIST"
    done
fi

# --- Checksums and summary -----------------------------------------------
(
    cd "$DIST"
    shopt -s nullglob
    files=("rocketchatd-$VERSION-"* "rocketchatd_${DEB_VERSION}_"*.deb)
    [ ${#files[@]} -eq 0 ] || sha256sum "${files[@]}" >SHA256SUMS
)
step "summary ($DIST)"
printf '%s\n' "${SUMMARY[@]}"
ls -l "$DIST"
