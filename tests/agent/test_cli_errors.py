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


def _write_record(folder: Path, fs_hz: int, seconds: float) -> Path:
    """A one-lead WFDB record of a 1 Hz sine at ``fs_hz`` (a stand-in ECG), ``seconds`` long."""
    import numpy as np
    import wfdb

    n = round(fs_hz * seconds)
    signal = (np.sin(np.arange(n) / fs_hz * 2 * np.pi) * 0.5).reshape(-1, 1)
    name = f"rec{fs_hz}"
    wfdb.wrsamp(
        name,
        fs=fs_hz,
        units=["mV"],
        sig_name=["MLII"],
        p_signal=signal,
        fmt=["16"],
        write_dir=str(folder),
    )
    return folder / name


def _run_record(record: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _bedside(
        "run",
        "--source",
        f"replay:{record}",
        "--speed",
        "100",
        "--broker",
        f"mqtt://127.0.0.1:{free_port()}",
        "--outbox",
        str(tmp_path / "o.sqlite3"),
        *extra,
        timeout_s=120,
    )


@pytest.mark.parametrize(
    ("fs_hz", "hint"),
    [
        (50, "(record it at 100 Hz or more)"),
        # was: VF detection silently off, then a traceback logged for every beat
        (10_000, "(a recording can be resampled: --fs 500)"),
    ],
)
def test_run_at_an_unsupported_rate(tmp_path: Path, fs_hz: int, hint: str) -> None:
    """One line naming the rate and the supported range before the core is built, exit 2."""
    proc = _run_record(_write_record(tmp_path, fs_hz, 3.0), tmp_path)
    line = _one_error_line(proc)
    assert proc.returncode == 2
    assert f"ECG at {fs_hz} Hz is not supported" in line
    assert "the VF detector need 100-1000 Hz" in line
    assert hint in line
    assert "Traceback" not in proc.stderr  # no stage failed: the rate was refused first


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


def test_run_at_10_khz_resampled_with_fs_runs(tmp_path: Path) -> None:
    """The hint works: the same 10 kHz record with --fs 500 runs to its end, exit 0."""
    proc = _run_record(_write_record(tmp_path, 10_000, 3.0), tmp_path, "--fs", "500")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "10000Hz→500Hz" in proc.stderr  # the source says it resamples
