#!/usr/bin/env bash
# One entry point for a fresh Debian / Raspberry Pi OS machine:
#   ./run.sh demo   set up (apt + venv) if needed, then broker + simulated ward + web station (prints its URL and login)
#   ./run.sh test   set up if needed, then the whole test suite
#   ./run.sh setup  set up only
#   ./run.sh pi-check  (root) install and run on Debian bookworm arm64 under qemu; results == x86?
#   ./run.sh train beats|af   reproduce a shipped model from ../shared/data (TensorFlow in .venv-train)
#   ./run.sh train vt|af-wave the waveform VT logistic model / the int8 waveform AF window MLP
#   ./run.sh train-smoke      CI: train a few steps, convert to int8, run it in the runtime interpreter
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

setup() {
    local need=()
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto mosquitto-clients)
    # the Bluetooth tests run bleak against a fake BlueZ on a private D-Bus daemon
    command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus-daemon)
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
    # the web station's tests: Playwright drives Debian's Chromium; a real PostgreSQL server
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    [ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
    if [ ${#need[@]} -gt 0 ]; then
        echo "run.sh: installing ${need[*]} with apt-get" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    # Our own private brokers are started on free ports; the system service is not needed.
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "run.sh: Python >= 3.11 is required (Debian 12 / Raspberry Pi OS bookworm)" >&2; exit 1; }
    local stamp=.venv/.installed
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "run.sh: building the Python environment in .venv (first time: a few minutes)" >&2
        python3 -m venv .venv
        .venv/bin/python -m pip install -q --upgrade pip
        # -qq: errors only (setuptools prints an informational "Editable installation" notice)
        .venv/bin/python -m pip install -qq -c constraints.txt -e ".[dev,station]"
        echo "$want" > "$stamp"
    fi
}

# The demo needs only the runtime (and the station's extra when there is one): no test tools.
demo_setup() {
    if [ -f .venv/.installed ] && [ "$(cat .venv/.installed)" = "$(sha256sum pyproject.toml | cut -d' ' -f1)" ]; then
        return  # the full development environment is already there
    fi
    local need=()
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
    if [ ${#need[@]} -gt 0 ]; then
        echo "run.sh: installing ${need[*]} with apt-get" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "run.sh: Python >= 3.11 is required (Debian 12 / Raspberry Pi OS bookworm)" >&2; exit 1; }
    local stamp=.venv/.installed-demo
    local want extras=""
    want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
    grep -q '^station = \[' pyproject.toml && extras="[station]"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "run.sh: installing the agent's runtime into .venv (first time: a few minutes)" >&2
        python3 -m venv .venv
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -qq -c constraints.txt -e ".$extras"  # errors only
        echo "$want" > "$stamp"
    fi
}

# The training tools (TensorFlow, ~2 GB) live in their own environment, never on the Pi.
train_setup() {
    local stamp=.venv-train/.installed
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "run.sh: building the training environment in .venv-train (TensorFlow, a few minutes)" >&2
        python3 -m venv .venv-train
        .venv-train/bin/python -m pip install -q --upgrade pip
        .venv-train/bin/python -m pip install -qq -c constraints.txt -e ".[train,dev]"  # errors only
        echo "$want" > "$stamp"
    fi
}

DATA="${BEDSIDE_DATA_DIR:-../shared/data}"

case "${1:-}" in
    setup) setup ;;
    demo) demo_setup; shift; exec .venv/bin/bedside demo "$@" ;;
    test) setup; shift; exec .venv/bin/python -m pytest -q "$@" ;;
    train)
        setup
        case "${2:-}" in  # published features + logistic models: no TensorFlow needed
            vt) exec nice .venv/bin/python -m tools.vf vt-tune --data "$DATA" --out reports ;;
        esac
        train_setup
        case "${2:-}" in
            beats) exec nice .venv-train/bin/python -m tools.beats all --data "$DATA" --out models ;;
            af) exec nice .venv-train/bin/python -m tools.af all --data "$DATA" --out models ;;
            af-wave) exec nice .venv-train/bin/python -m tools.af.wave_mlp --data "$DATA" --models models --out reports ;;
            *) echo "usage: ./run.sh train beats|af|vt|af-wave" >&2; exit 2 ;;
        esac ;;
    pi-check) setup; exec scripts/pi_check.sh ;;
    train-smoke)
        setup; train_setup
        exec .venv-train/bin/python -m pytest -q -p no:cacheprovider tests/tools/test_beats_smoke.py tests/tools/test_af_smoke.py ;;
    *) echo "usage: ./run.sh demo|test|setup|pi-check|train beats|af|train-smoke" >&2; exit 2 ;;
esac
