"""Vital signs: NEWS2 (RCP 2017), the per-bed vitals store, ECG-derived respiration, alarms.

Pure and synchronous: no I/O, no wall clock (times are stream seconds passed in). The nurse
station's payload, :class:`~agent.messages.ManualObservations`, is a wire contract and lives in
:mod:`agent.messages` with the other payloads.
"""

from __future__ import annotations

from agent.vitals.alarms import News2Rules, news2_condition_specs, news2_summary
from agent.vitals.edr import EdrEstimate, EdrRespirationEstimator, qrs_peak_to_peak_uv
from agent.vitals.news2 import (
    ClinicalRisk,
    Consciousness,
    News2Result,
    Observation,
    Observations,
    Param,
    ParamScore,
    SpO2Scale,
    clinical_risk,
    news2,
    score_air_or_oxygen,
    score_consciousness,
    score_pulse,
    score_respiration_rate,
    score_spo2,
    score_systolic_bp,
    score_temperature,
)
from agent.vitals.observations import VitalsStore, stream_time_s

__all__ = [
    "ClinicalRisk",
    "Consciousness",
    "EdrEstimate",
    "EdrRespirationEstimator",
    "News2Result",
    "News2Rules",
    "Observation",
    "Observations",
    "Param",
    "ParamScore",
    "SpO2Scale",
    "VitalsStore",
    "clinical_risk",
    "news2",
    "news2_condition_specs",
    "news2_summary",
    "qrs_peak_to_peak_uv",
    "score_air_or_oxygen",
    "score_consciousness",
    "score_pulse",
    "score_respiration_rate",
    "score_spo2",
    "score_systolic_bp",
    "score_temperature",
    "stream_time_s",
]
