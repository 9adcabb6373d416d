"""National Early Warning Score 2 (NEWS2), Royal College of Physicians, December 2017.

Chart 1 of the RCP report (the NEWS2 scoring system) gives each of seven parameters a score
of 0-3; the aggregate is their sum (0-20). Chart 2 (thresholds and triggers) maps it to a
clinical risk:

===========================  ===========  =============================================
aggregate NEWS2              risk         RCP response (chart 2 / chart 3)
===========================  ===========  =============================================
0-4                          low          ward-based response
3 in any single parameter    low-medium   urgent ward-based response
5-6                          medium       key threshold for urgent response
7 or more                    high         urgent or emergency response
===========================  ===========  =============================================

Chart 1, transcribed (score: band):

- Respiration rate (/min): 3: <= 8, 1: 9-11, 0: 12-20, 2: 21-24, 3: >= 25.
- SpO2 scale 1 (%): 3: <= 91, 2: 92-93, 1: 94-95, 0: >= 96.
- SpO2 scale 2 (%), for patients with hypercapnic respiratory failure only, on a
  clinician's decision: 3: <= 83, 2: 84-85, 1: 86-87, 0: 88-92 and >= 93 on air;
  on oxygen: 1: 93-94, 2: 95-96, 3: >= 97.
- Air or oxygen: oxygen 2, air 0.
- Systolic blood pressure (mmHg): 3: <= 90, 2: 91-100, 1: 101-110, 0: 111-219, 3: >= 220.
- Pulse (/min): 3: <= 40, 1: 41-50, 0: 51-90, 1: 91-110, 2: 111-130, 3: >= 131.
- Consciousness (ACVPU): Alert 0; new Confusion, Voice, Pain, Unresponsive 3.
- Temperature (°C): 3: <= 35.0, 1: 35.1-36.0, 0: 36.1-38.0, 1: 38.1-39.0, 2: >= 39.1.

**Resolution.** The chart is written for charted values: whole numbers for respiration rate,
SpO2, blood pressure and pulse, one decimal for temperature (the RCP observation chart has
exactly those rows). A continuous monitor produces values in between (RR 20.5 /min from
ECG-derived respiration, 38.05 °C from a thermometer), which the chart does not score. Each
value is therefore first rounded to the chart's resolution, **half away from zero, in
decimal** (``Decimal(repr(value)).quantize(..., ROUND_HALF_UP)``, so 38.05 is 38.1 and not
the binary float's 38.04999...), as a nurse writing the value on the chart would, and then
scored: RR 20.4 -> 20 -> 0; RR 20.5 -> 21 -> 2; 38.05 °C -> 38.1 -> 1; 38.04 °C -> 38.0 -> 0.

**Missing and stale parameters.** A bedside monitor that computes an early-warning score from
what it has shows a partial score and says what is missing (Philips IntelliVue EWS and
GE Portrait do). :func:`news2` does the same: ``total`` is the sum over the parameters that
are present and fresh, ``complete`` says whether all seven were scored, ``missing`` lists
absent parameters and ``stale`` those older than their maximum age. Stale values are
reported (with their age) but never scored. Because every score is >= 0, a partial total is
a lower bound of the complete one: ``urgent`` / ``emergency`` decided on a partial total are
never false relative to the complete score, but they can be missed.

**Where things live.** :class:`Consciousness` and :class:`SpO2Scale` are wire enums (the nurse
station sends them), defined in :mod:`agent.messages` and re-exported here; the plausibility
gates are :mod:`firmware_bridge.limits`. The module is long (about 780 lines) because it
transcribes all of chart 1 (one documented scorer per row, checked together against the RCP
report) and the aggregate that reads them.

References
----------
Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the
assessment of acute-illness severity in the NHS. Updated report of a working party. London:
RCP, December 2017. Chart 1 (the NEWS scoring system), chart 2 (NEWS thresholds and
triggers), chart 3 (clinical response to NEWS trigger thresholds).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Generic, TypeVar, cast

from agent.messages import Consciousness, SpO2Scale
from firmware_bridge.limits import (
    PULSE_MAX_PLAUSIBLE_BPM,
    PULSE_MIN_PLAUSIBLE_BPM,
    RESPIRATION_RATE_MAX_PLAUSIBLE_PER_MIN,
    RESPIRATION_RATE_MIN_PLAUSIBLE_PER_MIN,
    SPO2_MAX_PLAUSIBLE_PCT,
    SPO2_MIN_PLAUSIBLE_PCT,
    SYSTOLIC_BP_MAX_PLAUSIBLE_MMHG,
    SYSTOLIC_BP_MIN_PLAUSIBLE_MMHG,
    TEMPERATURE_MAX_PLAUSIBLE_C,
    TEMPERATURE_MIN_PLAUSIBLE_C,
)

__all__ = [
    "DEFAULT_MANUAL_MAX_AGE_S",
    "DEFAULT_SENSOR_MAX_AGE_S",
    "EMERGENCY_THRESHOLD",
    "MANUAL_SOURCE",
    "OBSERVATION_FIELD",
    "PARAM_ORDER",
    "PLAUSIBLE_RANGE",
    "URGENT_THRESHOLD",
    "AnyObservation",
    "ClinicalRisk",
    "Consciousness",
    "News2Result",
    "Observation",
    "Observations",
    "Param",
    "ParamScore",
    "SpO2Scale",
    "chart_round",
    "check_plausible",
    "clinical_risk",
    "default_max_age_s",
    "is_manual_source",
    "news2",
    "score_air_or_oxygen",
    "score_consciousness",
    "score_pulse",
    "score_respiration_rate",
    "score_spo2",
    "score_systolic_bp",
    "score_temperature",
]

T = TypeVar("T")


class Param(enum.StrEnum):
    """The seven NEWS2 parameters, in chart 1 order (RCP 2017)."""

    RESPIRATION_RATE = "respiration_rate"
    SPO2 = "spo2"
    AIR_OR_OXYGEN = "air_or_oxygen"
    SYSTOLIC_BP = "systolic_bp"
    PULSE = "pulse"
    CONSCIOUSNESS = "consciousness"
    TEMPERATURE = "temperature"


PARAM_ORDER: Final[tuple[Param, ...]] = tuple(Param)
"""Chart 1 row order; results list parameters in this order."""


class ClinicalRisk(enum.StrEnum):
    """Clinical risk from the aggregate score (RCP 2017, chart 2)."""

    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"


URGENT_THRESHOLD: Final = 5
"""Aggregate at or above which an urgent response is needed (RCP 2017 chart 2, "5-6")."""

EMERGENCY_THRESHOLD: Final = 7
"""Aggregate at or above which an emergency response is needed (RCP 2017 chart 2, ">= 7")."""

RED_SCORE: Final = 3
"""A single-parameter score of 3 (a "red score") triggers an urgent ward-based response."""

PLAUSIBLE_RANGE: Final[dict[Param, tuple[float, float]]] = {
    # Gates for values that cannot be physiological (a sensor or entry error, not a patient):
    # wider than anything survivable. Values, reasons and sources: firmware_bridge.limits.
    Param.RESPIRATION_RATE: (
        RESPIRATION_RATE_MIN_PLAUSIBLE_PER_MIN,
        RESPIRATION_RATE_MAX_PLAUSIBLE_PER_MIN,
    ),
    Param.SPO2: (SPO2_MIN_PLAUSIBLE_PCT, SPO2_MAX_PLAUSIBLE_PCT),
    Param.SYSTOLIC_BP: (SYSTOLIC_BP_MIN_PLAUSIBLE_MMHG, SYSTOLIC_BP_MAX_PLAUSIBLE_MMHG),
    Param.PULSE: (PULSE_MIN_PLAUSIBLE_BPM, PULSE_MAX_PLAUSIBLE_BPM),
    Param.TEMPERATURE: (TEMPERATURE_MIN_PLAUSIBLE_C, TEMPERATURE_MAX_PLAUSIBLE_C),
}
"""Inclusive ``(low, high)`` plausibility gate per numeric parameter; outside -> ValueError.

The table of :mod:`firmware_bridge.limits`, keyed by parameter; the nurse station's
:class:`~agent.messages.ManualObservations` publishes the same bounds in its JSON Schema.
"""

_UNITS: Final[dict[Param, str]] = {
    Param.RESPIRATION_RATE: "/min",
    Param.SPO2: "%",
    Param.SYSTOLIC_BP: "mmHg",
    Param.PULSE: "/min",
    Param.TEMPERATURE: "°C",
}

_RESOLUTION: Final[dict[Param, Decimal]] = {
    Param.RESPIRATION_RATE: Decimal(1),
    Param.SPO2: Decimal(1),
    Param.SYSTOLIC_BP: Decimal(1),
    Param.PULSE: Decimal(1),
    Param.TEMPERATURE: Decimal("0.1"),
}
"""Chart 1 resolution of each numeric row."""

MANUAL_SOURCE: Final = "manual"
"""Source of values entered at the nurse station (``manual`` or ``manual:<station>``)."""

DEFAULT_SENSOR_MAX_AGE_S: Final[dict[Param, float]] = {
    # Continuous sensors report every second or beat; a monitor blanks a continuous
    # parameter within seconds of losing it. Our choices, stated:
    Param.RESPIRATION_RATE: 60.0,  # EDR is a 32 s window updated every few s: 60 s = 2 windows
    Param.SPO2: 30.0,  # PLX spot/continuous reports ~1 Hz; 30 s tolerates a brief dropout
    Param.AIR_OR_OXYGEN: 4 * 3600.0,  # a flowmeter state changes rarely: as for manual entry
    Param.SYSTOLIC_BP: 65 * 60.0,  # automated NIBP cycles of up to 60 min, + 5 min to measure
    Param.PULSE: 30.0,  # ECG / oximeter pulse is beat to beat
    Param.CONSCIOUSNESS: 4 * 3600.0,  # never from a sensor; as for manual entry
    Param.TEMPERATURE: 3600.0,  # body temperature changes over tens of minutes
}
"""Maximum age of a value from a sensor before it is stale and not scored, s."""

DEFAULT_MANUAL_MAX_AGE_S: Final[dict[Param, float]] = dict.fromkeys(Param, 4 * 3600.0)
"""Maximum age of a value entered at the nurse station, s: 4 h for every parameter.

RCP 2017 chart 3 sets the minimum observation frequency at 12-hourly for NEWS 0, 4-6-hourly
for 1-4 and hourly for 5 or more or a red score: 4 h is the shortest routine interval, so a
ward that follows chart 3 always has fresh manual values. (A patient at NEWS >= 5 should be
observed hourly; this default does not enforce it. Pass ``max_age_s`` for stricter limits.)
"""


def is_manual_source(source: str) -> bool:
    """Whether ``source`` names a nurse-station entry (``"manual"`` or ``"manual:..."``)."""
    return source == MANUAL_SOURCE or source.startswith(MANUAL_SOURCE + ":")


def default_max_age_s(param: Param, source: str) -> float:
    """Return the default maximum age of ``param`` from ``source``, s.

    Manual entries use :data:`DEFAULT_MANUAL_MAX_AGE_S`, every other source (``ecg``,
    ``edr``, ``ble:...``) :data:`DEFAULT_SENSOR_MAX_AGE_S`.
    """
    table = DEFAULT_MANUAL_MAX_AGE_S if is_manual_source(source) else DEFAULT_SENSOR_MAX_AGE_S
    return table[param]


# ---------------------------------------------------------------------- single parameters


def check_plausible(param: Param, value: float) -> None:
    """Check that ``value`` is a number in the plausible range of ``param`` (its unit).

    The validation :func:`chart_round` does before rounding, for callers that store the value
    as measured (a vital-signs store validates every pulse it is given; the decimal rounding
    would be thrown away).

    Raises
    ------
    ValueError
        If the value is NaN, infinite or outside :data:`PLAUSIBLE_RANGE` (the message names
        the parameter).
    TypeError
        If the value is not a number (or is a bool).
    KeyError
        If ``param`` is not numeric.
    """
    low, high = PLAUSIBLE_RANGE[param]
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{param.value}: expected a number in {_UNITS[param]}, got {value!r}"
        raise TypeError(msg)
    if not math.isfinite(value) or not low <= value <= high:
        msg = (
            f"{param.value}: {value!r} {_UNITS[param]} is outside the plausible range "
            f"[{low:g}, {high:g}] {_UNITS[param]}"
        )
        raise ValueError(msg)


def chart_round(param: Param, value: float) -> float:
    """Round a value to the resolution of its chart 1 row, half away from zero, in decimal.

    Parameters
    ----------
    param
        A numeric parameter (respiration rate, SpO2, systolic BP, pulse, temperature).
    value
        The measured value in the parameter's unit.

    Returns
    -------
    float
        The value as charted: a whole number, or one decimal for temperature.

    Raises
    ------
    ValueError, TypeError, KeyError
        As :func:`check_plausible`, which it calls first.
    """
    check_plausible(param, value)
    return float(Decimal(repr(float(value))).quantize(_RESOLUTION[param], ROUND_HALF_UP))


def score_respiration_rate(rr_per_min: float) -> int:
    """Score a respiration rate (RCP 2017 chart 1): <=8: 3, 9-11: 1, 12-20: 0, 21-24: 2, >=25: 3.

    Parameters
    ----------
    rr_per_min
        Respiration rate, breaths/min; rounded to a whole number first (:func:`chart_round`).

    Returns
    -------
    int
        Score 0-3.

    Raises
    ------
    ValueError
        If the rate is not finite or outside 0-120 /min.
    """
    rr = chart_round(Param.RESPIRATION_RATE, rr_per_min)
    if rr <= 8:
        return 3
    if rr <= 11:
        return 1
    if rr <= 20:
        return 0
    if rr <= 24:
        return 2
    return 3


def score_spo2(
    spo2_pct: float,
    scale: SpO2Scale = SpO2Scale.SCALE_1,
    *,
    supplemental_o2: bool | None = None,
) -> int:
    """Score an SpO2 reading on scale 1 or scale 2 (RCP 2017 chart 1).

    Scale 1: <=91: 3, 92-93: 2, 94-95: 1, >=96: 0.
    Scale 2: <=83: 3, 84-85: 2, 86-87: 1, 88-92: 0, >=93 on air: 0; on oxygen 93-94: 1,
    95-96: 2, >=97: 3 (over-oxygenation is scored in hypercapnic patients).

    Parameters
    ----------
    spo2_pct
        Oxygen saturation, %; rounded to a whole number first.
    scale
        Which SpO2 row applies.
    supplemental_o2
        Whether the patient is on oxygen; needed only on scale 2 at >= 93 %.

    Returns
    -------
    int
        Score 0-3 (the separate "air or oxygen" score is not included).

    Raises
    ------
    ValueError
        If the value is not finite or outside 0-100 %, or if scale 2 needs
        ``supplemental_o2`` (SpO2 >= 93 %) and it is None.
    """
    spo2 = chart_round(Param.SPO2, spo2_pct)
    if scale is SpO2Scale.SCALE_1:
        if spo2 <= 91:
            return 3
        if spo2 <= 93:
            return 2
        if spo2 <= 95:
            return 1
        return 0
    if spo2 <= 83:
        return 3
    if spo2 <= 85:
        return 2
    if spo2 <= 87:
        return 1
    if spo2 <= 92:
        return 0
    if supplemental_o2 is None:
        msg = f"spo2: {spo2:g} % on scale 2 cannot be scored without knowing air or oxygen"
        raise ValueError(msg)
    if not supplemental_o2:
        return 0
    if spo2 <= 94:
        return 1
    if spo2 <= 96:
        return 2
    return 3


def score_air_or_oxygen(supplemental_o2: bool) -> int:
    """Score air (0) or supplemental oxygen (2) (RCP 2017 chart 1 "Air or oxygen?").

    Raises
    ------
    TypeError
        If ``supplemental_o2`` is not a bool.
    """
    if not isinstance(cast(object, supplemental_o2), bool):  # untyped callers (JSON)
        msg = f"air_or_oxygen: expected a bool (True = on oxygen), got {supplemental_o2!r}"
        raise TypeError(msg)
    return 2 if supplemental_o2 else 0


def score_systolic_bp(systolic_bp_mmhg: float) -> int:
    """Score systolic BP (RCP 2017 chart 1): <=90: 3, 91-100: 2, 101-110: 1, 111-219: 0, >=220: 3.

    Parameters
    ----------
    systolic_bp_mmhg
        Systolic blood pressure, mmHg; rounded to a whole number first.

    Returns
    -------
    int
        Score 0-3.

    Raises
    ------
    ValueError
        If the value is not finite or outside 0-350 mmHg.
    """
    sbp = chart_round(Param.SYSTOLIC_BP, systolic_bp_mmhg)
    if sbp <= 90:
        return 3
    if sbp <= 100:
        return 2
    if sbp <= 110:
        return 1
    if sbp <= 219:
        return 0
    return 3


def score_pulse(pulse_bpm: float) -> int:
    """Score the pulse (RCP 2017 chart 1).

    <=40: 3, 41-50: 1, 51-90: 0, 91-110: 1, 111-130: 2, >=131: 3.

    Parameters
    ----------
    pulse_bpm
        Pulse or heart rate, beats/min; rounded to a whole number first.

    Returns
    -------
    int
        Score 0-3.

    Raises
    ------
    ValueError
        If the value is not finite or outside 0-350 /min.
    """
    pulse = chart_round(Param.PULSE, pulse_bpm)
    if pulse <= 40:
        return 3
    if pulse <= 50:
        return 1
    if pulse <= 90:
        return 0
    if pulse <= 110:
        return 1
    if pulse <= 130:
        return 2
    return 3


def score_consciousness(level: Consciousness | str) -> int:
    """Score ACVPU consciousness (RCP 2017 chart 1): Alert 0; new Confusion, V, P, U: 3.

    Parameters
    ----------
    level
        A :class:`Consciousness` or its letter (``"A"``, ``"C"``, ``"V"``, ``"P"``, ``"U"``).

    Raises
    ------
    ValueError
        If ``level`` is not an ACVPU letter.
    """
    try:
        acvpu = Consciousness(level)
    except ValueError as err:
        msg = f"consciousness: {level!r} is not an ACVPU letter (A, C, V, P, U)"
        raise ValueError(msg) from err
    return 0 if acvpu is Consciousness.ALERT else 3


def score_temperature(temperature_c: float) -> int:
    """Score temperature (RCP 2017 chart 1).

    <=35.0: 3, 35.1-36.0: 1, 36.1-38.0: 0, 38.1-39.0: 1, >=39.1: 2.

    Parameters
    ----------
    temperature_c
        Body temperature, °C; rounded to one decimal first (38.05 -> 38.1).

    Returns
    -------
    int
        Score 0-3.

    Raises
    ------
    ValueError
        If the value is not finite or outside 10-46 °C.
    """
    temp = chart_round(Param.TEMPERATURE, temperature_c)
    if temp <= 35.0:
        return 3
    if temp <= 36.0:
        return 1
    if temp <= 38.0:
        return 0
    if temp <= 39.0:
        return 1
    return 2


# ---------------------------------------------------------------------- aggregate


@dataclass(frozen=True, slots=True)
class Observation(Generic[T]):
    """One value of one parameter, where it came from and when.

    Attributes
    ----------
    value : T
        The value in the parameter's unit (float), a bool (on oxygen) or a
        :class:`Consciousness`.
    source : str
        Where it came from: ``"ecg"``, ``"edr"``, ``"ble:plx:AA:BB:..."``, ``"manual"``...
    t_s : float
        Stream time at which it was measured, s.
    """

    value: T
    source: str
    t_s: float


AnyObservation = Observation[float] | Observation[bool] | Observation[Consciousness]
"""An observation of any parameter."""


@dataclass(frozen=True, slots=True)
class Observations:
    """The latest value of each NEWS2 parameter (None when never observed).

    Attributes
    ----------
    respiration_rate_per_min, spo2_pct, supplemental_o2, systolic_bp_mmhg, pulse_bpm,
    consciousness, temperature_c : Observation | None
        One per chart 1 row.
    spo2_scale : SpO2Scale
        Which SpO2 row applies (a clinician's setting, never stale; scale 1 unless set).
    """

    respiration_rate_per_min: Observation[float] | None = None
    spo2_pct: Observation[float] | None = None
    supplemental_o2: Observation[bool] | None = None
    systolic_bp_mmhg: Observation[float] | None = None
    pulse_bpm: Observation[float] | None = None
    consciousness: Observation[Consciousness] | None = None
    temperature_c: Observation[float] | None = None
    spo2_scale: SpO2Scale = SpO2Scale.SCALE_1

    def get(self, param: Param) -> AnyObservation | None:
        """Return the observation of ``param`` (None when absent).

        Raises
        ------
        KeyError
            If ``param`` is not a NEWS2 parameter.
        """
        value: AnyObservation | None = getattr(self, OBSERVATION_FIELD[param])
        return value


OBSERVATION_FIELD: Final[dict[Param, str]] = {
    Param.RESPIRATION_RATE: "respiration_rate_per_min",
    Param.SPO2: "spo2_pct",
    Param.AIR_OR_OXYGEN: "supplemental_o2",
    Param.SYSTOLIC_BP: "systolic_bp_mmhg",
    Param.PULSE: "pulse_bpm",
    Param.CONSCIOUSNESS: "consciousness",
    Param.TEMPERATURE: "temperature_c",
}
"""Field of :class:`Observations` holding each parameter."""


@dataclass(frozen=True, slots=True)
class ParamScore:
    """The score of one present parameter.

    Attributes
    ----------
    param : Param
        Which parameter.
    value : float | bool | Consciousness
        The value as observed (not rounded).
    score : int | None
        Chart 1 score 0-3, or None when not scored (stale, or SpO2 on scale 2 at >= 93 %
        while air/oxygen is unknown or stale).
    source : str
        Where the value came from.
    age_s : float
        ``now_s - t_s`` (0 for a value stamped slightly in the future), s.
    stale : bool
        Older than its maximum age: shown, not scored.
    note : str
        Why it was not scored ("" when scored).
    """

    param: Param
    value: float | bool | Consciousness
    score: int | None
    source: str
    age_s: float
    stale: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class News2Result:
    """NEWS2 at one moment (RCP 2017), possibly partial.

    Attributes
    ----------
    t_s : float
        Stream time of the evaluation, s.
    total : int | None
        Sum of the scores of the present, fresh parameters (0-20); None when none was scored.
        When ``complete`` is False it is a lower bound of the full score.
    complete : bool
        All seven parameters were scored.
    missing : list[Param]
        Parameters never observed.
    stale : list[Param]
        Parameters observed but older than their maximum age (shown, not scored).
    parameters : list[ParamScore]
        Every present parameter (fresh or stale), in chart order.
    spo2_scale : SpO2Scale
        The SpO2 row used.
    any_single_3 : bool
        Some scored parameter scored 3 (a "red score").
    risk : ClinicalRisk | None
        Chart 2 risk of ``total`` (None when ``total`` is None): high >= 7, medium 5-6,
        low-medium for a red score below 5, low otherwise.
    urgent : bool
        ``total >= 5`` or a red score: urgent response (RCP chart 2/3).
    emergency : bool
        ``total >= 7``: emergency response.
    scores : dict[Param, int]
        The score of every scored parameter.
    """

    t_s: float
    total: int | None
    complete: bool
    missing: list[Param]
    stale: list[Param]
    parameters: list[ParamScore]
    spo2_scale: SpO2Scale
    any_single_3: bool
    risk: ClinicalRisk | None
    urgent: bool
    emergency: bool
    scores: dict[Param, int] = field(default_factory=dict)

    @property
    def unscored(self) -> list[Param]:
        """Parameters present and fresh but not scored (SpO2 scale 2 without air/oxygen)."""
        return [p.param for p in self.parameters if p.score is None and not p.stale]


def clinical_risk(total: int, *, any_single_3: bool) -> ClinicalRisk:
    """Map an aggregate score to its RCP 2017 chart 2 clinical risk.

    Parameters
    ----------
    total
        Aggregate NEWS2, 0-20.
    any_single_3
        Whether any parameter scored 3.

    Returns
    -------
    ClinicalRisk
        high (>= 7), medium (5-6), low-medium (0-4 with a red score), low (0-4).
    """
    if total >= EMERGENCY_THRESHOLD:
        return ClinicalRisk.HIGH
    if total >= URGENT_THRESHOLD:
        return ClinicalRisk.MEDIUM
    if any_single_3:
        return ClinicalRisk.LOW_MEDIUM
    return ClinicalRisk.LOW


def _score_one(
    param: Param,
    value: float | bool | Consciousness,
    obs: Observations,
    o2_known: bool | None,
) -> int | None:
    if param is Param.CONSCIOUSNESS:
        if not isinstance(value, str):
            msg = f"consciousness: expected an ACVPU letter, got {value!r}"
            raise TypeError(msg)
        return score_consciousness(value)
    if param is Param.AIR_OR_OXYGEN:
        if not isinstance(value, bool):
            msg = f"air_or_oxygen: expected a bool (True = on oxygen), got {value!r}"
            raise TypeError(msg)
        return score_air_or_oxygen(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{param.value}: expected a number in {_UNITS[param]}, got {value!r}"
        raise TypeError(msg)
    if param is Param.SPO2:
        if (
            obs.spo2_scale is SpO2Scale.SCALE_2
            and o2_known is None
            and chart_round(Param.SPO2, value) >= 93
        ):
            return None
        return score_spo2(value, obs.spo2_scale, supplemental_o2=o2_known)
    scorer = {
        Param.RESPIRATION_RATE: score_respiration_rate,
        Param.SYSTOLIC_BP: score_systolic_bp,
        Param.PULSE: score_pulse,
        Param.TEMPERATURE: score_temperature,
    }[param]
    return scorer(value)


def news2(
    observations: Observations,
    *,
    now_s: float,
    max_age_s: Mapping[Param, float] | None = None,
) -> News2Result:
    """Compute NEWS2 (RCP 2017) from the latest observations at stream time ``now_s``.

    Parameters
    ----------
    observations
        The latest value of each parameter, with source and stream time.
    now_s
        Stream time of the evaluation, s.
    max_age_s
        Maximum age per parameter, s, overriding the defaults for every source; parameters
        not in it use :func:`default_max_age_s` (sensor or manual defaults by source).

    Returns
    -------
    News2Result
        Partial when parameters are missing or stale (see the module notes).

    Raises
    ------
    ValueError
        If a present value (fresh or stale) is not finite or outside :data:`PLAUSIBLE_RANGE`,
        or a consciousness value is not an ACVPU letter; the message names the parameter.
    TypeError
        If a value has the wrong type (a number where a bool is expected, or the reverse).
    """
    overrides = dict(max_age_s or {})
    missing: list[Param] = []
    stale: list[Param] = []
    entries: list[tuple[Param, AnyObservation, float, bool]] = []
    for param in PARAM_ORDER:
        ob = observations.get(param)
        if ob is None:
            missing.append(param)
            continue
        age_s = max(0.0, now_s - ob.t_s)
        limit_s = overrides.get(param, default_max_age_s(param, ob.source))
        is_stale = age_s > limit_s
        if is_stale:
            stale.append(param)
        entries.append((param, ob, age_s, is_stale))

    o2_fresh = next(
        (ob.value for p, ob, _, st in entries if p is Param.AIR_OR_OXYGEN and not st), None
    )
    o2_known = o2_fresh if isinstance(o2_fresh, bool) else None
    parameters: list[ParamScore] = []
    scores: dict[Param, int] = {}
    for param, ob, age_s, is_stale in entries:
        # Validate every present value, stale or not: a bad value is an error, not "stale".
        score = _score_one(param, ob.value, observations, o2_known)
        note = ""
        if is_stale:
            note = "stale: shown, not scored"
            score = None
        elif score is None:
            note = "SpO2 scale 2 at >= 93 % needs a fresh air/oxygen value"
        else:
            scores[param] = score
        parameters.append(
            ParamScore(param, ob.value, score, ob.source, round(age_s, 3), is_stale, note)
        )

    total = sum(scores.values()) if scores else None
    any_single_3 = any(s == RED_SCORE for s in scores.values())
    risk = None if total is None else clinical_risk(total, any_single_3=any_single_3)
    return News2Result(
        t_s=now_s,
        total=total,
        complete=len(scores) == len(PARAM_ORDER),
        missing=missing,
        stale=stale,
        parameters=parameters,
        spo2_scale=observations.spo2_scale,
        any_single_3=any_single_3,
        risk=risk,
        urgent=total is not None and (total >= URGENT_THRESHOLD or any_single_3),
        emergency=total is not None and total >= EMERGENCY_THRESHOLD,
        scores=scores,
    )
