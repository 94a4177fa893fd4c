"""`make demo`'s main job, bounded: the Hội An fleet fills InfluxDB for all 13 wards."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.util import BIN

pytestmark = pytest.mark.services


def test_demo_brings_all_13_wards_into_influxdb_and_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "wardwatch-sim"), "demo", "--run-dir", str(tmp_path / "demo"), "--interval", "5s",
         "--duration", "40"],
        capture_output=True, text=True, timeout=180,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    final = re.search(r"demo: stopping \(wards with if_traffic rates (\d+)/13, if_traffic rate points (\d+)", out)
    assert final, out
    assert int(final.group(1)) == 13, out
    assert int(final.group(2)) > 0, out
    assert "processes up 17/17" in out
    assert re.search(r"demo: stopped 17 processes", out), out
