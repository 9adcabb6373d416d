import pytest

from agent.dsp.heart_rate import hr_bpm_monitor


def test_needs_four_intervals() -> None:
    assert hr_bpm_monitor([800.0, 800.0, 800.0]) is None


def test_mean_of_last_twelve() -> None:
    # 6 old intervals at 500 ms are outside the 12-interval window.
    rr = [500.0] * 6 + [1000.0] * 12
    assert hr_bpm_monitor(rr) == pytest.approx(60.0)
    rr = [500.0] * 6 + [750.0] * 6
    assert hr_bpm_monitor(rr) == pytest.approx(60_000 / 625.0)


def test_slow_rhythm_uses_last_four() -> None:
    # 8 intervals at 600 ms then 4 at 1500 ms: each of the last 3 > 1.2 s -> mean of last 4.
    rr = [600.0] * 8 + [1500.0] * 4
    assert hr_bpm_monitor(rr) == pytest.approx(40.0)
    # Only the last 2 slow: normal 12-beat mean.
    rr = [600.0] * 10 + [1500.0] * 2
    assert hr_bpm_monitor(rr) == pytest.approx(60_000 / 750.0)


def test_non_positive_interval_gives_none() -> None:
    assert hr_bpm_monitor([800.0, 0.0, 800.0, 800.0]) is None
