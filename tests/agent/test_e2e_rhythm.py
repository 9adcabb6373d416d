"""End to end, rhythm: `bedside run` → real mosquitto → subscriber.

- afdb 04015 replayed as an RR-only stream (its ``.qrs`` beat annotations, as a Heart Rate
  Service strap would send them) raises and clears ``afib`` around the annotated AF;
- vfdb 418 (ECG) raises ``vfib`` within 10 s of the annotated onset of ventricular flutter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import wfdb

from tests.fixtures_mqtt import MqttBroker, mqtt_collector


def _rhythm_onsets(record: Path, codes: set[str]) -> list[float]:
    ann = wfdb.rdann(str(record), "atr")
    return [
        s / ann.fs
        for s, note in zip(ann.sample, ann.aux_note, strict=True)
        if note.strip("\x00").lstrip("(") in codes
    ]


def _run_agent(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "run", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stop(agent: subprocess.Popen[bytes]) -> str:
    agent.send_signal(signal.SIGTERM)
    return agent.communicate(timeout=60)[0].decode(errors="replace")


@pytest.mark.slow
def test_afdb_rr_stream_raises_and_clears_afib(
    data_dir: Path, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    record = data_dir / "afdb" / "04015"
    af_onsets = _rhythm_onsets(record, {"AFIB"})
    base = "bedside/v1/e2e/af"
    argv = [
        "--source", f"rr:{record}", "--rr-annotations", "qrs", "--speed", "100",
        "--broker", mqtt_broker.url, "--bed", "e2e/af",
        "--outbox", str(tmp_path / "outbox.sqlite3"),
    ]  # fmt: skip
    with mqtt_collector(mqtt_broker.url, f"{base}/alarms") as sub:

        def afib(lifecycle: str) -> list[dict[str, object]]:
            msgs = [json.loads(p) for _t, p, _r in sub.messages]
            return [m for m in msgs if m["condition"] == "afib" and m["lifecycle"] == lifecycle]

        agent = _run_agent(argv)
        try:
            # reference AF from 410 s: at 100x, about 4 s into the run
            ok = sub.wait_for(
                lambda: (
                    any(
                        min(abs(float(a["onset_s"]) - t) for t in af_onsets) <= 60.0  # type: ignore[arg-type]
                        for a in afib("raised")
                    )
                    and len(afib("cleared")) >= 1
                ),
                timeout_s=120,
            )
        finally:
            out = _stop(agent)
        assert ok, out[-3000:]
    for alarm in afib("raised"):
        assert alarm["priority"] == "medium"
        assert float(alarm["raised_s"]) >= float(alarm["onset_s"])  # type: ignore[arg-type]
        assert alarm["model_versions"]
    first_true = min(
        float(a["raised_s"]) - t  # type: ignore[arg-type]
        for a in afib("raised")
        for t in af_onsets
        if float(a["raised_s"]) - t >= 0  # type: ignore[arg-type]
    )
    print(f"afib raised {first_true:.1f} s after an annotated AF onset")
    assert first_true <= 60.0


@pytest.mark.slow
def test_vfdb_418_raises_vfib_within_10_s(
    data_dir: Path, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    record = data_dir / "vfdb" / "418"
    onsets = _rhythm_onsets(record, {"VF", "VFL"})
    assert onsets[0] == pytest.approx(398.5, abs=0.5)
    base = "bedside/v1/e2e/vf"
    argv = [
        "--source", f"replay:{record}", "--speed", "40", "--broker", mqtt_broker.url,
        "--bed", "e2e/vf", "--outbox", str(tmp_path / "outbox.sqlite3"),
    ]  # fmt: skip
    with mqtt_collector(mqtt_broker.url, f"{base}/alarms") as sub:

        def vfib() -> list[dict[str, object]]:
            msgs = [json.loads(p) for _t, p, _r in sub.messages]
            return [m for m in msgs if m["condition"] == "vfib" and m["lifecycle"] == "raised"]

        agent = _run_agent(argv)
        try:
            ok = sub.wait_for(lambda: len(vfib()) >= 1, timeout_s=90)
        finally:
            out = _stop(agent)
        assert ok, out[-3000:]
    alarm = vfib()[0]
    raised_s = float(alarm["raised_s"])  # type: ignore[arg-type]
    delay = raised_s - onsets[0]
    print(f"vfib raised {delay:.1f} s after the annotated onset")
    assert 0.0 <= delay <= 10.0
    assert alarm["priority"] == "high"
    assert alarm["latched"] is True
