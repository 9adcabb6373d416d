"""Layering: contract and config modules import no transport, and nothing of what sits above."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("firmware_bridge.devices", ("bleak", "bleak_retry_connector", "asyncio", "agent")),
        ("firmware_bridge.limits", ("bleak", "asyncio", "agent", "pydantic", "numpy")),
        ("agent.messages", ("bleak", "agent.vitals", "paho")),
    ],
)
def test_module_does_not_import(module: str, forbidden: tuple[str, ...]) -> None:
    loaded = _loaded_after(module)
    for name in forbidden:
        hits = sorted(m for m in loaded if m == name or m.startswith(name + "."))
        assert not hits, f"{module} imports {hits}"
