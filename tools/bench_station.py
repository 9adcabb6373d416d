"""Benchmark the web station under a simulated ward: ``python -m tools.bench_station``.

Starts a private mosquitto, the station as its own process (``bedside station``, SQLite or a
``--db`` URL), ``--beds`` simulated beds in this process (1 Hz vitals each, random scripted
events every ``--event-mean`` s per bed, one bed's live ECG at 130 Hz turned on by the
client below), and a browser-side client on the station's WebSocket. It prints:

- alarm publish → browser latency (p50, p99, max, n): from the alarm event's ``ts_utc`` (set
  by the simulator just before it publishes) to the moment the WebSocket client receives the
  bed update carrying that alarm for the first time; one clock, one machine;
- the station process's CPU (user + system, s, and % of one core over the run) and memory
  (peak RSS, MiB), from ``/proc``;
- alarm events counted at the broker (an independent QoS 1 subscriber) and rows in the
  station's database once its writer is idle: they must be equal (no event lost).

It is a measurement, not a test: nothing here asserts a time. The WebSocket client stands in
for the browser's network path (the page's rendering is not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect

from agent.publish.broker import free_port, private_broker, stop_process
from agent.station.db import Database
from agent.station.users import add_user
from agent.ward_sim import WardSim
from tools.bench import proc_cpu_s

STATION_START_TIMEOUT_S: Final = 60.0
DRAIN_TIMEOUT_S: Final = 60.0


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _BrokerCounter:
    """Counts alarm events at the broker with its own QoS 1 subscription."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("mqtt://").partition(":")
        self.count = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="bench-counter",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_connect = lambda c, *_: c.subscribe("bedside/v1/+/+/alarms", qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        if not self._ready.wait(10):
            msg = "broker counter not subscribed"
            raise TimeoutError(msg)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.count += 1

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(beds: int, duration_s: float, event_mean_s: float, db_url: str | None) -> int:
    """Run the benchmark; print the figures; return 0, or 1 if events were lost."""
    with tempfile.TemporaryDirectory(prefix="bedside-bench-station-") as tmp:
        work = Path(tmp)
        url_db = db_url or f"sqlite:///{work / 'station.sqlite3'}"
        db = Database(url_db)
        db.migrate()
        add_user(db, "bench", "bench-password", "nurse")
        with private_broker(work) as broker_url:
            host, _, port = broker_url.removeprefix("mqtt://").partition(":")
            http_port = free_port()
            station = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent",
                    "station",
                    "--db",
                    url_db,
                    "--broker-host",
                    host,
                    "--broker-port",
                    port,
                    "--port",
                    str(http_port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                return _measure(station, http_port, broker_url, db, beds, duration_s, event_mean_s)
            finally:
                stop_process(station, timeout_s=30)
                db.close()


def _measure(
    station: subprocess.Popen[bytes],
    http_port: int,
    broker_url: str,
    db: Database,
    beds: int,
    duration_s: float,
    event_mean_s: float,
) -> int:
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + STATION_START_TIMEOUT_S
    with httpx.Client(base_url=base) as client:
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or station.poll() is not None:
                    print("station did not start", file=sys.stderr)
                    return 2
                time.sleep(0.1)
        client.post("/login", data={"username": "bench", "password": "bench-password"})
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        counter = _BrokerCounter(broker_url)
        sim = WardSim(broker_url, beds=beds, unit="bench", event_mean_s=event_mean_s, seed=7)
        cpu0 = proc_cpu_s(station.pid)
        t0 = time.monotonic()
        latencies: list[float] = []
        seen: set[str] = set()
        ecg_samples = 0
        sim.start()
        with connect(f"ws://127.0.0.1:{http_port}/ws", additional_headers={"Cookie": cookie}) as ws:
            ws.send(json.dumps({"type": "watch", "key": "bench/bed01"}))
            while time.monotonic() - t0 < duration_s:
                try:
                    raw = ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                now = datetime.now(UTC)
                msg = json.loads(raw)
                if msg["type"] == "ecg":
                    ecg_samples += len(msg["samples_uv"])
                    continue
                for bed in msg.get("beds") or [msg.get("bed") or {}]:
                    for alarm in bed.get("alarms", []):
                        if alarm.get("station") or alarm["alarm_id"] in seen:
                            continue
                        seen.add(alarm["alarm_id"])
                        sent = datetime.fromisoformat(alarm["ts_utc"])
                        latencies.append((now - sent).total_seconds())
        elapsed_s = time.monotonic() - t0
        cpu_s = proc_cpu_s(station.pid) - cpu0
        sim.stop()
        published = sim.published_alarm_events
        drain = time.monotonic() + DRAIN_TIMEOUT_S
        while (db.count_alarm_events() < counter.count) and time.monotonic() < drain:
            time.sleep(0.2)
        stored = db.count_alarm_events()
        stats = client.get("/api/stats").json()
        rss = _peak_rss_mib(station.pid)
        counter.stop()
    lat = sorted(latencies)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
    print(
        f"beds {beds}, run {elapsed_s:.0f} s, load average {os.getloadavg()[0]:.2f}"
        f" on {os.cpu_count()} cores"
    )
    if lat:
        print(
            f"alarm publish -> browser (WebSocket) latency: p50 {statistics.median(lat):.3f} s,"
            f" p99 {p99:.3f} s, max {lat[-1]:.3f} s, n {len(lat)}"
        )
    print(
        f"live ECG received for bench/bed01: {ecg_samples} samples"
        f" ({ecg_samples / elapsed_s:.0f} Hz)"
    )
    print(
        f"station CPU {cpu_s:.1f} s ({100 * cpu_s / elapsed_s:.0f} % of one core),"
        f" peak RSS {rss:.0f} MiB, MQTT messages received {stats['mqtt_messages_received']}"
    )
    print(
        f"alarm events: published by ward-sim {published}, counted at the broker"
        f" {counter.count}, stored in the database {stored}"
        f" (duplicates skipped {stats['alarm_events_duplicate']},"
        f" write errors {stats['write_errors']})"
    )
    lost = counter.count - stored
    print("no event lost" if lost == 0 else f"LOST {lost} events between broker and database")
    return 0 if lost == 0 else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m tools.bench_station [--beds 64] [--duration 60]``."""
    p = argparse.ArgumentParser(prog="python -m tools.bench_station", description=__doc__)
    p.add_argument("--beds", type=int, default=64)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    p.add_argument(
        "--event-mean",
        type=float,
        default=30.0,
        help="mean seconds between random events per bed (default 30)",
    )
    p.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    args = p.parse_args(argv)
    return run(args.beds, args.duration, args.event_mean, args.db)


if __name__ == "__main__":
    sys.exit(main())
