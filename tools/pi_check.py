"""``python -m tools.pi_check compare X86_DIR ARM64_DIR``: the arm64 run against the x86 one.

``./run.sh pi-check`` (scripts/pi_check.sh) runs the same two things on this machine and in a
Debian bookworm arm64 root file system under qemu-user-static, and this module compares them:

- ``bedside analyze`` of one MIT-BIH record: ``rhythm.csv`` byte for byte; ``beats.csv`` beat
  for beat (sample, time and AAMI class exactly, the classifier's confidence to within
  :data:`CONFIDENCE_TOLERANCE`); ``alarms.jsonl`` line for line with the
  wall-clock fields masked (``alarm_id``, ``ts_utc``, ``onset_utc``:
  :data:`tools.golden.MASKED_KEYS`) and the evidence beats' confidences held to the same
  tolerance and strip samples to within :data:`STRIP_TOLERANCE_UV`;
- a 30-s simulated ``bedside run --stop-after 30`` against a broker, as captured from MQTT
  (``mqtt.jsonl``: one ``{"topic", "payload"}`` per message): every *physiological* alarm event
  (masked the same way, ``device_id`` too) and the final status counters ``beats``,
  ``frames_in``, ``frames_dropped``. Technical alarms are listed but not compared: the
  runtime's ``sensor_disconnected`` watches wall-clock arrival of data, so an emulated (slow)
  start may raise it by design; vitals are sampled by the wall clock too.

Why tolerances (measured, ``./run.sh pi-check`` of 2026-11-30): the int8 beat CNN itself gives
outputs a quantization step apart on x86-64 and aarch64 for *identical* int8 inputs
(ai-edge-litert 2.3.0, XNNPACK and built-in kernels alike; the AF LSTM is bit-identical), and
floating-point filtering differs in its last bits between the two (vectorised libm), which the
ECGSYN simulation's ODE carries forward into the simulated ECG itself (up to 22 µV measured),
so a confidence may move by a few steps of 1/256 and a simulated strip by a few µV while
every beat position, class, rhythm, alarm onset and RR interval is the same. Counts and the
largest strip difference are reported.

Exit status 0 when everything matches, 1 otherwise (each difference is printed).
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from tools.golden import MASKED_KEYS

STATUS_KEYS: Final = ("beats", "frames_in", "frames_dropped")
"""Status counters that must be equal: they count the stream, not the wall clock."""

CONFIDENCE_TOLERANCE: Final = 0.05
"""A bound for gross errors (a wrong model, a wrong scaling), not a measured equivalence: the
beat CNN's confidence differed between x86-64 and aarch64 by at most 2/256 on mitdb 100 (17 of
2291 values) and 7/256 = 0.027 on mitdb 232 (81 of 1782 beats), with no class changed. The
largest difference found is printed."""

STRIP_TOLERANCE_UV: Final = 50
"""Evidence-strip samples may differ by this much, µV (4 % of the simulated 1.2 mV R wave). The
simulated patient is not bit-identical across architectures: ECGSYN integrates an ODE, which
carries last-bit differences of the vectorised libm forward; measured in the 30-s run's 6-s
strip (1500 samples): median 3 µV, max 22 µV. A recording (``analyze``) has identical input."""


def _set_aside(obj: Any, confidences: list[float], strip_uv: list[int]) -> Any:  # noqa: ANN401
    """Return ``obj`` (any JSON value) with confidences and strip samples moved to the lists."""
    if isinstance(obj, dict):
        result: dict[str, Any] = {}
        for key, value in obj.items():
            if key == "confidence" and isinstance(value, int | float):
                confidences.append(float(value))
                result[key] = "~"
            elif key == "samples_uv" and isinstance(value, list):
                strip_uv.extend(int(v) for v in value)
                result[key] = len(value)
            else:
                result[key] = _set_aside(value, confidences, strip_uv)
        return result
    if isinstance(obj, list):
        return [_set_aside(v, confidences, strip_uv) for v in obj]
    return obj


def _alarm_key(payload: dict[str, Any], confidences: list[float], strip_uv: list[int]) -> str:
    """Return the alarm event, wall-clock fields masked, confidences and strips set aside."""
    for key in (*MASKED_KEYS, "device_id"):
        if key in payload:
            payload[key] = "*"
    return json.dumps(_set_aside(payload, confidences, strip_uv), sort_keys=True)


class _Diff:
    """Differences found, and confidences that differ within the tolerance."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.close: int = 0  # confidences that differ, within the tolerance
        self.worst: float = 0.0
        self.compared: int = 0
        self.strip_close: int = 0  # strip samples 1 µV apart
        self.strip_compared: int = 0
        self.strip_worst_uv: int = 0

    def confidences(self, where: str, a: list[float], b: list[float]) -> None:
        if len(a) != len(b):
            self.problems.append(f"{where}: {len(a)} vs {len(b)} confidences")
            return
        self.compared += len(a)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if abs(x - y) > CONFIDENCE_TOLERANCE:
                self.problems.append(f"{where}: confidence #{i} {x} vs {y}")
            elif x != y:
                self.close += 1
                self.worst = max(self.worst, abs(x - y))

    def strips(self, where: str, a: list[int], b: list[int]) -> None:
        if len(a) != len(b):
            self.problems.append(f"{where}: {len(a)} vs {len(b)} strip samples")
            return
        self.strip_compared += len(a)
        worst = max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0)
        if worst > STRIP_TOLERANCE_UV:
            self.problems.append(f"{where}: strip samples up to {worst} µV apart")
        self.strip_close += sum(x != y for x, y in zip(a, b, strict=True))
        self.strip_worst_uv = max(self.strip_worst_uv, worst)


def _beats(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _compare_analyze(x86: Path, arm64: Path, diff: _Diff) -> int:
    names = sorted(p.relative_to(x86) for p in x86.rglob("*") if p.suffix in {".csv", ".jsonl"})
    other = sorted(p.relative_to(arm64) for p in arm64.rglob("*") if p.suffix in {".csv", ".jsonl"})
    if not names:
        diff.problems.append(f"no analyze output under {x86}")
    if names != other:
        diff.problems.append(f"analyze files differ: {names} vs {other}")
    n_beats = 0
    for name in names:
        a, b = x86 / name, arm64 / name
        if not b.exists():
            continue
        if name.name == "beats.csv":
            ra, rb = _beats(a), _beats(b)
            n_beats += len(ra)
            exact = ("sample", "time_s", "aami_class")
            if [[r[k] for k in exact] for r in ra] != [[r[k] for k in exact] for r in rb]:
                first = next((i for i, (p, q) in enumerate(zip(ra, rb, strict=False)) if p != q), 0)
                diff.problems.append(
                    f"analyze {name}: beat #{first} differs ({len(ra)} vs {len(rb)})"
                )
                continue

            def conf(rows: list[dict[str, str]]) -> list[float]:
                return [float(r["confidence"] or "nan") for r in rows if r["confidence"]]

            diff.confidences(f"analyze {name}", conf(ra), conf(rb))
        elif name.suffix == ".jsonl":
            ca: list[float] = []
            cb: list[float] = []
            sa: list[int] = []
            sb: list[int] = []
            la = [_alarm_key(json.loads(x), ca, sa) for x in a.read_text().splitlines() if x]
            lb = [_alarm_key(json.loads(x), cb, sb) for x in b.read_text().splitlines() if x]
            if la != lb:
                diff.problems.append(f"analyze {name}: alarm events differ")
            else:
                diff.confidences(f"analyze {name}", ca, cb)
                diff.strips(f"analyze {name}", sa, sb)
        elif a.read_text() != b.read_text():
            diff.problems.append(f"analyze {name}: differs")
    return n_beats


def run_summary(mqtt_jsonl: Path) -> dict[str, Any]:
    """Return the machine-independent part of a captured ``bedside run``.

    Parameters
    ----------
    mqtt_jsonl
        One JSON object per line, ``{"topic": str, "payload": str}``, in arrival order.

    Returns
    -------
    dict
        ``alarms``: masked physiological alarm events in order, confidences and evidence strip
        samples set aside into ``confidences`` and ``strip_uv``; ``conditions``:
        ``lifecycle condition`` per physiological event;
        ``technical``: the same for technical events (not compared); ``status``: the last
        status message's :data:`STATUS_KEYS` counters.
    """
    alarms: list[str] = []
    confidences: list[float] = []
    strip_uv: list[int] = []
    conditions: list[str] = []
    technical: list[str] = []
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
            label = f"{payload['lifecycle']} {payload['condition']}"
            if payload.get("kind") == "technical":
                technical.append(label)
                continue
            conditions.append(label)
            alarms.append(_alarm_key(payload, confidences, strip_uv))
        elif topic.endswith("/status") and isinstance(payload.get("counters"), dict):
            status = {k: int(payload["counters"].get(k, -1)) for k in STATUS_KEYS}
    return {
        "alarms": alarms,
        "confidences": confidences,
        "strip_uv": strip_uv,
        "conditions": conditions,
        "technical": technical,
        "status": status,
    }


def compare(x86: Path, arm64: Path) -> list[str]:
    """Return the differences between the two runs' outputs (empty when they match)."""
    return _compare(x86, arm64).problems


def _compare(x86: Path, arm64: Path) -> _Diff:
    diff = _Diff()
    _compare_analyze(x86 / "analyze", arm64 / "analyze", diff)
    ra, rb = run_summary(x86 / "run" / "mqtt.jsonl"), run_summary(arm64 / "run" / "mqtt.jsonl")
    if not ra["status"]:
        diff.problems.append("the x86 run published no final status")
    for key in ("status", "conditions"):
        if ra[key] != rb[key]:
            diff.problems.append(f"run {key}: {ra[key]} vs {rb[key]}")
    if ra["alarms"] != rb["alarms"]:
        diff.problems.append("run alarms: the physiological alarm events differ")
    else:
        diff.confidences("run alarms", ra["confidences"], rb["confidences"])
        diff.strips("run alarms", ra["strip_uv"], rb["strip_uv"])
    return diff


def _describe(root: Path) -> str:
    beats = sum(len(_beats(p)) for p in (root / "analyze").rglob("beats.csv"))
    alarms = sum(
        len([x for x in p.read_text().splitlines() if x.strip()])
        for p in (root / "analyze").rglob("alarms.jsonl")
    )
    run = run_summary(root / "run" / "mqtt.jsonl")
    return (
        f"analyze: {beats} beats, {alarms} alarm events; run: {run['status']},"
        f" physiological {run['conditions']}, technical {run['technical']}"
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
    diff = _compare(args.x86, args.arm64)
    for line in diff.problems:
        print(f"pi_check: DIFFERENT: {line}")
    if not diff.problems:
        print(
            "pi_check: SAME beats (sample, time, class), rhythm and alarms (analyze), and"
            " physiological alarms and counts (run);"
            f" {diff.close} of {diff.compared} classifier confidences and {diff.strip_close} of"
            f" {diff.strip_compared} evidence-strip samples differ within the tolerances"
            f" (largest {diff.worst:.4f} = {diff.worst * 256:.1f}/256 and {diff.strip_worst_uv} µV;"
            f" bounds {CONFIDENCE_TOLERANCE} and {STRIP_TOLERANCE_UV} µV)"
        )
    return 1 if diff.problems else 0


if __name__ == "__main__":
    sys.exit(main())
