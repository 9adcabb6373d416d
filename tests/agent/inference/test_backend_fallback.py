"""Edge TPU requested on a machine without libedgetpu: one clear line, then CPU (or a refusal)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.inference.tflite import DelegateUnavailableError, load_model
from models.card import load_card, shipped_card

BEAT_CARD = shipped_card("beat_cnn")


@pytest.fixture(scope="module")
def beat_model_path() -> Path:
    card = load_card(BEAT_CARD)
    return BEAT_CARD.parent / card.file


@pytest.fixture(scope="module")
def no_edgetpu(beat_model_path: Path) -> None:
    try:
        load_model(beat_model_path, backend="edgetpu", fallback_to_cpu=False)
    except DelegateUnavailableError:
        return
    pytest.skip("an Edge TPU runtime is installed here; the fallback path cannot be shown")


@pytest.mark.usefixtures("no_edgetpu")
def test_edgetpu_missing_falls_back_to_cpu_with_one_line(
    beat_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.inference.tflite"):
        model = load_model(beat_model_path, backend="edgetpu", fallback_to_cpu=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.inference.tflite"]
    assert len(lines) == 1
    assert "Edge TPU unavailable" in lines[0]
    assert "libedgetpu.so.1" in lines[0]
    assert model.backend == "cpu"
    assert model.requested_backend == "edgetpu"
    # it really runs, and gives what a plain CPU model gives
    cpu = load_model(beat_model_path)
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal(t.shape).astype(np.float32) for t in cpu.inputs]
    for got, want in zip(model.predict(inputs), cpu.predict(inputs), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.usefixtures("no_edgetpu")
def test_edgetpu_missing_without_fallback_refuses(beat_model_path: Path) -> None:
    with pytest.raises(DelegateUnavailableError, match="libedgetpu"):
        load_model(beat_model_path, backend="edgetpu", fallback_to_cpu=False)


def _analyze(tmp_path: Path, record: Path, fallback: bool) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / f"edgetpu-{fallback}.toml"
    flag = "true" if fallback else "false"
    cfg.write_text(
        f'[dsp]\npowerline_hz = 60\n\n[inference]\nbackend = "edgetpu"\nfallback_to_cpu = {flag}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    argv = ["analyze", str(record), "--out", str(out), "--config", str(cfg)]
    return subprocess.run(
        [sys.executable, "-m", "agent", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.usefixtures("no_edgetpu")
def test_agent_configured_for_edgetpu(tmp_path: Path, mitdb: Path) -> None:
    record = mitdb / "100"
    refused = _analyze(tmp_path, record, fallback=False)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    errors = [ln for ln in refused.stderr.splitlines() if ln.startswith("bedside: error:")]
    assert len(errors) == 1, refused.stderr
    assert "Edge TPU delegate libedgetpu.so.1 unavailable" in errors[0]

    ran = _analyze(tmp_path, record, fallback=True)
    assert ran.returncode == 0, ran.stderr
    warnings = [ln for ln in ran.stderr.splitlines() if "Edge TPU unavailable" in ln]
    assert len(warnings) == 1, ran.stderr
    beats = (tmp_path / "out" / "100" / "beats.csv").read_text(encoding="utf-8").splitlines()
    classes = {line.split(",")[2] for line in beats[1:]}
    assert "N" in classes  # beats were classified, on the CPU
