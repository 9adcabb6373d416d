"""Flat-line and stuck-signal detection (the signal side of "leads off").

A wearable strap or an ECG front end whose electrodes lose contact delivers either a flat line
(amplifier at rest), a signal stuck at one value (saturated at a rail), or samples flagged
invalid (NaN here, e.g. WFDB's invalid-sample sentinel). All three mean that the ECG cannot be
analysed: the agent raises the technical alarm ``leads_off`` and suppresses ECG-derived
physiological alarms (a flat line is not asystole). Real asystole is not flat: it carries
baseline wander and noise of tens of µV, which is why the threshold below is low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

FLATLINE_BLOCK_S: Final = 0.25
"""Signal is judged in blocks of this length; a block is flat if its peak-to-peak is small."""


@dataclass(frozen=True, slots=True)
class FlatlineChange:
    """A change of the flat-line state.

    Attributes
    ----------
    flat : bool
        True when the signal became flat (or invalid), False when it recovered.
    onset_idx : int
        Sample index (stream, at ``fs_hz``) at which the new state began: for ``flat=True``
        the first sample of the flat run, for ``flat=False`` the first non-flat sample.
    decided_idx : int
        Sample index at which the detector decided (``onset_idx + min_s`` for flat).
    """

    flat: bool
    onset_idx: int
    decided_idx: int


class FlatlineDetector:
    """Streaming detector of flat, stuck or invalid ECG.

    Parameters
    ----------
    fs_hz
        Sampling rate of the pushed samples, Hz.
    ptp_uv
        A block whose peak-to-peak amplitude is below this (µV) is flat. 20 µV is four
        quantisation steps of MIT-BIH (5 µV/LSB) and well below the noise of a connected
        electrode (tens of µV, AAMI EC13 allows 30 µV p-v of system noise).
    min_s
        Flat for at least this long (s) before the state turns to flat.

    Raises
    ------
    ValueError
        If ``fs_hz`` or ``min_s`` is not positive.
    """

    def __init__(self, fs_hz: float, *, ptp_uv: float = 20.0, min_s: float = 2.0) -> None:
        if fs_hz <= 0 or min_s <= 0:
            msg = f"fs_hz and min_s must be positive, got {fs_hz}, {min_s}"
            raise ValueError(msg)
        self._block = max(1, round(fs_hz * FLATLINE_BLOCK_S))
        self._ptp_uv = ptp_uv
        self._min_blocks = max(1, round(min_s / FLATLINE_BLOCK_S))
        self._pending = np.empty(0, dtype=np.float32)
        self._next_idx = 0  # stream index of self._pending[0]
        self._run_start: int | None = None
        self._run_blocks = 0
        self.flat = False
        self.bounds: list[tuple[int, int]] | None = None
        """Set to a list to collect ``(block end, earliest_onset_idx after it)`` for every
        block judged (stream samples; the caller empties it): when the bound passed each
        sample. None (default): not collected."""

    @property
    def earliest_onset_idx(self) -> int:
        """The earliest ``onset_idx`` a change not yet reported can have (stream samples).

        A flat run in progress may still be confirmed from its first block; otherwise a new
        run or a recovery starts at the first block not yet judged. Everything before this
        index is decided, whatever samples come next.
        """
        if self._run_start is not None and not self.flat:
            return self._run_start
        return self._next_idx

    def push(self, samples_uv: NDArray[np.float32]) -> list[FlatlineChange]:
        """Feed samples; return the state changes they caused, in order.

        Parameters
        ----------
        samples_uv
            Shape ``(n_samples,)``, ECG in µV at ``fs_hz``; NaN marks invalid samples.
        """
        buf = np.concatenate([self._pending, samples_uv.astype(np.float32, copy=False)])
        n_blocks = len(buf) // self._block
        changes: list[FlatlineChange] = []
        if n_blocks:
            blocks = buf[: n_blocks * self._block].reshape(n_blocks, self._block)
            invalid = np.isnan(blocks).any(axis=1)
            safe = np.where(np.isnan(blocks), 0.0, blocks)
            flat_blocks = invalid | (np.ptp(safe, axis=1) < self._ptp_uv)
            base = self._next_idx
            if self._run_start is None and not self.flat and not flat_blocks.any():
                # nothing flat, now or pending: every block only moves the bound to its end
                # (what _step and earliest_onset_idx give block by block; issue 11)
                self._next_idx = base + n_blocks * self._block
                if self.bounds is not None:
                    ends = range(base + self._block, self._next_idx + 1, self._block)
                    self.bounds.extend((end, end) for end in ends)
                flat_blocks = flat_blocks[:0]
            for k, is_flat in enumerate(flat_blocks):
                start = base + k * self._block
                changes.extend(self._step(bool(is_flat), start))
                self._next_idx = start + self._block
                if self.bounds is not None:
                    self.bounds.append((self._next_idx, self.earliest_onset_idx))
        self._pending = buf[n_blocks * self._block :]
        return changes

    def _step(self, is_flat: bool, start_idx: int) -> list[FlatlineChange]:
        if is_flat:
            if self._run_start is None:
                self._run_start = start_idx
                self._run_blocks = 0
            self._run_blocks += 1
            if not self.flat and self._run_blocks >= self._min_blocks:
                self.flat = True
                return [FlatlineChange(True, self._run_start, start_idx + self._block)]
            return []
        self._run_start = None
        self._run_blocks = 0
        if self.flat:
            self.flat = False
            return [FlatlineChange(False, start_idx, start_idx + self._block)]
        return []
