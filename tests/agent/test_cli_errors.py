"""Bad input gives one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.publish.broker import free_port


def _bedside(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("bedside: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_missing_record(tmp_path: Path) -> None:
    line = _one_error_line(_bedside("analyze", str(tmp_path / "nope"), "--out", str(tmp_path)))
    assert "record not found" in line
    assert "nope" in line


def test_truncated_dat(tmp_path: Path, mitdb: Path) -> None:
    shutil.copy(mitdb / "100.hea", tmp_path / "100.hea")
    data = (mitdb / "100.dat").read_bytes()
    (tmp_path / "100.dat").write_bytes(data[: len(data) // 3])
    line = _one_error_line(_bedside("analyze", str(tmp_path / "100"), "--out", str(tmp_path / "o")))
    assert "cannot read WFDB record" in line


def test_unknown_config_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[alarms]\nhr_hihg_bpm = 130\n", encoding="utf-8")
    for args in (("validate-config", str(cfg)), ("run", "--config", str(cfg))):
        line = _one_error_line(_bedside(*args))
        assert "alarms.hr_hihg_bpm" in line


def test_valid_config_passes(tmp_path: Path) -> None:
    proc = _bedside("validate-config", str(Path(__file__).parents[2] / "examples" / "bedside.toml"))
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def test_broker_url_with_a_password_is_refused_and_not_echoed(tmp_path: Path) -> None:
    proc = _bedside("run", "--broker", "mqtt://nurse:s3cr3t-pw@127.0.0.1:1883")
    line = _one_error_line(proc)
    assert "must not contain a user name or password" in line
    assert "s3cr3t-pw" not in proc.stderr + proc.stdout


def test_outbox_that_is_a_folder(tmp_path: Path) -> None:
    port = free_port()
    proc = _bedside(
        "run", "--broker", f"mqtt://127.0.0.1:{port}", "--outbox", str(tmp_path), timeout_s=120
    )
    line = _one_error_line(proc)
    assert "is a folder" in line


def test_outbox_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "o.sqlite3"
    bad.write_bytes(b"not a database at all" * 100)
    proc = _bedside(
        "run", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--outbox", str(bad), timeout_s=120
    )
    line = _one_error_line(proc)
    assert "not a bedside outbox" in line


def test_non_utf8_config(tmp_path: Path) -> None:
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes('[bed]\nunit = "Sta\xe9tion"\n'.encode("latin-1"))
    for args in (("validate-config", str(cfg)), ("run", "--config", str(cfg))):
        line = _one_error_line(_bedside(*args))
        assert "UTF-8" in line


def test_bad_source_flag() -> None:
    line = _one_error_line(_bedside("run", "--source", "bluetooth"))
    assert "--source" in line


@pytest.mark.parametrize("cmd", ["schema"])
def test_schema_prints_json(cmd: str) -> None:
    proc = _bedside(cmd)
    assert proc.returncode == 0
    assert '"alarms"' in proc.stdout


def test_run_at_an_unsupported_rate(tmp_path: Path) -> None:
    """A 50 Hz record: one line naming the rate, non-zero exit (was: exit 0, silent)."""
    import numpy as np
    import wfdb

    fs_hz = 50
    signal = (np.sin(np.arange(fs_hz * 20) / fs_hz * 2 * np.pi) * 0.5).reshape(-1, 1)
    wfdb.wrsamp(
        "rec50",
        fs=fs_hz,
        units=["mV"],
        sig_name=["MLII"],
        p_signal=signal,
        fmt=["16"],
        write_dir=str(tmp_path),
    )
    proc = _bedside(
        "run",
        "--source",
        f"replay:{tmp_path / 'rec50'}",
        "--broker",
        f"mqtt://127.0.0.1:{free_port()}",
        "--outbox",
        str(tmp_path / "o.sqlite3"),
        timeout_s=120,
    )
    line = _one_error_line(proc)
    assert "fs_hz must be >= 100 Hz, got 50.0" in line


def test_truncated_qrs(tmp_path: Path, data_dir: Path) -> None:
    """A .qrs cut in a copy: one line (was analysed silently, or a numpy reshape message)."""
    src = data_dir / "afdb" / "04015"
    (tmp_path / "04015.hea").write_bytes(src.with_suffix(".hea").read_bytes())
    (tmp_path / "04015.qrs").write_bytes(src.with_suffix(".qrs").read_bytes()[:20_000])
    line = _one_error_line(
        _bedside(
            "analyze", str(tmp_path / "04015"), "--rr-annotations", "qrs", "--out", str(tmp_path)
        )
    )
    assert "04015.qrs" in line
    assert "annotation file is truncated (20000 bytes" in line


def test_csv_rr_that_is_not_plausible(tmp_path: Path) -> None:
    """1,000,000 ms once raised a 1000 s asystole; now one line names the line and the gate."""
    rr = tmp_path / "strap.csv"
    rr.write_text("rr_ms\n" + "800\n" * 10 + "1000000\n" + "800\n" * 10, encoding="utf-8")
    line = _one_error_line(_bedside("analyze", str(rr), "--out", str(tmp_path / "o")))
    assert "line 12: RR 1000000 ms is not plausible (accepted 100-30000 ms)" in line


@pytest.mark.parametrize(
    ("bed", "field"),
    [("icu/JohnSmith", "bed must be lowercase"), ("Smith/bed1", "unit must be lowercase")],
)
def test_bed_that_looks_like_a_name(tmp_path: Path, bed: str, field: str) -> None:
    """A bed or unit named as people write names is refused; the value is not echoed."""
    proc = _bedside("run", "--bed", bed, "--outbox", str(tmp_path / "o.sqlite3"))
    line = _one_error_line(proc)
    assert field in line
    assert "never a patient's name" in line
    assert "Smith" not in proc.stderr
    assert not (tmp_path / "o.sqlite3").exists()  # refused before anything ran


def test_device_id_that_looks_like_a_name(tmp_path: Path) -> None:
    cfg = tmp_path / "bed.toml"
    cfg.write_text('[bed]\nunit = "icu"\nbed = "bed3"\ndevice_id = "Jane Doe"\n', encoding="utf-8")
    proc = _bedside("validate-config", str(cfg))
    line = _one_error_line(proc)
    assert "device_id must be 1-64 lowercase" in line
    assert "Jane" not in proc.stderr
