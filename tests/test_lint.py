"""The tree passes ruff, and mypy --strict on the agent, the collector, the simulators and what they share."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.util import BIN

TOP = Path(__file__).parent.parent


def test_ruff() -> None:
    proc = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=TOP, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict() -> None:
    proc = subprocess.run(["bash", "scripts/typecheck.sh"], cwd=TOP, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
