"""The typed items of the one timeline, and the order in which the core applies them.

Front ends (:mod:`agent.core.frontends`) turn frames into these items, each stamped in
*stream time* (seconds from the stream's first sample; DESIGN.md, "Data flow"):

- :class:`Qrs`: a QRS complex the R-peak detector has committed (or a beat an RR-only strap
  reported), with the RR interval that ends at it. Final as *timing* the moment it is
  committed; its AAMI class comes one beat later from :class:`agent.core.finaliser.BeatFinaliser`,
  which turns it into the final :class:`agent.beats.Beat`.
- :class:`StateChange`: the signal or the sensor changed state (flat line, poor signal, link,
  skin contact, battery).
- :class:`Commit`: everything up to ``t_s`` has been decided (the R-peak detector's commit
  horizon on a waveform; the newest notification on an RR-only stream).

:class:`Timeline` holds state changes until the commit horizon passes them and merges them with
the beats in stream-time order, state changes first at equal times, so that an alarm's
``onset_s`` is exact to the sample and does not depend on chunk sizes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from agent.beats import Beat
from agent.dsp.rpeaks import RPeak
from agent.rhythm.vf import VfChange

JUST_BEFORE_S: Final = 1e-6
"""The open RR interval is judged this long before each beat (asystole, pause), s."""


@dataclass(frozen=True, slots=True)
class Qrs:
    """A committed QRS complex: the timing of a beat, before its class is known.

    Attributes
    ----------
    r_peak_idx : int
        Sample index of the R-peak at the stream's rate (ms on RR-only streams).
    t_s : float
        Stream time of the R-peak, s.
    rr_ms : float | None
        RR interval that ends here, ms (None for the first beat and after a gap).
    amplitude_uv : float
        Cleaned ECG at the R-peak, µV (NaN on RR-only streams).
    """

    r_peak_idx: int
    t_s: float
    rr_ms: float | None
    amplitude_uv: float

    def beat(self) -> Beat:
        """Return the beat as detected (no class yet)."""
        return Beat(self.r_peak_idx, self.t_s, self.rr_ms, self.amplitude_uv)


class Signal(enum.Enum):
    """What a :class:`StateChange` is about."""

    FLAT = "flat"
    """Flat, stuck or invalid ECG (:mod:`agent.dsp.flatline`)."""
    POOR = "poor"
    """Signal quality too poor to analyse (:mod:`agent.dsp.quality`)."""
    LINK = "link"
    """The sensor's radio link is down (``active``) or back."""
    CONTACT = "contact"
    """The sensor reports no skin contact (``active``) or contact again."""
    BATTERY = "battery"
    """A battery level report (``battery_pct``)."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """A change of signal or sensor state at stream time ``t_s``.

    Attributes
    ----------
    signal : Signal
        What changed.
    active : bool
        True when the condition began (flat, poor, link down, contact lost), False when it
        ended; True for battery reports.
    t_s : float
        Stream time at which the new state began, s.
    battery_pct : int | None
        Battery level for :attr:`Signal.BATTERY`, %.
    """

    signal: Signal
    active: bool
    t_s: float
    battery_pct: int | None = None

    @property
    def unusable(self) -> bool:
        """Whether the ECG is unusable from ``t_s`` on (a gap: beat-level state restarts)."""
        return self.active and self.signal is not Signal.BATTERY


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything up to stream time ``t_s`` has been decided."""

    t_s: float


TimelineItem = Qrs | Beat | StateChange | Commit | VfChange
"""What consumers are fed (:class:`agent.core.consumers.Consumer`): timeline consumers get
``Qrs``, final ``Beat``, ``StateChange`` and ``Commit`` in stream-time order; immediate
consumers get VF decisions (:class:`~agent.rhythm.vf.VfChange`) and link changes at once."""


class Timeline:
    """State changes waiting for the commit horizon, merged with beats in stream-time order."""

    def __init__(self) -> None:
        self._pending: list[StateChange] = []

    def add(self, changes: list[StateChange]) -> None:
        """Queue state changes (in the order they were detected)."""
        self._pending.extend(changes)

    def drain(
        self, beats: Sequence[tuple[float, RPeak | Qrs]], committed_s: float
    ) -> list[tuple[float, RPeak | Qrs | StateChange]]:
        """Return ``(t_s, item)`` for ``beats`` and the queued changes up to ``committed_s``.

        Beats come as the detector's :class:`~agent.dsp.rpeaks.RPeak` (their RR depends on
        gaps still to be applied in this order) or as an RR-only strap's :class:`Qrs`. At
        equal times a state change comes before a beat (the beat is judged in the new
        state); changes after ``committed_s`` stay queued.
        """
        timeline: list[tuple[float, int, RPeak | Qrs | StateChange]] = [(t, 1, b) for t, b in beats]
        keep: list[StateChange] = []
        for change in self._pending:
            if change.t_s <= committed_s:
                timeline.append((change.t_s, 0, change))
            else:
                keep.append(change)
        self._pending = keep
        timeline.sort(key=lambda item: (item[0], item[1]))
        return [(t, item) for t, _, item in timeline]
