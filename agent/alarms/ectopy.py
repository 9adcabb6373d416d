"""Ventricular ectopy alarms from labelled beats: V-tach, runs, pairs, bi/trigeminy, PVCs/min.

The beat classifier labels every beat with an AAMI EC57 class (N, S, V, F, Q) and a confidence,
one beat behind real time. :class:`EctopyRules` reads those labelled beats in stream order and
says, at any stream time, which ectopy condition is true and since when; the
:class:`~agent.alarms.engine.AlarmEngine` turns that into alarm events.

Beat categories
---------------
Each labelled beat falls in one of three categories:

- **ventricular** (``V``): class V with ``confidence >= v_min_confidence`` (default 0.5, as
  ``min_confidence``; a beat without a confidence, e.g. a reference annotation, counts as
  certain), that is not the patient's own dominant beat (below) and, when
  ``run_min_beat_corr`` is set, looks like the V beat before it in an open run (below). A
  less confident V cannot start or complete an alarm. The bar was chosen on the training
  records only, with out-of-fold beat labels (each mitdb DS1 and svdb record labelled by the
  ``tools.beats`` fold model that never saw it, on the agent's own R-peaks), alarm by alarm
  (``tools.evaluate alarms`` rules, replayed through these rules with signal quality and the
  dominant-beat test on): true / false ectopy alarms (run, pair, bigeminy, trigeminy) over
  DS1 + svdb are 576 / 201 at 0.5, 539 / 169 at 0.6 and 508 / 126 at 0.7: each step loses
  about as many true alarms as false ones, and at 0.7 more than half the true runs of PVCs
  (41 -> 19), so the default stays 0.5;
- **the patient's own beat**: a beat called V whose morphology matches the patient's running
  dominant template (``template_corr >= v_template_match``, default 0.95; the beat classifier's
  :func:`~agent.inference.beat_features.template_correlation`, a shifted correlation with the
  median of the last 20 beats) and that is **not premature** (its RR is at least
  ``PACED_PREMATURE_FRACTION`` (80 %) of the median of the last 8 RR intervals of beats not
  counted as ventricular, or there is no such baseline yet) **or on time after one V beat**
  (below) is the patient's normal beat, e.g. a bundle-branch-block QRS that the CNN, trained
  across patients, reads as ventricular: it counts as unknown. Template matching against the
  patient's dominant beat is how classic arrhythmia detectors and patient-adaptive classifiers
  tell a wide normal beat from a PVC (Hamilton and Tompkins, EP Limited open-source arrhythmia
  software, beat templates and "match"; de Chazal P, Reilly RB, IEEE Trans Biomed Eng
  2006;53(12):2535, doi:10.1109/TBME.2006.883802; Kiranyaz S et al., IEEE Trans Biomed Eng
  2016;63(3):664, doi:10.1109/TBME.2015.2468589); a PVC is both unlike the template and early,
  so the two tests together spare real PVCs. mitdb 118 (right bundle-branch block): its normal
  beats the CNN calls V match their template at a median 0.98 (shifted correlation), its real
  PVCs at 0.43-0.65. Out of fold on DS1 + svdb (with signal quality on) ectopy alarms go from
  569 true / 283 false without the test to 576 / 201 with it (at 0.90: 562 / 185). Since session
  24 the template is that of the recent **on-time** beats (``inference.dominant_template``,
  :class:`~agent.inference.beat_features.OnTimeTemplate`), not the beat model's own template of
  every beat: where couplets outnumber the conducted beats (mitdb 208) the latter became the
  PVC's shape, so the conducted beat the CNN misread as V (after each compensatory pause) did
  not match it and completed false runs and V-tach. A beat that continues an open run of
  ``RUN_MIN_BEATS`` (3) or more V beats is never the patient's own beat: a sustained ventricular
  rhythm becomes the dominant template within beats, and its beats would end the run being
  alarmed (mitdb 223's slow VT lost part of its VT rows without this). *On time after one V
  beat*: when a single V beat unlike the template comes right after a conducted beat and the
  next beat matches the template, that next beat is judged from the conducted beat: if the two
  intervals together lie within 80-120 % (``PACED_PREMATURE_FRACTION`` either side) of the
  baseline RR, it came when the patient's rhythm was due, and the V beat between was an extra
  detection (a noise spike, a tall T wave) or an interpolated PVC, neither of which resets the
  rhythm. Its own short RR (from the extra detection) made it "premature" before, so an extra
  detection and the real beat after it were announced as a couplet (svdb 886: 15 false pairs out
  of fold, 5 with this; out of fold on DS1 + svdb + nstdb false ectopy alarms 136 -> 124 and not
  one true alarm lost, ``docs/alarms.md``, session 27);
- **consistent morphology** (``run_min_beat_corr``, default None: off): inside an open run, a
  V beat whose shifted correlation with the V beat before it
  (:func:`~agent.inference.beat_features.beat_correlation`) is below the limit ends the run
  as an unknown beat: noise read as V beats rarely repeats its shape, a monomorphic run does.
  Out of fold on DS1 + svdb, 0.4 takes ectopy alarms from 576 / 201 to 554 / 156 and 0.2 to
  565 / 175; but half of the false alarms removed at 0.4 are in one record (svdb 886), and
  true runs of PVCs fall from 41 to 36 (four of them in 223), so it is not on by default;
- **nearer the patient's beat than the run's** (``run_closer_to_dominant``, default None: off;
  measured at 0.8): inside an open run of one or two V beats, a V-labelled beat whose
  ``template_corr`` is at least the setting and at least :data:`RUN_CLOSER_MARGIN` (0.3) above
  its ``prev_beat_corr`` (its shifted correlation with the V beat before it) counts as
  **supraventricular**: it looks like the patient's conducted beat, not like the PVC it would
  extend. Two templates, the dominant beat's and the ectopic beat's, and a beat is given to
  the one it matches better: the template classification of the classic arrhythmia detectors
  (Hamilton and Tompkins, EP Limited, beat templates and "match"). What it removes: a couplet
  followed by a conducted beat the CNN, trained across patients, reads as a third V (svdb 864,
  mitdb 203: "Run of 3 PVCs" where the reference has two), which then reads as the couplet it
  is. Measured out of fold on DS1 + svdb (``tools.evaluate alarms``, each record labelled by
  the beat fold model that never saw it), true / false ectopy alarms (vtach, run, pair,
  bigeminy, trigeminy), DS1 + svdb: off 310 / 58 + 302 / 48 = 612 / 106; the beat as unknown
  at 0.8, margin 0: 595 / 83, at 0.9: 597 / 89; as conducted at 0.8: 599 / 85; as conducted at
  0.8 with the 0.3 margin: 308 / 55 + 305 / 38 = **613 / 93** (runs of PVCs DS1 23 / 13 -> 20 /
  10, svdb 22 / 15 -> 22 / 8). Five variants were tried on those sets and the best taken, so
  the held-out DS2 decided: there it went from 218 / 27 to **206 / 27**, twelve true alarms
  lost and no false one removed (mostly mitdb 200's couplets, whose second PVC the rule gave
  to the conducted template: a patient the selection sets did not have). **Not on by
  default** (session 31, ``docs/alarms.md``). The rule does not touch a run of three or more
  (a ventricular rhythm becomes the template within beats) and needs ``prev_beat_corr``,
  which the classifier then computes for every beat;
- **supraventricular** (``N`` or ``S`` above the same confidence): a conducted beat; it plays the
  part of the "normal" beat in bigeminy and trigeminy (Edan's definition says it outright:
  "N = supraventricular beat");
- **unknown**: class Q (paced, unclassifiable), F (fusion: neither a clean PVC nor a clean
  conducted beat), no class (``aami_class`` None) or a confidence below ``min_confidence``
  (or not a number in [0, 1]). An unknown beat is neither V nor N: it ends a V run and breaks a
  bigeminy or trigeminy pattern, so an uncertain label can never complete a pattern. What was
  seen on each side of it still counts (V V Q V V is two pairs, not a run of four).

Prematurity of a run
--------------------
A PVC is a *premature* ventricular complex, and a couplet or a run of PVCs begins with one. So a
pair or a run of PVCs (``pair_pvcs``, ``run_pvcs``, short or slow) is alarmed only when its
first V beat is premature: its RR below ``run_onset_premature`` (default 0.9) of the median of
the last 8 RR intervals of beats not counted as ventricular (the baseline kept for paced
patients, below; no baseline yet after the start or a gap: not premature). The V beats of a run
that does not begin early are neither a pair nor a run nor counted in PVCs/min; V-tach is never
held to it (a fast run is alarmed however it starts). What it removes: wide conducted beats the
CNN calls V that do not match the running template closely enough for the dominant-beat test
(mitdb 118's, 108's and 114's beats at the sinus rate, read as "Run of 4 PVCs at 74 bpm").
Chosen on DS1 + svdb out of fold (each record labelled by the ``tools.beats`` fold model that
never saw it, ``tools/beats/folds``; ``tools.evaluate alarms`` rules, ``--ack-after 30``), true /
false alarms: pairs DS1 151 / 52 -> 148 / 21 at 0.9 (136 / 15 at 0.8), svdb 138 / 51 -> 122 / 39
(109 / 32); runs DS1 29 / 41 -> 26 / 30 (21 / 26), svdb 24 / 24 -> 22 / 16 (17 / 13). At 0.9,
62 false alarms go for 24 true ones; from 0.9 to 0.8, 20 more false for 35 more true: 0.9.
The usual definition of an ectopic beat is 20 % early (0.8; Kamath & Fallen 1995), but the
baseline here includes the supraventricular premature beats and the irregular rhythm of
svdb's patients, against which a real PVC is often less than 20 % early. Tried and not kept:
the same test for the V beats of bigeminy and trigeminy (true / false out of fold DS1 137 /
39 -> 130 / 27, svdb 159 / 6 -> 148 / 4: 18 true alarms for 14 false).

Signal quality
--------------
No ectopy alarm is built from beats the quality monitor does not trust. A state change that
makes the ECG unusable (``signal_poor`` from :mod:`agent.dsp.quality`, flat line, link down,
no skin contact: :attr:`~agent.core.items.StateChange.unusable`) resets every pattern (as
after leads-off) and, until the same state ends, every beat is an unknown beat: beats seen
while the signal is poor can neither start nor continue a run, pair, bigeminy, trigeminy or
the PVCs/min count. (Before, the patterns were reset at the onset of poor signal only, and
the beats during it still built alarms.) Out of fold on svdb: 292 true / 97 false ectopy
alarms without the gate, 282 / 70 with it (the dominant-beat test off).

Alarm chain under V-tach and VF
-------------------------------
When ``lethal_chain`` is on (default) and the owner of the rules has set :attr:`EctopyRules.lethal`
(the agent's core: ``vtach`` or ``vfib`` is true now, from the waveform, the VF detector or a
beat run), a run, pair, bigeminy, trigeminy or PVCs/min decided while it holds is not raised,
and the V beats of runs closed then are not counted in PVCs/min. During VT, VF or ventricular
flutter the "beats" the classifier calls V are the lethal rhythm's own complexes (or flutter
waves), and a higher-priority latched alarm already speaks for them: announcing a "Run of 3
PVCs" beside it tells the nurse nothing and buries the alarm that matters. Monitors do the
same: Mindray orders its arrhythmia alarms in chains so that a more serious condition is not
overlooked when several overlap (ePM operator's manual, 10.7.5.1 "Arrhythmia Alarm Chains"),
and does not show PVCs/min during ventricular rhythms, V-tach, V-fib and asystole (V Series
operating instructions, 9.7.2.7). A pattern decided *before* the lethal condition (the run
that became a VT, seen a second before the VT detector decided) is still raised: nothing
that warns earlier is taken away. Out of fold on mitdb DS1 (each record labelled by the beat
fold model that never saw it) this removes the runs and pairs raised inside mitdb 207's
ventricular flutter (reference flutter waves ``!``, not V beats): ``docs/alarms.md``,
session 25.

A clean conducted beat before each V of bigeminy and trigeminy
--------------------------------------------------------------
The definitions below couple each PVC to a *normal* beat. A fusion beat (a conducted beat and
a PVC firing together) is neither, and counts as unknown when the classifier says F; but the
classifier, trained across patients, calls most fusion beats N. Their shape then gives them
away: against the patient's dominant template their correlation (``template_corr``) is a
median 0.89 out of fold on mitdb DS1, that of conducted beats 0.99. So a V beat right after a
supraventricular beat whose ``template_corr`` is below ``conducted_min_corr`` (default 0.85,
about the 2nd percentile of conducted beats' correlation out of fold on DS1 + svdb, fixed
before measuring alarms; 37 % of fusion beats called N fall below it) continues no bigeminy
or trigeminy cycle (runs, pairs and PVCs/min are unchanged). What it removes: mitdb 208's long
stretches of N, F, V (a couplet whose first beat fuses), which the agent read as N, N, V and
announced as "Ventricular trigeminy" where the annotators saw none. Out of fold on DS1 +
svdb, bigeminy + trigeminy true / false 137 / 39 -> 135 / 29 (DS1) and 159 / 7 -> 158 / 5
(svdb); at 0.9, measured and not taken, 134 / 26 and 164 / 5, with more of svdb 860's long
trigeminy split into several alarms (``docs/alarms.md``, session 27).

Paced patients
--------------
With ``paced=True`` (the bed's ``patient.paced`` setting, as bedside monitors ask at
admission) a paced beat must never count as a PVC. A paced QRS is wide and looks ventricular to
a morphology classifier, but it comes *on time*: at the pacing rate, or at the escape interval
after a pause. A PVC comes early. So, for a paced patient, a beat the classifier calls V counts
as ventricular only when it is **premature**: its RR interval is below
``PACED_PREMATURE_FRACTION`` (80 %) of the median of the last ``PACED_BASELINE_BEATS`` (8) RR
intervals of beats that were not counted as ventricular (the patient's own paced or conducted
rhythm). A V-labelled beat that is not premature, or that comes before such a baseline exists
(after the start or a gap), is an **unknown** beat: it breaks runs and patterns, is not counted
in PVCs/min, and can never start an ectopy alarm. The beats of a fast V run stay premature
against the baseline, so V-tach in a paced patient is still alarmed.

Definitions (defaults in :class:`EctopyConfig`)
-----------------------------------------------
- **vtach** (high, latched): ``vtach_min_beats`` (6) consecutive V beats whose rate is above
  ``vtach_rate_bpm`` (100 bpm). GE EK-Pro: "a run of PVCs, with run length six beats or more; in
  addition, an effective HR that exceeds 100-160 beats per minute"; Mindray ePM / BeneVision:
  V-Tach PVCs 6, V-Tach rate (100-200 bpm). Decided at the 6th V beat, without waiting for the
  run to end. Onset: the first beat of the first 6-beat window that qualified (for a regular
  run, its first V beat). The V beats of that window must also be confident: on average at
  least ``vtach_min_confidence`` (0.9), and none below ``vtach_floor_confidence`` (0.7).
  V-tach is a high-priority, latched alarm, and noise read as V beats comes with uncertain
  labels. A fast run that misses it is a ``run_pvcs`` (medium, "uncertain beats") until six
  confident beats make it V-tach. Judged alarm by alarm (``python -m tools.evaluate alarms``
  rules, beat model of 2968ea9): on mitdb DS1, 10 true / 1 false V-tach alarms with every beat
  at 0.5 become 8 / 0 with every beat at 0.9; on nstdb 118/119 at 12, 6 and 0 dB, 27 false
  V-tach alarms (noise) become 0. Every beat at 0.9 was too strict for a sustained VT whose
  labels wander between 0.8 and 1.0 (mitdb 223 at 1043 s: its 39 s VT was alarmed 28 s late),
  hence the mean with a floor (session 5; chosen on DS1 and svdb beats, DS2 untouched).
- **run_pvcs** (medium): 3 to ``vtach_min_beats - 1`` consecutive V beats at any rate (EK-Pro
  "VT > 2", Mindray V Series "Run": "one beat less than the minimum used to identify V-Tach";
  Philips "Run PVCs"), or ``vtach_min_beats`` or more consecutive V beats at or below the V-tach
  rate (ventricular rhythm: Mindray "V-Rhythm", EK-Pro "Accel. Ventric."). A short run is decided
  by the beat that ends it (one beat later than its last V: a run that is still growing may yet
  become V-tach, and should raise V-tach alone); a slow run is decided at its
  ``vtach_min_beats``-th beat and lasts as long as the run.
- **pair_pvcs** (low): exactly 2 consecutive V beats, decided by the beat after them
  (EK-Pro "Couplet: two consecutive PVCs ... between normal beats N-V-V-N"; Philips "Pair PVCs:
  run = 2").
- **bigeminy** (low): at least ``bigeminy_min_cycles`` (3) consecutive (N, V) cycles; Mindray V
  Series: "three or more cycles of one PVC coupled to one normal beat"; Welch Allyn Acuity:
  "three or more successive cycles consisting of a normal beat followed by a premature
  ventricular beat"; EK-Pro: N-V-N-V-N. Onset: the first N of the pattern.
- **trigeminy** (low): at least ``trigeminy_min_cycles`` (3) consecutive (N, N, V) cycles
  (Mindray V Series: "three or more cycles of one PVC coupled to two normal beats"; EK-Pro
  N-N-V-N-N-V-N). Onset: the first N of the pattern.
- **frequent_pvcs** (low): more than ``frequent_pvcs_per_min`` (10) PVCs within the last 60 s
  (closed window ``[t - 60, t]``); Mindray V Series "PVCs/Minute ... exceeds the configured
  threshold" (range 1-30; BeneVision 1-100). V beats of a run of ``vtach_min_beats`` or more are
  not counted: Mindray does not show PVCs/min "during periods of Ventricular Rhythms, V-Tach", and
  a V-tach episode already has its own alarm. Onset: the PVC that took the count over the limit.

Rate of a V run: ``60000 / mean(RR)`` over the RR intervals *within* the run (the RR ending at
each V beat after the first; the coupling interval before the first V is not part of the run),
in bpm. For the V-tach decision the window is the last ``vtach_min_beats`` V beats (so a run
that accelerates is caught); the message gives the rate of the whole run so far.

Persistence
-----------
A pattern is an event: it is true from its onset until ``event_hold_s`` after its last beat
(for V-tach and slow runs, until ``event_hold_s`` after the last V beat of the run; for
bigeminy and trigeminy, ``event_hold_s`` after the last beat that continued the pattern;
frequent PVCs: while the 60 s count stays above the limit). A new occurrence while the condition
is still true extends it: repeated couplets within ``event_hold_s`` of each other keep one alarm
rather than raising one per couplet, as the Philips IntelliVue arrhythmia alarm timeouts and
the Mindray arrhythmia alarm shielding period keep one arrhythmia from being announced again and
again. Every decided pattern is reported active by at least one call of :meth:`findings`, however
late the caller asks, so a couplet raises exactly one alarm and the engine's clear delay then
clears it (a latched V-tach stays until acknowledged).

Which ectopy alarms are on, and at which priority: every ectopy condition here is on by
default, at the priority the Mindray V Series operating instructions give as the *default*
alarm level of each (9.7.1.3 V-Tach high; 9.7.2 Run and V-Rhythm medium; Bigeminy, Couplet,
Trigeminy and PVCs/Minute low; non-lethal arrhythmia alarms not latched). The Philips
IntelliVue MX800 configuration guide ("Arrhythmia Alarms") chains Pair PVCs, Run PVCs and
Vent Rhythm as short yellow arrhythmia alarms whose on/off state is part of the monitor's
profile ("Some ECG alarms off" INOP when it differs); a searchable source for the shipped
on/off state of each ectopy alarm on IntelliVue, GE CARESCAPE (EK-Pro) or Mindray was not
found, so the on/off defaults were not changed.

Priorities follow IEC 60601-1-8:2006+A1:2012, 6.1.2, Table 1, as the vendors map them: Mindray
V Series makes V-Tach a high (lethal) alarm and Run medium, Bigeminy, Trigeminy and PVCs/Minute
low, and its non-lethal arrhythmia alarms are not latched. Philips IntelliVue signals Pair PVCs,
Run PVCs and Vent Bigeminy as short *yellow* (medium) alarms; we keep the Mindray low priority
for pair, bigeminy and trigeminy, which IEC 60601-1-8 Table 1 allows for a condition that needs
awareness rather than prompt response. V-tach is latched (IEC 60601-1-8, 6.11.2.2): a
self-terminating run must still be seen by a nurse. No onset delay: the beat counts are the
confirmation.

Vendor chaining (Philips, Mindray "alarm chains") is applied in one place only, under V-tach
and VF ("Alarm chain under V-tach and VF" above); otherwise each condition is judged on its
own, except that the beats of one run raise only one of run_pvcs / vtach and V-tach beats do
not feed PVCs/min.

References
----------
- GE Healthcare, EK-Pro arrhythmia algorithm, arrhythmia definitions (user manual).
- Mindray, V Series Operating Instructions, 9.7.1.3 (V-Tach) and 9.7.2 (non-lethal arrhythmia
  alarms: Bigeminy, Couplet, PVCs/Minute, Run, Trigeminy, V-Rhythm).
- Mindray, ePM / BeneVision N1 operator's manuals, "Setting Thresholds for PVC-Related Alarms"
  (V-Tach PVCs 6, V-Tach rate 100-200 bpm, PVCs/min 1-100).
- Philips, IntelliVue MX800 configuration guide, "Arrhythmia Alarms" (Pair of PVCs = run of 2;
  V-tach run and rate limits; arrhythmia timeouts).
- Welch Allyn, Acuity central monitoring system user manual, Table 5 (bigeminy, trigeminy:
  three or more successive cycles; couplet).
- ANSI/AAMI EC57:2012, Table 1 (beat classes).
- Drew BJ et al., "Insights into the problem of alarm fatigue with physiologic monitor
  devices", PLoS One 9(10):e110274, 2014, doi:10.1371/journal.pone.0110274 (PVC alarms are the
  most frequent arrhythmia alarms; why uncertain labels must not complete a pattern).

Length: runs, bigeminy, trigeminy and the PVC rate share the beat history and the episode state,
and their definitions, with sources, take a third of the module.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

from agent.alarms.engine import ConditionSpec, Finding, inactive
from agent.alarms.rules import StripProvider
from agent.beats import Beat
from agent.config import EctopyConfig
from agent.core.items import Signal, StateChange, TimelineItem
from agent.dsp.heart_rate import hr_bpm_monitor
from agent.messages import (
    AamiClass,
    AlarmCode,
    AlarmCondition,
    AlarmEvidence,
    AlarmPriority,
    BeatEvidence,
)

PAIR_BEATS: Final = 2
"""A pair (couplet) is exactly two consecutive V beats (EK-Pro N-V-V-N, Philips run = 2)."""

RUN_MIN_BEATS: Final = 3
"""Shortest run of PVCs: three consecutive V beats (EK-Pro "VT > 2", Mindray "more than 2")."""

RUN_CLOSER_MARGIN: Final = 0.3
"""How much better than the V beat before it a V beat of a short run must match the patient's
template to count as conducted (``run_closer_to_dominant``; chosen with it, module docstring)."""

PVC_WINDOW_S: Final = 60.0
"""PVCs/min is counted over the last minute (closed window ``[t - 60 s, t]``)."""

EVIDENCE_CONTEXT_BEATS: Final = 4
"""Labelled beats before a pattern's first beat attached as evidence (the rhythm it broke)."""

EVIDENCE_MAX_BEATS: Final = 32
"""At most this many labelled beats in one alarm's evidence (the last ones, up to the deciding
beat); 32 beats cover a 6-beat V-tach or a 3-cycle trigeminy with context several times over."""

ECTOPY_CODES: Final = (
    AlarmCode.VTACH,
    AlarmCode.RUN_PVCS,
    AlarmCode.PAIR_PVCS,
    AlarmCode.BIGEMINY,
    AlarmCode.TRIGEMINY,
    AlarmCode.FREQUENT_PVCS,
)
"""The conditions judged by :class:`EctopyRules`, in the order :meth:`~EctopyRules.findings`
returns them."""

_P = AlarmCondition.PHYSIOLOGICAL

_TRI_V_PHASE: Final = 2
"""Position of the V in an (N, N, V) trigeminy cycle."""

PACED_PREMATURE_FRACTION: Final = 0.8
"""Paced patients: a V-labelled beat counts as a PVC only if its RR is below 80 % of the
baseline RR. The 20 % prematurity rule is the usual definition of an ectopic beat in RR
series (Kamath & Fallen 1995, Crit Rev Biomed Eng 23:245; HRV Task Force 1996, Circulation
93:1043, doi:10.1161/01.CIR.93.5.1043, on editing ectopic beats); paced beats at the pacing
rate or the escape interval are never that early."""

PACED_BASELINE_BEATS: Final = 8
"""Paced patients: the baseline RR is the median of the last 8 RR intervals of beats not
counted as ventricular (a few seconds of the patient's own rhythm; the median ignores the
odd missed or extra beat)."""

PACED_BASELINE_MIN: Final = 4
"""Paced patients: no V-labelled beat counts as a PVC before 4 baseline RR intervals exist
(after the start and after every gap): without a baseline, prematurity cannot be judged."""


def ectopy_condition_specs(cfg: EctopyConfig) -> list[ConditionSpec]:
    """Return the specs of the ectopy alarms handled by :class:`EctopyRules`.

    Priorities follow IEC 60601-1-8:2006+A1:2012, 6.1.2, Table 1, mapped as Mindray V Series
    does (V-tach high, run medium, couplet, bigeminy, trigeminy and PVCs/min low); V-tach is
    latched (6.11.2.2). No onset delay: the beat counts of each definition are the confirmation.
    ``cfg`` is accepted so that the lead can make delays configurable without changing callers.
    """
    del cfg  # every delay is 0 today; the definitions themselves carry the confirmation
    return [
        ConditionSpec(AlarmCode.VTACH, AlarmPriority.HIGH, _P, 0.0, latched=True),
        ConditionSpec(AlarmCode.RUN_PVCS, AlarmPriority.MEDIUM, _P),
        ConditionSpec(AlarmCode.PAIR_PVCS, AlarmPriority.LOW, _P),
        ConditionSpec(AlarmCode.BIGEMINY, AlarmPriority.LOW, _P),
        ConditionSpec(AlarmCode.TRIGEMINY, AlarmPriority.LOW, _P),
        ConditionSpec(AlarmCode.FREQUENT_PVCS, AlarmPriority.LOW, _P),
    ]


class _Kind(enum.Enum):
    SUPRA = "supraventricular"
    VENT = "ventricular"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class _Episode:
    """One occurrence of a condition: true from ``onset_s`` until ``end_s`` (inclusive)."""

    onset_s: float
    end_s: float
    message: str
    decided_s: float
    beats: tuple[Beat, ...]
    reported: bool = False


class _Run:
    """The open run of consecutive V beats, in constant memory however long it lasts.

    Keeps its first beat, its length, the running sum of the RR intervals within it and its
    last ``keep`` beats (``keep`` = ``vtach_min_beats``, so a run shorter than that is whole).
    """

    def __init__(self, keep: int) -> None:
        self.tail: deque[Beat] = deque(maxlen=keep)
        self.first: Beat | None = None
        self.n = 0
        self.rr_sum_ms = 0.0
        self.rr_n = 0
        self.vtach = False  # this run already raised V-tach
        self.poor = False  # a beat of this run came while the ECG was unusable: V-tach only
        self.slow_run = False  # this run already raised run_pvcs as a slow run
        self.onset_premature = False  # its first V beat was premature against the baseline
        self.after_supra = False  # the beat before its first V was a conducted beat

    def add(self, beat: Beat) -> None:
        if self.first is None:
            self.first = beat
        elif (rr := _valid_rr_ms(beat)) is not None:
            self.rr_sum_ms += rr
            self.rr_n += 1
        self.tail.append(beat)
        self.n += 1

    def rate_bpm(self) -> float | None:
        """Rate of the whole run (see :func:`run_rate_bpm`), bpm."""
        return None if self.rr_n == 0 else 60_000.0 / (self.rr_sum_ms / self.rr_n)


def _valid_rr_ms(beat: Beat) -> float | None:
    rr = beat.rr_ms
    if rr is None or not math.isfinite(rr) or rr <= 0.0:
        return None
    return rr


def run_rate_bpm(beats: Sequence[Beat]) -> float | None:
    """Rate of a run of beats from the RR intervals within it.

    Parameters
    ----------
    beats
        Consecutive beats of the run, oldest first, length ``n_beats``.

    Returns
    -------
    float | None
        ``60000 / mean(RR)`` in bpm over the RR intervals ending at ``beats[1:]`` (the interval
        before the first beat is not part of the run), skipping missing or non-positive ones;
        None when there is none.
    """
    rrs = [rr for b in beats[1:] if (rr := _valid_rr_ms(b)) is not None]
    if not rrs:
        return None
    return 60_000.0 / (sum(rrs) / len(rrs))


def _vtach_confident(window: Sequence[Beat], cfg: EctopyConfig) -> bool:
    """Whether the V beats of a V-tach window are confident enough (module docstring).

    A beat without a confidence (a reference label) counts as certain (1.0).
    """
    conf = [1.0 if b.confidence is None else b.confidence for b in window]
    if not conf:
        return False
    return min(conf) >= cfg.vtach_floor_confidence and (
        sum(conf) / len(conf) >= cfg.vtach_min_confidence
    )


def _at_rate(rate_bpm: float | None) -> str:
    return "" if rate_bpm is None else f" at {rate_bpm:.0f} bpm"


class EctopyRules:
    """Beat-pattern state behind the ventricular ectopy alarms.

    A timeline consumer (:class:`agent.core.consumers.Consumer`): feed it final, labelled
    beats in stream order (:meth:`add_beat`); a gap (leads off, sensor disconnected, unusable
    signal) calls :meth:`reset`; ask :meth:`findings` at any stream time at or after the last
    beat added.

    Parameters
    ----------
    cfg
        Definitions and limits.
    strip
        ``(end_s, duration_s) -> EcgStrip | None``: the ECG that ended at ``end_s``, for
        evidence (None for no strips).
    strip_s
        Duration of the evidence strip, s; it ends at the beat that decided the pattern.
    paced
        The patient is paced (``patient.paced``): only premature V beats count (see "Paced
        patients" in the module docstring). Also settable later through :attr:`paced`.

    Raises
    ------
    ValueError
        If ``strip_s`` is not a positive finite number.
    """

    def __init__(
        self,
        cfg: EctopyConfig,
        *,
        strip: StripProvider | None,
        strip_s: float,
        paced: bool = False,
    ) -> None:
        if not (math.isfinite(strip_s) and strip_s > 0.0):
            msg = f"strip_s must be a positive number of seconds, got {strip_s!r}"
            raise ValueError(msg)
        self._cfg = cfg
        self._strip = strip
        self._strip_s = strip_s
        self.paced = paced
        self._baseline_rr: deque[float] = deque(maxlen=PACED_BASELINE_BEATS)
        self._history: deque[Beat] = deque(maxlen=EVIDENCE_MAX_BEATS)
        self._episodes: dict[AlarmCode, _Episode] = {}
        self._unusable: set[Signal] = set()  # signal states now making the ECG unusable
        self._last_t_s: float | None = None
        self._clear_patterns()
        self.specs: Sequence[ConditionSpec] = ectopy_condition_specs(cfg)
        self.lethal: Callable[[], bool] | None = None
        """Whether a lethal ventricular condition (``vtach``, ``vfib``) is true now; set by
        the owner (the agent's core). With ``cfg.lethal_chain`` the patterns decided while it
        holds are not raised (see "Alarm chain under V-tach and VF"); None: never."""

    def feed(self, item: TimelineItem) -> None:
        """Take the next timeline item: final beats (:meth:`add_beat`), gaps (:meth:`reset`).

        A state change that makes the ECG unusable (flat, poor signal, link down, no skin
        contact) resets the patterns and, until the same state ends, every beat is an
        unknown beat (see "Signal quality" in the module docstring).
        """
        if isinstance(item, Beat):
            self.add_beat(item)
        elif isinstance(item, StateChange):
            if item.unusable:
                self._unusable.add(item.signal)
                self.reset(item.t_s)
            elif not item.active:
                self._unusable.discard(item.signal)

    def _clear_patterns(self) -> None:
        self._history.clear()
        self._run = _Run(self._cfg.vtach_min_beats)
        self._prev: Beat | None = None
        self._prev_kind = _Kind.UNKNOWN
        self._alt_len = 0  # beats in the trailing N,V,N,V... suffix (starts with N)
        self._alt_start_s = 0.0
        self._tri_len = 0  # beats in the trailing N,N,V,N,N,V... suffix (starts with N)
        self._tri_start_s = 0.0
        self._pvc_s: deque[float] = deque()
        self._baseline_rr.clear()

    # -- input ------------------------------------------------------------------------------

    def category(self, beat: Beat) -> str:
        """How the rules read a beat: ``"ventricular"``, ``"supraventricular"`` or ``"unknown"``."""
        return self._kind(beat).value

    def _kind(self, beat: Beat, *, gated: bool = True) -> _Kind:
        cls = beat.aami_class
        if cls is None or (gated and self._unusable):
            return _Kind.UNKNOWN
        conf = beat.confidence
        if conf is not None and not (self._cfg.min_confidence <= conf <= 1.0):
            return _Kind.UNKNOWN  # below the threshold, or NaN / out of range
        if cls is AamiClass.V:
            if conf is not None and conf < self._cfg.v_min_confidence:
                return _Kind.UNKNOWN  # a V label, but not confident enough for an alarm
            if self.paced and not self._premature(beat):
                return _Kind.UNKNOWN  # paced: a wide beat on time is a paced beat
            if self._matches_dominant(beat) or self._breaks_run(beat):
                return _Kind.UNKNOWN
            if self._closer_to_dominant(beat):
                return _Kind.SUPRA
            return _Kind.VENT
        if cls in (AamiClass.N, AamiClass.S):
            return _Kind.SUPRA
        return _Kind.UNKNOWN  # Q (paced, unclassifiable) and F (fusion)

    def _vtach_evidence_in_poor_signal(self, beat: Beat) -> bool:
        """Whether a beat seen while the ECG is unusable still counts towards V-tach.

        V-tach is never suppressed by signal quality (IEC 60601-2-27 201.12.1.101.1: a
        ventricular tachyarrhythmia often *looks* like poor signal to a QRS-based quality
        index, and its alarm is the one a monitor must not lose). So while the signal is poor a
        V beat still extends or starts a run if it would be ventricular without the gate and
        is confident at the V-tach bar (``vtach_min_confidence``); such a run can raise only
        ``vtach``, never a pair, a run of PVCs or the PVCs/min count.
        """
        if not self._unusable or self._kind(beat, gated=False) is not _Kind.VENT:
            return False
        conf = beat.confidence
        return conf is None or conf >= self._cfg.vtach_min_confidence

    def _matches_dominant(self, beat: Beat) -> bool:
        """Whether a V-labelled beat is the patient's own dominant beat (module docstring).

        Never for a beat that continues an open run of ``RUN_MIN_BEATS`` or more V beats: a
        sustained ventricular rhythm soon becomes the dominant template itself, and its
        beats, on time against each other, would end the run that is being alarmed.
        """
        limit = self._cfg.v_template_match
        corr = beat.template_corr
        if limit is None or corr is None or not math.isfinite(corr) or corr < limit:
            return False
        if self._run.n >= RUN_MIN_BEATS:
            return False
        return not self._premature(beat) or self._on_time_after_one_v(beat)

    def _on_time_after_one_v(self, beat: Beat) -> bool:
        """Whether a beat comes on time after the last conducted beat, one V beat between.

        The V beat between, unlike the patient's template, is then an extra detection (noise,
        a tall T wave) or an interpolated PVC; neither resets the patient's rhythm, so the beat
        after it is judged on time from the conducted beat before it: the two intervals
        together within ``PACED_PREMATURE_FRACTION`` (80 %) and ``2 -
        PACED_PREMATURE_FRACTION`` (120 %) of the baseline RR ("Beat categories").
        """
        run = self._run
        if run.n != 1 or not run.after_supra or run.first is None:
            return False
        between = run.first.template_corr
        limit = self._cfg.v_template_match
        if limit is not None and between is not None and between >= limit:
            return False  # a template-matching premature pair or run stays one (module docstring)
        rr1, rr2, baseline = _valid_rr_ms(run.first), _valid_rr_ms(beat), self._baseline_ms()
        if rr1 is None or rr2 is None or baseline is None:
            return False
        low = PACED_PREMATURE_FRACTION
        return low * baseline <= rr1 + rr2 < (2.0 - low) * baseline

    def _pattern_kind(self, kind: _Kind) -> _Kind:
        """Return a beat's kind for bigeminy and trigeminy (a V after an unclean N has none).

        A V beat whose preceding beat was supraventricular but matched the patient's dominant
        template less than ``conducted_min_corr`` counts as unknown in the patterns (that beat
        is likely a fusion beat the classifier called N); runs, pairs and PVCs/min do not
        look at it.
        """
        limit = self._cfg.conducted_min_corr
        prev = self._prev
        if kind is not _Kind.VENT or limit is None or prev is None:
            return kind
        if self._prev_kind is not _Kind.SUPRA:
            return kind
        corr = prev.template_corr
        if corr is None or not math.isfinite(corr) or corr >= limit:
            return kind
        return _Kind.UNKNOWN

    def _breaks_run(self, beat: Beat) -> bool:
        """Whether a V-labelled beat looks unlike the V beat before it in the open run."""
        limit = self._cfg.run_min_beat_corr
        corr = beat.prev_beat_corr
        if limit is None or self._run.n == 0 or corr is None or not math.isfinite(corr):
            return False
        return corr < limit

    def _closer_to_dominant(self, beat: Beat) -> bool:
        """Whether a V beat extending a short run is nearer the patient's beat than that run's.

        Inside an open run of 1 or 2 V beats (a longer run may be a ventricular rhythm that is
        becoming the template), a V-labelled beat whose ``template_corr`` is at least
        ``run_closer_to_dominant`` and at least :data:`RUN_CLOSER_MARGIN` above its
        ``prev_beat_corr`` (its match with the V beat before it) looks more like the patient's
        conducted beat than like the PVC it would extend (module docstring, "Beat categories").
        """
        floor = self._cfg.run_closer_to_dominant
        if floor is None or not 0 < self._run.n < RUN_MIN_BEATS:
            return False
        t, p = beat.template_corr, beat.prev_beat_corr
        if t is None or p is None or not (math.isfinite(t) and math.isfinite(p)):
            return False
        return t >= floor and t >= p + RUN_CLOSER_MARGIN

    def _onset_counts(self, run: _Run) -> bool:
        """Whether a run may raise a pair or a run of PVCs ("Prematurity of a run")."""
        return run.onset_premature or self._cfg.run_onset_premature is None

    def _baseline_ms(self) -> float | None:
        """Median of the recent non-ventricular RR intervals, ms; None with too few of them."""
        if len(self._baseline_rr) < PACED_BASELINE_MIN:
            return None
        return sorted(self._baseline_rr)[len(self._baseline_rr) // 2]

    def _premature(self, beat: Beat, fraction: float = PACED_PREMATURE_FRACTION) -> bool:
        """Whether a beat's RR is below ``fraction`` of the baseline RR (see "Paced patients")."""
        rr, baseline = _valid_rr_ms(beat), self._baseline_ms()
        if rr is None or baseline is None:
            return False
        return rr < fraction * baseline

    def add_beat(self, beat: Beat) -> None:
        """Record a labelled beat (in stream order; ``aami_class`` None is an unknown beat).

        Raises
        ------
        ValueError
            If the beat's time is not finite or not after the previous beat's.
        """
        t = beat.r_peak_time_s
        if not math.isfinite(t):
            msg = f"beat time must be finite, got {t!r}"
            raise ValueError(msg)
        if self._last_t_s is not None and t <= self._last_t_s:
            msg = f"beats must come in stream order: {t} s after {self._last_t_s} s"
            raise ValueError(msg)
        self._last_t_s = t
        kind = self._kind(beat)
        lethal_only = kind is not _Kind.VENT and self._vtach_evidence_in_poor_signal(beat)
        if kind is not _Kind.VENT and not lethal_only and (rr := _valid_rr_ms(beat)) is not None:
            self._baseline_rr.append(rr)
        self._history.append(beat)
        if kind is _Kind.VENT or lethal_only:
            if self._run.n == 0:
                self._run.after_supra = self._prev_kind is _Kind.SUPRA
                if self._cfg.run_onset_premature is not None:
                    self._run.onset_premature = self._premature(beat, self._cfg.run_onset_premature)
            self._run.add(beat)
            self._run.poor = self._run.poor or lethal_only
            self._judge_open_run(t)
        else:
            self._close_run(t)
        pattern_kind = self._pattern_kind(kind)
        self._judge_bigeminy(pattern_kind, beat)
        self._judge_trigeminy(pattern_kind, beat)
        self._prev, self._prev_kind = beat, kind

    def reset(self, t_s: float) -> None:
        """Forget every pattern at a signal gap (leads off, disconnect) at stream time ``t_s``.

        Patterns never span a gap: an open V run is closed as it stands (a pair or a short run
        seen before the gap is still reported), then runs, bigeminy, trigeminy and the PVCs/min
        window restart from the next beat, as monitors relearn after leads-off. Conditions
        already decided stay true at most until ``t_s``.
        """
        if self._run.n:
            self._close_run(self._run.tail[-1].r_peak_time_s)
        for episode in self._episodes.values():
            episode.end_s = min(episode.end_s, t_s)
        self._clear_patterns()

    # -- runs -------------------------------------------------------------------------------

    def _judge_open_run(self, t_s: float) -> None:
        """Judge the open run after a V beat joined it: V-tach or a slow run, once long enough."""
        cfg = self._cfg
        run = self._run
        n = run.n
        if n < cfg.vtach_min_beats or run.first is None:
            return
        run_rate = run.rate_bpm()
        end_s = t_s + cfg.event_hold_s
        if run.vtach:
            self._extend(AlarmCode.VTACH, end_s, f"V-tach {n} beats{_at_rate(run_rate)}")
            return
        window = list(run.tail)  # the last vtach_min_beats V beats
        window_rate = run_rate_bpm(window)
        fast = window_rate is not None and window_rate > cfg.vtach_rate_bpm
        confident = _vtach_confident(window, cfg)
        if fast and confident:
            run.vtach = True
            self._start(
                AlarmCode.VTACH,
                onset_s=window[0].r_peak_time_s,
                end_s=end_s,
                decided_s=t_s,
                message=f"V-tach {n} beats{_at_rate(run_rate)}",
            )
            return
        if run.poor or not self._onset_counts(run):
            return  # built in poor signal, or not begun by a premature beat: V-tach or nothing
        kind = "uncertain beats: not called V-tach" if fast else "ventricular rhythm"
        message = f"Run of {n} PVCs{_at_rate(run_rate)} ({kind})"
        if run.slow_run:
            self._extend(AlarmCode.RUN_PVCS, end_s, message)
        elif not self._chained():  # else judged again at its next beat
            run.slow_run = True
            self._start(
                AlarmCode.RUN_PVCS,
                onset_s=run.first.r_peak_time_s,
                end_s=end_s,
                decided_s=t_s,
                message=message,
            )

    def _close_run(self, decided_s: float) -> None:
        """Judge the run (if any) that a non-V beat (or a gap) ended at ``decided_s``."""
        run = self._run
        n = run.n
        if n == 0 or run.first is None:
            return
        cfg = self._cfg
        if run.poor or not self._onset_counts(run):  # it could only have raised V-tach
            self._run = _Run(cfg.vtach_min_beats)
            return
        onset_s = run.first.r_peak_time_s
        end_s = run.tail[-1].r_peak_time_s + cfg.event_hold_s
        rate = run.rate_bpm()
        if n == PAIR_BEATS:
            self._start(
                AlarmCode.PAIR_PVCS,
                onset_s=onset_s,
                end_s=end_s,
                decided_s=decided_s,
                message=f"Pair of PVCs (couplet){_at_rate(rate)}",
            )
        elif RUN_MIN_BEATS <= n < cfg.vtach_min_beats:
            self._start(
                AlarmCode.RUN_PVCS,
                onset_s=onset_s,
                end_s=end_s,
                decided_s=decided_s,
                message=f"Run of {n} PVCs{_at_rate(rate)}",
            )
        if n < cfg.vtach_min_beats and not self._chained():
            for beat in run.tail:  # the whole run: shorter than the tail's length
                self._count_pvc(beat.r_peak_time_s, decided_s)
        self._run = _Run(cfg.vtach_min_beats)

    # -- bigeminy, trigeminy ----------------------------------------------------------------

    def _judge_bigeminy(self, kind: _Kind, beat: Beat) -> None:
        t = beat.r_peak_time_s
        if kind is _Kind.UNKNOWN:
            self._alt_len = 0
        elif kind is _Kind.VENT:
            # a V continues the pattern only right after its N
            self._alt_len = self._alt_len + 1 if self._alt_len % 2 == 1 else 0
        elif self._alt_len > 0 and self._alt_len % 2 == 0:
            self._alt_len += 1
        else:
            self._alt_len, self._alt_start_s = 1, t
        cycles = self._alt_len // 2
        if cycles >= self._cfg.bigeminy_min_cycles:
            self._start_or_extend(
                AlarmCode.BIGEMINY,
                onset_s=self._alt_start_s,
                t_s=t,
                message=f"Ventricular bigeminy: {cycles} cycles",
            )

    def _judge_trigeminy(self, kind: _Kind, beat: Beat) -> None:
        t = beat.r_peak_time_s
        phase = self._tri_len % 3  # 0, 1: an N is due; 2: a V is due
        if kind is _Kind.UNKNOWN:
            self._tri_len = 0
        elif kind is _Kind.VENT:
            self._tri_len = self._tri_len + 1 if phase == _TRI_V_PHASE else 0
        elif self._tri_len == 0:
            self._tri_len, self._tri_start_s = 1, t
        elif phase in (0, 1):
            self._tri_len += 1
        else:
            # N, N, N: the last two N may still start a pattern
            prev = self._prev
            self._tri_len = 2
            self._tri_start_s = prev.r_peak_time_s if prev is not None else t
        cycles = self._tri_len // 3
        if cycles >= self._cfg.trigeminy_min_cycles:
            self._start_or_extend(
                AlarmCode.TRIGEMINY,
                onset_s=self._tri_start_s,
                t_s=t,
                message=f"Ventricular trigeminy: {cycles} cycles",
            )

    def _start_or_extend(
        self, code: AlarmCode, *, onset_s: float, t_s: float, message: str
    ) -> None:
        episode = self._episodes.get(code)
        end_s = t_s + self._cfg.event_hold_s
        if episode is not None and episode.onset_s == onset_s:
            self._extend(code, end_s, message)
        else:
            self._start(code, onset_s=onset_s, end_s=end_s, decided_s=t_s, message=message)

    # -- PVCs per minute --------------------------------------------------------------------

    def _count_pvc(self, pvc_s: float, decided_s: float) -> None:
        window = self._pvc_s
        window.append(pvc_s)
        while window and window[0] < pvc_s - PVC_WINDOW_S:
            window.popleft()
        limit = self._cfg.frequent_pvcs_per_min
        count = len(window)
        if count <= limit:
            return
        # the count stays above the limit until the (count - limit)-th oldest PVC leaves
        end_s = window[count - limit - 1] + PVC_WINDOW_S
        self._start(
            AlarmCode.FREQUENT_PVCS,
            onset_s=pvc_s,
            end_s=end_s,
            decided_s=decided_s,
            message=f"Frequent PVCs: {count}/min > {limit}/min",
        )

    def pvcs_per_min(self, t_s: float) -> int:
        """PVCs counted in ``[t_s - 60 s, t_s]`` (single PVCs, pairs and short runs).

        V beats of a run still open at ``t_s`` are counted once the run ends.
        """
        return sum(1 for s in self._pvc_s if t_s - PVC_WINDOW_S <= s <= t_s)

    # -- episodes and findings --------------------------------------------------------------

    def _chained(self) -> bool:
        """Whether the lethal alarm above the ectopy alarms in their chain holds now."""
        return self._cfg.lethal_chain and self.lethal is not None and self.lethal()

    def _start(
        self, code: AlarmCode, *, onset_s: float, end_s: float, decided_s: float, message: str
    ) -> None:
        if code is not AlarmCode.VTACH and self._chained():
            return  # vtach or vfib speaks for these beats (alarm chain)
        episode = self._episodes.get(code)
        if episode is not None and (not episode.reported or decided_s <= episode.end_s):
            # the condition is still true: the new occurrence extends it
            episode.end_s = max(episode.end_s, end_s)
            episode.message = message
            return
        self._episodes[code] = _Episode(
            onset_s=onset_s,
            end_s=end_s,
            message=message,
            decided_s=decided_s,
            beats=self._evidence_beats(onset_s),
        )

    def _extend(self, code: AlarmCode, end_s: float, message: str) -> None:
        episode = self._episodes[code]
        episode.end_s = max(episode.end_s, end_s)
        episode.message = message

    def _evidence_beats(self, pattern_start_s: float) -> tuple[Beat, ...]:
        beats = list(self._history)
        first = next(
            (i for i, b in enumerate(beats) if b.r_peak_time_s >= pattern_start_s), len(beats)
        )
        return tuple(beats[max(0, first - EVIDENCE_CONTEXT_BEATS) :])

    def findings(self, t_s: float) -> list[Finding]:
        """Judge every ectopy condition at stream time ``t_s`` (one finding per code).

        A condition is active while ``t_s`` is within its episode (see "Persistence" in the
        module docstring), and in any case the first time it is asked after the pattern was
        decided; ``onset_s`` is the first beat of the pattern.
        """
        out: list[Finding] = []
        for code in ECTOPY_CODES:
            episode = self._episodes.get(code)
            if episode is None or (episode.reported and t_s > episode.end_s):
                out.append(inactive(code))
                continue
            episode.reported = True
            out.append(
                Finding(
                    code,
                    active=True,
                    onset_s=episode.onset_s,
                    message=episode.message,
                    evidence=partial(self._evidence, episode),
                )
            )
        return out

    def idle_until_s(self, t_s: float) -> float:
        """Idle for good once every decided pattern was reported and has ended before ``t_s``.

        A pattern is decided only from beats fed; an unreported one is reported at the next
        call (active), an ongoing one is active until its ``end_s``: not idle.
        """
        for episode in self._episodes.values():
            if not episode.reported or t_s <= episode.end_s:
                return -math.inf
        return math.inf

    def _evidence(self, episode: _Episode) -> AlarmEvidence:
        """Evidence: the labelled beats of the pattern and 4 before it, their RR, the strip."""
        beats = [
            BeatEvidence(
                t_s=round(b.r_peak_time_s, 3),
                rr_ms=None if (rr := _valid_rr_ms(b)) is None else round(rr, 1),
                aami_class=b.aami_class,
                confidence=(
                    b.confidence
                    if b.confidence is not None and 0.0 <= b.confidence <= 1.0
                    else None
                ),
            )
            for b in episode.beats
        ]
        rr_ms = [rr for b in episode.beats if (rr := _valid_rr_ms(b)) is not None]
        hr = hr_bpm_monitor(rr_ms)
        strip = self._strip(episode.decided_s, self._strip_s) if self._strip is not None else None
        return AlarmEvidence(
            rr_ms=[round(rr, 1) for rr in rr_ms],
            beats=beats,
            strip=strip,
            hr_bpm=None if hr is None else round(hr, 1),
        )


__all__ = [
    "ECTOPY_CODES",
    "EctopyConfig",
    "EctopyRules",
    "ectopy_condition_specs",
    "run_rate_bpm",
]
