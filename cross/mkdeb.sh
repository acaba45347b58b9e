#!/usr/bin/env bash
# Builds one rocketchatd .deb with plain dpkg-deb (no debhelper: the package
# is one static binary, a unit, an example config and a README).
#
#   cross/mkdeb.sh ARCH BINARY DEB_VERSION OUTDIR
#     ARCH: armhf | arm64 | amd64 (Debian architecture of BINARY)
#
# Called by cross/build.sh --deb. No Depends: the binary is static; the
# maintainer scripts use only what every Debian system has (sh, getent,
# useradd or adduser, dpkg-statoverride, and systemctl when systemd runs).
set -euo pipefail

[ $# -eq 4 ] || { echo "usage: $0 ARCH BINARY DEB_VERSION OUTDIR" >&2; exit 2; }
ARCH=$1 BIN=$2 VERSION=$3 OUT=$4
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/cross/deb
MAINTAINER=${DEB_MAINTAINER:-rocketchatd maintainers <rocketchatd@invalid>}

case "$ARCH" in armhf | arm64 | amd64) ;; *) echo "mkdeb: unknown arch $ARCH" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "mkdeb: $BIN is not an executable" >&2; exit 1; }

# Package tree in a scratch directory, every mode set explicitly (the
# umask of whoever builds must not leak into the package).
PKG=$(mktemp -d)
trap 'rm -rf "$PKG"' EXIT
chmod 0755 "$PKG" # mktemp makes it 0700; it becomes the archive's "./"
install -d -m 0755 "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/lib/systemd/system" \
    "$PKG/etc/rocketchatd" "$PKG/usr/share/doc/rocketchatd"
install -m 0755 "$BIN" "$PKG/usr/bin/rocketchatd"
install -m 0644 "$ROOT/systemd/rocketchatd.service" "$PKG/lib/systemd/system/rocketchatd.service"
# 0600 root in the package: the example has a placeholder password, and a
# filled-in config must never be world-readable, not even between unpack and
# postinst (which makes it root:rocketchatd 0640 for the service).
install -m 0600 "$SRC/config.json" "$PKG/etc/rocketchatd/config.json"
install -m 0644 "$SRC/README" "$PKG/usr/share/doc/rocketchatd/README"
for script in postinst prerm postrm; do
    install -m 0755 "$SRC/$script" "$PKG/DEBIAN/$script"
done

# The config is a conffile: dpkg keeps the admin's edits on upgrade.
printf '/etc/rocketchatd/config.json\n' >"$PKG/DEBIAN/conffiles"
chmod 0644 "$PKG/DEBIAN/conffiles"

cat >"$PKG/DEBIAN/control" <<EOF
Package: rocketchatd
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
Section: net
Priority: optional
Description: bridge between Jeedom home automation and Rocket.Chat
 rocketchatd logs into a Rocket.Chat server as a bot, forwards the messages
 it sees to Jeedom through the plugin's callback, and posts what Jeedom asks
 it to (messages, files, questions with answer buttons).
 .
 One static binary, started by the Jeedom plugin or run as the systemd
 service rocketchatd.service (installed disabled).
EOF
chmod 0644 "$PKG/DEBIAN/control"

# xz, not zstd: dpkg on Debian 9 Stretch and 10 Buster cannot read zstd.
# --root-owner-group: every file root:root whoever builds. Timestamps come
# from the last commit (SOURCE_DATE_EPOCH) so rebuilds are reproducible.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
mkdir -p "$OUT"
DEB=$OUT/rocketchatd_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >/dev/null
echo "$DEB ($(stat -c %s "$DEB") bytes)"
