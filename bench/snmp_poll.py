"""Our SNMP poller's CPU per varbind against net-snmp's snmpbulkwalk and Prometheus'
snmp_exporter, on the same targets.

Targets: net-snmp's snmpd (the machine's real interfaces) and snmpsim serving a 48-port
switch. Ours: ``SnmpPoller.poll`` with the ``if_mib`` profile (one GET + one multi-column
GETBULK walk of ifTable/ifXTable, rates, readings), in this process, CPU from
``time.process_time``. Baseline: ``snmpbulkwalk -Cr<reps>`` of ifTable and ifXTable (every
column, so more varbinds per run), CPU of the child processes from ``getrusage``. Both
count the varbinds they received; the figure is varbinds per CPU-second, and the ratio is
net-snmp's CPU per varbind over ours (so above 1 means we spend more). Second baseline,
when Debian's prometheus-snmp-exporter is installed (``make bench`` installs it): the
exporter started on a loopback port with a config for the same 12 columns plus ifName as
a label (what its generator writes for IF-MIB), scraped ``--polls`` times per target; its
CPU is read from /proc, varbinds counted as the samples it returned.

    .venv/bin/python bench/snmp_poll.py [--polls 30] [--reps 25]

Bounded: a fixed number of polls per target; every subprocess has a 60 s timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from wardwatch.agent.core.config import AgentConfig
from wardwatch.agent.core.poller import Context
from wardwatch.agent.snmp.client import Table, Times
from wardwatch.agent.snmp.poller import SnmpPoller
from wardwatch.simulators.lab import Service, SnmpsimAgent, find_binary, free_port, start_snmpd, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

IF_TABLE, IFX_TABLE = "1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1"


AUTH = {
    "v2c": {"snmp": {"version": "2c", "community": "public"}},
    # start_snmpd's SNMPv3 user (SHA + AES): the pysnmp engine
    "v3": {"snmp": {"version": "3", "user": "mon", "auth_protocol": "SHA", "auth_key": "authpass123",
                    "priv_protocol": "AES", "priv_key": "privpass123"}},
}


def config(port: int, reps: int, auth: str = "v2c") -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": "bench", "ward": "bench"}, "outbox": {"path": "/nonexistent/outbox.db"},
        "auth": {auth: AUTH[auth]},
        "devices": [{"id": "target", "kind": "switch", "host": "127.0.0.1", "port": port, "auth": auth,
                     "profile": "if_mib", "icmp": False, "interval": "30s", "timeout": "5s",
                     "max_repetitions": reps}],
    })


def ours(port: int, n_polls: int, reps: int, profile: bool, auth: str = "v2c") -> tuple[int, float]:
    cfg = config(port, reps, auth)
    poller = SnmpPoller(Context.new(cfg))
    dev = cfg.devices[0]
    poller.add(dev)
    session = poller.session(dev)
    received = [0]
    walk, get = session.walk_columns, session.get

    async def counted_walk(columns: list[str], *, clock: str | None = None,
                           deadline: float | None = None) -> tuple[Table, Times]:
        cols, times = await walk(columns, clock=clock, deadline=deadline)
        received[0] += sum(len(v) for v in cols.values())
        return cols, times

    async def counted_get(oids: list[str]) -> dict[str, Any]:
        out = await get(oids)
        received[0] += sum(v is not None for v in out.values())
        return out

    session.walk_columns = counted_walk  # type: ignore[method-assign]
    session.get = counted_get  # type: ignore[method-assign]

    async def polls(n: int) -> int:
        received[0] = 0
        for _ in range(n):
            result = await poller.poll(dev)
            if not result.ok:
                raise SystemExit(f"poll failed: {result.reason} {result.detail}")
        return received[0]  # the values that came back, as the baseline counts its output lines

    async def run() -> tuple[int, float]:
        # One event loop for all of it: a pysnmp engine stays bound to the loop it first ran on.
        await polls(2)  # warm up: profile match, first baseline of the rates
        prof = cProfile.Profile() if profile else None
        cpu0 = time.process_time()
        if prof:
            prof.enable()
        n = await polls(n_polls)
        if prof:
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(15)
        return n, time.process_time() - cpu0

    n, cpu = asyncio.run(run())
    poller.engines.close()
    return n, cpu


def count_walk_varbinds(port: int, polls: int, reps: int) -> tuple[int, float]:
    tool = find_binary("snmpbulkwalk")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    varbinds = 0
    for _ in range(polls):
        for table in (IF_TABLE, IFX_TABLE):
            out = subprocess.run([tool, "-v2c", "-c", "public", f"-Cr{reps}", "-On", "-Oq", "-t", "5",
                                  f"127.0.0.1:{port}", table], capture_output=True, text=True, check=True,
                                 timeout=60, env={"MIBS": ""})
            varbinds += len(out.stdout.splitlines())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return varbinds, cpu


# The columns our if_mib profile reads, as snmp_exporter metrics (its generator would
# write the same from IF-MIB). prometheus-snmp-exporter 0.21 (Debian 12) config format.
EXPORTER_COLUMNS = {
    "ifOperStatus": "1.3.6.1.2.1.2.2.1.8", "ifSpeed": "1.3.6.1.2.1.2.2.1.5",
    "ifInOctets": "1.3.6.1.2.1.2.2.1.10", "ifOutOctets": "1.3.6.1.2.1.2.2.1.16",
    "ifInDiscards": "1.3.6.1.2.1.2.2.1.13", "ifInErrors": "1.3.6.1.2.1.2.2.1.14",
    "ifOutDiscards": "1.3.6.1.2.1.2.2.1.19", "ifOutErrors": "1.3.6.1.2.1.2.2.1.20",
    "ifHCInOctets": "1.3.6.1.2.1.31.1.1.1.6", "ifHCOutOctets": "1.3.6.1.2.1.31.1.1.1.10",
    "ifHighSpeed": "1.3.6.1.2.1.31.1.1.1.15", "ifCounterDiscontinuityTime": "1.3.6.1.2.1.31.1.1.1.19",
}  # fmt: skip
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"


def exporter_config(path: Path, reps: int) -> None:
    lines = ["if_mib:", "  version: 2", f"  max_repetitions: {reps}", "  timeout: 5s", "  auth:",
             "    community: public", "  walk:"]
    lines += [f"  - {oid}" for oid in (*EXPORTER_COLUMNS.values(), IF_NAME)]
    lines.append("  metrics:")
    for name, oid in EXPORTER_COLUMNS.items():
        lines += [f"  - name: {name}", f"    oid: {oid}", "    type: gauge", "    indexes:",
                  "    - labelname: ifIndex", "      type: gauge", "    lookups:", "    - labels: [ifIndex]",
                  "      labelname: ifName", f"      oid: {IF_NAME}", "      type: DisplayString"]
    path.write_text("\n".join(lines) + "\n")


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_exporter_varbinds(exporter: Service, target_port: int, polls: int) -> tuple[int, float]:
    """Scrape snmp_exporter ``polls`` times; its own CPU (from /proc), and the samples it returned."""
    assert exporter.proc is not None
    url = f"http://127.0.0.1:{exporter.port}/snmp?module=if_mib&target=127.0.0.1:{target_port}"
    before = _proc_cpu(exporter.proc.pid)
    varbinds = 0
    for _ in range(polls):
        with urllib.request.urlopen(url, timeout=60) as resp:
            body = resp.read().decode()
        varbinds += sum(1 for line in body.splitlines() if line.startswith("if"))
    return varbinds, _proc_cpu(exporter.proc.pid) - before


def start_exporter(run_dir: Path, reps: int) -> Service | None:
    binary = shutil.which("prometheus-snmp-exporter")
    if binary is None:
        print("prometheus-snmp-exporter is not installed (make bench installs it): snmpbulkwalk only")
        return None
    conf = run_dir / "snmp.yml"
    exporter_config(conf, reps)
    port = free_port("tcp")
    svc = Service(
        name="snmp_exporter",
        argv=[binary, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{port}"],
        host="127.0.0.1", port=port, run_dir=run_dir, log_path=run_dir / "snmp_exporter.log",
        ready=lambda s, t: _http_ok(f"http://127.0.0.1:{s.port}/", t),
    )  # fmt: skip
    svc.start()
    return svc


def _http_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def measure(name: str, port: int, args: argparse.Namespace, exporter: Service | None) -> dict[str, tuple[int, float]]:
    """One run against one target: (varbinds, CPU seconds) per poller, each ``--polls`` polls."""
    out = {"wardwatch v2c": ours(port, args.polls, args.reps, args.profile)}
    if name == "snmpd":  # the v3 engine (pysnmp): snmpd has the SNMPv3 user
        out["wardwatch v3"] = ours(port, args.polls, args.reps, False, auth="v3")
    out["snmpbulkwalk"] = count_walk_varbinds(port, args.polls, args.reps)
    if exporter is not None:
        out["snmp_exporter"] = count_exporter_varbinds(exporter, port, args.polls)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=30, help="polls (scrapes, walks) per poller per run")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are printed")
    parser.add_argument("--reps", type=int, default=25, help="GETBULK max-repetitions for both")
    parser.add_argument("--profile", action="store_true", help="print where our CPU goes (cProfile)")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="wardwatch-bench-"))
    data = run_dir / "data"
    data.mkdir()
    (data / "public.snmprec").write_text(render(SwitchSpec(name="sw-bench", ports=48, seed=1)))
    services: list[Service] = []
    try:
        services.append(start_snmpd(run_dir, sys_name="bench"))
        services.append(start_snmpsim(run_dir, agents=[SnmpsimAgent(data_dir=data, port=free_port("udp"))]))
        targets = (("snmpd", services[0]), ("snmpsim", services[1]))
        exporter = start_exporter(run_dir, args.reps)
        if exporter is not None:
            services.append(exporter)
        print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.runs} runs of {args.polls} polls each")
        print(f"{'target':<8} {'poller':<14} {'varbinds/poll':>13} {'ms cpu/poll':>11} {'varbinds/cpu_s':>15} "
              f"{'x exporter/poll':>15} {'x exporter/vb':>13} {'x bulkwalk/vb':>13}")
        for name, svc in targets:
            runs = [measure(name, svc.port, args, exporter) for _ in range(args.runs)]
            per_poll = {k: statistics.median(r[k][1] / args.polls for r in runs) for k in runs[0]}
            per_vb = {k: statistics.median(r[k][1] / r[k][0] for r in runs) for k in runs[0]}
            for poller in runs[0]:
                vb = statistics.median(r[poller][0] / args.polls for r in runs)
                cols = [f"{vb:>13.0f}", f"{per_poll[poller] * 1000:>11.2f}", f"{1 / per_vb[poller]:>15,.0f}"]
                if poller.startswith("wardwatch"):
                    cols.append(f"{per_poll[poller] / per_poll['snmp_exporter']:>15.2f}"
                                if "snmp_exporter" in per_poll else f"{'-':>15}")
                    cols.append(f"{per_vb[poller] / per_vb['snmp_exporter']:>13.2f}"
                                if "snmp_exporter" in per_vb else f"{'-':>13}")
                    cols.append(f"{per_vb[poller] / per_vb['snmpbulkwalk']:>13.2f}")
                print(f"{name:<8} {poller:<14} {' '.join(cols)}")
    finally:
        for svc in reversed(services):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
