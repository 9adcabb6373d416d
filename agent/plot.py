"""``bedside plot``: PNG figures of ``bedside analyze`` outputs, for a researcher's eye.

Two figures:

- :func:`plot_alarm_strip`: an alarm's evidence as the nurse station got it, the ECG strip
  (``AlarmEvent.evidence.strip``, in mV on ECG-paper grid) with each labelled beat
  (``evidence.beats``) marked at its R-peak time with its AAMI class letter, and the RR
  interval ending at each beat written between the beats (ms). Only ``raised`` events carry
  a strip; ``updated`` and ``cleared`` events of the same alarm do not.
- :func:`plot_tachogram`: a record's ``beats.csv`` as RR interval (ms) against time (s), one
  colour per AAMI class of the beat that ends the interval.

matplotlib is imported inside the functions, so the live agent never loads it; figures are
drawn on a :class:`matplotlib.figure.Figure` and rendered by the Agg canvas (no pyplot, no
global backend switch). The PNG is exactly ``width_px`` x ``height_px`` pixels.

Length: two figures (evidence strip, tachogram) with their input checks and the ECG-paper grid.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from agent.errors import BedsideError
from agent.messages import AlarmEvent

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

DEFAULT_WIDTH_PX: Final = 1600
"""Default PNG width, pixels (a 6 s strip at about 25 mm/s on a laptop screen)."""

DEFAULT_HEIGHT_PX: Final = 500
"""Default PNG height, pixels."""

DPI: Final = 100
"""Dots per inch used to turn pixel sizes into matplotlib's inches; only font scale depends
on it."""

MIN_SIZE_PX: Final = 100
"""Smallest width or height accepted, pixels (below it the axes labels do not fit)."""

UNCLASSIFIED_LABEL: Final = "?"
"""Label drawn for a beat without an AAMI class (no classifier ran, or it abstained)."""

CLASS_COLOURS: Final = {
    "N": "#404040",
    "S": "#1f77b4",
    "V": "#d62728",
    "F": "#ff7f0e",
    "Q": "#9467bd",
    UNCLASSIFIED_LABEL: "#a0a0a0",
}
"""Colour per AAMI EC57 class letter (ANSI/AAMI EC57:2012 Table 1), grey for unclassified."""

GRID_MINOR_S: Final = 0.04
GRID_MAJOR_S: Final = 0.2
GRID_MINOR_MV: Final = 0.1
GRID_MAJOR_MV: Final = 0.5
"""ECG-paper grid: 1 mm = 0.04 s and 0.1 mV at the standard 25 mm/s and 10 mm/mV."""

TACHO_MIN_TOP_MS: Final = 2000.0
TACHO_TOP_FACTOR: Final = 1.5
"""The tachogram's RR axis stops at max(2000 ms, 1.5 x the 99.5th percentile RR), so one
long gap (a leads-off stretch) does not flatten every other interval; longer intervals are
drawn as ``^`` at the top edge. 2000 ms is a 30 bpm interval, inside any plausible rhythm."""


class PlotInputError(BedsideError, ValueError):
    """An input cannot be plotted: missing or malformed file, no such alarm, no strip.

    Attributes
    ----------
    path : Path | None
        The offending file, when there is one.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def alarm_events_file(path: Path) -> Path:
    """Return ``path``, or ``path / "alarms.jsonl"`` when it is a record's output folder."""
    return path / "alarms.jsonl" if path.is_dir() else path


def load_alarm_events(path: Path) -> list[AlarmEvent]:
    """Read an ``alarms.jsonl`` file (one :class:`AlarmEvent` JSON object a line).

    Parameters
    ----------
    path
        The file, or a record's output folder that holds ``alarms.jsonl``.

    Returns
    -------
    list[AlarmEvent]
        Every event, in file order (blank lines skipped).

    Raises
    ------
    PlotInputError
        If the file cannot be read, or a line is not a valid alarm event (its line number
        is given).
    """
    path = alarm_events_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        msg = f"cannot read alarm events {path}: {err.strerror or err}"
        raise PlotInputError(msg, path) from err
    events: list[AlarmEvent] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(AlarmEvent.model_validate_json(line))
        except ValidationError as err:
            msg = f"{path}:{lineno}: not an alarm event ({err.error_count()} error(s))"
            raise PlotInputError(msg, path) from err
    return events


def select_alarm(
    events: Sequence[AlarmEvent],
    *,
    alarm_id: str | None = None,
    condition: str | None = None,
    index: int = 0,
) -> AlarmEvent:
    """Pick the alarm event to draw: the ``index``-th matching event that carries a strip.

    Parameters
    ----------
    events
        Events of one ``alarms.jsonl``, in file order.
    alarm_id
        Keep events whose ``alarm_id`` starts with this prefix (case-insensitive).
    condition
        Keep events of this condition (``AlarmCode`` value, e.g. ``pause``).
    index
        0-based position among the matching events that carry an ECG strip (the ``raised``
        events); negative counts from the end.

    Returns
    -------
    AlarmEvent
        An event whose ``evidence.strip`` is not None.

    Raises
    ------
    PlotInputError
        If no event matches, if the matching events carry no strip (``cleared`` and
        ``updated`` events do not), or if ``index`` is out of range.
    """
    matching = [
        ev
        for ev in events
        if (alarm_id is None or ev.alarm_id.lower().startswith(alarm_id.lower()))
        and (condition is None or ev.condition.value == condition)
    ]
    what = " ".join(
        part
        for part in (
            f"id {alarm_id}*" if alarm_id is not None else "",
            f"condition {condition}" if condition is not None else "",
        )
        if part
    )
    if not matching:
        msg = f"no alarm event with {what}" if what else "no alarm events in the file"
        raise PlotInputError(msg)
    with_strip = [ev for ev in matching if ev.evidence.strip is not None]
    if not with_strip:
        kinds = ", ".join(sorted({ev.lifecycle.value for ev in matching}))
        msg = (
            f"{len(matching)} matching event(s) ({kinds}) but none carries an ECG strip;"
            " only raised events do"
        )
        raise PlotInputError(msg)
    if not -len(with_strip) <= index < len(with_strip):
        msg = f"--index {index} out of range: {len(with_strip)} matching event(s) with a strip"
        raise PlotInputError(msg)
    return with_strip[index]


def _figure(width_px: int, height_px: int) -> Figure:
    from matplotlib.figure import Figure

    if width_px < MIN_SIZE_PX or height_px < MIN_SIZE_PX:
        msg = f"figure size must be at least {MIN_SIZE_PX} px a side, got {width_px}x{height_px}"
        raise PlotInputError(msg)
    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")


def _save(fig: Figure, out_png: Path) -> Path:
    try:
        out_png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_png, dpi=DPI, format="png")
    except OSError as err:
        msg = f"cannot write {out_png}: {err.strerror or err}"
        raise PlotInputError(msg, out_png) from err
    return out_png


def _ecg_paper(ax: Axes) -> None:
    from matplotlib.ticker import MultipleLocator

    ax.xaxis.set_major_locator(MultipleLocator(GRID_MAJOR_S * 5))
    ax.xaxis.set_minor_locator(MultipleLocator(GRID_MAJOR_S))
    ax.yaxis.set_major_locator(MultipleLocator(GRID_MAJOR_MV))
    ax.yaxis.set_minor_locator(MultipleLocator(GRID_MINOR_MV))
    ax.grid(which="major", color="#f4a0a0", linewidth=0.8)
    ax.grid(which="minor", color="#fbdede", linewidth=0.4)
    ax.set_axisbelow(True)


def plot_alarm_strip(
    event: AlarmEvent,
    out_png: Path,
    *,
    width_px: int = DEFAULT_WIDTH_PX,
    height_px: int = DEFAULT_HEIGHT_PX,
) -> Path:
    """Draw an alarm's ECG strip with its labelled beats and RR intervals to a PNG.

    The ECG (``evidence.strip.samples_uv``, µV, drawn in mV against stream time in s) is
    drawn on ECG-paper grid (0.2 s and 0.5 mV major lines). Each beat of
    ``evidence.beats`` inside the strip gets a dot on the trace at ``t_s`` and its AAMI class
    letter above it (``?`` when unclassified), coloured by class; the RR interval ending at
    the beat (``rr_ms``, ms) is written under the trace, centred between the beat and the one
    before it. A dashed line marks the condition's onset (``onset_s``).

    Parameters
    ----------
    event
        A ``raised`` alarm event (:func:`select_alarm`).
    out_png
        PNG file to write (its folder is created).
    width_px, height_px
        PNG size, pixels (at least :data:`MIN_SIZE_PX`).

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    PlotInputError
        If the event carries no strip (``updated``/``cleared`` events), the strip is empty,
        the size is too small, or the PNG cannot be written.
    """
    strip = event.evidence.strip
    if strip is None or not strip.samples_uv:
        msg = (
            f"alarm {event.alarm_id[:8]} ({event.condition.value}, {event.lifecycle.value})"
            " carries no ECG strip; only raised events do"
        )
        raise PlotInputError(msg)
    fig = _figure(width_px, height_px)
    ax = fig.add_subplot()
    ecg_mv = np.asarray(strip.samples_uv, dtype=np.float64) / 1000.0
    t_s = strip.t0_s + np.arange(ecg_mv.size, dtype=np.float64) / strip.fs_hz
    _ecg_paper(ax)
    ax.plot(t_s, ecg_mv, color="black", linewidth=0.9)
    ax.set_xlim(float(t_s[0]), float(t_s[-1]))
    lo_mv, hi_mv = float(ecg_mv.min()), float(ecg_mv.max())
    pad_mv = max(0.25 * (hi_mv - lo_mv), 0.2)
    ax.set_ylim(lo_mv - pad_mv, hi_mv + pad_mv)
    text_y = hi_mv + 0.55 * pad_mv  # class letters above the highest point
    rr_y = lo_mv - 0.55 * pad_mv  # RR intervals below the lowest point
    beats = [b for b in event.evidence.beats if t_s[0] <= b.t_s <= t_s[-1]]
    for beat in beats:
        label = beat.aami_class.value if beat.aami_class is not None else UNCLASSIFIED_LABEL
        colour = CLASS_COLOURS[label]
        idx = min(round((beat.t_s - strip.t0_s) * strip.fs_hz), ecg_mv.size - 1)
        ax.plot([beat.t_s], [ecg_mv[idx]], "o", color=colour, markersize=5)
        ax.text(beat.t_s, text_y, label, color=colour, ha="center", va="center", weight="bold")
        if beat.rr_ms is not None:
            mid_s = beat.t_s - beat.rr_ms / 2000.0
            if mid_s >= t_s[0]:
                ax.text(mid_s, rr_y, f"{beat.rr_ms:.0f}", ha="center", va="center", fontsize=8)
    if t_s[0] <= event.onset_s <= t_s[-1]:
        ax.axvline(event.onset_s, color="#d62728", linestyle="--", linewidth=1.0)
    hr = f", HR {event.evidence.hr_bpm:.0f} bpm" if event.evidence.hr_bpm is not None else ""
    ax.set_title(
        f"{event.condition.value} ({event.priority.value}) alarm {event.alarm_id[:8]}:"
        f" onset {event.onset_s:.1f} s, raised {event.raised_s:.1f} s{hr}; RR in ms"
        f"\n{event.message}",
        fontsize=10,
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("ECG (mV)")
    return _save(fig, out_png)


def read_beats_csv(path: Path) -> tuple[NDArray[np.float64], list[str]]:
    """Read a ``beats.csv`` of ``bedside analyze``.

    Parameters
    ----------
    path
        The file, or a record's output folder that holds ``beats.csv``.

    Returns
    -------
    time_s : NDArray[np.float64]
        R-peak times, s, shape ``(n_beats,)``.
    classes : list[str]
        AAMI class letter of each beat, ``""`` where unclassified, length ``n_beats``.

    Raises
    ------
    PlotInputError
        If the file cannot be read, lacks the ``time_s``/``aami_class`` columns, or has a
        time that is not a number.
    """
    if path.is_dir():
        path = path / "beats.csv"
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not {"time_s", "aami_class"} <= set(reader.fieldnames or ()):
                msg = f"{path}: not a beats.csv (needs time_s and aami_class columns)"
                raise PlotInputError(msg, path)
            rows = list(reader)
    except OSError as err:
        msg = f"cannot read beats {path}: {err.strerror or err}"
        raise PlotInputError(msg, path) from err
    try:
        time_s = np.array([float(r["time_s"]) for r in rows], dtype=np.float64)
    except ValueError as err:
        msg = f"{path}: a time_s value is not a number ({err})"
        raise PlotInputError(msg, path) from err
    return time_s, [r["aami_class"] for r in rows]


def plot_tachogram(
    beats_csv: Path,
    out_png: Path,
    *,
    width_px: int = DEFAULT_WIDTH_PX,
    height_px: int = DEFAULT_HEIGHT_PX,
) -> Path:
    """Draw a record's tachogram (RR interval against time, coloured by class) to a PNG.

    Each beat after the first is a dot at its R-peak time (s) and the interval since the beat
    before it (ms, from ``time_s``, so to 1 ms), coloured by the AAMI class of the beat
    (grey when unclassified); the legend gives the number of intervals drawn per class.
    Intervals above the axis top (:data:`TACHO_MIN_TOP_MS`) are drawn as ``^`` on the top
    edge.

    Parameters
    ----------
    beats_csv
        A ``beats.csv`` (or the record's output folder).
    out_png
        PNG file to write (its folder is created).
    width_px, height_px
        PNG size, pixels (at least :data:`MIN_SIZE_PX`).

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    PlotInputError
        If the file cannot be read or has fewer than 2 beats (no interval), the size is too
        small, or the PNG cannot be written.
    """
    time_s, classes = read_beats_csv(beats_csv)
    if time_s.size < 2:
        msg = f"{beats_csv}: {time_s.size} beat(s); a tachogram needs at least 2"
        raise PlotInputError(msg, beats_csv)
    fig = _figure(width_px, height_px)
    ax = fig.add_subplot()
    rr_ms = np.diff(time_s) * 1000.0
    t_s = time_s[1:]
    labels = np.array([c or UNCLASSIFIED_LABEL for c in classes[1:]])
    top_ms = max(TACHO_MIN_TOP_MS, TACHO_TOP_FACTOR * float(np.percentile(rr_ms, 99.5)))
    top_ms = min(top_ms, float(rr_ms.max()) * 1.05)
    for label, colour in CLASS_COLOURS.items():
        sel = labels == label
        if not sel.any():
            continue
        inside = sel & (rr_ms <= top_ms)
        above = sel & (rr_ms > top_ms)
        ax.scatter(
            t_s[inside], rr_ms[inside], s=6, color=colour, label=f"{label} ({int(sel.sum())})"
        )
        if above.any():
            ax.scatter(
                t_s[above], np.full(int(above.sum()), top_ms), s=20, marker="^", color=colour
            )
    ax.set_ylim(0.0, top_ms * 1.02)
    ax.set_xlim(0.0, float(time_s[-1]))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("RR interval (ms)")
    ax.grid(color="#e0e0e0", linewidth=0.5)
    ax.legend(title="AAMI class", loc="upper right", fontsize=8, markerscale=2)
    name = beats_csv.name if beats_csv.is_dir() else beats_csv.parent.name
    ax.set_title(f"tachogram {name}: {time_s.size} beats", fontsize=10)
    return _save(fig, out_png)
