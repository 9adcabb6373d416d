"""Train the beat CNN (Keras 3) on DS1 + svdb: patient-wise folds for choices, then all of it.

The network is small on purpose (≈10 k parameters, < 20 KB in int8): three convolution
blocks over the 96-sample, 2-channel window (beat and template), a dense layer over the RR
features, one joint dense layer, softmax over the five AAMI classes. Conv1D / MaxPool1D /
Dense / Concatenate convert to TFLite ``CONV_2D``, ``MAX_POOL_2D``, ``FULLY_CONNECTED``,
``CONCATENATION``, ``RESHAPE`` and ``SOFTMAX``, all on the Coral Edge TPU's supported-op list.

Class imbalance (DS1: ~46 k N, ~0.9 k S, ~3.8 k V, ~0.4 k F, 8 Q) is handled with class
weights in the loss, not resampling (the RR features and templates of a beat depend on its
neighbours, so duplicating beats would duplicate contexts): N, S and V get
``(n / (k · n_c)) ** power``, capped at :data:`MAX_CLASS_WEIGHT`; ``power = 1`` is fully
balanced (Se-oriented), smaller powers trade Se for +P; the power is chosen on DS1's
patient-wise validation folds (:func:`cross_validate`, docs/beat_classifier.md). F and Q keep
weight 1 (:data:`UNWEIGHTED_CLASSES`).

TensorFlow and Keras are imported inside the functions: the main venv (no TensorFlow) can
import and type-check this module.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from agent.inference.beat_features import (
    DEFAULT_SCALING,
    N_RR_FEATURES,
    N_WINDOW_CHANNELS,
    WINDOW_LEN,
    Scaling,
)
from tools.beats.dataset import LABELS, BeatSet, is_negated, is_scored, patient_of

logger = logging.getLogger(__name__)

KerasModel = Any
"""A ``keras.Model`` (typed loosely: the main venv has no TensorFlow)."""


def _keras() -> Any:  # noqa: ANN401
    """Import Keras 3 lazily (only the training venv has it)."""
    return importlib.import_module("keras")


def _tf() -> Any:  # noqa: ANN401
    """Import TensorFlow lazily."""
    return importlib.import_module("tensorflow")


SEED: Final = 20240917
"""Seed of numpy, Python and TensorFlow (``keras.utils.set_random_seed``)."""

MAX_CLASS_WEIGHT: Final = 10.0
"""Cap on a class weight, so the 8 Q beats of DS1 cannot dominate a batch."""

DS1_FOLDS: Final[tuple[tuple[str, ...], ...]] = (
    ("101", "108", "118", "122", "201", "208"),
    ("106", "112", "114", "203", "209", "215"),
    ("109", "115", "119", "205", "220"),
    ("116", "124", "207", "223", "230"),
)
"""Patient-wise validation folds of DS1 (every record in exactly one fold; S-rich records
209, 220, 223, 201, 118, 207 and V-rich records 106, 119, 203, 208 spread over the folds)."""

SVDB_FOLDS: Final[tuple[tuple[str, ...], ...]] = (
    ("802", "810", "840", "842", "850", "862", "880", "884", "892", "894"),
    ("806", "812", "846", "854", "856", "866", "874", "876", "878", "890"),
    ("808", "820", "822", "824", "828", "844", "848", "870", "882", "888"),
    ("800", "804", "826", "852", "858", "860", "864", "868", "872", "886"),
)
"""Patient-wise folds of the 40 svdb records at hand (10 each; records dealt greedily, most
S + V beats first, to the fold with the fewest so far, so that each fold holds 0.7-1.9 k S
and 0.5-1.7 k V beats)."""

FOLDS: Final[tuple[tuple[str, ...], ...]] = tuple(
    d + s for d, s in zip(DS1_FOLDS, SVDB_FOLDS, strict=True)
)
"""The folds every choice is made on: fold k = DS1 fold k + svdb fold k. Each fold is predicted
by a model trained on the other three (DS1 and svdb records together); DS2 is never used."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Training hyper-parameters (defaults are the shipped model's).

    Attributes
    ----------
    epochs, batch_size, learning_rate
        Adam training schedule.
    class_weight_power
        Exponent of the N / S / V class weights (see the module docstring).
    seed
        Seed of the first network; ensemble members use ``seed + i``.
    n_models
        Networks in the seed ensemble.
    scaling
        Window scaling (:data:`agent.inference.beat_features.Scaling`).
    n_keep_every
        Train on one N beat in this many (all S, V, F, Q beats); 1 keeps every beat. The
        dropped N beats still shaped their neighbours' RR features and templates. Every N
        beat (1) was measured in session 21 and not shipped (docs/beat_classifier.md).
    noise_augment
        Add the noisy copies of the training records (:mod:`tools.beats.augment`).
    polarity_augment
        Train on the reversed-lead copies of the training records too (every beat of each
        record with its ECG turned over, ``"<record>~neg"``), so that a strap worn upside down
        is read as the same beats. Off in the shipped model: measured on the folds it reads a
        reversed lead far better but costs V sensitivity on svdb's upright leads
        (docs/beat_classifier.md, session 20). Either way the copies of a held-out record are
        scored out of fold (the ``*_reversed`` rows of a cv report).
    polarity_keep_every
        Train on one reversed-lead beat in this many (every class alike, so that turning a
        lead over says nothing about the class).
    second_lead_augment
        Train on the second-lead copies of the training records too
        (:func:`tools.beats.dataset.second_lead_dataset`: the same beats in mitdb's V1/V2/V4/V5
        and svdb's ECG2, every S, V, F, Q beat and one N beat in 4).
    width
        Scale of every hidden layer's filters and units (1: the shipped ~10 k-parameter
        network; docs/beat_classifier.md, session 20).
    output_bias
        Added to the bias of each network's softmax layer after training, one value per class
        in :data:`LABELS` order: a log-prior shift, ``p_c ∝ p_c · exp(b_c)``. Chosen on the
        pooled out-of-fold probabilities of the patient-wise folds (docs/beat_classifier.md).
    """

    epochs: int = 8
    batch_size: int = 256
    learning_rate: float = 2e-3
    class_weight_power: float = 0.5
    seed: int = SEED
    n_models: int = 3
    scaling: Scaling = DEFAULT_SCALING
    n_keep_every: int = 4
    noise_augment: bool = True
    polarity_augment: bool = False
    polarity_keep_every: int = 1
    second_lead_augment: bool = False
    width: float = 1.0
    output_bias: tuple[float, ...] = (0.0, 0.0, -0.5, 0.0, -6.0)

    def as_dict(self) -> dict[str, object]:
        """Return the configuration as JSON-ready values."""
        return asdict(self)


def model_windows(data: BeatSet) -> NDArray[np.float32]:
    """Return the windows as the model takes them, shape ``(n_beats, WINDOW_LEN, channels)``."""
    w = data.windows
    return w if w.ndim == 3 else w[:, :, None]


UNWEIGHTED_CLASSES: Final = ("F", "Q")
"""Classes kept at weight 1: DS1's F beats are 90 % from one patient (208) and Q has 8 beats;
weighting them up made held-out patients' N beats F (DS1 folds: 832 N→F for 12 true F)."""


def class_weights(labels: NDArray[np.int64], power: float) -> dict[int, float]:
    """Return ``{class index: weight}``, ``(n / (k · n_c)) ** power`` capped at the maximum.

    Classes in :data:`UNWEIGHTED_CLASSES` or absent from ``labels`` get weight 1.
    """
    n = labels.size
    k = len(LABELS)
    out: dict[int, float] = {}
    for i in range(k):
        n_c = int((labels == i).sum())
        if n_c == 0 or LABELS[i] in UNWEIGHTED_CLASSES:
            out[i] = 1.0
        else:
            out[i] = float(min((n / (k * n_c)) ** power, MAX_CLASS_WEIGHT))
    return out


def build_model(
    seed: int = SEED,
    n_channels: int = N_WINDOW_CHANNELS,
    name: str = "beat_cnn",
    width: float = 1.0,
) -> KerasModel:
    """Return the uncompiled Keras 3 beat CNN (inputs ``window`` and ``rr``).

    ``width`` scales the filters and units of every hidden layer (1: the shipped network).
    """
    keras = _keras()

    def n(units: int) -> int:
        return max(1, round(units * width))

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    window = keras.Input(shape=(WINDOW_LEN, n_channels), name="window")
    rr = keras.Input(shape=(N_RR_FEATURES,), name="rr")
    x = layers.Conv1D(n(8), 7, padding="same", activation="relu")(window)
    x = layers.MaxPooling1D(2)(x)  # 48
    x = layers.Conv1D(n(16), 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling1D(2)(x)  # 24
    x = layers.Conv1D(n(16), 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling1D(2)(x)  # 12
    x = layers.Flatten()(x)
    x = layers.Dense(n(32), activation="relu")(x)
    r = layers.Dense(n(16), activation="relu")(rr)
    h = layers.Concatenate()([x, r])
    h = layers.Dense(n(32), activation="relu")(h)
    h = layers.Dropout(0.2, seed=seed)(h)
    out = layers.Dense(len(LABELS), activation="softmax", name="aami")(h)
    return keras.Model(inputs=[window, rr], outputs=out, name=name)


def training_beats(data: BeatSet, config: TrainConfig) -> BeatSet:
    """Return the beats of ``data`` that a model of ``config`` is trained and calibrated on.

    Reversed-lead copies (``"<record>~neg"``) are left out unless ``config.polarity_augment``,
    and then one in ``config.polarity_keep_every`` is kept; every other beat stays (the N
    subsampling of ``n_keep_every`` happens inside the training itself).
    """
    negated = is_negated(data.records)
    if not config.polarity_augment:
        return data.subset(~negated) if negated.any() else data
    if config.polarity_keep_every <= 1:
        return data
    drop = np.zeros(len(data), dtype=bool)
    idx = np.flatnonzero(negated)
    drop[idx] = np.arange(idx.size) % config.polarity_keep_every != 0
    return data.subset(~drop)


def train_model(data: BeatSet, config: TrainConfig) -> KerasModel:
    """Train a fresh model on ``data`` and return it (Keras model).

    With ``config.n_models > 1``, that many networks are trained with seeds ``seed + i`` and
    joined into one model that averages their probabilities (a seed ensemble: with ~16
    training patients per fold, single runs differ by several points on held-out patients).

    Uses the GPU when TensorFlow sees one, the CPU otherwise; single-threaded ops on the CPU
    so that training shares the machine politely. Deterministic for a given seed on the CPU.
    ``data`` is trained on as it is: pass it through :func:`training_beats` first.
    """
    if config.n_models > 1:
        keras = _keras()
        members = [
            _train_one(data, replace(config, n_models=1, seed=config.seed + i), f"member{i}")
            for i in range(config.n_models)
        ]
        window = keras.Input(shape=(WINDOW_LEN, model_windows(data).shape[-1]), name="window")
        rr = keras.Input(shape=(N_RR_FEATURES,), name="rr")
        outs = [m([window, rr]) for m in members]
        avg = keras.layers.Average(name="aami")(outs)
        return keras.Model(inputs=[window, rr], outputs=avg, name="beat_cnn")
    return _train_one(data, config, "beat_cnn")


def _train_one(data: BeatSet, config: TrainConfig, name: str) -> KerasModel:
    keras = _keras()
    tf = _tf()

    gpus = tf.config.list_physical_devices("GPU")
    logger.info("training on %s", "GPU" if gpus else "CPU")
    if config.n_keep_every > 1:
        n_idx = np.flatnonzero(data.labels == LABELS.index("N"))
        drop = np.zeros(len(data), dtype=bool)
        drop[n_idx] = np.arange(n_idx.size) % config.n_keep_every != 0
        data = data.subset(~drop)
    model = build_model(config.seed, model_windows(data).shape[-1], name, config.width)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data))
    weights = class_weights(data.labels, config.class_weight_power)
    logger.info("class weights %s", {LABELS[k]: round(v, 2) for k, v in weights.items()})
    t0 = time.perf_counter()
    model.fit(
        {"window": model_windows(data)[order], "rr": data.rr[order]},
        data.labels[order],
        batch_size=config.batch_size,
        epochs=config.epochs,
        class_weight=weights,
        shuffle=True,
        verbose=0,
    )
    logger.info("trained %d epochs in %.0f s", config.epochs, time.perf_counter() - t0)
    if any(config.output_bias):
        layer = model.get_layer("aami")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, bias + np.asarray(config.output_bias, dtype=np.float32)])
    return model


def predict_keras(model: KerasModel, data: BeatSet) -> NDArray[np.float32]:
    """Return class probabilities, shape ``(n_beats, 5)``, from a Keras model."""
    p = model.predict({"window": model_windows(data), "rr": data.rr}, verbose=0, batch_size=1024)
    return np.asarray(p, dtype=np.float32)


def limit_threads() -> None:
    """Keep TensorFlow to one intra-op and one inter-op thread (shared 2-core machine)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = _tf()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised
        logger.debug("TensorFlow threads already configured")


def cross_validate(
    data: BeatSet,
    config: TrainConfig,
    folds: tuple[tuple[str, ...], ...] = FOLDS,
    on_fold: Callable[[int, KerasModel, BeatSet], None] | None = None,
) -> NDArray[np.float32]:
    """Out-of-fold class probabilities over patient-wise folds (default :data:`FOLDS`).

    Each fold's records are predicted by a model trained on the other folds only, so the
    pooled probabilities, shape ``(n_beats, 5)``, estimate inter-patient performance without
    touching DS2. Beats of records in no fold are trained on in every fold and get zeros, and
    so do noisy copies (held out with their record, never scored); reversed-lead copies of a
    held-out record are scored (the reversed-lead figures), trained on or not. ``on_fold(k, model,
    training_data)`` is called with each fold's model (e.g. to convert and keep it).
    """
    probs = np.zeros((len(data), len(LABELS)), dtype=np.float32)
    patients = patient_of(data.records)
    scorable = is_scored(data.records)
    for k, fold in enumerate(folds):
        held = np.isin(patients, list(fold))
        train = training_beats(data.subset(~held), config)
        model = train_model(train, config)
        if on_fold is not None:
            on_fold(k, model, train)
        scored = held & scorable
        probs[scored] = predict_keras(model, data.subset(scored))
        logger.info("fold %d (%s) done", k, " ".join(fold))
    return probs
