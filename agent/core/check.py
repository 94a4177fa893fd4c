"""``wardwatch-agent check``: the setup (config, outbox, ICMP, broker), then every device
polled once, all at once, in a table, then a hint for each device that failed.

The technician's first tool on site. The setup section comes from
agent/core/preflight.py: one line per check, ``ok``/``warn``/``FAIL``, a ``hint:`` under
each that is not ok; the broker is tried while the devices are polled. Per device: PROTO
is the SNMP version or ``onvif``; STATUS is ``up`` or the reason (``timeout``, ``auth``,
``unreachable``, ``no_such_object``, ``protocol``; for a camera its reason with the error
class, e.g. ``offline (refused)``, ``rtsp_401``; docs/cameras.md), beside sysName or the
camera's model, the profile that matched, interface and Wi-Fi client counts, the ping
round trip, and the poll's duration.
Devices with a ``feed`` port are polled after the others, so that the switch-port state
they depend on is there (``poe_lost`` shows here too).
Exit 0 when no setup line FAILs (a warn does not) and every device answered and is healthy,
1 otherwise. Everything printed goes through :func:`wardwatch.redact.redact`: no registered
secret, nor a URI's ``user:pass@``, is printed.

Polls go through the same supervisors as ``run`` (agent/core/supervisor.py): the same
time budget and the same catch-all, without the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from wardwatch.agent.core import preflight
from wardwatch.agent.core.app import open_pollers, profile_dirs_from_env
from wardwatch.agent.core.config import AgentConfig, DeviceConfig
from wardwatch.agent.core.icmp import Pinger
from wardwatch.agent.core.poller import CheckRow, Context, Poller, PollResult
from wardwatch.agent.core.ports import PortStates
from wardwatch.agent.core.supervisor import Counters, Supervisor
from wardwatch.redact import redact

HEADER = ("DEVICE", "KIND", "ADDRESS", "PROTO", "STATUS", "SYSNAME", "PROFILE", "IFS", "CLIENTS", "RTT_MS",
          "POLL_MS", "DETAIL")
DEFAULT_PORTS = {"switch": 161, "ap": 161, "camera": 80}


async def check(cfg: AgentConfig, *, profile_dirs: Sequence[Path] | None = None, source: Path | None = None) -> int:
    """``source``: the config file, named on the setup's config line."""
    dirs = tuple(profile_dirs) if profile_dirs is not None else profile_dirs_from_env()
    pinger = Pinger()
    ctx = Context(cfg=cfg, pinger=pinger, ports=PortStates(), profile_dirs=dirs)
    setup, results = await asyncio.gather(preflight.setup(cfg, pinger=pinger, source=source),
                                          _poll(cfg, ctx))
    print("SETUP")
    print(preflight.format_lines(setup))
    print()
    print(redact(format_table(results)))  # a device's error text may quote a URI or a credential
    failed = [r for r in results if not r.ok]
    if failed:
        print()
        width = max(len(r.device.id) for r in failed)
        for r in failed:
            status = r.row.status if r.row is not None else r.reason
            print(redact(f"hint  {r.device.id:<{width}}  {status}: "
                         f"{preflight.device_hint(cfg, r.device.id, r.reason, status)}"))
    bad_setup = sum(x.failed for x in setup)
    print(f"\n{len(results) - len(failed)} of {len(results)} devices answered", end="")
    print(f"; setup: {bad_setup} failed" if bad_setup else "; setup ok", end="")
    print(f"; ICMP: {pinger.mode}" if pinger.available else "; ICMP off")
    return 1 if failed or bad_setup else 0


async def _poll(cfg: AgentConfig, ctx: Context) -> list[PollResult]:
    async with open_pollers(cfg, ctx) as pollers:
        first = [d for d in cfg.devices if d.feed is None]
        fed = [d for d in cfg.devices if d.feed is not None]
        results = [*await _poll_all(first, pollers, ctx), *await _poll_all(fed, pollers, ctx)]
    by_id = {r.device.id: r for r in results}
    return [by_id[d.id] for d in cfg.devices]


async def _poll_all(devices: list[DeviceConfig], pollers: dict[str, Poller], ctx: Context) -> list[PollResult]:
    counters = Counters()
    sups = [Supervisor(device=d, poller=pollers[d.id], outbox=None, ports=ctx.ports,
                       counters=counters, publish_event=lambda _p: False, agent=ctx.cfg.agent.id,
                       ward=ctx.cfg.agent.ward) for d in devices]
    results = await asyncio.gather(*(s.poll() for s in sups))
    for r in results:
        ctx.ports.ingest(r.readings)
    return list(results)


def cells(r: PollResult) -> tuple[str, ...]:
    d = r.device
    row = r.row or CheckRow(protocol="-", status="up" if r.ok else r.reason, detail=r.detail)
    rtt = f"{row.rtt_ms:.1f}" if row.rtt_ms is not None else "-"
    return (d.id, d.kind, f"{d.host}:{d.port or DEFAULT_PORTS.get(d.kind, 0)}", row.protocol, row.status, row.name,
            row.profile, row.interfaces, row.clients, rtt, f"{row.poll_ms:.0f}", row.detail)


def format_table(results: list[PollResult]) -> str:
    table = [HEADER, *(cells(r) for r in results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in table
    ).rstrip()
