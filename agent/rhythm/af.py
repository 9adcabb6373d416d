"""Atrial fibrillation from RR intervals alone: int8 LSTM per beat, then AF episodes.

Works from any source of RR intervals: the agent's own R-peaks or a Heart Rate Service
wearable that sends RR but no waveform (BLE HRS 0x2A37 RR-Interval field).

Every :data:`~agent.rhythm.af_features.AF_HOP_BEATS` accepted RR intervals
(:class:`~agent.rhythm.af_features.RrCleaner`), once
:data:`~agent.rhythm.af_features.AF_SEQ_LEN` intervals are buffered, the model
(``models/af_rr.tflite``, card ``models/af_rr.json``) gives P(AF) of the window; the
probability is attributed to the window's centre interval (the model was trained on that
label), so each output describes the rhythm ``AF_SEQ_LEN // 2`` beats back.
:class:`AfEpisodeLogic` turns these probabilities into episodes with hysteresis:

Counts below are in windows (one every ``AF_HOP_BEATS`` beats):

- AF **starts** after ``n_on`` consecutive windows with ``p >= p_on``; its onset is the start
  of the centre interval of the first of them (not the confirmation time), or with
  ``onset_from_p_off`` of the first window of the unbroken run at or above ``p_off`` that
  ends in them (where P rose through the threshold that ends an episode); with ``p_hold``
  set, one window with ``p_hold <= p < p_on`` inside the run neither counts nor breaks it
  (two in a row, or one below ``p_hold``, do);
- AF **ends** after ``n_off`` consecutive windows with ``p < p_off``; its offset is the start
  of the centre interval of the first of them;
- AF **returns** faster after a sustained episode: within ``reentry_within_s`` of the end of an
  episode that lasted at least ``reentry_min_episode_s``, ``n_on_reentry`` windows confirm AF
  instead of ``n_on`` (a patient just seen in sustained AF is likely to relapse: paroxysmal AF;
  the detector's own short calls in a wavering sinus stretch do not qualify). Off when
  ``reentry_within_s`` is 0.

The thresholds and counts ship in the model card (``preprocessing.episode``), chosen on the
afdb cross-validation folds (docs/af_detector.md); the constructor can override them.

Cost: one inference every ``AF_HOP_BEATS`` beats (the card's ``latency`` gives the measured
time per inference on one CPU core).

References
----------
Petrėnas A, Marozas V, Sörnmo L. Low-complexity detection of atrial fibrillation in continuous
long-term monitoring. Comput Biol Med 2015;65:184-191. doi:10.1016/j.compbiomed.2015.01.019
ANSI/AAMI EC57:2012, section 3.3 (AF episode and duration sensitivity / positive predictivity).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from agent.dsp.stats import median_finite
from agent.inference.tflite import Backend, InferenceError, TfliteModel, load_model
from agent.rhythm.af_features import (
    AF_CENTER_IDX,
    AF_HOP_BEATS,
    AF_N_FEATURES,
    AF_SEQ_LEN,
    GAP,
    CleanRr,
    RrCleaner,
    af_window_features,
)
from models.card import MODELS_DIR, ModelCard, load_card

logger = logging.getLogger(__name__)

__all__ = [
    "AF_CARD",
    "DEFAULT_EPISODE",
    "AfChange",
    "AfDetector",
    "AfEpisodeLogic",
    "EpisodeParams",
]

AF_CARD: Final = MODELS_DIR / "af_rr.json"

MIN_IRREGULARITY: Final = 0.03
"""A window whose mean absolute successive RR difference is below 3 % of its median RR is
regular, so not AF, whatever the model says. AF is "irregularly irregular" (2023 ACC/AHA/ACCP/
HRS AF guideline); RR-irregularity is the basis of RR-only AF detection (Tateno & Glass 2001;
Sarkar et al. 2008). Added because the LSTM also reads *rate*: a perfectly regular 175 bpm
sinus tachycardia (the demo's simulated patient) came out at P = 1.0. The threshold is
physiological, not tuned: resting sinus rhythm's successive differences are a few percent of
RR, AF's typically well above 10 %."""
"""Card of the shipped AF model."""


@dataclass(frozen=True, slots=True)
class AfChange:
    """AF began or ended.

    Attributes
    ----------
    af : bool
        True: an AF episode began; False: it ended.
    onset_s : float
        Estimated stream time (s) at which the episode began (``af``) or ended (not ``af``);
        earlier than the moment the change is reported (the confirmation time).
    confirmed_s : float | None
        For a beginning: the start (s) of the first window of the run that confirmed it,
        from which the ``afib`` alarm counts the episode's age
        (:class:`agent.core.consumers.AfConsumer`); later than ``onset_s`` only with
        ``EpisodeParams.onset_from_p_off``. None: ``onset_s``. Not compared.
    """

    af: bool
    onset_s: float
    confirmed_s: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class EpisodeParams:
    """Hysteresis of :class:`AfEpisodeLogic`.

    Attributes
    ----------
    p_on : float
        A window counts towards AF onset when P(AF) >= p_on.
    n_on : int
        Consecutive such windows (one every ``AF_HOP_BEATS`` beats) that confirm AF.
    p_off : float
        A window counts towards AF offset when P(AF) < p_off (``p_off <= p_on``).
    n_off : int
        Consecutive such windows that end AF.
    reentry_within_s : float
        Seconds after the end of a sustained episode during which ``n_on_reentry`` windows
        confirm AF; 0 turns the faster re-entry off. Measured on afdb out of fold before it
        was switched on (docs/af_detector.md, session 33).
    reentry_min_episode_s : float
        An episode this long or longer counts as sustained (its onset to its offset, s).
    n_on_reentry : int
        Consecutive windows with ``p >= p_on`` that confirm a re-entry.
    p_hold : float | None
        Out of AF, during an onset run, one window with ``p_hold <= p < p_on`` neither counts
        nor breaks the run; a second in a row, or a window below ``p_hold``, breaks it. None
        (the default): every window below ``p_on`` breaks the run. Measured on afdb out of
        fold before any card set it (docs/af_detector.md, session 34).
    onset_from_p_off : bool
        Date a confirmed episode's onset at the first window of the unbroken run of windows
        with ``p >= p_off`` that ends in the confirming run (where P rose through the
        threshold that ends an episode), not at the first window with ``p >= p_on``. Which
        windows confirm AF is unchanged but for the re-entry, whose sustained-episode test
        measures from the dated onset. False (the default) unless a card sets it
        (docs/af_detector.md, session 36).

    Raises
    ------
    ValueError
        If the thresholds are not ``0 < p_off <= p_on < 1`` (and ``0 < p_hold <= p_on``), a
        count is below 1 or a time is negative.
    """

    p_on: float = 0.5
    n_on: int = 3
    p_off: float = 0.5
    n_off: int = 3
    reentry_within_s: float = 0.0
    reentry_min_episode_s: float = 60.0
    n_on_reentry: int = 2
    p_hold: float | None = None
    onset_from_p_off: bool = False

    def __post_init__(self) -> None:
        if (
            not 0.0 < self.p_off <= self.p_on < 1.0
            or (self.p_hold is not None and not 0.0 < self.p_hold <= self.p_on)
            or min(self.n_on, self.n_off, self.n_on_reentry) < 1
            or min(self.reentry_within_s, self.reentry_min_episode_s) < 0.0
        ):
            msg = (
                f"invalid AF episode parameters {self}: need 0 < p_off <= p_on < 1,"
                " 0 < p_hold <= p_on, counts >= 1, times >= 0"
            )
            raise ValueError(msg)

    @classmethod
    def from_card(cls, card: ModelCard) -> EpisodeParams:
        """Read ``card.preprocessing["episode"]``; defaults where absent."""
        raw: dict[str, Any] = dict(card.preprocessing.get("episode", {}))
        return cls(
            p_on=float(raw.get("p_on", DEFAULT_EPISODE.p_on)),
            n_on=int(raw.get("n_on", DEFAULT_EPISODE.n_on)),
            p_off=float(raw.get("p_off", DEFAULT_EPISODE.p_off)),
            n_off=int(raw.get("n_off", DEFAULT_EPISODE.n_off)),
            reentry_within_s=float(raw.get("reentry_within_s", DEFAULT_EPISODE.reentry_within_s)),
            reentry_min_episode_s=float(
                raw.get("reentry_min_episode_s", DEFAULT_EPISODE.reentry_min_episode_s)
            ),
            n_on_reentry=int(raw.get("n_on_reentry", DEFAULT_EPISODE.n_on_reentry)),
            p_hold=None if raw.get("p_hold") is None else float(raw["p_hold"]),
            onset_from_p_off=bool(raw.get("onset_from_p_off", False)),
        )

    def as_card(self) -> dict[str, float | int]:
        """Return the card's ``preprocessing.episode`` entry (re-entry, hold keys when on)."""
        out: dict[str, float | int] = {
            "p_on": self.p_on,
            "n_on": self.n_on,
            "p_off": self.p_off,
            "n_off": self.n_off,
        }
        if self.reentry_within_s > 0.0:
            out["reentry_within_s"] = self.reentry_within_s
            out["reentry_min_episode_s"] = self.reentry_min_episode_s
            out["n_on_reentry"] = self.n_on_reentry
        if self.p_hold is not None:
            out["p_hold"] = self.p_hold
        if self.onset_from_p_off:
            out["onset_from_p_off"] = True
        return out


DEFAULT_EPISODE: Final = EpisodeParams()
"""Episode hysteresis used where a card gives none."""


class AfEpisodeLogic:
    """Per-window P(AF) → AF episode changes (see the module docstring).

    Parameters
    ----------
    params
        Hysteresis thresholds and counts.
    """

    def __init__(self, params: EpisodeParams) -> None:
        self.params = params
        self.in_af = False
        self._count = 0
        self._held = False  # the onset run's last window was held (p_hold <= p < p_on)
        self._run_start_s = 0.0
        self._rise_start_s: float | None = None  # out of AF: first of the windows >= p_off
        self._episode_start_s = 0.0
        self._last_end_s = -math.inf

    @property
    def supported(self) -> bool:
        """True while an episode is open and its latest window did not vote against it.

        False while an offset run is under way (a window below ``p_off``, not yet ``n_off``
        of them): the episode is still open, but the latest evidence says AF has stopped.
        """
        return self.in_af and self._count == 0

    def reset(self, t_s: float) -> AfChange | None:
        """Forget the run in progress; end an open episode at ``t_s`` (stream time, s)."""
        self._count, self._held = 0, False
        self._rise_start_s = None
        if self.in_af:
            self._end_episode(t_s)
            return AfChange(af=False, onset_s=t_s)
        return None

    def _end_episode(self, end_s: float) -> None:
        self.in_af = False
        self._last_end_s = end_s

    def _n_to_confirm(self) -> int:
        """Windows that confirm the onset run in progress (``n_on``, or the re-entry's)."""
        prm = self.params
        if (
            prm.reentry_within_s > 0.0
            and self._run_start_s - self._last_end_s <= prm.reentry_within_s
            # out of AF, _episode_start_s is still the last episode's onset
            and self._last_end_s - self._episode_start_s >= prm.reentry_min_episode_s
        ):
            return prm.n_on_reentry
        return prm.n_on

    def update(self, p_af: float, start_s: float) -> AfChange | None:
        """Feed one window's P(AF) and the start time (s) of its centre interval."""
        prm = self.params
        if not self.in_af:
            if p_af < prm.p_off:
                self._rise_start_s = None
            elif self._rise_start_s is None:
                self._rise_start_s = start_s
        towards_change = p_af < prm.p_off if self.in_af else p_af >= prm.p_on
        if not towards_change:
            if (
                not self.in_af
                and self._count > 0
                and not self._held
                and prm.p_hold is not None
                and p_af >= prm.p_hold
            ):
                self._held = True  # one dip: the onset run waits
                return None
            self._count, self._held = 0, False
            return None
        self._held = False
        if self._count == 0:
            self._run_start_s = start_s
        self._count += 1
        if self.in_af:
            if self._count < prm.n_off:
                return None
            self._end_episode(self._run_start_s)
        else:
            if self._count < self._n_to_confirm():
                return None
            self.in_af = True
            confirmed_s = self._run_start_s
            if prm.onset_from_p_off and self._rise_start_s is not None:
                self._run_start_s = min(self._run_start_s, self._rise_start_s)
            self._rise_start_s = None
            self._episode_start_s = self._run_start_s
            self._count = 0
            return AfChange(af=True, onset_s=self._run_start_s, confirmed_s=confirmed_s)
        self._count = 0
        return AfChange(af=self.in_af, onset_s=self._run_start_s)


@dataclass(frozen=True, slots=True)
class AfModel:
    """The AF model, read and checked once per process; each stream gets its own interpreter.

    :meth:`interpreter` makes a fresh interpreter from the bytes in memory. The fused LSTM
    keeps its hidden and cell state in TFLite variable tensors; every
    :meth:`agent.inference.tflite.TfliteModel.predict` starts from zero state, so each window
    is judged alone, as the model was trained (before session 15 the state was carried from
    one window to the next).

    Attributes
    ----------
    card : ModelCard
        The model card.
    path : Path
        The model file (for messages).
    content : bytes
        The model's bytes, checked against the card's sha256.
    """

    card: ModelCard
    path: Path
    content: bytes

    @classmethod
    def load(cls, card_path: Path | None = None) -> AfModel:
        """Read the card and the model beside it (default: the shipped ``af_rr``).

        Raises
        ------
        FileNotFoundError
            If the card or model is missing.
        ValueError
            If the model does not match its card's sha256.
        """
        path = card_path if card_path is not None else AF_CARD
        card = load_card(path)
        model_path = path.parent / card.file
        return cls(card, model_path, model_path.read_bytes())

    def interpreter(self, *, backend: Backend = "cpu", fallback_to_cpu: bool = True) -> TfliteModel:
        """Return a fresh interpreter for one stream (no file is read).

        Raises
        ------
        InferenceError
            If the bytes are not a valid model.
        """
        return load_model(
            self.path, backend=backend, fallback_to_cpu=fallback_to_cpu, content=self.content
        )


class AfDetector:
    """Streaming AF detector over RR intervals (see the module docstring).

    Parameters
    ----------
    card_path
        Model card; the model file lies beside it. None: the shipped ``models/af_rr.json``.
    backend
        ``cpu`` (LSTMs stay on the CPU; ``edgetpu`` is accepted and falls back).
    fallback_to_cpu
        See :func:`agent.inference.tflite.load_model`.
    episode
        Override the card's episode hysteresis.
    model
        The model already loaded (:meth:`AfModel.load`): then ``card_path`` is ignored and no
        file is read.

    Attributes
    ----------
    probability : float | None
        P(AF) of the last window, None before the first full window (or after a reset).
    version : str
        Model version from the card.
    card : ModelCard
        The loaded card.
    last_centre_start_s : float | None
        Start (s) of the centre interval of the last window (what ``probability`` describes).
    n_windows, n_resets : int
        Windows run and resets so far (counters for evaluation and status).

    Raises
    ------
    FileNotFoundError
        If the card or model is missing.
    ValueError
        If the model does not match its card's sha256, or the episode parameters are invalid.
    InferenceError
        If the model cannot be loaded or its input is not ``(1, AF_SEQ_LEN, AF_N_FEATURES)``.
    """

    def __init__(
        self,
        card_path: Path | None = None,
        *,
        backend: Backend = "cpu",
        fallback_to_cpu: bool = True,
        episode: EpisodeParams | None = None,
        model: AfModel | None = None,
    ) -> None:
        loaded = model if model is not None else AfModel.load(card_path)
        self.card = loaded.card
        self.version = self.card.version
        self._model: TfliteModel = loaded.interpreter(
            backend=backend, fallback_to_cpu=fallback_to_cpu
        )
        expected = (1, AF_SEQ_LEN, AF_N_FEATURES)
        got = self._model.inputs[0].shape if len(self._model.inputs) == 1 else ()
        if got != expected:
            msg = f"{self.card.file}: input shape {got}, AF features need {expected}"
            raise InferenceError(msg)
        self.logic = AfEpisodeLogic(episode or EpisodeParams.from_card(self.card))
        self._cleaner = RrCleaner()
        self._window: deque[CleanRr] = deque(maxlen=AF_SEQ_LEN)
        self._accepted = 0  # accepted intervals since the last reset
        self._last_t_s: float | None = None
        self.probability: float | None = None
        self.last_centre_start_s: float | None = None
        self.n_windows = 0
        self.n_resets = 0

    @property
    def in_af(self) -> bool:
        """True while an AF episode is open."""
        return self.logic.in_af

    @property
    def supports_af(self) -> bool:
        """True while an AF episode is open and the latest window still calls AF.

        An episode ends only after ``n_off`` windows against it (hysteresis); during those
        windows it is open but no longer supported (:attr:`af_seen_until_s` is None).
        """
        return self.af_seen_until_s is not None

    @property
    def af_seen_until_s(self) -> float | None:
        """Stream time (s) up to which the open episode is seen; None if it is not supported.

        A window's P(AF) describes its centre interval (what the model was trained on), half a
        window (``AF_CENTER_IDX`` intervals, ~13 s at 75 bpm) behind the newest beat: the
        episode's onset is dated on that clock, so its duration is measured on it too, up to
        the start of the latest window's centre interval. None while no episode is open or
        the latest window voted against it (:attr:`supports_af`).
        """
        return self.last_centre_start_s if self.logic.supported else None

    def reset(self) -> list[AfChange]:
        """Restart after a gap in the RR stream (leads-off, disconnect, pause > 3 s).

        Returns
        -------
        list[AfChange]
            ``[AfChange(False, t)]`` if an episode was open (ended at the last beat seen,
            time ``t``), else empty.
        """
        self._cleaner.reset()
        self._window.clear()
        self._accepted = 0
        self.n_resets += 1
        self.probability = None
        self.last_centre_start_s = None
        end_s = self._last_t_s if self._last_t_s is not None else 0.0
        change = self.logic.reset(end_s)
        return [change] if change is not None else []

    def observe_beat(self, t_s: float, ectopic: bool) -> list[AfChange]:
        """See every final beat (R-peak at ``t_s``, s; ``ectopic``: a confident V).

        The RR path needs only :meth:`push`; a detector that also reads the waveform
        (:class:`agent.rhythm.af_wave.FusedAfDetector`) judges its windows here. Returns the
        episode changes this beat confirms (none here).
        """
        return []

    def push(self, rr_ms: float, t_s: float) -> list[AfChange]:
        """Feed one RR interval.

        Parameters
        ----------
        rr_ms
            RR interval, ms.
        t_s
            Stream time of the R-peak that ends it, s.

        Returns
        -------
        list[AfChange]
            Episode changes confirmed by this interval (usually none).
        """
        rr_ms, t_s = float(rr_ms), float(t_s)
        out = self._cleaner.push(rr_ms, t_s)
        if out is GAP:
            changes = self.reset()
            self._last_t_s = t_s
            return changes
        if not isinstance(out, CleanRr):
            return []
        self._last_t_s = t_s
        self._window.append(out)
        self._accepted += 1
        if self._accepted < AF_SEQ_LEN or (self._accepted - AF_SEQ_LEN) % AF_HOP_BEATS:
            return []
        rr = np.fromiter((c.rr_ms for c in self._window), dtype=np.float64, count=AF_SEQ_LEN)
        # rr: accepted intervals, finite (RrCleaner drops non-finite ones)
        if float(np.mean(np.abs(np.diff(rr)))) < MIN_IRREGULARITY * median_finite(rr):
            p = 0.0  # regular: not AF (see MIN_IRREGULARITY); the model need not be run
        else:
            x = af_window_features(rr)
            p = float(self._model.predict([x[None]])[0].reshape(-1)[0])
        self.probability = p
        self.n_windows += 1
        start_s = self._window[AF_CENTER_IDX].start_s
        self.last_centre_start_s = start_s
        change = self.logic.update(self._vote(p), start_s)
        return [change] if change is not None else []

    def _vote(self, p_af: float) -> float:
        """Return the P(AF) the episode logic counts for this window (a subclass may veto)."""
        return p_af
