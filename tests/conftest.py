"""Shared fixtures: where the PhysioNet data lives, and the MQTT broker plugin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures_mqtt", "tests.fake_bluez.fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """Return the PhysioNet data folder: ``$BEDSIDE_DATA_DIR``, else ``../shared/data``."""
    env = os.environ.get("BEDSIDE_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder; skips the test with a reason when it is absent."""
    path = shared_data_dir()
    if not (path / "mitdb" / "100.hea").exists():
        pytest.skip(
            f"PhysioNet data not found at {path} (set BEDSIDE_DATA_DIR or put shared/ beside"
            " the checkout)"
        )
    return path


@pytest.fixture(scope="session")
def mitdb(data_dir: Path) -> Path:
    """The MIT-BIH Arrhythmia Database folder."""
    return data_dir / "mitdb"
