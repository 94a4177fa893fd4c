"""A camera's firing notice latency, end to end, against the issue's target.

The acceptance rig of tests/alert_rig.py (its own InfluxDB here, a Mosquitto, the camera
simulator, one wardwatch-agent polling every INTERVAL s, wardwatch-collector with
``alerts:``, ``for`` FOR s and ``group_wait`` GROUP_WAIT s, and a local webhook receiver)
runs the first acceptance scenario ``--runs`` times: a camera is taken offline through the
simulator's control endpoint, and the latency is the webhook notice's arrival minus that
moment (wall clock, one machine). Each run breaks a camera of its own and mends it after
its resolved notice, so no camera changes state often enough to count as flapping.

The target is ``for + one poll interval + group_wait + 5 s``; p50 and p99 (nearest rank)
are printed beside it, and the resolved notice's latency after the repair too.

    .venv/bin/python bench/alert_latency.py [--runs 5]

Bounded: at most 20 runs, every wait has a deadline (the target + 10 s), everything
listens on 127.0.0.1, processes are stopped by PID.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.alert_rig

from tests.alert_rig import FOR, GROUP_WAIT, INTERVAL, TARGET, alert_rig
from wardwatch.simulators.lab import start_influxdb

MAX_RUNS = 20
WARD = "cam-pho"


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help=f"cameras broken one after another (1-{MAX_RUNS})")
    args = ap.parse_args()
    if not 1 <= args.runs <= MAX_RUNS:
        ap.error(f"--runs must be 1 to {MAX_RUNS}")
    firing: list[float] = []
    resolved: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ww-bench-") as tmp:
        run_dir = Path(tmp)
        with start_influxdb(run_dir / "influx") as influx, \
                alert_rig(run_dir / "rig", influx, sites={WARD: {"cameras": args.runs}}) as rig:  # fmt: skip
            site = rig.sites[WARD]
            for run, cam in enumerate(site.cameras):
                broke = site.break_camera(cam)
                got = rig.wait_hook(f"firing for {cam}", TARGET + 10, ward=WARD, device=cam, status="firing")
                fixed = site.fix_camera(cam)
                done = rig.wait_hook(f"resolved for {cam}", TARGET + 10, ward=WARD, device=cam, status="resolved")
                firing.append((got[0].time_ms - broke) / 1000)
                resolved.append((done[0].time_ms - fixed) / 1000)
                print(f"run {run + 1}: {cam} firing notice after {firing[-1]:.2f} s, "
                      f"resolved {resolved[-1]:.2f} s after the repair", flush=True)
            duplicates = len(rig.hook(ward=WARD, status="firing")) - args.runs
    print(f"\n{args.runs} runs (poll every {INTERVAL:g} s, for {FOR:g} s, group_wait {GROUP_WAIT:g} s): "
          f"firing p50 {nearest_rank(firing, 50):.2f} s, p99 {nearest_rank(firing, 99):.2f} s against the target "
          f"{TARGET:g} s (for + interval + group_wait + 5 s): {'met' if max(firing) <= TARGET else 'MISSED'}; "
          f"resolved p50 {nearest_rank(resolved, 50):.2f} s, p99 {nearest_rank(resolved, 99):.2f} s; "
          f"{duplicates} duplicate firing notices")
    return 0 if max(firing) <= TARGET and duplicates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
