"""``python -m tools.beats smoke``: train briefly, convert to int8, run it (needs TensorFlow)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None,
        reason="TensorFlow not importable: run from .venv-train (tools extra)",
    ),
]


def test_smoke_trains_converts_and_runs(data_dir: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.beats",
            "smoke",
            "--data",
            str(data_dir),
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "outputs sum to 1: True" in proc.stdout
    model = tmp_path / "beat_cnn_smoke.tflite"
    assert 1_000 < model.stat().st_size < 64 * 1024
