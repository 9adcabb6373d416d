#!/usr/bin/env bash
# ./run.sh pi-check: prove bedside on arm64 (Raspberry Pi OS bookworm 64-bit = Debian bookworm
# arm64) from an x86 machine, and check that it gives exactly the x86 results.
#
#  1. a minimal Debian bookworm arm64 root file system (debootstrap, cached in $PI_ROOT),
#     run under qemu-user-static through binfmt_misc;
#  2. deploy/install.sh inside it: the device wheel (no tools) into /opt/bedside/venv with the
#     runtime dependencies from aarch64 wheels at the versions of constraints.txt;
#  3. the same two runs on x86 (this checkout's .venv) and on arm64:
#     `bedside analyze` of one MIT-BIH record, and a 30-s simulated `bedside run --stop-after
#     30` against a mosquitto on this machine (the chroot shares its network);
#  4. python -m tools.pi_check compare: beats, rhythm and alarms must be identical.
#
# Needs root (debootstrap, chroot, binfmt_misc) and the network (Debian mirror, PyPI).
# Cost measured on a 2-core x86 machine shared with other work: docs/deploy.md.
#   PI_ROOT=/var/tmp/bedside-pi/root   cached root file system (delete it to start afresh)
#   PI_RECORD=232                      the mitdb record analysed (pauses: alarms with strips)
#   PI_OUT=out/pi-check                where both runs' outputs go
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PI_ROOT=${PI_ROOT:-/var/tmp/bedside-pi/root}
PI_RECORD=${PI_RECORD:-232}
PI_OUT=${PI_OUT:-out/pi-check}
DATA=${BEDSIDE_DATA_DIR:-../shared/data}
RUN_S=30
PY=$REPO/.venv/bin/python
unset PIP_FIND_LINKS  # a host-only wheel folder, absent in the chroot
start=$(date +%s)

die() { echo "pi-check: $*" >&2; exit 1; }
step() { echo "pi-check: [$(( $(date +%s) - start )) s] $*"; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, binfmt_misc): sudo ./run.sh pi-check"
[ -f "$DATA/mitdb/$PI_RECORD.hea" ] || die "no record $DATA/mitdb/$PI_RECORD (set BEDSIDE_DATA_DIR)"
[ -x "$PY" ] || die "no .venv here: ./run.sh setup first"

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
if [ ${#need[@]} -gt 0 ]; then
    step "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# binfmt_misc: systemd-binfmt does this on a normal host; containers have no systemd
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
fi

if [ ! -x "$PI_ROOT/usr/bin/python3" ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    step "debootstrap bookworm arm64 into $PI_ROOT from $mirror (a few minutes, once)"
    rm -rf "$PI_ROOT.tmp"
    mkdir -p "$(dirname "$PI_ROOT")"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$PI_ROOT.tmp" "$mirror" > "$(dirname "$PI_ROOT")/debootstrap.log" 2>&1 \
        || die "debootstrap failed: $(dirname "$PI_ROOT")/debootstrap.log"
    mv "$PI_ROOT.tmp" "$PI_ROOT"
fi
[ "$(chroot "$PI_ROOT" uname -m)" = aarch64 ] || die "the chroot does not run as aarch64 (binfmt?)"

mounted=()
cleanup() {
    [ -n "${broker_pid:-}" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
# /sys is NOT mounted: XNNPACK's cpuinfo reads the x86 host's /sys/devices/system/cpu and
# /proc/cpuinfo under qemu-user and the TFLite interpreter segfaults at creation (tried).
# Without /sys it logs "Error in cpuinfo: failed to parse ..." and runs. A real Pi is not
# affected: its /sys describes its own ARM cores.
for fs in proc dev; do
    mountpoint -q "$PI_ROOT/$fs" || { mount --bind "/$fs" "$PI_ROOT/$fs"; mounted+=("$PI_ROOT/$fs"); }
done
cp /etc/resolv.conf "$PI_ROOT/etc/resolv.conf"
# the host's trust store, so that a site's TLS-inspecting proxy works in the chroot as here
cp /etc/ssl/certs/ca-certificates.crt "$PI_ROOT/etc/ssl/certs/ca-certificates.crt"

# The source tree the device installs from: no tools, no tests (install.sh builds from it).
step "copying the device sources into the chroot"
rm -rf "$PI_ROOT/opt/src" "$PI_ROOT/opt/pi-check"
mkdir -p "$PI_ROOT/opt/src/bedside" "$PI_ROOT/opt/pi-check/data/mitdb"
tar -cf - --exclude=__pycache__ pyproject.toml README.md constraints.txt agent firmware_bridge models deploy \
    | tar -xf - -C "$PI_ROOT/opt/src/bedside"
cp "$DATA/mitdb/$PI_RECORD".{hea,dat,atr} "$PI_ROOT/opt/pi-check/data/mitdb/"

t0=$(date +%s)
step "deploy/install.sh in the arm64 chroot (venv, aarch64 wheels; slow under emulation)"
chroot "$PI_ROOT" /opt/src/bedside/deploy/install.sh --no-apt 2>&1 | sed 's/^/  arm64| /'
install_s=$(( $(date +%s) - t0 ))
chroot "$PI_ROOT" /opt/bedside/venv/bin/python -c 'import platform, sys; print("  arm64| python", sys.version.split()[0], platform.machine())'
if chroot "$PI_ROOT" /opt/bedside/venv/bin/python -c 'import tools' 2>/dev/null; then
    die "the device venv has a 'tools' package: it must not"
fi

rm -rf "$PI_OUT"
mkdir -p "$PI_OUT/x86/analyze" "$PI_OUT/x86/run" "$PI_OUT/arm64/run"

step "x86_64: bedside analyze mitdb/$PI_RECORD"
t0=$(date +%s)
nice "$REPO/.venv/bin/bedside" analyze "$DATA/mitdb/$PI_RECORD" --out "$PI_OUT/x86/analyze" --jobs 1 -q
x86_analyze_s=$(( $(date +%s) - t0 ))

step "arm64: bedside analyze mitdb/$PI_RECORD (emulated)"
t0=$(date +%s)
nice chroot "$PI_ROOT" /opt/bedside/venv/bin/bedside analyze "/opt/pi-check/data/mitdb/$PI_RECORD" \
    --out /opt/pi-check/analyze --jobs 1 -q
arm_analyze_s=$(( $(date +%s) - t0 ))
rm -rf "$PI_OUT/arm64/analyze"
cp -r "$PI_ROOT/opt/pi-check/analyze" "$PI_OUT/arm64/analyze"

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto -p "$port" > "$PI_OUT/mosquitto.log" 2>&1 &
broker_pid=$!
url=mqtt://127.0.0.1:$port
for _ in $(seq 50); do "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break; sleep 0.2; done

# capture, run, stop the capture: the run publishes its last status before it exits
run_one() {  # ARCH BED CMD...
    local arch=$1 bed=$2; shift 2
    "$PY" -m tools.pi_check capture "$url" "bedside/v1/$bed/#" "$PI_OUT/$arch/run/mqtt.jsonl" > "$PI_OUT/$arch/run/capture.out" &
    local cap=$!
    for _ in $(seq 100); do grep -q subscribed "$PI_OUT/$arch/run/capture.out" 2>/dev/null && break; sleep 0.1; done
    "$@" -q run --source simulate --stop-after "$RUN_S" --broker "$url" --bed "$bed" \
        > "$PI_OUT/$arch/run/run.log" 2>&1 || { cat "$PI_OUT/$arch/run/run.log" >&2; kill "$cap"; die "$arch run failed"; }
    sleep 1  # the last status is already at the broker (QoS 1); let the subscriber write it
    kill -TERM "$cap"; wait "$cap"
}

step "x86_64: bedside run --source simulate --stop-after $RUN_S against $url"
t0=$(date +%s)
BEDSIDE_MQTT__STATE_DIR="$REPO/$PI_OUT/x86/run/state" run_one x86 pi/x86 nice "$REPO/.venv/bin/bedside"
x86_run_s=$(( $(date +%s) - t0 ))

step "arm64: bedside run --source simulate --stop-after $RUN_S (emulated)"
t0=$(date +%s)
run_one arm64 pi/arm64 nice chroot "$PI_ROOT" /usr/bin/env BEDSIDE_MQTT__STATE_DIR=/opt/pi-check/state \
    /opt/bedside/venv/bin/bedside
arm_run_s=$(( $(date +%s) - t0 ))

step "comparing"
set +e
"$PY" -m tools.pi_check compare "$PI_OUT/x86" "$PI_OUT/arm64" | tee "$PI_OUT/result.txt"
rc=${PIPESTATUS[0]}
set -e
total_s=$(( $(date +%s) - start ))
{
    echo "times (s, wall clock; emulation costs 5-20x: never a Pi's timing):"
    echo "  install.sh in the chroot: $install_s"
    echo "  analyze mitdb/$PI_RECORD: x86 $x86_analyze_s, arm64 emulated $arm_analyze_s"
    echo "  run ${RUN_S} s simulated: x86 $x86_run_s, arm64 emulated $arm_run_s"
    echo "  pi-check in all: $total_s"
} | tee -a "$PI_OUT/result.txt"
exit "$rc"
