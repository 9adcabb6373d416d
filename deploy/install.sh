#!/usr/bin/env bash
# Install or upgrade bedside on Raspberry Pi OS bookworm 64-bit (or Debian 12 arm64/amd64).
#
#   sudo deploy/install.sh                 the agent: /opt/bedside/venv, units, /etc/bedside
#   sudo deploy/install.sh --station       the same plus the central station unit
#   sudo deploy/install.sh --wheel FILE    install this wheel instead of building one here
#
# Run it again to upgrade: the venv is updated in place, running agents are restarted, and
# /etc/bedside (config, per-bed files, certificates) and /var/lib/bedside (the alarm outbox)
# are never overwritten. deploy/uninstall.sh removes the program and keeps both.
# What it does and why: docs/deploy.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/bedside
VENV=$PREFIX/venv
ETC=/etc/bedside
STATE=/var/lib/bedside
UNITS=/etc/systemd/system
USER_NAME=bedside
STATION=0
WHEEL=""
APT=1

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --station) STATION=1 ;;
        --wheel) [ $# -ge 2 ] || die "--wheel needs a file"; WHEEL=$(realpath "$2"); shift ;;
        --no-apt) APT=0 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"

# 32-bit ARM: there is no TFLite runtime for it (ai-edge-litert ships x86_64 and aarch64 only).
# A 64-bit kernel with a 32-bit userland reports aarch64 in uname, so ask dpkg and Python too.
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
bits=$(python3 -c 'import struct; print(struct.calcsize("P") * 8)' 2>/dev/null || echo 0)
case "$arch" in
    arm64|aarch64|amd64|x86_64) ;;
    *) die "32-bit or unsupported system ($arch): bedside needs Raspberry Pi OS 64-bit (arm64); no inference runtime exists for armv7l" ;;
esac
[ "$bits" = 64 ] || die "32-bit Python ($arch userland): bedside needs Raspberry Pi OS 64-bit (arm64); no inference runtime exists for armv7l"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python >= 3.11 is required (Raspberry Pi OS / Debian bookworm has 3.11)"

# System packages: venv support, and BlueZ for the wearables (present on Raspberry Pi OS).
need=()
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ "$APT" = 1 ] && ! command -v bluetoothd >/dev/null 2>&1 && [ ! -x /usr/libexec/bluetooth/bluetoothd ]; then
    need+=(bluez)
fi
if [ ${#need[@]} -gt 0 ]; then
    [ "$APT" = 1 ] || die "missing ${need[*]} (apt-get install ${need[*]})"
    say "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# A dedicated system user, in the bluetooth group (D-Bus access to BlueZ without root).
getent group bluetooth >/dev/null || groupadd --system bluetooth
if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "bedside monitoring agent" "$USER_NAME"
fi
usermod -a -G bluetooth "$USER_NAME"

# The venv: only the runtime dependencies, at the tested versions, from binary wheels.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    install -d -m 0755 "$PREFIX"
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$WHEEL" ]; then
    # The device wheel leaves out `tools` (training and evaluation, never run on a Pi) and the
    # tests: only agent, firmware_bridge and models are copied into the build tree.
    say "building the wheel (agent, firmware_bridge, models; no tools)"
    mkdir "$tmp/src"
    (cd "$REPO" && tar -cf - --exclude=__pycache__ pyproject.toml README.md agent firmware_bridge models) \
        | tar -xf - -C "$tmp/src"
    "$VENV/bin/python" -m pip wheel -q --no-deps -w "$tmp/dist" "$tmp/src" 2> "$tmp/build.log" \
        || { cat "$tmp/build.log" >&2; die "building the wheel failed"; }
    WHEEL=$(ls "$tmp"/dist/bedside_agent-*.whl)
fi
[ -f "$WHEEL" ] || die "no wheel at $WHEEL"
say "installing $(basename "$WHEEL") and its runtime dependencies into $VENV"
"$VENV/bin/python" -m pip uninstall -q -y bedside-agent >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install -q --only-binary=:all: -c "$REPO/constraints.txt" "$WHEEL"
version=$("$VENV/bin/bedside" --version)
say "installed: $version"

# Configuration: templates are (re)written as *.dist; the live files are never overwritten.
install -d -m 0750 -o root -g "$USER_NAME" "$ETC" "$ETC/beds" "$ETC/tls"
install -m 0640 -o root -g "$USER_NAME" "$REPO/deploy/agent.toml" "$ETC/agent.toml.dist"
install -m 0640 -o root -g "$USER_NAME" "$REPO/deploy/beds/bed.env.example" "$ETC/beds/bed.env.example"
[ -f "$ETC/agent.toml" ] || install -m 0640 -o root -g "$USER_NAME" "$REPO/deploy/agent.toml" "$ETC/agent.toml"
if [ "$STATION" = 1 ]; then
    install -m 0640 -o root -g "$USER_NAME" "$REPO/deploy/station.toml" "$ETC/station.toml.dist"
    [ -f "$ETC/station.toml" ] || install -m 0640 -o root -g "$USER_NAME" "$REPO/deploy/station.toml" "$ETC/station.toml"
fi
# The state folder (systemd's StateDirectory= would create it too; owned by the agent).
install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$STATE"

# Units.
install -m 0644 "$REPO/deploy/bedside-agent@.service" "$UNITS/bedside-agent@.service"
[ "$STATION" = 1 ] && install -m 0644 "$REPO/deploy/bedside-station.service" "$UNITS/bedside-station.service"
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    # an upgrade: restart what runs (the outbox keeps undelivered alarms across the restart)
    running=$(systemctl list-units --plain --no-legend --state=active 'bedside-agent@*.service' 'bedside-station.service' | awk '{print $1}')
    if [ -n "$running" ]; then
        say "restarting $(echo "$running" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        systemctl restart $running
    fi
else
    say "no running systemd here (container or chroot): units copied, nothing started"
fi

cat <<EOF
install.sh: done ($version).
Next, for each bed on this Pi (docs/deploy.md, "Ten beds"):
  1. edit $ETC/agent.toml (broker URL, site CA) once;
  2. cp $ETC/beds/bed.env.example $ETC/beds/bed01.env and set the unit, bed and wearables;
  3. put the bed's certificate and key in $ETC/tls/ (bedside provision on the station);
  4. sudo systemd-run --pipe --wait -p User=$USER_NAME -p EnvironmentFile=$ETC/beds/bed01.env \\
       $VENV/bin/bedside validate-config $ETC/agent.toml
  5. sudo systemctl enable --now bedside-agent@bed01; journalctl -u bedside-agent@bed01 -f
EOF
