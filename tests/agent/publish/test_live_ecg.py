"""The real agent's live ECG topic against a real mosquitto (DESIGN.md, ``.../ecg``).

``AgentRuntime`` with the ``MqttPublisher`` as its sink, fed by a synthetic 250 Hz source; a
station (an ``MqttSubscriber``) publishes ``EcgControl`` on ``.../ecg/control``. Checked, in one
run: no ``ecg`` message without a lease; chunks (µV, ``fs_hz``, ``t0_s``) while leased; none after
``on=false``; chunks again under a short lease; none after that lease expires.

Nothing is judged by wall-clock windows. "None" is proved with a marker: the test makes the
publisher send a ``vitals`` marker on the same connection *after* the publisher has counted
chunks it did not send (``ecg_chunks_unleased``); the broker keeps one client's order, so once
the marker arrives every earlier ``ecg`` message has arrived too. The lease's end is observed
through the publisher's ``ecg_stream_stops`` counter (waited on, not timed).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from agent.config import BedConfig, MqttConfig, load_config
from agent.inference.bundle import ModelBundle, load_models
from agent.messages import EcgChunkMessage, EcgControl, VitalsMessage, topic
from agent.publish.broker import MosquittoBroker
from agent.publish.mqtt import MqttPublisher
from agent.publish.subscriber import MqttSubscriber
from agent.runtime import AgentRuntime
from firmware_bridge.frames import EcgChunk, Frame

SAFETY_TIMEOUT_S = 60.0
"""Safety net only: every wait is on an event or a counter."""

FS_HZ = 250.0
CHUNK = 64  # samples per chunk (0.256 s), as a BLE ECG notification would bring a few dozen
SHORT_LEASE_S = 1.0  # the test's lease; stations use ECG_LEASE_S (30 s)
BED = BedConfig(unit="ward1", bed="bed5", device_id="agent-bed5")
ECG = topic(BED.unit, BED.bed, "ecg")
VITALS = topic(BED.unit, BED.bed, "vitals")
CONTROL = topic(BED.unit, BED.bed, "ecg/control")


class SyntheticEcg:
    """Chunks of a 75 bpm spike train with one invalid (NaN) sample each, 4x real time."""

    def __init__(self) -> None:
        self.sent: dict[float, np.ndarray] = {}  # t0_s → samples

    async def frames(self) -> AsyncIterator[Frame]:
        n = 0
        while True:
            idx = np.arange(n, n + CHUNK)
            samples = np.where(idx % 200 < 6, 1200.0, -50.0 + (idx % 7)).astype(np.float32)
            samples[5] = np.nan
            t0_s = round(n / FS_HZ, 4)
            self.sent[t0_s] = samples
            yield EcgChunk(
                samples_uv=samples,
                fs_hz=FS_HZ,
                first_sample_idx=n,
                t0_monotonic_ns=time.monotonic_ns(),
                t0_utc=datetime.now(UTC),
            )
            n += CHUNK
            await asyncio.sleep(CHUNK / FS_HZ / 4)

    def describe(self) -> str:
        return "synthetic"

    def counters(self) -> dict[str, int]:
        return {}


class Station:
    """What a station sees of the bed, and its ``ecg/control`` messages."""

    def __init__(self, url: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.client = MqttSubscriber(
            url, [ECG, VITALS], on_message=self._on, client_id=f"st-{uuid.uuid4().hex[:6]}"
        )

    def _on(self, topic_name: str, payload: bytes, retained: bool) -> None:
        with self.cond:
            self.messages.append((topic_name, payload))
            self.cond.notify_all()

    def ecg(self) -> list[EcgChunkMessage]:
        with self.cond:
            return [EcgChunkMessage.model_validate_json(p) for t, p in self.messages if t == ECG]

    def control(self, *, on: bool, lease_s: float = 30.0) -> None:
        ctl = EcgControl(
            device_id="station-t", ts_utc=datetime.now(UTC), station_id="station-t", on=on,
            lease_s=lease_s,
        )  # fmt: skip
        assert self.client.publish(CONTROL, ctl.model_dump_json().encode())

    def wait(self, predicate: Callable[[], bool], what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout=SAFETY_TIMEOUT_S), what


def publisher(url: str, tmp_path: Path) -> MqttPublisher:
    """The bed's publisher, its outbox in ``tmp_path``."""
    return MqttPublisher(
        MqttConfig(url=url, outbox_path=tmp_path / "outbox.sqlite3"),
        BED,
        source_desc="synthetic",
        agent_version="0",
    )


def samples_of(chunk: EcgChunkMessage) -> np.ndarray:
    """A received chunk's samples, µV, NaN where the message holds null."""
    return np.array([np.nan if v is None else v for v in chunk.samples_uv], dtype=np.float64)


async def stop(task: asyncio.Task[object], station: Station, pub: MqttPublisher) -> None:
    """Cancel the runtime, then close the station's and the agent's connections."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    station.client.close()
    pub.close()


@pytest.fixture(scope="module")
def models() -> ModelBundle:
    return load_models(load_config().inference)


async def test_live_ecg_streams_only_while_leased(
    mqtt_broker: MosquittoBroker, tmp_path: Path, models: ModelBundle
) -> None:
    cfg = load_config()
    pub = publisher(mqtt_broker.url, tmp_path)
    source = SyntheticEcg()
    station = Station(mqtt_broker.url)
    markers = 0

    async def until(predicate: Callable[[], bool], what: str) -> None:
        async with asyncio.timeout(SAFETY_TIMEOUT_S):
            while not predicate():  # noqa: ASYNC110 - the counters have no event to await
                await asyncio.sleep(0.02)
        assert predicate(), what

    async def ecg_received_so_far() -> int:
        """Wait for ``ecg_chunks_unleased`` to grow, then a marker; return the ecg count."""
        nonlocal markers
        markers += 1
        base = pub.counters["ecg_chunks_unleased"]
        await until(lambda: pub.counters["ecg_chunks_unleased"] >= base + 3, "chunks offered")
        marker = f"marker-{markers}"
        pub.publish_vitals(VitalsMessage(device_id=marker, ts_utc=datetime.now(UTC), t_s=0.0))
        seen = marker.encode()
        await asyncio.to_thread(
            station.wait, lambda: any(seen in p for t, p in station.messages), marker
        )
        return len(station.ecg())

    def stream_counts() -> tuple[int, int]:
        return pub.counters["ecg_stream_starts"], pub.counters["ecg_stream_stops"]

    pub.connect()
    station.client.connect()
    runtime = AgentRuntime(cfg, source, pub, models)
    task = asyncio.create_task(runtime.run())
    try:
        # 1. nobody watches: chunks are offered and not published
        assert await ecg_received_so_far() == 0
        assert pub.counters["ecg_chunks_published"] == 0

        # 2. a station watches: chunks arrive, each exactly as the source gave it
        station.control(on=True)
        await asyncio.to_thread(station.wait, lambda: len(station.ecg()) >= 5, "live ecg")
        first = station.ecg()[0]
        assert first.fs_hz == FS_HZ
        assert first.device_id == BED.device_id
        expected = source.sent[first.t0_s]
        assert len(first.samples_uv) == CHUNK
        assert first.samples_uv[5] is None  # the sensor's invalid sample stays invalid
        np.testing.assert_array_equal(samples_of(first), np.round(expected.astype(np.float64)))
        chunks = station.ecg()
        steps = [round((b.t0_s - a.t0_s) * FS_HZ) for a, b in itertools.pairwise(chunks)]
        assert all(s > 0 and s % CHUNK == 0 for s in steps), steps  # in order (some dropped)

        # 3. the station leaves (on=false): the stream stops at once
        station.control(on=False)
        await until(lambda: stream_counts() == (1, 1), "stream stopped by on=false")
        n_off = await ecg_received_so_far()
        assert n_off == pub.counters["ecg_chunks_published"]
        assert await ecg_received_so_far() == n_off  # still nothing new

        # 4. a short lease that is never renewed: streams, then stops by itself
        station.control(on=True, lease_s=SHORT_LEASE_S)
        await asyncio.to_thread(
            station.wait, lambda: len(station.ecg()) >= n_off + 2, "ecg under the short lease"
        )
        await until(lambda: stream_counts() == (2, 2), "the short lease expired")
        n_expired = await ecg_received_so_far()
        assert n_expired > n_off + 1
        assert n_expired == pub.counters["ecg_chunks_published"]
        assert await ecg_received_so_far() == n_expired
        assert pub.counters["ecg_controls_received"] == 3
    finally:
        await stop(task, station, pub)


async def test_live_ecg_shows_a_turned_lead_turned(
    mqtt_broker: MosquittoBroker, tmp_path: Path, models: ModelBundle
) -> None:
    """With ``dsp.invert_ecg`` the station sees the lead as the agent analyses it: turned over."""
    cfg = load_config()
    cfg = cfg.model_copy(update={"dsp": cfg.dsp.model_copy(update={"invert_ecg": True})})
    pub = publisher(mqtt_broker.url, tmp_path)
    source = SyntheticEcg()
    station = Station(mqtt_broker.url)
    pub.connect()
    station.client.connect()
    task = asyncio.create_task(AgentRuntime(cfg, source, pub, models).run())
    try:
        station.control(on=True)
        await asyncio.to_thread(station.wait, lambda: len(station.ecg()) >= 2, "live ecg")
        for chunk in station.ecg()[:2]:
            expected = -source.sent[chunk.t0_s].astype(np.float64)
            np.testing.assert_array_equal(samples_of(chunk), np.round(expected))
    finally:
        await stop(task, station, pub)
