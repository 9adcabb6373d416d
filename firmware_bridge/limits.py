"""Plausibility gates and limits: the one table, each value with its unit, reason and source.

A *plausibility gate* rejects a value that cannot come from a patient (a sensor, wire or entry
error), never a real extreme: every gate is wider than anything survivable, so an extreme
patient is alarmed on, not filtered out. Whoever applies a gate counts what it rejects
(``implausible_values``, ``samples_implausible``); a rejection is a technical matter, not a
physiological one (STYLE.md, "Plausibility gates are named constants").

Gates are inclusive: ``MIN <= value <= MAX`` passes. Users:

- the BLE transport (:mod:`firmware_bridge.transports.ble`): RR intervals from 0x2A37, SpO2 and
  pulse rate from PLX, temperature from a Health Thermometer;
- the PLX codec (:mod:`firmware_bridge.codecs.plx`): SpO2, pulse rate and PAI on the wire;
- NEWS2 (:data:`agent.vitals.news2.PLAUSIBLE_RANGE`) and the nurse station's
  ``ManualObservations`` (:mod:`agent.messages`, whose JSON Schema publishes the ranges);
- the waveform front end (``agent.core.frontends``): the sample gate :data:`ECG_MAX_PLAUSIBLE_UV`;
- the configuration defaults (:class:`firmware_bridge.devices.BleDeviceConfig` and
  ``agent.config.AlarmConfig``): :data:`BATTERY_LOW_PCT`.

It lives in ``firmware_bridge`` (the lowest layer, which never imports ``agent``) so that both
packages read the same numbers. Pure constants: no imports beyond ``typing``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BATTERY_LOW_PCT",
    "ECG_MAX_PLAUSIBLE_UV",
    "PAI_MAX_PLAUSIBLE_PCT",
    "PAI_MIN_PLAUSIBLE_PCT",
    "PULSE_MAX_PLAUSIBLE_BPM",
    "PULSE_MIN_PLAUSIBLE_BPM",
    "RESPIRATION_RATE_MAX_PLAUSIBLE_PER_MIN",
    "RESPIRATION_RATE_MIN_PLAUSIBLE_PER_MIN",
    "RR_MAX_PLAUSIBLE_MS",
    "RR_MIN_PLAUSIBLE_MS",
    "SPO2_MAX_PLAUSIBLE_PCT",
    "SPO2_MIN_PLAUSIBLE_PCT",
    "SYSTOLIC_BP_MAX_PLAUSIBLE_MMHG",
    "SYSTOLIC_BP_MIN_PLAUSIBLE_MMHG",
    "TEMPERATURE_MAX_PLAUSIBLE_C",
    "TEMPERATURE_MIN_PLAUSIBLE_C",
]

# ---------------------------------------------------------------------------- ECG waveform

ECG_MAX_PLAUSIBLE_UV: Final = 50_000.0
"""Largest plausible ECG sample magnitude, µV (±50 mV).

A surface ECG is a few mV (QRS amplitudes rarely exceed 5 mV); clinical front ends clip at
±5-10 mV (IEC 60601-2-27 and AAMI EC13 ask for a ±5 mV input range). Samples beyond
±50 mV are not ECG: the pipeline treats them as invalid (NaN, i.e. lead-off) and counts them.
Ten times the front-end range, so an over-range but real QRS is never removed.
"""

# ---------------------------------------------------------------------------- heart rhythm

RR_MIN_PLAUSIBLE_MS: Final = 100.0
"""Shortest RR interval accepted from a Heart Rate Service strap, ms (600 bpm).

Beyond any human rhythm, even ventricular-fibrillation cycle lengths of ~150-200 ms; shorter
values are counted as implausible and dropped.
"""

RR_MAX_PLAUSIBLE_MS: Final = 30_000.0
"""Longest RR interval accepted from a Heart Rate Service strap, ms (a 30 s pause).

The 0x2A37 RR-Interval field (uint16, 1/1024 s) can carry up to 64 s (Bluetooth SIG, GATT
Specification Supplement v5, "Heart Rate Measurement"); a longer silence is asystole, which the
agent detects from the absence of beats, not from one RR value.
"""

PULSE_MIN_PLAUSIBLE_BPM: Final = 0.0
"""Lowest plausible pulse / heart rate, beats/min: 0 is cardiac arrest, a negative rate is a
wire or entry error (PLX codec; NEWS2 chart 1 "Pulse")."""

PULSE_MAX_PLAUSIBLE_BPM: Final = 350.0
"""Highest plausible pulse / heart rate, beats/min.

The IEC 60601-2-27 heart-rate range of a cardiac monitor ends at 300 bpm and ISO 80601-2-61
oximeters display up to ~250-300 bpm; 350 leaves a margin so no real tachyarrhythmia is
rejected. Above it the BLE
transport drops the pulse rate (the SpO2 of the same reading is kept) and NEWS2 refuses it.
"""

# ---------------------------------------------------------------------------- oximetry

SPO2_MIN_PLAUSIBLE_PCT: Final = 0.0
SPO2_MAX_PLAUSIBLE_PCT: Final = 100.0
"""SpO2 is a saturation, 0-100 % by definition (ISO 80601-2-61, "functional oxygen
saturation"): values outside are impossible (wire or entry errors), dropped and counted."""

PAI_MIN_PLAUSIBLE_PCT: Final = 0.0
PAI_MAX_PLAUSIBLE_PCT: Final = 100.0
"""The Pulse Amplitude Index is a percentage, 0-100 % (Bluetooth SIG, GATT Specification
Supplement v5, "PLX Continuous Measurement"): a value outside is a corrupt frame."""

# ---------------------------------------------------------------------------- NEWS2 parameters

RESPIRATION_RATE_MIN_PLAUSIBLE_PER_MIN: Final = 0.0
RESPIRATION_RATE_MAX_PLAUSIBLE_PER_MIN: Final = 120.0
"""Plausible respiration rate, breaths/min: 0 is apnoea; above 120 /min is not breathing,
even a newborn's, so such a value is a counting or sensor error."""

SYSTOLIC_BP_MIN_PLAUSIBLE_MMHG: Final = 0.0
SYSTOLIC_BP_MAX_PLAUSIBLE_MMHG: Final = 350.0
"""Plausible systolic blood pressure, mmHg: automated NIBP cuffs (IEC 80601-2-30) measure
up to ~300 mmHg; 350 leaves a margin."""

TEMPERATURE_MIN_PLAUSIBLE_C: Final = 10.0
TEMPERATURE_MAX_PLAUSIBLE_C: Final = 46.0
"""Plausible body temperature, °C.

Low end: the lowest core temperature survived is 13.7 °C (accidental hypothermia; Gilbert M
et al., Lancet 2000;355:375-376), so 10 °C never rejects a living patient. High end: the
highest survived temperatures reported are 46-46.5 °C (exertional and classic heatstroke case
reports); a reading above 46 °C is taken as a probe error. These bounds are published in the
``ManualObservations`` JSON Schema (``tests/agent/schemas``): changing them is a schema change.

This was once also gated at 25-45 °C in the BLE transport ("a probe off the body reads
ambient"); the wider gate is the one kept, because a gate must not hide a real, survivable
extreme (a hypothermic patient at 24 °C). A probe off the body reading 20-25 °C now reaches
NEWS2, scores 3 and raises an urgent NEWS2 condition that a nurse checks: a false alarm, where
the narrow gate risked a missed one.
"""

# ---------------------------------------------------------------------------- power

BATTERY_LOW_PCT: Final = 15
"""Default battery level at or below which a sensor's battery is low, %.

An engineering choice, not a standard value: IEC 60601-1-8:2006+A1:2012 makes a low battery a
low-priority technical alarm condition but does not fix the level; 15 % of a coin cell leaves
the wearer hours to days to replace it. Default of both ``BleDeviceConfig.battery_low_pct``
(the ``low`` flag of the transport's battery event) and ``AlarmConfig.battery_low_pct`` (the
``battery_low`` alarm).
"""
