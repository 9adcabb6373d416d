"""Keras beat CNN → TFLite: float32 reference and full-integer int8, plus Edge TPU checks.

int8 conversion is post-training full-integer quantization with a representative dataset
drawn from DS1 (TFLite converter: ``Optimize.DEFAULT``, ``TFLITE_BUILTINS_INT8`` only,
``inference_input_type = inference_output_type = int8``). Inputs have a static batch of 1:
the Edge TPU compiler needs static shapes (../shared/STACK.md).

Edge TPU: ``edgetpu_compiler`` runs when it is on ``PATH``; in every case the model's op list
is compared with the Coral Edge TPU supported-op table (:data:`EDGETPU_SUPPORTED_OPS`) and the
result is written into the model card.

References
----------
TFLite post-training integer quantization,
https://ai.google.dev/edge/litert/models/post_training_integer_quant
Coral, "TensorFlow models on the Edge TPU", supported operations,
https://coral.ai/docs/edgetpu/models-intro/#supported-operations
"""

from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from agent.inference.beat_features import N_RR_FEATURES, N_WINDOW_CHANNELS, WINDOW_LEN
from agent.inference.tflite import interpreter_module
from tools.beats.dataset import BeatSet
from tools.beats.train import SEED, KerasModel

logger = logging.getLogger(__name__)

REPRESENTATIVE_BEATS: Final = 1000
"""Calibration examples drawn from DS1 (stratified: every class present)."""

EDGETPU_SUPPORTED_OPS: Final[dict[str, str]] = {
    "ADD": "",
    "AVERAGE_POOL_2D": "no fused activation",
    "CONCATENATION": "no fused activation; a constant input must be all zeros",
    "CONV_2D": "same dilation in x and y",
    "DEPTHWISE_CONV_2D": "same dilation in x and y",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "default weight format; output one-dimensional",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "LSTM": "unidirectional only",
    "MAXIMUM": "",
    "MAX_POOL_2D": "no fused activation",
    "MEAN": "no reduction in the batch dimension",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "no packing in the batch dimension",
    "PAD": "no padding in the batch dimension",
    "PRELU": "alpha one-dimensional",
    "QUANTIZE": "",
    "REDUCE_MAX": "not over the batch dimension",
    "REDUCE_MIN": "not over the batch dimension",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "large tensors may not map",
    "RESIZE_BILINEAR": "3-D input/output",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output",
    "RSQRT": "",
    "SLICE": "",
    "SOFTMAX": "1-D input, at most 16,000 elements",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "not in the batch dimension",
    "SQUARED_DIFFERENCE": "",
    "SQUEEZE": "",
    "STRIDED_SLICE": "",
    "SUB": "",
    "SUM": "not over the batch dimension",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}
"""Coral's Edge TPU supported operations (TFLite builtin names) and their stated limits, from
https://coral.ai/docs/edgetpu/models-intro/#supported-operations (compiler 16). Also required:
every tensor int8/uint8, static shapes, at most 3 dimensions larger than 1."""


def _tf() -> Any:  # noqa: ANN401
    return importlib.import_module("tensorflow")


def representative_indices(data: BeatSet, n: int = REPRESENTATIVE_BEATS) -> np.ndarray[Any, Any]:
    """Return ``n`` calibration beat indices: half uniform, half equal shares per class."""
    rng = np.random.default_rng(SEED)
    uniform = rng.choice(len(data), size=n // 2, replace=False)
    per_class = []
    classes = np.unique(data.labels)
    for c in classes:
        idx = np.flatnonzero(data.labels == c)
        k = min(idx.size, (n - n // 2) // classes.size)
        per_class.append(rng.choice(idx, size=k, replace=False))
    return np.unique(np.concatenate([uniform, *per_class]))


def to_tflite(model: KerasModel, calibration: BeatSet | None) -> bytes:
    """Convert a Keras beat model with a static batch of 1.

    Parameters
    ----------
    model
        The trained Keras model (inputs ``window`` ``(96, 2)`` and ``rr`` ``(8,)``).
    calibration
        Representative DS1 beats for full-integer int8; None converts to float32.

    Returns
    -------
    bytes
        The ``.tflite`` flatbuffer.
    """
    tf = _tf()
    keras = importlib.import_module("keras")
    window = keras.Input(shape=(WINDOW_LEN, N_WINDOW_CHANNELS), batch_size=1, name="window")
    rr = keras.Input(shape=(N_RR_FEATURES,), batch_size=1, name="rr")
    fixed = keras.Model(inputs=[window, rr], outputs=model([window, rr]), name="beat_cnn")
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    if calibration is not None:
        idx = representative_indices(calibration)

        def representative() -> Iterator[dict[str, np.ndarray[Any, Any]]]:
            # keyed by input name: the converted graph orders its inputs by name, not as the
            # input signature lists them
            for i in idx.tolist():
                yield {
                    "window": calibration.windows[i].reshape(1, WINDOW_LEN, N_WINDOW_CHANNELS),
                    "rr": calibration.rr[i].reshape(1, N_RR_FEATURES),
                }

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def model_ops(tflite_path: Path) -> list[str]:
    """Builtin op names of a ``.tflite`` model in execution order (runtime interpreter)."""
    _, module = interpreter_module()
    interp = module.Interpreter(model_path=str(tflite_path))
    return [str(op["op_name"]) for op in interp._get_ops_details()]


def edgetpu_report(tflite_path: Path) -> dict[str, Any]:
    """Check a model for the Edge TPU: op compatibility always, the compiler when present.

    Returns
    -------
    dict
        ``ops`` (op → count), ``unsupported_ops``, ``all_ops_supported``, ``int8_io`` and
        ``compiler`` (its version and log, or why it did not run).
    """
    ops = model_ops(tflite_path)
    counts = {op: ops.count(op) for op in sorted(set(ops))}
    unsupported = sorted(op for op in counts if op not in EDGETPU_SUPPORTED_OPS)
    _, module = interpreter_module()
    interp = module.Interpreter(model_path=str(tflite_path))
    io = [*interp.get_input_details(), *interp.get_output_details()]
    int8_io = all(np.dtype(d["dtype"]) == np.int8 for d in io)
    report: dict[str, Any] = {
        "ops": counts,
        "unsupported_ops": unsupported,
        "all_ops_supported": not unsupported and int8_io,
        "int8_io": int8_io,
        "supported_ops_source": "https://coral.ai/docs/edgetpu/models-intro/#supported-operations",
        "op_list_source": "ai_edge_litert Interpreter._get_ops_details()",
    }
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        report["compiler"] = {
            "ran": False,
            "reason": "edgetpu_compiler not on PATH (x86-64 Debian package from Coral's apt"
            " repository, unreachable from the build machine)",
        }
        return report
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [compiler, "-s", "-o", tmp, str(tflite_path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        compiled = list(Path(tmp).glob("*_edgetpu.tflite"))
        if compiled:
            target = tflite_path.with_name(tflite_path.stem + "_edgetpu.tflite")
            shutil.copyfile(compiled[0], target)
        report["compiler"] = {
            "ran": True,
            "returncode": proc.returncode,
            "log": proc.stdout[-4000:],
            "output": compiled[0].name if compiled else None,
        }
    return report
