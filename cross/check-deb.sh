#!/usr/bin/env bash
# Checks the rocketchatd .deb files: metadata, compression, contents, owners
# and modes (dpkg-deb -I/-c), the binary inside, then installs the amd64
# package with dpkg into a scratch Debian root: files, owners, modes,
# maintainer scripts, upgrade, remove and purge.
#
#   cross/check-deb.sh [--quick] [DEB...]
#     default DEB: target/dist/rocketchatd_<version>_*.deb
#     --quick: install test without maintainer scripts (no debootstrap)
#
# Build the packages first: cross/build.sh --deb.
set -euo pipefail

QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi

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

# Install test of the amd64 package, maintainer scripts included, in a
# scratch root that is a minimal Debian 12 (debootstrap --variant=minbase:
# no adduser, no systemd, so postinst takes its useradd path). A stand-in
# systemctl records what the scripts ask of systemd. The root is cached as a
# tarball in ~/.cache/rocketchatd-cross (35 s to make, 100 MB).
# --quick instead only unpacks into an empty dpkg root (no scripts, offline).
amd64=$(printf '%s\n' "${DEBS[@]}" | grep '_amd64\.deb$' | head -1 || true)
if [ -z "$amd64" ]; then
    echo "== install test skipped: no amd64 package"
    echo "check-deb: all checks passed"
    exit 0
fi
R=$SCRATCH/instroot
mkdir -p "$R"

if ((QUICK)); then
    echo "== install test (quick): dpkg --root --unpack $amd64"
    mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
    touch "$R/var/lib/dpkg/status"
    dpkg --root="$R" --log=/dev/null --unpack "$amd64" >/dev/null
    # Unpacked but not configured: the conffile still has its .dpkg-new name.
    while read -r mode owner path; do
        [ "$path" = ./etc/rocketchatd/config.json ] && path=$path.dpkg-new
        got=$(stat -c '%A %U/%G' "$R/$path")
        [ "$got" = "$mode $owner" ] || fail "unpacked $path is $got, want $mode $owner"
    done <<<"$EXPECTED_FILES"
    [ "$(dpkg-query --root="$R" -W -f='${Status}' rocketchatd)" = "install ok unpacked" ] || fail "dpkg status"
    "$R/usr/bin/rocketchatd" --help >/dev/null || fail "unpacked binary does not run"
    ok "unpacked files, owners and modes; binary runs"
    echo "check-deb: all checks passed"
    exit 0
fi

echo "== install test: dpkg -i / -r / -P in a minimal Debian 12 root"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/rocketchatd-cross
ROOTFS=$CACHE/bookworm-minbase.tar.gz
if ! [ -s "$ROOTFS" ]; then
    command -v debootstrap >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    }
    echo "  making the Debian 12 minbase root (debootstrap, once)"
    debootstrap --variant=minbase bookworm "$R" http://deb.debian.org/debian >"$SCRATCH/debootstrap.log" 2>&1 ||
        { tail "$SCRATCH/debootstrap.log"; fail "debootstrap failed"; }
    rm -rf "$R/var/cache/apt/archives/"*.deb
    mkdir -p "$CACHE"
    tar -C "$R" -czf "$ROOTFS.tmp" . && mv "$ROOTFS.tmp" "$ROOTFS"
else
    tar -C "$R" -xzf "$ROOTFS"
fi

# Stand-in systemctl, and /run/systemd/system so the scripts believe
# systemd runs: every call is logged for the checks below.
mkdir -p "$R/run/systemd/system" "$R/usr/local/bin"
printf '#!/bin/sh\necho "$*" >>/tmp/systemctl.log\n' >"$R/usr/local/bin/systemctl"
chmod 0755 "$R/usr/local/bin/systemctl"
in_root() { env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C chroot "$R" "$@"; }
calls() { cat "$R/tmp/systemctl.log" 2>/dev/null | tr '\n' ';'; rm -f "$R/tmp/systemctl.log"; }
cp "$amd64" "$R/tmp/rocketchatd.deb"

# Fresh install: files, the service account, the config permissions.
in_root dpkg -i /tmp/rocketchatd.deb >"$SCRATCH/dpkg.log" 2>&1 || { cat "$SCRATCH/dpkg.log"; fail "dpkg -i failed"; }
[ "$(in_root dpkg-query -W -f='${Status}' rocketchatd)" = "install ok installed" ] || fail "not installed"
while read -r mode owner path; do
    # postinst's statoverride: the config becomes root:rocketchatd 0640.
    [ "$path" = ./etc/rocketchatd/config.json ] && { mode=-rw-r-----; owner=root/rocketchatd; }
    # stat inside the root: owner names come from the root's own passwd.
    got=$(in_root stat -c '%A %U/%G' "${path#.}" 2>/dev/null) || fail "$path not installed"
    [ "$got" = "$mode $owner" ] || fail "installed $path is $got, want $mode $owner"
done <<<"$EXPECTED_FILES"
IFS=: read -r _ _ uid _ _ home shell < <(in_root getent passwd rocketchatd) || fail "no rocketchatd user"
[ "$uid" -lt 1000 ] && [ "$home" = /nonexistent ] || fail "rocketchatd user: uid $uid home $home"
in_root dpkg-statoverride --list /etc/rocketchatd/config.json | grep -q '^root rocketchatd 0\?640 ' || fail "no statoverride"
ok "installed: files and modes, system user rocketchatd (uid $uid, $shell), config root:rocketchatd 0640"
c=$(calls)
[ "$c" = "daemon-reload;" ] || fail "install asked systemd for: $c (want only daemon-reload: never enable/start)"
ok "install: systemctl $c (no enable, no start)"
in_root /usr/bin/rocketchatd --help >/dev/null || fail "installed binary does not run"
ok "installed binary runs (--help)"

# Upgrade (same package again): an edited config is kept, its permissions
# too, and a running service would be restarted.
echo '  ' >>"$R/etc/rocketchatd/config.json"
sum=$(md5sum <"$R/etc/rocketchatd/config.json")
in_root dpkg -i /tmp/rocketchatd.deb >"$SCRATCH/dpkg.log" 2>&1 || { cat "$SCRATCH/dpkg.log"; fail "reinstall failed"; }
[ "$(md5sum <"$R/etc/rocketchatd/config.json")" = "$sum" ] || fail "upgrade overwrote the edited config"
[ "$(in_root stat -c '%A %U/%G' /etc/rocketchatd/config.json)" = "-rw-r----- root/rocketchatd" ] || fail "upgrade changed config modes"
c=$(calls)
[ "$c" = "daemon-reload;try-restart rocketchatd.service;" ] || fail "upgrade asked systemd for: $c"
ok "upgrade: edited config kept (0640 root:rocketchatd), systemctl $c"

# Remove keeps the config; purge deletes config, state and statoverride.
mkdir -p "$R/var/lib/rocketchatd" && echo '{}' >"$R/var/lib/rocketchatd/state.json"
in_root dpkg -r rocketchatd >"$SCRATCH/dpkg.log" 2>&1 || { cat "$SCRATCH/dpkg.log"; fail "dpkg -r failed"; }
[ ! -e "$R/usr/bin/rocketchatd" ] && [ ! -e "$R/lib/systemd/system/rocketchatd.service" ] || fail "remove left files"
[ -f "$R/etc/rocketchatd/config.json" ] || fail "remove deleted the config"
c=$(calls)
[ "$c" = "stop rocketchatd.service;daemon-reload;" ] || fail "remove asked systemd for: $c"
ok "remove: binary and unit gone, config kept, systemctl $c"
in_root dpkg -P rocketchatd >"$SCRATCH/dpkg.log" 2>&1 || { cat "$SCRATCH/dpkg.log"; fail "dpkg -P failed"; }
[ ! -e "$R/etc/rocketchatd" ] && [ ! -e "$R/var/lib/rocketchatd" ] || fail "purge left /etc/rocketchatd or /var/lib/rocketchatd"
! in_root dpkg-statoverride --list /etc/rocketchatd/config.json >/dev/null || fail "purge left the statoverride"
ok "purge: config, state and statoverride gone (user kept)"
echo "check-deb: all checks passed"
