"""A full PhysioNet download must not leak the independent test halves into training or tuning.

The data beside the project holds 40 of svdb's 78 records, 11 of vfdb's 22 and 3,528 of the
8,528 CinC 2017 training recordings; the rest are an independent test set
(``../shared/data/README.md``). A user who downloads the whole databases gets them too: the
training, tuning and cross-validation code must still see only the records at hand, and the
held-out ones are reachable only as an evaluation of the shipped models.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.af.dataset import CINC_AT_HAND, cinc_training_labels
from tools.beats.dataset import SVDB_AT_HAND, svdb_held_out_records, svdb_records
from tools.beats.train import SVDB_FOLDS
from tools.evaluate import __main__ as evaluate_main
from tools.evaluate.alarms import DEFAULT_SETS, SETS, set_records
from tools.golden import SETS as GOLDEN_SETS
from tools.vf.agent_eval import HELD_OUT_VFDB, shipped_set_records
from tools.vf.dataset import VFDB_AT_HAND, tuning_records, vfdb_records

ODD_SVDB = ("801", "803", "893")
OTHER_VFDB = ("429", "430", "602")


def _full_download(tmp_path: Path, with_odd: bool = True) -> Path:
    """A data folder whose svdb and vfdb list (and hold headers for) a full download."""
    data = tmp_path / "data"
    svdb = data / "svdb"
    svdb.mkdir(parents=True)
    svdb_names = sorted(SVDB_AT_HAND + (ODD_SVDB if with_odd else ()))
    for n in svdb_names:
        (svdb / f"{n}.hea").write_text(f"{n} 2 128 230400\n", encoding="ascii")
    (svdb / "RECORDS").write_text("\n".join(svdb_names) + "\n", encoding="ascii")
    vfdb = data / "vfdb"
    vfdb.mkdir()
    vfdb_names = sorted(VFDB_AT_HAND + OTHER_VFDB)
    for n in vfdb_names:
        (vfdb / f"{n}.hea").write_text(f"{n} 2 250 525000\n", encoding="ascii")
    (vfdb / "RECORDS").write_text("\n".join(vfdb_names) + "\n", encoding="ascii")
    return data


def test_the_svdb_records_at_hand_are_the_fold_records() -> None:
    assert sorted(r for fold in SVDB_FOLDS for r in fold) == sorted(SVDB_AT_HAND)
    assert len(SVDB_AT_HAND) == 40


def test_svdb_training_sees_only_the_even_half_of_a_full_download(tmp_path: Path) -> None:
    data = _full_download(tmp_path)
    assert svdb_records(data) == SVDB_AT_HAND
    assert svdb_held_out_records(data) == ODD_SVDB


def test_alarm_sets_keep_the_held_out_svdb_records_apart(tmp_path: Path) -> None:
    data = _full_download(tmp_path)
    for name in ("svdb", "svdb-cv"):
        assert [p.name for p in set_records(data, SETS[name])] == list(SVDB_AT_HAND), name
    assert [p.name for p in set_records(data, SETS["svdb-held-out"])] == list(ODD_SVDB)
    assert "svdb-held-out" not in DEFAULT_SETS


def test_held_out_alarm_set_without_those_records_fails_before_any_analysis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _full_download(tmp_path, with_odd=False)
    (data / "mitdb").mkdir()
    (data / "mitdb" / "100.hea").write_text("100 2 360 650000\n", encoding="ascii")
    with pytest.raises(FileNotFoundError, match="no odd-numbered"):
        set_records(data, SETS["svdb-held-out"])
    argv = ["alarms", "--data", str(data), "--out", str(tmp_path / "r"), "--work", str(tmp_path)]
    assert evaluate_main.main([*argv, "--sets", "svdb-held-out"]) == 2
    assert "no odd-numbered (held-out) svdb records" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_vf_and_vt_tuning_see_only_vfdb_418_to_428(tmp_path: Path) -> None:
    data = _full_download(tmp_path)
    assert vfdb_records(data) == list(VFDB_AT_HAND)
    assert [n for db, n in tuning_records(data) if db == "vfdb"] == list(VFDB_AT_HAND)
    assert GOLDEN_SETS["vfdb"].records(data) == list(VFDB_AT_HAND)
    # the ventricular report scores the other records with the shipped parameters, apart
    assert shipped_set_records(data, HELD_OUT_VFDB) == ("vfdb", list(OTHER_VFDB))
    assert shipped_set_records(data, "svdb") == ("svdb", list(SVDB_AT_HAND))
    (data / "vfdb" / "RECORDS").write_text("\n".join(VFDB_AT_HAND) + "\n", encoding="ascii")
    assert shipped_set_records(data, HELD_OUT_VFDB) == ("vfdb", [])  # the data beside the project


def test_cinc_training_labels_leave_out_a00001_to_a05000(tmp_path: Path) -> None:
    reference = tmp_path / "REFERENCE.csv"
    rows = ["data_source,class", "A00001,N", "A05000,A", "A05001,A", "A08528,O", "A08529,N"]
    reference.write_text("\n".join(rows) + "\n", encoding="ascii")
    assert cinc_training_labels(reference) == {"A05001": "A", "A08528": "O"}
    assert CINC_AT_HAND == ("A05001", "A08528")
