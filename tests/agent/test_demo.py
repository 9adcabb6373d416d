"""The demo command: the web station with simulated beds (default) and, with ``--terminal``,
the agent on one simulated patient with the terminal nurse station; no configuration.

The test waits on the events themselves (the station's "raised" lines), not on a wall-clock
window: on a busy machine the simulated patient's stream may fall behind real time, and the
asystole then comes later, but it must come. ``--duration`` only bounds a demo that hangs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from agent.errors import BedsideError
from agent.publish.broker import find_mosquitto, free_port

EXPECTED = ("extreme_tachy", "asystole")


@pytest.mark.slow
def test_demo_shows_alarms() -> None:
    try:
        find_mosquitto()
    except BedsideError as err:
        pytest.skip(str(err))
    raised: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "agent", "demo", "--terminal", "--plain", "--duration", "240"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if "raised" in line.lower():
                    raised.append(line.lower())
                if all(any(c in ln for ln in raised) for c in EXPECTED):
                    # SIGTERM, as systemd or a supervisor stops it (SIGINT may be ignored in
                    # a background job); the demo unwinds and stops its broker and agent
                    proc.send_signal(signal.SIGTERM)
                    break
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    print("".join(raised))
    for condition in EXPECTED:
        assert any(condition in ln for ln in raised), condition
    assert proc.returncode in (0, 128 + signal.SIGTERM), stderr
    assert "traceback" not in stderr.lower()


def test_web_demo_prints_its_url_and_serves_alarms() -> None:
    """The web demo prints its URL and login; through them a browser client receives the
    scripted alarms of the simulated ward (waiting on the WebSocket's messages, not a clock)."""
    pytest.importorskip("fastapi")
    import httpx
    from websockets.sync.client import connect

    try:
        find_mosquitto()
    except BedsideError as err:
        pytest.skip(str(err))
    port = free_port()
    with (
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "demo",
                "--beds",
                "4",
                "--port",
                str(port),
                "--duration",
                "600",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as proc,
        contextlib.ExitStack() as stack,
    ):
        assert proc.stdout is not None
        try:
            line = proc.stdout.readline()
            m = re.search(r"open (http://\S+) \(user (\S+), password (\S+)\)", line)
            assert m, line
            url, user, password = m.group(1), m.group(2), m.group(3).rstrip(");")
            client = stack.enter_context(httpx.Client(base_url=url))
            r = client.post("/login", data={"username": user, "password": password})
            assert r.status_code == 303
            assert r.headers["location"] == "/"
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            seen: set[str] = set()
            with connect(
                url.replace("http", "ws") + "ws", additional_headers={"Cookie": cookie}
            ) as ws:
                while "extreme_tachy" not in seen:
                    msg = json.loads(ws.recv(timeout=300))
                    beds = msg["beds"] if msg["type"] == "ward" else [msg.get("bed") or {}]
                    for bed in beds:
                        seen.update(a["condition"] for a in bed.get("alarms", []))
            assert len(client.get("/api/ward").json()["beds"]) == 4
        finally:
            stack.close()
            proc.send_signal(signal.SIGTERM)
            try:
                _, stderr = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert proc.returncode in (0, 128 + signal.SIGTERM), stderr
    assert "traceback" not in stderr.lower()
