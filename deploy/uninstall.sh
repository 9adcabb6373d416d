#!/usr/bin/env bash
# Remove bedside from this machine: stop and disable every agent and the station, remove the
# units and /opt/bedside. KEEPS /etc/bedside (config, per-bed files, certificates and keys),
# /var/lib/bedside (the alarm outbox: alarms not yet delivered) and the `bedside` user, so that
# a later deploy/install.sh picks up where this left off. docs/deploy.md says how to purge.
#   sudo deploy/uninstall.sh
set -euo pipefail
PREFIX=/opt/bedside
UNITS=/etc/systemd/system
[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run as root (sudo $0)" >&2; exit 1; }

if [ -d /run/systemd/system ]; then
    units=$(systemctl list-units --all --plain --no-legend 'bedside-agent@*.service' 'bedside-station.service' | awk '{print $1}')
    enabled=$(systemctl list-unit-files --plain --no-legend 'bedside-agent@*.service' 'bedside-station.service' | awk '$2 == "enabled" {print $1}')
    for u in $units $enabled; do
        echo "uninstall.sh: stopping and disabling $u"
        systemctl disable --now "$u" >/dev/null 2>&1 || true
    done
fi
# instances enabled by name leave symlinks in the .wants folder
find "$UNITS" -name 'bedside-agent@*.service' -type l -delete 2>/dev/null || true
rm -f "$UNITS/bedside-agent@.service" "$UNITS/bedside-station.service"
[ -d /run/systemd/system ] && systemctl daemon-reload
rm -rf "$PREFIX"
echo "uninstall.sh: removed $PREFIX and the units; kept /etc/bedside, /var/lib/bedside and the user bedside"
