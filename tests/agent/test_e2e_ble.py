"""End to end over Bluetooth LE: unmodified bleak → fake BlueZ → `bedside run` → mosquitto.

A fake Polar H10 streams mitdb 232 (sinus pauses) as real PMD frames and a fake oximeter
sends SpO2. One agent run shows, in order: pause alarms from the strap's ECG; a dropped link
raising and clearing ``sensor_disconnected``; 1,000 malformed frames counted and dropped while
the stream goes on; a falling SpO2 raising ``news2_urgent``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fake_bluez.devices import DeviceSpec
from tests.fake_bluez.fixtures import FakeBluezHandle
from tests.fixtures_mqtt import MqttBroker, mqtt_collector

H10 = "A0:9E:1A:AB:CD:12"
PLX = "00:1C:05:00:11:22"
SPEED = 4.0
"""Device clocks run 4x real time: 232's first pauses (636-646 s) come ~10 s after start."""

CONFIG = """
[bed]
unit = "e2e"
bed = "ble1"

[dsp]
powerline_hz = 60

[vitals]
news2_onset_delay_s = 5.0
news2_clear_after_s = 5.0

[source]
kind = "ble"

[[source.devices]]
kind = "polar_h10"
address = "{h10}"
silence_s = 3.0

[[source.devices]]
kind = "plx"
address = "{plx}"
silence_s = 10.0
"""


@pytest.mark.slow
async def test_ble_wearables_end_to_end(
    fake_bluez: Callable[..., FakeBluezHandle],
    mitdb: Path,
    mqtt_broker: MqttBroker,
    tmp_path: Path,
) -> None:
    fake = fake_bluez(
        DeviceSpec(
            kind="h10",
            address=H10,
            name="Polar H10 ABCD1234",
            speed=SPEED,
            record=str(mitdb / "232"),
            start_s=600.0,
        ),
        DeviceSpec(kind="plx", address=PLX, name="Nonin 3150", speed=SPEED, spo2_pct=97.0),
    )
    cfg = tmp_path / "bed.toml"
    cfg.write_text(CONFIG.format(h10=H10, plx=PLX), encoding="utf-8")
    base = "bedside/v1/e2e/ble1"
    argv = [
        "run",
        "--config",
        str(cfg),
        "--broker",
        mqtt_broker.url,
        "--outbox",
        str(tmp_path / "outbox.sqlite3"),
    ]
    with mqtt_collector(mqtt_broker.url, f"{base}/#") as sub:

        def alarms(cond: str, lifecycle: str) -> list[dict[str, object]]:
            return [
                a
                for t, p, _ in sub.messages
                if t == f"{base}/alarms"
                for a in [json.loads(p)]
                if a["condition"] == cond and a["lifecycle"] == lifecycle
            ]

        def malformed_counted() -> int:
            st = [json.loads(p) for t, p, _ in sub.messages if t == f"{base}/status"]
            counters = st[-1].get("counters", {}) if st else {}
            return int(counters.get("ble_malformed_frames", 0))

        # the agent is a separate process, as a user runs it; nothing here awaits it
        agent = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "agent", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            # 1. the strap's ECG: pause alarms (232 pauses from 636 s of the record)
            assert sub.wait_for(lambda: len(alarms("pause", "raised")) >= 1, timeout_s=90)
            pause = alarms("pause", "raised")[0]
            assert pause["priority"] == "medium"

            # 2. the link drops: sensor_disconnected is raised, then cleared on reconnection
            async with fake.control as control:
                await control.drop(H10)
                assert sub.wait_for(
                    lambda: len(alarms("sensor_disconnected", "raised")) >= 1, timeout_s=30
                )
                assert sub.wait_for(
                    lambda: len(alarms("sensor_disconnected", "cleared")) >= 1, timeout_s=60
                )
                raised_before = len(alarms("pause", "raised"))

                # 3. 1,000 malformed frames: counted, dropped, the stream goes on
                sent = await control.send_malformed(H10, 1000)
                assert sent == 1000
                assert sub.wait_for(lambda: malformed_counted() >= 1000, timeout_s=40)
                assert sub.wait_for(
                    lambda: len(alarms("pause", "raised")) > raised_before, timeout_s=90
                ), "pauses still detected after the malformed frames"

                # 4. SpO2 falls to 88 %: scale 1 scores 3 → news2_urgent
                await control.set_spo2(PLX, 88.0, 2.0)
                assert sub.wait_for(
                    lambda: len(alarms("news2_urgent", "raised")) >= 1, timeout_s=60
                )
        finally:
            agent.send_signal(signal.SIGTERM)
            out = agent.communicate(timeout=60)[0].decode(errors="replace")
            print(out[-6000:])
            print(fake.log_tail(30))
    urgent = alarms("news2_urgent", "raised")[0]
    assert urgent["priority"] == "medium"
    assert "SpO2" in str(urgent["message"]) or "spo2" in str(urgent["message"]).lower()
    vitals = [json.loads(p) for t, p, _ in sub.messages if t == f"{base}/vitals"]
    assert any(v.get("spo2_pct") is not None and v["spo2_pct"] <= 90 for v in vitals)
    assert all(a["priority"] == "medium" for a in alarms("sensor_disconnected", "raised"))
