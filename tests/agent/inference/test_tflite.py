"""Quantization of model inputs and outputs (agent.inference.tflite.TensorInfo), and what the
runtime prints while a model loads."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from agent.inference.tflite import TensorInfo


@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point"),
    [(np.int8, 0.0371, -5), (np.uint8, 0.02, 128), (np.int8, 1 / 256, -128)],
)
def test_quantize_follows_the_spec_formula(dtype: type, scale: float, zero_point: int) -> None:
    """``q = clip(rint(x / scale) + zero_point)`` in float64, ``x = scale * (q - zp)`` in f32."""
    info = TensorInfo("x", 0, (1, 96, 2), np.dtype(dtype), scale, zero_point)
    assert info.quantized
    assert info.size == 192
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((1, 96, 2)) * 5.0).astype(np.float32)
    lim = np.iinfo(dtype)
    expected = np.clip(np.rint(x.astype(np.float64) / scale) + zero_point, lim.min, lim.max).astype(
        dtype
    )
    q = info.quantize(x)
    assert q.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(q, expected)
    back = info.dequantize(q)
    expected_back = (scale * (q.astype(np.float32) - zero_point)).astype(np.float32)
    assert back.dtype == np.float32
    assert back.tobytes() == expected_back.tobytes()
    # in range, the round trip is within half a step; out of range, it saturates
    in_range = (expected > lim.min) & (expected < lim.max)
    assert np.abs(back - x)[in_range].max() <= 0.5 * scale * (1 + 1e-5)
    big = info.quantize(np.array([[1e6, -1e6]]))
    np.testing.assert_array_equal(big, [[lim.max, lim.min]])


def test_float_tensor_is_a_plain_cast() -> None:
    info = TensorInfo("y", 1, (1, 3), np.dtype(np.float32), 0.0, 0)
    assert not info.quantized
    x = np.array([[0.25, -1.5, 3.0]])
    np.testing.assert_array_equal(info.quantize(x), x.astype(np.float32))
    np.testing.assert_array_equal(info.dequantize(x.astype(np.float32)), x)


def test_runtime_banner_goes_to_the_log_not_to_stderr() -> None:
    """A fresh process loading two models: the runtime's "INFO: Created TensorFlow Lite
    XNNPACK delegate" line (printed by its C++ code to fd 2 on the first load) reaches the log
    at DEBUG, and nothing the runtime prints reaches stderr; Python's own stderr still works
    after the load."""
    import subprocess
    import sys

    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout,"
        " format='%(levelname)s %(message)s')\n"
        "from agent.inference.tflite import load_model\n"
        "from models.card import MODELS_DIR\n"
        "load_model(MODELS_DIR / 'beat_cnn.tflite')\n"
        "load_model(MODELS_DIR / 'af_rr.tflite')\n"
        "print('after', file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stderr == "after\n"
    banner = [line for line in proc.stdout.splitlines() if "TFLite runtime:" in line]
    assert banner == [
        "DEBUG TFLite runtime: INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    ]


def test_runtime_lines_of_a_failed_load_reach_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A runtime that prints to fd 2 and then refuses the model: the load raises
    InferenceError and the runtime's own line is logged as a warning, not lost."""
    import os
    import types

    from agent.inference import tflite

    def refusing_interpreter(**_: object) -> None:
        os.write(2, b"ERROR: Didn't find op for builtin opcode 'X'\n")
        msg = "Model provided has model identifier 'XXXX'"
        raise ValueError(msg)

    fake = types.SimpleNamespace(Interpreter=refusing_interpreter)
    monkeypatch.setattr(tflite, "interpreter_module", lambda: ("fake_runtime", fake))
    monkeypatch.setattr(tflite, "_runtime_stderr_seen", False)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"not a model")
    with (
        caplog.at_level(logging.WARNING, logger="agent.inference.tflite"),
        pytest.raises(tflite.InferenceError, match="model identifier"),
    ):
        tflite.load_model(model)
    assert [r.getMessage() for r in caplog.records] == [
        "TFLite runtime: ERROR: Didn't find op for builtin opcode 'X'"
    ]
