"""tools.af.evaluate.Counts: the gross sum covers every field and leaves its operands alone."""

from __future__ import annotations

import dataclasses

from tools.af.evaluate import Counts


def _unit(value_of_list: float) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(Counts):
        default = getattr(Counts(), f.name)
        out[f.name] = [value_of_list] if isinstance(default, list) else type(default)(1)
    return out


def test_counts_sum_every_field() -> None:
    a = Counts(**_unit(1.0))  # type: ignore[arg-type]
    b = Counts(**_unit(2.0))  # type: ignore[arg-type]
    total = Counts()
    total += a
    total += b
    for f in dataclasses.fields(Counts):
        value = getattr(total, f.name)
        if isinstance(value, list):
            assert value == [1.0, 2.0], f.name
        else:
            assert value == 2, f.name
    assert a.delays_s == [1.0]  # operands unchanged
