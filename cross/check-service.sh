#!/usr/bin/env bash
# Runs systemd/rocketchatd.service for real, under a real systemd, although
# PID 1 here is not systemd: boots a minimal Debian 12 with systemd in a
# systemd-nspawn container (private network), installs the amd64 .deb there
# and starts the unit with its full sandbox (seccomp filter, read-only
# system, no capabilities...) around the real daemon from the package. The
# container has no network, so the config points at a closed loopback port:
# the daemon reads its config as the service user, listens on its command
# socket (READY=1), fails to reach Rocket.Chat and says so (STATUS=), keeps
# retrying while feeding the watchdog, writes $STATE_DIRECTORY/state.json,
# and stops cleanly on SIGTERM. A drop-in only shortens WatchdogSec= and
# RestartSec= so that the watchdog check is quick.
#
#   cross/check-service.sh [DEB]
#     DEB    default target/dist/rocketchatd_<version>_amd64.deb
#            (made by cross/build.sh --selftest --deb x86_64)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
fail() { echo "check-service: FAIL: $*" >&2; exit 1; }
ok() { echo "  ok  $*"; }

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
DEB=${1:-target/dist/rocketchatd_$(sed 's/-/~/g' <<<"$VERSION")_amd64.deb}
[ -f "$DEB" ] || fail "$DEB missing (cross/build.sh --selftest --deb x86_64)"

# systemd-nspawn (systemd-container) boots the root; debootstrap makes it.
missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian 12 minbase + systemd, cached as a tarball (about 40 s to make).
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/rocketchatd-cross
ROOTFS=$CACHE/bookworm-systemd.tar.gz
SCRATCH=$(mktemp -d)
R=$SCRATCH/root
NSPAWN_PID=""
LEADER=""
cleanup() {
    # Stop the container we started, by pid: SIGTERM asks nspawn for a clean
    # shutdown; if that hangs, SIGKILL to the container's init (which takes
    # its whole pid namespace along) and to nspawn. Then drop the root.
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        for _ in $(seq 40); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$NSPAWN_PID" 2>/dev/null; then
            [ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null
            kill -KILL "$NSPAWN_PID" 2>/dev/null || true
        fi
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
mkdir -p "$R"
if ! [ -s "$ROOTFS" ]; then
    echo "making the Debian 12 + systemd root (debootstrap, once)"
    debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm "$R" http://deb.debian.org/debian \
        >"$SCRATCH/debootstrap.log" 2>&1 || { tail "$SCRATCH/debootstrap.log"; fail "debootstrap failed"; }
    rm -f "$R/var/cache/apt/archives/"*.deb
    mkdir -p "$CACHE"
    tar -C "$R" -czf "$ROOTFS.tmp" . && mv "$ROOTFS.tmp" "$ROOTFS"
else
    tar -C "$R" -xzf "$ROOTFS"
fi

# Install the package before boot (postinst: user, statoverride), point its
# config at a closed port, and shorten the watchdog with a drop-in.
cp "$DEB" "$R/tmp/rocketchatd.deb"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$R" dpkg -i /tmp/rocketchatd.deb >"$SCRATCH/dpkg.log" 2>&1 ||
    { cat "$SCRATCH/dpkg.log"; fail "dpkg -i failed"; }
sed -i 's|"url": *"[^"]*"|"url": "http://127.0.0.1:9"|' "$R/etc/rocketchatd/config.json"
mkdir -p "$R/etc/systemd/system/rocketchatd.service.d"
cat >"$R/etc/systemd/system/rocketchatd.service.d/quick.conf" <<'EOF'
[Service]
WatchdogSec=3s
RestartSec=1s
EOF
ok "package installed in the container root, quick-watchdog drop-in in place"

# Boot. The container's PID 1 is nspawn's child; we talk to it via nsenter.
systemd-nspawn -q -D "$R" --register=no --keep-unit --private-network -b --console=read-only \
    >"$SCRATCH/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!
for _ in $(seq 100); do
    # nspawn forks helpers first: wait for the child that runs systemd.
    LEADER=$(ps -o pid=,comm= --ppid "$NSPAWN_PID" | awk '$2 == "systemd" {print $1; exit}' || true)
    [ -n "$LEADER" ] && break
    sleep 0.1
done
[ -n "$LEADER" ] || { cat "$SCRATCH/console.log"; fail "container did not start"; }
in_ct() { nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
# Until systemd has its control socket, systemctl fails at once: poll.
state=""
for _ in $(seq 120); do
    state=$(in_ct timeout 10 systemctl is-system-running --wait 2>/dev/null || true)
    case "$state" in running | degraded) break ;; esac
    sleep 0.5
done
case "$state" in
    running | degraded) ok "container booted: systemd $(in_ct systemctl --version | awk 'NR==1{print $2}'), $state" ;;
    *) tail -20 "$SCRATCH/console.log"; fail "container did not boot ($state)" ;;
esac
journal() { in_ct journalctl -u rocketchatd --no-pager -o cat 2>/dev/null | tail -n "${1:-20}"; }

# Start: Type=notify returns once READY=1 arrived.
if ! in_ct timeout 30 systemctl start rocketchatd.service; then
    journal 30
    fail "systemctl start rocketchatd failed"
fi
[ "$(in_ct systemctl is-active rocketchatd.service)" = active ] || { journal; fail "not active after start"; }
status=$(in_ct systemctl show -P StatusText rocketchatd.service)
for _ in $(seq 40); do
    [[ "$status" == *connect* ]] && break
    sleep 0.25
    status=$(in_ct systemctl show -P StatusText rocketchatd.service)
done
[[ "$status" == *connect* ]] || { journal; fail "STATUS= not seen: '$status'"; }
ok "started (Type=notify, READY=1); STATUS=$status"

# Watchdog: 3 s in the drop-in; alive and not restarted after 8 s of retries.
sleep 8
[ "$(in_ct systemctl is-active rocketchatd.service)" = active ] || { journal; fail "died within 8 s (watchdog?)"; }
[ "$(in_ct systemctl show -P NRestarts rocketchatd.service)" = 0 ] || { journal; fail "was restarted"; }
ok "still active after 8 s with WatchdogSec=3s while retrying (WATCHDOG=1 pings arrive)"

# Sandbox as seen from inside: user, state directory, config permissions.
pid=$(in_ct systemctl show -P MainPID rocketchatd.service)
user=$(in_ct stat -c %U "/proc/$pid")
[ "$user" = rocketchatd ] || fail "runs as '$user', not rocketchatd"
[ "$(in_ct stat -c '%U %a' /var/lib/rocketchatd)" = "rocketchatd 700" ] || fail "state dir: $(in_ct stat -c '%U %a' /var/lib/rocketchatd)"
[ "$(in_ct stat -c '%U %a' /var/lib/rocketchatd/state.json)" = "rocketchatd 600" ] || fail "state file (UMask=0077?)"
caps=$(in_ct grep CapEff "/proc/$pid/status" | awk '{print $2}')
[ "$caps" = 0000000000000000 ] || fail "has capabilities $caps"
seccomp=$(in_ct grep '^Seccomp:' "/proc/$pid/status" | awk '{print $2}')
[ "$seccomp" = 2 ] || fail "no seccomp filter (Seccomp: $seccomp)"
nnp=$(in_ct grep '^NoNewPrivs:' "/proc/$pid/status" | awk '{print $2}')
[ "$nnp" = 1 ] || fail "NoNewPrivs is $nnp"
ok "runs as rocketchatd, no capabilities, seccomp filter on, NoNewPrivs; state.json 0600 in /var/lib/rocketchatd (0700)"

# Stop: SIGTERM, STOPPING=1, clean exit 0.
in_ct timeout 30 systemctl stop rocketchatd.service
result=$(in_ct systemctl show -P Result rocketchatd.service)
code=$(in_ct systemctl show -P ExecMainStatus rocketchatd.service)
[ "$result" = success ] && [ "$code" = 0 ] || { journal; fail "stop: Result=$result status=$code"; }
ok "stopped cleanly (Result=$result, exit $code)"
echo "  journal:"
journal 6 | sed 's/^/    /'

# A hung daemon: SIGSTOP stops its pings; the watchdog must restart it.
in_ct systemctl start rocketchatd.service
pid=$(in_ct systemctl show -P MainPID rocketchatd.service)
in_ct sh -c "kill -STOP $pid" # sh builtin: minbase has no procps
for _ in $(seq 80); do
    [ "$(in_ct systemctl show -P NRestarts rocketchatd.service)" -ge 1 ] && break
    sleep 0.25
done
[ "$(in_ct systemctl show -P NRestarts rocketchatd.service)" -ge 1 ] || { journal; fail "watchdog did not restart a hung daemon"; }
for _ in $(seq 40); do
    [ "$(in_ct systemctl is-active rocketchatd.service)" = active ] && break
    sleep 0.25
done
[ "$(in_ct systemctl is-active rocketchatd.service)" = active ] || { journal; fail "not active again after the watchdog restart"; }
ok "hung daemon (SIGSTOP): watchdog timeout, restarted (Restart=on-failure), active again"
in_ct systemctl stop rocketchatd.service
echo "check-service: all checks passed"
