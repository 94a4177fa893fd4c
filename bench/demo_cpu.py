"""What `make demo` costs the machine: CPU per process group of a running demo.

Starts ``wardwatch-sim demo`` (with the given extra options, e.g. ``--fast``) in a run dir of
its own, waits ``--warmup`` seconds, then reads every process's user+sys CPU from
/proc/PID/stat (the PIDs from the demo's processes.txt) at the start and the end of
``--window`` seconds, and prints each group's share of one core (the 13 agents summed).
The demo stops by itself (``--duration``) right after.

    .venv/bin/python bench/demo_cpu.py [--warmup 120] [--window 150] [-- --fast]

Bounded: the demo's ``--duration`` is warmup + window + 20 s; everything is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warmup", type=float, default=120.0)
    p.add_argument("--window", type=float, default=150.0)
    p.add_argument("demo_args", nargs="*", help="options for wardwatch-sim demo, after --")
    args = p.parse_args()
    if not 10 <= args.warmup + args.window <= 3600:
        p.error("warmup + window: 10 s to 1 h")
    run = Path(tempfile.mkdtemp(prefix="wardwatch-demo-cpu-")) / "run"
    out = run.with_suffix(".out")
    duration = args.warmup + args.window + 20
    with out.open("w") as log:
        demo = subprocess.Popen([str(BIN / "wardwatch-sim"), "demo", "--run-dir", str(run), "--duration",
                                 f"{duration:g}", *args.demo_args], stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(args.warmup)
        procs = [line.split(None, 1) for line in (run / "processes.txt").read_text().splitlines()]
        before = {int(pid): cpu_s(int(pid)) for pid, _ in procs}
        t0, load0 = time.monotonic(), os.getloadavg()[0]
        time.sleep(args.window)
        after = {int(pid): cpu_s(int(pid)) for pid, _ in procs}
        dt = time.monotonic() - t0
    finally:
        demo.wait(timeout=duration + 60)
    groups: dict[str, float] = {}
    for pid, name in procs:
        a, b = before[int(pid)], after[int(pid)]
        if a is None or b is None:
            continue
        key = "13 agents" if name.startswith("agent") else name
        groups[key] = groups.get(key, 0.0) + (b - a) / dt * 100
    print(f"wardwatch-sim demo {' '.join(args.demo_args)}: {dt:.0f} s after {args.warmup:g} s, "
          f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}; % of one core:")
    for key, share in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<12} {share:5.1f}")
    print(f"  {'total':<12} {sum(groups.values()):5.1f}   (demo output: {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
