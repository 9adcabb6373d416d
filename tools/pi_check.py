"""``python -m tools.pi_check compare X86_DIR ARM64_DIR``: the arm64 run must equal the x86 one.

``./run.sh pi-check`` (scripts/pi_check.sh) runs the same two things on this machine and in a
Debian bookworm arm64 root file system under qemu-user-static, and this module compares them:

- ``bedside analyze`` of one MIT-BIH record: ``beats.csv`` and ``rhythm.csv`` byte for byte,
  ``alarms.jsonl`` line for line with the wall-clock fields masked (``alarm_id``, ``ts_utc``,
  ``onset_utc``: :data:`tools.golden.MASKED_KEYS`); beats include every class and confidence,
  alarms every evidence beat, RR interval and strip sample;
- a 30-s simulated ``bedside run --stop-after 30`` against a broker, as captured from MQTT
  (``mqtt.jsonl``: one ``{"topic", "payload"}`` per message): every alarm event (masked the
  same way, ``device_id`` and the topic's bed too) and the final status counters ``beats``,
  ``frames_in``, ``frames_dropped``, ``alarm_events``. Vitals are left out: they are sampled
  once a second by the wall clock, so their values depend on machine speed by design.

Exit status 0 when everything is identical, 1 otherwise (the first difference is printed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from tools.golden import MASKED_KEYS, mask_line

STATUS_KEYS: Final = ("beats", "frames_in", "frames_dropped", "alarm_events")
"""Status counters that must be equal: they count the stream, not the wall clock."""


def _analyze_outputs(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix not in {".csv", ".jsonl"}:
            continue
        text = path.read_text()
        if path.suffix == ".jsonl":
            text = "\n".join(mask_line(line) for line in text.splitlines() if line.strip())
        out[str(path.relative_to(root))] = text
    return out


def _mask_alarm(payload: dict[str, Any]) -> str:
    for key in (*MASKED_KEYS, "device_id"):
        if key in payload:
            payload[key] = "*"
    return json.dumps(payload, sort_keys=True)


def run_summary(mqtt_jsonl: Path) -> dict[str, Any]:
    """Return the machine-independent part of a captured ``bedside run``.

    Parameters
    ----------
    mqtt_jsonl
        One JSON object per line, ``{"topic": str, "payload": str}``, in arrival order.

    Returns
    -------
    dict
        ``alarms``: masked alarm events in order; ``status``: the last status message's
        :data:`STATUS_KEYS` counters; ``conditions``: ``lifecycle condition`` per event.
    """
    alarms: list[str] = []
    conditions: list[str] = []
    status: dict[str, int] = {}
    for line in mqtt_jsonl.read_text().splitlines():
        if not line.strip():
            continue
        msg = json.loads(line)
        topic = str(msg["topic"])
        try:
            payload = json.loads(msg["payload"])
        except json.JSONDecodeError:
            continue
        if topic.endswith("/alarms"):
            conditions.append(f"{payload['lifecycle']} {payload['condition']}")
            alarms.append(_mask_alarm(payload))
        elif topic.endswith("/status") and isinstance(payload.get("counters"), dict):
            status = {k: int(payload["counters"].get(k, -1)) for k in STATUS_KEYS}
    return {"alarms": alarms, "conditions": conditions, "status": status}


def compare(x86: Path, arm64: Path) -> list[str]:
    """Return the differences between the two runs' outputs (empty when identical)."""
    problems: list[str] = []
    a, b = _analyze_outputs(x86 / "analyze"), _analyze_outputs(arm64 / "analyze")
    if not a:
        problems.append(f"no analyze output under {x86 / 'analyze'}")
    if a.keys() != b.keys():
        problems.append(f"analyze files differ: {sorted(a)} vs {sorted(b)}")
    for name in sorted(a.keys() & b.keys()):
        if a[name] != b[name]:
            la, lb = a[name].splitlines(), b[name].splitlines()
            first = next(
                (i for i, (p, q) in enumerate(zip(la, lb, strict=False)) if p != q),
                min(len(la), len(lb)),
            )
            problems.append(
                f"analyze {name}: first difference at line {first + 1}"
                f" ({len(la)} vs {len(lb)} lines)"
            )
    ra, rb = run_summary(x86 / "run" / "mqtt.jsonl"), run_summary(arm64 / "run" / "mqtt.jsonl")
    if not ra["status"]:
        problems.append("the x86 run published no final status")
    for key in ("status", "conditions", "alarms"):
        if ra[key] != rb[key]:
            problems.append(
                f"run {key}: {ra[key] if key != 'alarms' else '...'} vs "
                f"{rb[key] if key != 'alarms' else '...'}"
            )
    return problems


def _describe(root: Path) -> str:
    beats = sum(
        max(0, len(p.read_text().splitlines()) - 1) for p in (root / "analyze").rglob("beats.csv")
    )
    alarms = sum(
        len([x for x in p.read_text().splitlines() if x.strip()])
        for p in (root / "analyze").rglob("alarms.jsonl")
    )
    run = run_summary(root / "run" / "mqtt.jsonl")
    return (
        f"analyze: {beats} beats, {alarms} alarm events; run: {run['status']},"
        f" events {run['conditions']}"
    )


def capture(url: str, topic: str, out: Path) -> int:
    """Write every message on ``topic`` to ``out`` (JSON lines) until SIGTERM / SIGINT.

    Prints ``subscribed`` on stdout once the broker has acknowledged the subscription, so that
    the caller can start the run without losing its first messages.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from agent.config import parse_mqtt_url

    host, port = parse_mqtt_url(url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with out.open("w") as fh:
        lock = threading.Lock()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            line = json.dumps({"topic": msg.topic, "payload": msg.payload.decode(errors="replace")})
            with lock:
                fh.write(line + "\n")
                fh.flush()

        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.on_message = on_message
        client.on_subscribe = lambda *_: print("subscribed", flush=True)
        client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        client.connect(host, port)
        client.loop_start()
        stop.wait()
        client.loop_stop()
        client.disconnect()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Compare two pi-check output folders (or capture MQTT); return the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m tools.pi_check", description=__doc__.splitlines()[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    cmp_ = sub.add_parser("compare", help="compare the x86 and arm64 outputs")
    cmp_.add_argument("x86", type=Path)
    cmp_.add_argument("arm64", type=Path)
    cap = sub.add_parser("capture", help="write MQTT messages to a JSON-lines file until SIGTERM")
    cap.add_argument("url")
    cap.add_argument("topic")
    cap.add_argument("out", type=Path)
    args = p.parse_args(argv)
    if args.command == "capture":
        return capture(args.url, args.topic, args.out)
    for root in (args.x86, args.arm64):
        if not (root / "analyze").is_dir() or not (root / "run" / "mqtt.jsonl").is_file():
            print(f"pi_check: error: {root} has no analyze/ or run/mqtt.jsonl", file=sys.stderr)
            return 2
    print(f"x86_64: {_describe(args.x86)}")
    print(f"arm64:  {_describe(args.arm64)}")
    problems = compare(args.x86, args.arm64)
    for line in problems:
        print(f"pi_check: DIFFERENT: {line}")
    if not problems:
        print("pi_check: IDENTICAL beats, rhythm and alarms (analyze) and alarms + counts (run)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
