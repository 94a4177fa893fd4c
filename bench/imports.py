"""Import cost per stack: the RSS a fresh interpreter has after importing each of the
agent's stacks (each on top of the one before), and what an agent imports for a config.

Every figure is a process of its own (``sys.executable -c``), VmRSS from /proc after the
imports; medians of ``--runs``.

    .venv/bin/python bench/imports.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

STACKS = [
    ("bare python", []),
    ("agent core (config, outbox, publisher, supervisor, app)", ["wardwatch.agent.core.app"]),
    ("+ SNMP v1/v2c poller (agent/snmp/udp.py)", ["wardwatch.agent.snmp.poller"]),
    ("+ camera poller (lxml; agent/camera/soap.py, http.py)", ["wardwatch.agent.camera.poller"]),
    ("+ SNMPv3 (pysnmp, agent/snmp/v3.py)", ["wardwatch.agent.snmp.v3"]),
]
PROBE = """
import sys
for m in sys.argv[1:]:
    __import__(m)
heavy = sorted(m for m in ("pysnmp", "onvif", "zeep", "httpx", "aiohttp", "lxml") if m in sys.modules)
rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS"))
print(rss / 1024, ",".join(heavy) or "-")
"""


def measure(modules: list[str]) -> tuple[float, str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=True,
                         timeout=120).stdout.split()
    return float(out[0]), out[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    upto: list[str] = []
    before = None
    print(f"{'stack':<58} {'RSS MB':>7} {'+MB':>6}  heavy modules loaded")
    for name, modules in STACKS:
        upto += modules
        runs = [measure(upto) for _ in range(max(1, min(args.runs, 20)))]
        rss = statistics.median(r for r, _ in runs)
        delta = f"{rss - before:+6.1f}" if before is not None else f"{'':>6}"
        print(f"{name:<58} {rss:>7.1f} {delta}  {runs[0][1]}")
        before = rss
    return 0


if __name__ == "__main__":
    sys.exit(main())
