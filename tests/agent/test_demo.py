"""The demo command shows alarms at the nurse station within one minute, with no configuration."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agent.errors import BedsideError
from agent.publish.broker import find_mosquitto


@pytest.mark.slow
def test_demo_shows_alarms_within_a_minute() -> None:
    try:
        find_mosquitto()
    except BedsideError as err:
        pytest.skip(str(err))
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "demo", "--plain", "--duration", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.lower()
    raised = [ln for ln in out.splitlines() if "raised" in ln]
    print("\n".join(raised))
    for condition in ("extreme_tachy", "asystole"):
        assert any(condition in ln for ln in raised), proc.stdout
    assert "traceback" not in proc.stderr.lower()
