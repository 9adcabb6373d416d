"""Reliability suite: alarm delivery through real mosquitto outages, crashes and refusals.

``python -m tools.chaos [--outage-s 60] [--alarms-per-s 2]`` prints one row per scenario:
alarms expected, delivered, lost, duplicated, kept in the outbox, worst delay (from the
event's ``ts_utc`` to its arrival at a station-like collector with a persistent session).

Alarms are synthetic raise events pushed through the agent's real publisher
(:class:`agent.publish.mqtt.MqttPublisher`: writer thread, SQLite outbox, MQTT v5 QoS 1) at a
fixed rate; the broker is a real mosquitto (:class:`agent.publish.broker.MosquittoBroker`,
persistence on). The agent kill scenario runs the publisher in a child process and SIGKILLs
it; an alarm counts as *expected* once the child reported it stored in the outbox
(:meth:`MqttPublisher.flush`), which is the promise the agent makes. ``lost`` = expected - delivered
- kept; it must be 0 in every row.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.config import BedConfig, MqttConfig
from agent.messages import (
    ActiveAlarmsMessage,
    AlarmAck,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmLifecycle,
    AlarmPriority,
    topic,
    utc_now,
)
from agent.provision import StationSpec, provision_site
from agent.publish.broker import MosquittoBroker, free_port
from agent.publish.mqtt import MqttPublisher
from agent.publish.subscriber import MqttSubscriber

BED = BedConfig(unit="chaos", bed="bed1", device_id="chaos-agent")
ALARMS = topic("chaos", "bed1", "alarms")
ACTIVE = topic("chaos", "bed1", "alarms/active")
ACK = topic("chaos", "bed1", "alarms/ack")
WAIT_S = 120.0
"""Safety net for each wait (a run normally completes far sooner)."""


@dataclass
class Row:
    """One scenario's result."""

    scenario: str
    expected: int
    delivered: int
    duplicated: int
    kept: int
    worst_delay_s: float

    @property
    def lost(self) -> int:
        """Expected alarms neither delivered nor kept in the outbox."""
        return max(0, self.expected - self.delivered - self.kept)


def make_alarm(n: int) -> AlarmEvent:
    """Return a synthetic high-priority raise event, stamped now."""
    now = utc_now()
    return AlarmEvent(
        device_id=BED.device_id,
        ts_utc=now,
        alarm_id=uuid.uuid4().hex,
        condition=AlarmCode.ASYSTOLE,
        priority=AlarmPriority.HIGH,
        kind=AlarmCondition.PHYSIOLOGICAL,
        lifecycle=AlarmLifecycle.RAISED,
        onset_s=float(n),
        onset_utc=now,
        raised_s=float(n),
        message=f"chaos #{n}",
    )


class Collector:
    """A station-like subscriber with a persistent session; records arrival times."""

    def __init__(self, url: str, security: MqttConfig | None = None) -> None:
        self.cond = threading.Condition()
        self.seen: dict[tuple[str, str], list[float]] = {}
        self.events: dict[str, AlarmEvent] = {}
        self.delay_s: dict[str, float] = {}
        self.sub = MqttSubscriber(
            url,
            [ALARMS],
            on_message=self._on,
            client_id=f"chaos-station-{uuid.uuid4().hex[:6]}",
            security=security,
            session_expiry_s=3600,
        )

    def _on(self, name: str, payload: bytes, retained: bool) -> None:
        event = AlarmEvent.model_validate_json(payload)
        now = datetime.now(UTC)
        with self.cond:
            key = (event.alarm_id, f"{event.lifecycle}:{event.ts_utc.isoformat()}")
            self.seen.setdefault(key, []).append(time.monotonic())
            if event.lifecycle == AlarmLifecycle.RAISED:
                self.events[event.alarm_id] = event
                self.delay_s.setdefault(event.alarm_id, (now - event.ts_utc).total_seconds())
            self.cond.notify_all()

    def wait_raised(self, ids: set[str], timeout_s: float = WAIT_S) -> None:
        """Block until every id in ``ids`` has arrived (or the safety net expires)."""
        with self.cond:
            self.cond.wait_for(lambda: ids <= set(self.events), timeout=timeout_s)

    def row(self, scenario: str, expected: set[str], kept: int = 0) -> Row:
        """Score what arrived against ``expected``."""
        with self.cond:
            got = expected & set(self.events)
            dups = sum(len(v) - 1 for (a, _), v in self.seen.items() if a in expected)
            worst = max((self.delay_s[a] for a in got), default=0.0)
        return Row(scenario, len(expected), len(got), dups, kept, worst)


@contextmanager
def broker(workdir: Path) -> Iterator[MosquittoBroker]:
    """Run a persistent mosquitto in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    with MosquittoBroker(workdir, persistence=True) as b:
        yield b


def emit(pub: MqttPublisher, n: int, period_s: float, start: int = 0) -> set[str]:
    """Publish ``n`` alarms, one every ``period_s``; return their ids once stored."""
    ids: set[str] = set()
    for i in range(n):
        alarm = make_alarm(start + i)
        pub.publish_alarm(alarm)
        ids.add(alarm.alarm_id)
        time.sleep(period_s)
    pub.flush(WAIT_S)
    return ids


def publisher(url: str, outbox: Path, **kw: object) -> MqttPublisher:
    """Return the agent's real publisher for the chaos bed."""
    cfg = MqttConfig(url=url, outbox_path=outbox)
    return MqttPublisher(cfg, BED, source_desc="chaos", agent_version="chaos", **kw)  # type: ignore[arg-type]


def wait_until(cond: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Poll ``cond`` every 50 ms until it holds or the safety net expires."""
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


def scenario_broker_down_at_start(root: Path, outage_s: float, period_s: float) -> Row:
    """Run with the broker down when the agent starts, for ``outage_s``."""
    with broker(root / "b1") as b:
        col = Collector(b.url)
        col.sub.connect()
        b.stop()
        pub = publisher(b.url, root / "o1.sqlite3")
        pub.start()
        ids = emit(pub, max(1, round(outage_s / period_s)), period_s)
        b.start()
        col.wait_raised(ids)
        wait_until(lambda: pub.pending_alarms() == 0)
        row = col.row(f"broker down at agent start ({outage_s:g} s)", ids, pub.pending_alarms())
        pub.close()
        col.sub.close()
    return row


def scenario_outage_mid_stream(root: Path, outage_s: float, period_s: float) -> Row:
    """Send alarms before, during and after a ``outage_s`` broker outage."""
    with broker(root / "b2") as b:
        col = Collector(b.url)
        col.sub.connect()
        pub = publisher(b.url, root / "o2.sqlite3")
        pub.connect()
        n = max(1, round(outage_s / period_s))
        ids = emit(pub, 10, period_s)
        b.stop()
        ids |= emit(pub, n, period_s, start=10)
        b.start()
        ids |= emit(pub, 10, period_s, start=10 + n)
        col.wait_raised(ids)
        wait_until(lambda: pub.pending_alarms() == 0)
        row = col.row(f"broker outage mid-stream ({outage_s:g} s)", ids, pub.pending_alarms())
        pub.close()
        col.sub.close()
    return row


CHILD = """
import sys, time
from pathlib import Path
from tools.chaos import emit_child
emit_child(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
"""


def emit_child(url: str, outbox: Path, n: int, start: int, period_s: float) -> None:
    """Child process: publish ``n`` alarms, printing each id once it is in the outbox."""
    pub = publisher(url, outbox)
    pub.start()
    for i in range(n):
        alarm = make_alarm(start + i)
        pub.publish_alarm(alarm)
        pub.flush(WAIT_S)
        print(alarm.alarm_id, flush=True)
        time.sleep(period_s)
    time.sleep(3600)  # wait to be killed


def _child(url: str, outbox: Path, n: int, start: int, period_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(outbox), str(n), str(start), str(period_s)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )


def _read_ids(proc: subprocess.Popen[str], n: int) -> set[str]:
    if proc.stdout is None:  # pragma: no cover - Popen(stdout=PIPE) always sets it
        msg = "child has no stdout"
        raise RuntimeError(msg)
    return {proc.stdout.readline().strip() for _ in range(n)}


def scenario_agent_killed(root: Path, outage_s: float, period_s: float) -> Row:
    """SIGKILL the agent during an outage and restart it (same outbox)."""
    outbox = root / "o3.sqlite3"
    with broker(root / "b3") as b:
        col = Collector(b.url)
        col.sub.connect()
        n = max(2, round(outage_s / period_s))
        first = _child(b.url, outbox, 10 + n, 0, period_s)
        try:
            ids = _read_ids(first, 10)
            b.stop()
            ids |= _read_ids(first, n // 2)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        second = _child(b.url, outbox, n - n // 2 + 10, 10 + n // 2, period_s)
        try:
            ids |= _read_ids(second, n - n // 2)
            b.start()
            ids |= _read_ids(second, 10)
            col.wait_raised(ids)
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait()
        row = col.row(f"agent SIGKILL in a {outage_s:g} s outage, restart", ids)
        col.sub.close()
    return row


def scenario_station_late(root: Path, period_s: float) -> Row:
    """Start a station after the alarms; it must see every active one (retained list)."""
    with broker(root / "b4") as b:
        pub = publisher(b.url, root / "o4.sqlite3")
        pub.connect()
        raised = [make_alarm(i) for i in range(20)]
        for alarm in raised:
            pub.publish_alarm(alarm)
        for alarm in raised[:5]:  # five end before the station starts
            pub.publish_alarm(
                alarm.model_copy(update={"lifecycle": AlarmLifecycle.CLEARED, "ts_utc": utc_now()})
            )
        pub.flush(WAIT_S)
        wait_until(lambda: pub.pending_alarms() == 0)
        expected = {a.alarm_id for a in raised[5:]}
        got: dict[str, AlarmEvent] = {}
        done = threading.Event()
        t0 = datetime.now(UTC)

        def on(name: str, payload: bytes, retained: bool) -> None:
            msg = ActiveAlarmsMessage.model_validate_json(payload)
            got.clear()
            got.update({a.alarm_id: a for a in msg.alarms})
            done.set()

        station = MqttSubscriber(b.url, [ACTIVE], on_message=on)
        station.connect()
        done.wait(WAIT_S)
        delay_s = (datetime.now(UTC) - t0).total_seconds()
        station.close()
        pub.close()
        delivered = len(expected & set(got))
        extra = len(set(got) - expected)
    return Row("station started late (15 active, 5 ended)", 15, delivered, extra, 0, delay_s)


def scenario_ack_offline(root: Path, outage_s: float) -> Row:
    """Ack while the agent is offline; the ack must reach it after it reconnects."""
    from agent.alarms.engine import AlarmEngine, ConditionSpec, Finding

    with broker(root / "b5") as b:
        engine = AlarmEngine(
            [ConditionSpec(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, AlarmCondition.PHYSIOLOGICAL)],
            device_id=BED.device_id,
            stream_start_utc=utc_now(),
        )
        holder: list[MqttPublisher] = []

        def on_ack(ack: AlarmAck) -> None:
            for event in engine.acknowledge(ack.alarm_id, 100.0, by=ack.station_id):
                holder[0].publish_alarm(event)

        col = Collector(b.url)
        col.sub.connect()
        pub = publisher(b.url, root / "o5.sqlite3", on_ack=on_ack)
        holder.append(pub)
        pub.connect()
        [raised] = engine.update(1.0, [Finding(AlarmCode.ASYSTOLE, active=True)])
        pub.publish_alarm(raised)
        col.wait_raised({raised.alarm_id})
        pub.close()  # the agent goes offline; its session stays
        station = MqttSubscriber(b.url)
        station.connect()
        ack = AlarmAck(
            device_id="station", ts_utc=utc_now(), alarm_id=raised.alarm_id, station_id="chaos-ns"
        )
        sent = datetime.now(UTC)
        station.publish(ACK, ack.model_dump_json().encode())
        station.close()
        time.sleep(min(outage_s, 5.0))
        back = publisher(b.url, root / "o5b.sqlite3", on_ack=on_ack)
        holder[0] = back
        back.connect()

        def confirmed() -> bool:
            with col.cond:
                return any(k[0] == raised.alarm_id and k[1].startswith("updated") for k in col.seen)

        wait_until(confirmed)
        ok = confirmed()
        delay_s = (datetime.now(UTC) - sent).total_seconds()
        back.close()
        col.sub.close()
    return Row("ack sent while the agent is offline", 1, int(ok), 0, 0, delay_s)


def scenario_acl_refuses(root: Path, period_s: float) -> Row:
    """Let a broker ACL refuse the agent's topic; every alarm must stay in the outbox."""
    port = free_port()
    site = provision_site(
        root / "site",
        [("chaos", "bed1"), ("chaos", "bed2")],
        [StationSpec("ns", ("chaos",))],
        port=port,
        bind="127.0.0.1",
    )
    workdir = root / "b6"
    workdir.mkdir()
    conf = site.mosquitto_conf.read_text(encoding="utf-8")
    with MosquittoBroker(workdir, conf_text=conf, port=port):
        crt, key = site.beds["chaos/bed2"]  # the wrong bed's certificate
        cfg = MqttConfig(
            url=f"mqtts://127.0.0.1:{port}",
            tls_ca_file=site.ca_cert,
            tls_cert_file=crt,
            tls_key_file=key,
            outbox_path=root / "o6.sqlite3",
        )
        refused: list[object] = []
        pub = MqttPublisher(
            cfg, BED, source_desc="chaos", agent_version="chaos", on_problem=refused.append
        )
        pub.connect()
        ids = emit(pub, 10, period_s)
        wait_until(lambda: pub.counters["mqtt_alarms_refused"] >= len(ids))
        kept = pub.pending_alarms()
        pub.close()
    return Row("broker ACL refuses the agent's topic", len(ids), 0, 0, kept, 0.0)


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and print the table; exit 1 if any alarm was lost."""
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__)
    parser.add_argument("--outage-s", type=float, default=60.0, help="outage length, s")
    parser.add_argument("--alarms-per-s", type=float, default=2.0, help="alarm rate, 1/s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # the table is the output
    period_s = 1.0 / args.alarms_per_s
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bedside-chaos-") as tmp:
        root = Path(tmp)
        runs: list[Callable[[], Row]] = [
            lambda: scenario_broker_down_at_start(root, args.outage_s, period_s),
            lambda: scenario_outage_mid_stream(root, args.outage_s, period_s),
            lambda: scenario_agent_killed(root, args.outage_s, period_s),
            lambda: scenario_station_late(root, period_s),
            lambda: scenario_ack_offline(root, args.outage_s),
            lambda: scenario_acl_refuses(root, period_s),
        ]
        for run in runs:
            row = run()
            rows.append(row)
            print(f"done: {row.scenario}", file=sys.stderr, flush=True)
    header = f"| {'scenario':<44} | expected | delivered | lost | duplicated | kept | worst delay |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        print(
            f"| {r.scenario:<44} | {r.expected:>8} | {r.delivered:>9} | {r.lost:>4} |"
            f" {r.duplicated:>10} | {r.kept:>4} | {r.worst_delay_s:>9.1f} s |"
        )
    return 1 if any(r.lost for r in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
