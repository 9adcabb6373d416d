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
from tests.records import cut_record


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


def _raised(sub: object, code: str) -> list[dict[str, object]]:
    msgs = [json.loads(p) for _t, p, _r in sub.messages]  # type: ignore[attr-defined]
    return [m for m in msgs if m["condition"] == code and m["lifecycle"] == "raised"]


@pytest.mark.slow
def test_vfdb_419_two_vf_episodes_raise_vfib_twice_when_the_first_is_acknowledged(
    data_dir: Path, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    """vfdb 419 540-980 s: reference VFL 577-651 s and 920-955 s (37-111 s, 380-415 s here).

    A station acknowledges the first ``vfib`` over MQTT; the latched alarm clears after the
    episode, so the second episode raises its own ``vfib``.
    """
    from paho.mqtt import publish

    from agent.messages import AlarmAck, utc_now

    record = cut_record(data_dir, "vfdb", "419", 540, 980, tmp_path)
    bed, base = "e2e/vf2", "bedside/v1/e2e/vf2"
    argv = [
        "--source", f"replay:{record}", "--speed", "40", "--broker", mqtt_broker.url,
        "--bed", bed, "--outbox", str(tmp_path / "outbox.sqlite3"),
    ]  # fmt: skip
    with mqtt_collector(mqtt_broker.url, f"{base}/alarms") as sub:
        agent = _run_agent(argv)
        try:
            assert sub.wait_for(lambda: len(_raised(sub, "vfib")) >= 1, timeout_s=90)
            first = _raised(sub, "vfib")[0]
            ack = AlarmAck(
                device_id="station-1",
                ts_utc=utc_now(),
                alarm_id=str(first["alarm_id"]),
                station_id="station-1",
            )
            publish.single(
                f"{base}/alarms/ack",
                ack.model_dump_json(),
                qos=1,
                hostname=mqtt_broker.host,
                port=mqtt_broker.port,
            )
            ok = sub.wait_for(lambda: len(_raised(sub, "vfib")) >= 2, timeout_s=120)
        finally:
            out = _stop(agent)
        assert ok, out[-3000:]
    msgs = [json.loads(p) for _t, p, _r in sub.messages]
    acked = [
        m
        for m in msgs
        if m["alarm_id"] == first["alarm_id"] and m["lifecycle"] == "updated" and m["acknowledged"]
    ]
    assert acked, "the station's acknowledgement was not confirmed"
    second = _raised(sub, "vfib")[1]
    onsets = [float(first["onset_s"]), float(second["onset_s"])]  # type: ignore[arg-type]
    raised = [float(first["raised_s"]), float(second["raised_s"])]  # type: ignore[arg-type]
    print(f"vfib raised at {raised} s (episodes from 37 s and 380 s)")
    assert 30.0 <= onsets[0] <= 111.0
    assert 0.0 <= raised[0] - 37.0 <= 10.0
    assert 375.0 <= onsets[1] <= 415.0
    assert 0.0 <= raised[1] - 380.0 <= 10.0


@pytest.mark.slow
def test_vfdb_425_sustained_vt_raises_vtach_within_10_s(
    data_dir: Path, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    """vfdb 425 890-970 s: reference VT from 929.6 s for 28.8 s (39.6 s into the cut)."""
    onsets = [t - 890.0 for t in _rhythm_onsets(data_dir / "vfdb" / "425", {"VT"})]
    assert onsets[0] == pytest.approx(39.6, abs=0.2)
    record = cut_record(data_dir, "vfdb", "425", 890, 970, tmp_path)
    bed, base = "e2e/vt", "bedside/v1/e2e/vt"
    argv = [
        "--source", f"replay:{record}", "--speed", "20", "--broker", mqtt_broker.url,
        "--bed", bed, "--outbox", str(tmp_path / "outbox.sqlite3"),
    ]  # fmt: skip
    with mqtt_collector(mqtt_broker.url, f"{base}/alarms") as sub:
        agent = _run_agent(argv)
        try:
            ok = sub.wait_for(
                lambda: bool(_raised(sub, "vtach") or _raised(sub, "vfib")), timeout_s=90
            )
        finally:
            out = _stop(agent)
        assert ok, out[-3000:]
    alarm = (_raised(sub, "vtach") + _raised(sub, "vfib"))[0]
    delay = float(alarm["raised_s"]) - onsets[0]  # type: ignore[arg-type]
    print(f"{alarm['condition']} raised {delay:.1f} s after the annotated VT onset")
    assert alarm["condition"] == "vtach"
    assert 0.0 <= delay <= 10.0
    assert alarm["priority"] == "high"
    assert alarm["latched"] is True


@pytest.mark.slow
def test_cinc2017_af_recording_ends_with_rhythm_afib_in_the_vitals(
    data_dir: Path, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    """CinC 2017 A05059 (30 s, reference label A) with the waveform AF path switched on.

    The RR model alone needs about 64 beats before it can confirm AF; the waveform path
    (``inference.af_waveform``) calls it from 17-beat windows. A05059 was in the tuning data
    of the shipped waveform model: this checks the path end to end, not its accuracy
    (cross-validated figures are in docs/af_detector.md).
    """
    record = data_dir / "cinc2017" / "A05059"
    if not record.with_suffix(".hea").exists():
        pytest.skip("cinc2017 not in the shared data")
    config = tmp_path / "agent.toml"
    config.write_text("[inference]\naf_waveform = true\n", encoding="utf-8")
    bed, base = "e2e/af2017", "bedside/v1/e2e/af2017"
    argv = [
        "--config", str(config), "--source", f"replay:{record}", "--speed", "5",
        "--broker", mqtt_broker.url, "--bed", bed, "--outbox", str(tmp_path / "outbox.sqlite3"),
        "--stop-after", "30",
    ]  # fmt: skip
    with mqtt_collector(mqtt_broker.url, f"{base}/vitals") as sub:

        def vitals() -> list[dict[str, object]]:
            return [json.loads(p) for _t, p, _r in sub.messages]

        agent = _run_agent(argv)
        try:
            ok = sub.wait_for(lambda: any(v.get("rhythm") == "AFIB" for v in vitals()), 90)
            out = agent.communicate(timeout=90)[0].decode(errors="replace")  # stream ends
        finally:
            if agent.poll() is None:
                out = _stop(agent)
        assert ok, out[-3000:]
    seen = vitals()
    first_af = next(i for i, v in enumerate(seen) if v.get("rhythm") == "AFIB")
    print(f"{len(seen)} vitals; AFIB from message {first_af}; last rhythm {seen[-1]['rhythm']}")
    assert seen[-1]["rhythm"] == "AFIB"
