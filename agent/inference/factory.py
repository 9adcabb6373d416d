"""Build the models the configuration asks for, once per process."""

from __future__ import annotations

import logging

from agent.config import InferenceConfig
from agent.inference.beat_classifier import BeatClassifier
from agent.inference.tflite import InferenceError
from agent.rhythm.af import AfModel

logger = logging.getLogger(__name__)


def load_beat_classifier(cfg: InferenceConfig) -> BeatClassifier | None:
    """Return the beat classifier, or None when ``inference.beats`` is off.

    Raises
    ------
    InferenceError
        If the model card or model file is missing, or the model does not match its card.
    DelegateUnavailableError
        If the Edge TPU is requested, missing, and fallback is off.
    """
    if not cfg.beats:
        return None
    try:
        classifier = BeatClassifier(
            cfg.beat_model, backend=cfg.backend, fallback_to_cpu=cfg.fallback_to_cpu
        )
    except (OSError, ValueError) as err:
        msg = f"cannot load the beat classifier: {err}"
        raise InferenceError(msg) from err
    logger.info(
        "beat classifier %s v%s on %s (%s)",
        classifier.card.name,
        classifier.version,
        classifier.model.backend,
        classifier.model.runtime,
    )
    return classifier


def load_af_model(cfg: InferenceConfig) -> AfModel | None:
    """Return the AF model (read and checked once), or None when ``inference.af`` is off.

    Each stream makes its own detector from it (:meth:`AfModel.interpreter`): the LSTM holds
    state. It always runs on the CPU (LSTMs are unreliable on the Edge TPU,
    ../shared/STACK.md).

    Raises
    ------
    InferenceError
        If the model card or model file is missing, or the model does not match its card.
    """
    if not cfg.af:
        return None
    try:
        model = AfModel.load(cfg.af_model)
        model.interpreter()  # a model that does not load fails here, once, not per stream
    except (OSError, ValueError) as err:
        msg = f"cannot load the AF detector: {err}"
        raise InferenceError(msg) from err
    return model
