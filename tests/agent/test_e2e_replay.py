"""End to end: mitdb 232 (long sinus pauses) through `bedside run`, a real mosquitto, a subscriber.

Checks the issue-2 contract: retained ``online`` status, vitals, pause/asystole alarms whose
onsets agree with the reference annotations within 2 s, and the last will ``offline`` once the
agent is killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray

from tests.fixtures_mqtt import MqttBroker, mqtt_collector

BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")
ONSET_TOLERANCE_S = 2.0
SPEED = 50.0
PAUSE_S = 3.0
ASYSTOLE_S = 4.0


def _annotated_onsets(record: Path, threshold_s: float) -> NDArray[np.float64]:
    """Onsets the reference implies: the beat before each RR >= threshold, plus threshold."""
    ann = wfdb.rdann(str(record), "atr")
    samples = [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS]
    t = np.asarray(samples, dtype=np.float64) / float(ann.fs)
    rr = np.diff(t)
    onsets: NDArray[np.float64] = t[:-1][rr >= threshold_s] + threshold_s
    return onsets


@pytest.mark.slow
def test_replay_232_alarms_reach_subscriber_and_last_will(
    mitdb: Path, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    record = mitdb / "232"
    base = "bedside/v1/e2e/bed232"
    with mqtt_collector(mqtt_broker.url, f"{base}/#") as sub:
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "run",
                "--source",
                f"replay:{record}",
                "--speed",
                str(SPEED),
                "--broker",
                mqtt_broker.url,
                "--bed",
                "e2e/bed232",
                "--outbox",
                str(tmp_path / "outbox.sqlite3"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:

            def status_is(state: str) -> bool:
                return any(
                    t == f"{base}/status" and json.loads(p)["state"] == state
                    for t, p, _ in sub.messages
                )

            def alarms() -> list[dict[str, object]]:
                return [json.loads(p) for t, p, _ in sub.messages if t == f"{base}/alarms"]

            def raised(cond: str) -> list[dict[str, object]]:
                return [
                    a for a in alarms() if a["condition"] == cond and a["lifecycle"] == "raised"
                ]

            assert sub.wait_for(lambda: status_is("online"), timeout_s=60)
            assert sub.wait_for(
                lambda: any(t == f"{base}/vitals" for t, _, _ in sub.messages), timeout_s=30
            )
            # The first annotated pauses are at 636-646 s of the record (13 s at 50x) and the
            # record ends at 1805 s (36 s). Wait until several pauses and an asystole came in.
            assert sub.wait_for(
                lambda: len(raised("pause")) >= 5 and len(raised("asystole")) >= 2,
                timeout_s=90,
            ), [(a["condition"], a["lifecycle"], a["onset_s"]) for a in alarms()]
        finally:
            agent.send_signal(signal.SIGKILL)
            out = agent.communicate(timeout=30)[0].decode(errors="replace")
        # the retained status is now the last will
        assert sub.wait_for(lambda: status_is("offline"), timeout_s=30), out

    with mqtt_collector(mqtt_broker.url, f"{base}/status") as late:
        assert late.wait_for(lambda: len(late.messages) >= 1, timeout_s=10)
        _topic, payload, retained = late.messages[-1]
        assert retained
        assert json.loads(payload)["state"] == "offline"

    expected = {
        "pause": _annotated_onsets(record, PAUSE_S),
        "asystole": _annotated_onsets(record, ASYSTOLE_S),
    }
    for cond, onsets in expected.items():
        got = raised(cond)
        errors = [min(abs(onsets - float(a["onset_s"]))) for a in got]  # type: ignore[arg-type]
        print(f"{cond}: {len(got)} alarms, onset error vs annotations max {max(errors):.2f} s")
        assert max(errors) <= ONSET_TOLERANCE_S, (cond, errors)
        for a in got:
            assert a["priority"] == ("high" if cond == "asystole" else "medium")
            evidence = a["evidence"]
            assert isinstance(evidence, dict)
            assert evidence["rr_ms"], "alarm evidence carries recent RR intervals"
            strip = evidence["strip"]
            assert isinstance(strip, dict)
            assert len(strip["samples_uv"]) == pytest.approx(6 * 360, abs=2)
