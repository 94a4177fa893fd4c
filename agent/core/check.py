"""``wardwatch-agent check``: poll every device once, all at once, and print a table.

The technician's first tool on site. Per SNMP device: STATUS is ``up`` or the error class
(``timeout``, ``auth``, ``unreachable``, ``no_such_object``, ``protocol``), beside the SNMP
version, the profile that matched, sysName, interface and Wi-Fi client counts, the ping
round trip, and the poll's duration. Per camera (SNMP column ``onvif``): ``up`` or the camera's
reason with its error class, e.g. ``offline (refused)``, ``auth``, ``rtsp_401`` (docs/cameras.md);
cameras with a ``feed`` port are polled after the switches, so ``poe_lost`` shows here too.
Exit 0 when every device answered (every camera OK), 1 when some did not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wardwatch.agent.camera.task import camera_poller
from wardwatch.agent.core.app import Poller, PollResult
from wardwatch.agent.core.config import AgentConfig, DeviceConfig
from wardwatch.agent.snmp.device import SwitchState

if TYPE_CHECKING:
    from wardwatch.agent.camera.poll import CameraPoller, CameraPollResult

HEADER = ("DEVICE", "KIND", "ADDRESS", "SNMP", "STATUS", "SYSNAME", "PROFILE", "IFS", "CLIENTS", "RTT_MS",
          "POLL_MS", "DETAIL")
HINTS = {
    "timeout": "no answer: check the address, port, community/user and any ACL on the device",
    "auth": "wrong SNMPv3 user, key or protocol (or a community the device does not accept)",
    "unreachable": "the address cannot be resolved or reached",
    "no_such_object": "the device lacks what its profile reads: try another profile",
}


@dataclass(frozen=True)
class Row:
    device: DeviceConfig
    result: PollResult | CameraPollResult


async def check(cfg: AgentConfig, poller: Poller) -> int:
    async with camera_poller(cfg, pinger=poller.pinger) as cameras:
        unfed = [d for d in cfg.devices if d.kind == "camera" and d.feed is None]
        first, later = await asyncio.gather(_switches_then_fed(cfg, poller, cameras),
                                            _cameras(cameras, unfed))
    results: list[PollResult | CameraPollResult] = [*first, *later]
    by_id = {r.device.id: r for r in results}
    rows = [Row(d, by_id[d.id]) for d in cfg.devices]
    print(format_table(rows))
    failed = sum(not r.ok for r in results)
    print(f"\n{len(results) - failed} of {len(results)} devices answered", end="")
    print(f"; ICMP: {poller.pinger.mode}" if poller.pinger.available else f"\n{poller.pinger.mode}")
    return 1 if failed else 0


async def _switches_then_fed(cfg: AgentConfig, poller: Poller,
                             cameras: CameraPoller | None) -> list[PollResult | CameraPollResult]:
    """SNMP devices, then the cameras with a ``feed`` port, which need the switches' port state."""
    snmp_devices = [d for d in cfg.devices if d.kind in ("switch", "ap")]
    results = await asyncio.gather(*(poller.poll(poller.session(d), SwitchState()) for d in snmp_devices))
    if cameras is not None:
        for r in results:
            cameras.ports.ingest(r.readings)
    fed = await _cameras(cameras, [d for d in cfg.devices if d.kind == "camera" and d.feed is not None])
    return [*results, *fed]


async def _cameras(cameras: CameraPoller | None, devices: list[DeviceConfig]) -> list[PollResult | CameraPollResult]:
    if cameras is None or not devices:
        return []
    return list(await asyncio.gather(*(cameras.poll(cameras.session(d)) for d in devices)))


def _cells(row: Row) -> tuple[str, ...]:
    d = row.device
    address = f"{d.host}:{d.port or 161}"
    r = row.result
    if not isinstance(r, PollResult):
        return r.check_row()
    state = r.state
    status = r.readings[0].fields
    profile = state.profile.name if state.profile else "-"
    clients = "-" if state.clients is None else str(state.clients)
    rtt = f"{state.rtt_ms:.1f}" if state.rtt_ms is not None else "-"
    detail = r.detail
    if not r.ok:
        detail = f"{detail}; {HINTS[r.reason]}" if r.reason in HINTS else detail
        if status.get("icmp_up") == 1:
            detail += "; it answers pings"
    elif state.problems:
        detail = f"{len(state.problems)} unreadable values, e.g. {state.problems[0]}"
    return (d.id, d.kind, address, f"v{r.version}", "up" if r.ok else r.reason, state.sys_name or "-", profile,
            str(state.interfaces) if r.ok else "-", clients if r.ok else "-", rtt,
            f"{status.get('poll_ms', 0):.0f}", detail)


def format_table(rows: list[Row]) -> str:
    table = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in table
    ).rstrip()
