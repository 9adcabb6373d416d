"""EcgChunk.split: two contiguous chunks, as a source sending them one by one would have; and
EcgChunk.join, its inverse (the runtime joins a strap's notifications into one step)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from firmware_bridge.frames import EcgChunk


def _chunk() -> EcgChunk:
    return EcgChunk(
        samples_uv=np.arange(1300, dtype=np.float32),
        fs_hz=130.0,
        first_sample_idx=2600,
        t0_monotonic_ns=5_000_000_000,
        t0_utc=datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        source_sample_idx=7200,
        source_fs_hz=360.0,
    )


def test_the_second_part_starts_where_the_first_ends() -> None:
    head, rest = _chunk().split(390)  # 3 s at 130 Hz
    assert len(head.samples_uv) == 390
    assert len(rest.samples_uv) == 910
    assert np.array_equal(np.concatenate([head.samples_uv, rest.samples_uv]), _chunk().samples_uv)
    assert head.first_sample_idx == 2600
    assert head.source_sample_idx == 7200
    assert rest.first_sample_idx == 2990
    assert rest.t0_s == pytest.approx(23.0)
    assert rest.t0_monotonic_ns == 8_000_000_000
    assert rest.t0_utc == datetime(2026, 12, 3, 12, 0, tzinfo=UTC) + timedelta(seconds=3)
    assert rest.source_sample_idx == 7200 + 1080  # 3 s at the source's 360 Hz


@pytest.mark.parametrize("k", [0, 1300, -1])
def test_a_cut_outside_the_chunk_is_refused(k: int) -> None:
    with pytest.raises(ValueError, match="cannot split"):
        _chunk().split(k)


def test_join_undoes_split() -> None:
    head, rest = _chunk().split(390)
    assert rest.follows(head)
    assert not head.follows(rest)
    joined = head.join(rest)
    assert np.array_equal(joined.samples_uv, _chunk().samples_uv)
    assert joined.samples_uv.dtype == np.float32
    # everything else is the first part's: the arrival of its first sample, its indices
    assert (joined.first_sample_idx, joined.t0_monotonic_ns, joined.source_sample_idx) == (
        2600,
        5_000_000_000,
        7200,
    )
    assert joined.t0_utc == _chunk().t0_utc


def test_a_chunk_after_a_gap_or_at_another_rate_is_not_joined() -> None:
    head, rest = _chunk().split(390)
    _, later = rest.split(1)  # one sample lost between head and later
    assert not later.follows(head)
    with pytest.raises(ValueError, match="cannot join"):
        head.join(later)
    other_rate = EcgChunk(
        samples_uv=rest.samples_uv,
        fs_hz=250.0,
        first_sample_idx=rest.first_sample_idx,
        t0_monotonic_ns=rest.t0_monotonic_ns,
        t0_utc=rest.t0_utc,
    )
    assert not other_rate.follows(head)
