"""``python -m tools.af smoke``: train a few steps, convert to int8, run, check the fused LSTM.

Needs TensorFlow + tf-keras (the training venv ``.venv-train``); skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

HAS_TF = importlib.util.find_spec("tensorflow") is not None and (
    importlib.util.find_spec("tf_keras") is not None
)


@pytest.mark.slow
@pytest.mark.skipif(
    not HAS_TF,
    reason="TensorFlow/tf-keras not importable here (training venv only: .venv-train)",
)
def test_smoke_trains_converts_and_runs_fused_lstm(data_dir: Path, tmp_path: Path) -> None:
    # a subprocess: TensorFlow's import-time warnings must not meet filterwarnings=error
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.af",
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
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in proc.stdout
    assert "smoke: OK" in proc.stdout
    assert (tmp_path / "af_rr_smoke.tflite").stat().st_size < 64 * 1024


def test_smoke_without_data_is_an_error(tmp_path: Path) -> None:
    from tools.af.__main__ import main

    assert main(["smoke", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
