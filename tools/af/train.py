"""Train the AF LSTM (tf-keras) and convert it to a fully int8 TFLite model.

TensorFlow is imported lazily inside the functions (the main venv has none; the training venv
``.venv-train`` has tensorflow-cpu 2.21 and tf-keras 2.21). The LSTM must be built with
**tf-keras** and exported with a fixed batch of 1: TFLite's converter then emits the fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` op with int8 weights and activations (int16 cell state).
Keras 3 LSTMs segfault in int8 calibration (../shared/STACK.md).

Model: ``Input(AF_SEQ_LEN, AF_N_FEATURES) → LSTM(units) → Dense(1, sigmoid)``, binary
cross-entropy, Adam. The output is P(AF) of the window's centre interval.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np
from numpy.typing import NDArray

from agent.inference.tflite import interpreter_module
from agent.rhythm.af_features import AF_N_FEATURES, AF_SEQ_LEN

logger = logging.getLogger(__name__)

KerasModel: TypeAlias = Any
"""A ``tf_keras.Model`` (TensorFlow is untyped and absent from the main venv)."""

SEED: Final = 20240521
"""Fixed seed for weights, shuffling and representative-data sampling."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Training hyper-parameters.

    Attributes
    ----------
    units : int
        LSTM units.
    epochs : int
        Passes over the training windows.
    batch_size : int
        Minibatch size.
    learning_rate : float
        Adam learning rate.
    stride : int
        Keep every ``stride``-th window of a record (consecutive windows overlap by
        ``AF_SEQ_LEN - 1`` intervals, so thinning loses little and saves CPU).
    n_models : int
        LSTMs in a seed ensemble (seeds ``SEED + i``), averaged inside one graph (3, shipped);
        1 is the single network. Two trainings of one recipe differ by several false AF
        alarms on afdb out of fold (docs/af_detector.md, session 32).
    """

    units: int = 16
    epochs: int = 6
    batch_size: int = 256
    learning_rate: float = 3e-3
    stride: int = 4
    n_models: int = 3


def _tf() -> tuple[Any, Any]:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow exists only in the training venv: import it here, untyped
    return importlib.import_module("tensorflow"), importlib.import_module("tf_keras")


def build_model(units: int, *, batch_size: int | None = None, n_models: int = 1) -> KerasModel:
    """Build the (uncompiled) tf-keras model.

    Parameters
    ----------
    units
        LSTM units.
    batch_size
        None for training; 1 for the model that is converted (static shapes).
    n_models
        1: one LSTM (layers ``lstm``, ``p_af``); more: that many LSTM + sigmoid branches
        (``lstm{i}``, ``p_af{i}``) on the same input, their P(AF) averaged (``p_af``).

    Returns
    -------
    tf_keras.Model
        Input ``(batch, AF_SEQ_LEN, AF_N_FEATURES)`` float32 named ``rr``, output
        ``(batch, 1)`` P(AF).
    """
    _tf_mod, keras = _tf()
    inp = keras.Input(shape=(AF_SEQ_LEN, AF_N_FEATURES), batch_size=batch_size, name="rr")
    if n_models == 1:
        h = keras.layers.LSTM(units, name="lstm")(inp)
        out = keras.layers.Dense(1, activation="sigmoid", name="p_af")(h)
        return keras.Model(inp, out, name="af_rr")
    branches = [
        keras.layers.Dense(1, activation="sigmoid", name=f"p_af{i}")(
            keras.layers.LSTM(units, name=f"lstm{i}")(inp)
        )
        for i in range(n_models)
    ]
    out = keras.layers.Average(name="p_af")(branches)
    return keras.Model(inp, out, name="af_rr")


def train_model(x: NDArray[np.float32], y: NDArray[np.int8], cfg: TrainConfig) -> KerasModel:
    """Train a model on windows.

    Parameters
    ----------
    x
        Windows, shape ``(n, AF_SEQ_LEN, AF_N_FEATURES)``.
    y
        Labels 0/1, shape ``(n,)`` (no -1: filter before).
    cfg
        Hyper-parameters.

    Returns
    -------
    tf_keras.Model
        The trained model (dynamic batch); with ``cfg.n_models`` > 1 the ensemble of that
        many networks, each trained alone with seed ``SEED + i``.
    """
    tf, _keras = _tf()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if cfg.n_models == 1:
        return _train_one(x, y, cfg, SEED)
    ensemble = build_model(cfg.units, n_models=cfg.n_models)
    for i in range(cfg.n_models):
        member = _train_one(x, y, cfg, SEED + i)
        ensemble.get_layer(f"lstm{i}").set_weights(member.get_layer("lstm").get_weights())
        ensemble.get_layer(f"p_af{i}").set_weights(member.get_layer("p_af").get_weights())
    return ensemble


def _train_one(
    x: NDArray[np.float32], y: NDArray[np.int8], cfg: TrainConfig, seed: int
) -> KerasModel:
    """Train one network (:func:`build_model` with one LSTM) with ``seed``."""
    _tf_mod, keras = _tf()
    keras.utils.set_random_seed(seed)
    model = build_model(cfg.units)
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    model.fit(
        x[order],
        y[order].astype(np.float32),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        verbose=2,
        shuffle=True,
    )
    return model


def convert_int8(
    model: KerasModel, representative: NDArray[np.float32], units: int, n_models: int = 1
) -> bytes:
    """Convert a trained model to a fully int8 TFLite flatbuffer (batch 1).

    Parameters
    ----------
    model
        Trained tf-keras model from :func:`train_model`.
    representative
        Calibration windows, shape ``(n, AF_SEQ_LEN, AF_N_FEATURES)`` (a few hundred from
        the training records, never from test records).
    units
        LSTM units (to rebuild the batch-1 model).
    n_models
        Networks in the ensemble (:attr:`TrainConfig.n_models`).

    Returns
    -------
    bytes
        The ``.tflite`` model: int8 input and output, fused LSTM.
    """
    tf, _keras = _tf()
    fixed = build_model(units, batch_size=1, n_models=n_models)
    fixed.set_weights(model.get_weights())

    def rep() -> Iterator[list[NDArray[np.float32]]]:
        for w in representative:
            yield [w[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = rep
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data: bytes = converter.convert()
    return data


def tflite_ops(model_bytes: bytes) -> list[str]:
    """Builtin op name of every op of a TFLite model, in graph order (no TensorFlow needed).

    Uses the agent's interpreter (:func:`agent.inference.tflite.interpreter_module`).

    Raises
    ------
    RuntimeError
        If the model cannot be parsed.
    """
    _name, module = interpreter_module()
    try:
        interp = module.Interpreter(model_content=model_bytes)
        ops = interp._get_ops_details()  # the only op list the interpreter exposes
    except (ValueError, RuntimeError) as err:
        msg = f"cannot read TFLite ops: {err}"
        raise RuntimeError(msg) from err
    return [str(op["op_name"]) for op in ops]


def tflite_op_names(model_bytes: bytes) -> list[str]:
    """Return the distinct builtin op names of a TFLite model, sorted (:func:`tflite_ops`).

    Raises
    ------
    RuntimeError
        If the model cannot be parsed.
    """
    return sorted(set(tflite_ops(model_bytes)))


def predict_float(model: KerasModel, x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Float (Keras) P(AF) for windows ``(n, AF_SEQ_LEN, AF_N_FEATURES)`` → ``(n,)``."""
    out = model.predict(x, batch_size=4096, verbose=0)
    return np.asarray(out, dtype=np.float32).reshape(-1)


def fold_assignment(names: Sequence[str], af_fraction: Sequence[float], k: int) -> list[int]:
    """Patient-wise folds: each record (one patient in afdb) in exactly one fold.

    Records are sorted by their AF fraction and dealt round-robin, so every fold holds
    records with much, some and no AF (stratified by record, not by beat).

    Returns
    -------
    list[int]
        Fold index of each record, in ``names`` order.
    """
    order = sorted(range(len(names)), key=lambda i: (af_fraction[i], names[i]))
    folds = [0] * len(names)
    for rank, i in enumerate(order):
        folds[i] = rank % k
    return folds
