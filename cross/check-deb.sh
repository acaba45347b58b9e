#!/usr/bin/env bash
# Checks the rocketchatd .deb files: metadata, compression, contents, owners
# and modes (dpkg-deb -I/-c), the binary inside, then unpacks the amd64
# package into a scratch dpkg root and checks the installed files.
#
#   cross/check-deb.sh [DEB...]   default: target/dist/rocketchatd_<version>_*.deb
#
# Build the packages first: cross/build.sh --deb.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
ok() { echo "  ok  $*"; }

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
DEB_VERSION=$(sed 's/-/~/g' <<<"$VERSION")
if [ $# -gt 0 ]; then
    DEBS=("$@")
else
    shopt -s nullglob
    DEBS=(target/dist/rocketchatd_"${DEB_VERSION}"_*.deb)
    shopt -u nullglob
fi
[ ${#DEBS[@]} -gt 0 ] || fail "no package for $DEB_VERSION in target/dist (run cross/build.sh --deb)"

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

# What every package must hold: regular files with their mode and owner.
# Anything else (besides root-owned 0755 directories) is a failure.
EXPECTED_FILES='-rw------- root/root ./etc/rocketchatd/config.json
-rw-r--r-- root/root ./lib/systemd/system/rocketchatd.service
-rw-r--r-- root/root ./usr/share/doc/rocketchatd/README
-rwxr-xr-x root/root ./usr/bin/rocketchatd'

for deb in "${DEBS[@]}"; do
    echo "== $deb"
    [ -f "$deb" ] || fail "$deb: no such file"
    arch=$(dpkg-deb -f "$deb" Architecture)

    # Control fields: name, version, architecture matching the file name,
    # and no dependency of any kind (static binary).
    [ "$(dpkg-deb -f "$deb" Package)" = rocketchatd ] || fail "$deb: Package is not rocketchatd"
    [ "$(dpkg-deb -f "$deb" Version)" = "$DEB_VERSION" ] || fail "$deb: Version is not $DEB_VERSION"
    [[ "$(basename "$deb")" == "rocketchatd_${DEB_VERSION}_${arch}.deb" ]] || fail "$deb: file name does not match Architecture $arch"
    for field in Depends Pre-Depends Recommends; do
        [ -z "$(dpkg-deb -f "$deb" "$field")" ] || fail "$deb: has $field"
    done
    ok "control: rocketchatd $DEB_VERSION $arch, no dependencies"

    # Members compressed with xz or gzip: dpkg on Stretch/Buster has no zstd.
    members=$(ar t "$deb" | tr '\n' ' ')
    [[ "$members" =~ ^debian-binary\ control\.tar\.(xz|gz)\ data\.tar\.(xz|gz)\ $ ]] || fail "$deb: members are: $members"
    ok "compression: $members"

    # Files, owners and modes of the data archive.
    listing=$(dpkg-deb -c "$deb")
    files=$(awk '$1 !~ /^d/ {print $1, $2, $6}' <<<"$listing" | sort)
    [ "$files" = "$(sort <<<"$EXPECTED_FILES")" ] || {
        diff <(sort <<<"$EXPECTED_FILES") <(echo "$files") || true
        fail "$deb: unexpected files or modes"
    }
    bad_dirs=$(awk '$1 ~ /^d/ && !($1 == "drwxr-xr-x" && $2 == "root/root")' <<<"$listing")
    [ -z "$bad_dirs" ] || fail "$deb: directories with other modes: $bad_dirs"
    ok "contents and modes (config.json 0600)"

    # Control archive: the conffile, executable maintainer scripts in sh.
    mkdir -p "$SCRATCH/$arch/control"
    dpkg-deb -e "$deb" "$SCRATCH/$arch/control"
    [ "$(cat "$SCRATCH/$arch/control/conffiles")" = /etc/rocketchatd/config.json ] || fail "$deb: conffiles"
    for s in postinst prerm postrm; do
        [ -x "$SCRATCH/$arch/control/$s" ] || fail "$deb: $s missing or not executable"
        sh -n "$SCRATCH/$arch/control/$s" || fail "$deb: $s is not valid sh"
    done
    ok "conffiles, postinst/prerm/postrm"

    # Payload: the binary is static and for this architecture; the unit is
    # the repository's; the example config is JSON with placeholders only.
    dpkg-deb -x "$deb" "$SCRATCH/$arch/root"
    bin=$SCRATCH/$arch/root/usr/bin/rocketchatd
    desc=$(file -b "$bin")
    case "$arch" in
        armhf) want='ELF 32-bit LSB executable, ARM, EABI5' ;;
        arm64) want='ELF 64-bit LSB executable, ARM aarch64' ;;
        amd64) want='ELF 64-bit LSB executable, x86-64' ;;
        *) fail "$deb: unexpected architecture $arch" ;;
    esac
    [[ "$desc" == "$want"* && "$desc" == *"statically linked"* ]] || fail "$deb: binary is: $desc"
    if [ "$arch" = armhf ]; then
        # One armhf package serves every 32-bit Pi, so it must be ARMv6 code.
        readelf -A "$bin" | grep -q 'Tag_CPU_arch: v6$' || fail "$deb: armhf binary is not ARMv6"
    fi
    cmp -s "$SCRATCH/$arch/root/lib/systemd/system/rocketchatd.service" systemd/rocketchatd.service ||
        fail "$deb: unit differs from systemd/rocketchatd.service"
    python3 -m json.tool "$SCRATCH/$arch/root/etc/rocketchatd/config.json" >/dev/null || fail "$deb: config.json is not JSON"
    grep -q '"password": "CHANGE-ME"' "$SCRATCH/$arch/root/etc/rocketchatd/config.json" ||
        fail "$deb: example config.json must carry the CHANGE-ME placeholder password"
    ok "payload: static $arch binary, unit, example config"
done

# Install test: the amd64 package unpacked by dpkg itself into an empty dpkg
# root (no maintainer script runs: the package has no preinst, and
# --unpack does not configure), then the files on disk and dpkg's records.
amd64=$(printf '%s\n' "${DEBS[@]}" | grep '_amd64\.deb$' | head -1 || true)
if [ -z "$amd64" ]; then
    echo "== install test skipped: no amd64 package"
    exit 0
fi
echo "== install test: dpkg --root --unpack $amd64"
R=$SCRATCH/instroot
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
touch "$R/var/lib/dpkg/status"
dpkg --root="$R" --log=/dev/null --unpack "$amd64" >/dev/null
while read -r mode owner path; do
    got=$(stat -c '%A %U/%G' "$R/$path")
    [ "$got" = "$mode $owner" ] || fail "installed $path is $got, want $mode $owner"
done <<<"$EXPECTED_FILES"
ok "installed files, owners and modes"
status=$(dpkg-query --root="$R" -W -f='${Status} ${Version}' rocketchatd)
[ "$status" = "install ok unpacked $DEB_VERSION" ] || fail "dpkg status: $status"
dpkg-query --root="$R" -W -f='${Conffiles}\n' rocketchatd | grep -q '^ /etc/rocketchatd/config.json [0-9a-f]\{32\}' ||
    fail "dpkg did not record the conffile"
ok "dpkg database: $status, conffile recorded"
"$R/usr/bin/rocketchatd" --help >/dev/null || fail "installed binary does not run"
ok "installed binary runs (--help)"
echo "check-deb: all checks passed"
