"""The models of one agent process, loaded once and passed in as one frozen bundle.

The CLI (or a test, or a benchmark) calls :func:`load_models` once; the core
(:mod:`agent.core.monitor`) takes the bundle and does no I/O. A bundle is shared by every
stream of a process (``bedside analyze`` over many records): the beat CNN is stateless, and
the AF LSTM, which is not, gets a fresh interpreter per stream (:class:`AfModel`).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config import InferenceConfig
from agent.inference.beat_classifier import MODEL_NAME as BEAT_MODEL_NAME
from agent.inference.beat_classifier import BeatClassifier
from agent.inference.factory import load_af_model, load_beat_classifier
from agent.rhythm.af import AfModel
from agent.rhythm.af_wave import AF_WAVE_PARAMS_TUNED, AfWaveParams
from agent.rhythm.ventricular import VT_PARAMS_TUNED, VtParams
from agent.rhythm.vf import VF_PARAMS_TUNED, VfParams


@dataclass(frozen=True, slots=True)
class ModelBundle:
    """Every model a stream may use; None for one that is switched off.

    Attributes
    ----------
    beat_classifier : BeatClassifier | None
        AAMI beat classes (int8 CNN).
    af : AfModel | None
        AF from RR intervals (int8 LSTM).
    vf : VfParams | None
        VF/VFL detector parameters (published features, no model file).
    af_wave : AfWaveParams | None
        Waveform AF path (:mod:`agent.rhythm.af_wave`), fused with ``af`` on ECG streams.
    vt : VtParams | None
        Waveform VT detector parameters (:mod:`agent.rhythm.ventricular`; switched with
        ``vf``).
    """

    beat_classifier: BeatClassifier | None = None
    af: AfModel | None = None
    vf: VfParams | None = None
    vt: VtParams | None = None
    af_wave: AfWaveParams | None = None

    def versions(self) -> dict[str, str]:
        """Name → version of the beat and AF models, copied into every alarm they may decide."""
        out: dict[str, str] = {}
        if self.beat_classifier is not None:
            out[BEAT_MODEL_NAME] = self.beat_classifier.version
        if self.af is not None:
            out[self.af.card.name] = self.af.card.version
        return out


def load_models(cfg: InferenceConfig) -> ModelBundle:
    """Load every model ``cfg`` switches on.

    Raises
    ------
    InferenceError
        If a model card or model file is missing, or a model does not match its card.
    DelegateUnavailableError
        If the Edge TPU is requested, missing, and fallback is off.
    """
    return ModelBundle(
        beat_classifier=load_beat_classifier(cfg),
        af=load_af_model(cfg),
        vf=VF_PARAMS_TUNED if cfg.vf else None,
        vt=VT_PARAMS_TUNED if cfg.vf else None,
        af_wave=AF_WAVE_PARAMS_TUNED if cfg.af_waveform else None,
    )
