"""The switch poller: MIB-II system scalars and IF-MIB interfaces, turned into rates.

One poll = one GET (sysUpTime, sysName) + one multi-column GETBULK walk of ifTable and
ifXTable. It yields ``device_status`` and one ``if_traffic`` reading per interface.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from wardwatch.agent.errors import DeviceProtocolError
from wardwatch.agent.rates import Counter, IfSample, InterfaceRates
from wardwatch.agent.snmp import SnmpSession, Table, Times
from wardwatch.wire import Kind, Reading

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

IF = "1.3.6.1.2.1.2.2.1"
IFX = "1.3.6.1.2.1.31.1.1.1"
COLUMNS = {
    "oper_status": f"{IF}.8",
    "in_octets32": f"{IF}.10",
    "in_discards": f"{IF}.13",
    "in_errors": f"{IF}.14",
    "out_octets32": f"{IF}.16",
    "out_discards": f"{IF}.19",
    "out_errors": f"{IF}.20",
    "name": f"{IFX}.1",
    "in_octets64": f"{IFX}.6",
    "out_octets64": f"{IFX}.10",
    "high_speed": f"{IFX}.15",
    "discontinuity": f"{IFX}.19",
}


@dataclass(slots=True)
class SwitchState:
    """What a switch poller remembers between polls."""

    rates: InterfaceRates = field(default_factory=InterfaceRates)
    sys_name: str = ""
    interfaces: int = 0


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DeviceProtocolError(f"{what}: expected a number, got {type(value).__name__}") from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    raw = value.asOctets() if hasattr(value, "asOctets") else str(value).encode()
    return raw.decode("utf-8", "replace").strip("\x00 ")


def parse_interfaces(cols: Table, times: Times | None = None) -> dict[int, tuple[IfSample, bool]]:
    """Walked columns -> ifIndex -> (sample, oper_up). Prefers 64-bit octet counters."""
    by_name = {key: cols.get(oid, {}) for key, oid in COLUMNS.items()}
    times = times or {}
    out: dict[int, tuple[IfSample, bool]] = {}
    for index in by_name["oper_status"].keys() | by_name["name"].keys():
        try:
            if_index = int(index)
        except ValueError:
            raise DeviceProtocolError(f"ifIndex {index!r} is not a number") from None
        counters: dict[str, Counter] = {}
        read_at = None
        for direction in ("in", "out"):
            hc = by_name[f"{direction}_octets64"].get(index)
            lc = by_name[f"{direction}_octets32"].get(index)
            if hc is not None:
                counters[f"{direction}_octets"] = Counter(_int(hc, f"ifHC{direction.title()}Octets.{index}"), 64)
                read_at = read_at or times.get(COLUMNS[f"{direction}_octets64"], {}).get(index)
            elif lc is not None:
                counters[f"{direction}_octets"] = Counter(_int(lc, f"if{direction.title()}Octets.{index}"), 32)
                read_at = read_at or times.get(COLUMNS[f"{direction}_octets32"], {}).get(index)
            for kind in ("errors", "discards"):
                v = by_name[f"{direction}_{kind}"].get(index)
                if v is not None:
                    what = f"if{direction.title()}{kind.title()}.{index}"
                    counters[f"{direction}_{kind}"] = Counter(_int(v, what), 32)
        name = (_text(by_name["name"].get(index)) or f"if{if_index}")[:128]
        speed = by_name["high_speed"].get(index)
        disc = by_name["discontinuity"].get(index)
        oper = by_name["oper_status"].get(index)
        sample = IfSample(
            name=name,
            counters=counters,
            speed_mbps=float(_int(speed, f"ifHighSpeed.{index}")) if speed is not None else 0.0,
            discontinuity=_int(disc, f"ifCounterDiscontinuityTime.{index}") if disc is not None else 0,
            t=read_at,
        )
        out[if_index] = (sample, oper is not None and _int(oper, f"ifOperStatus.{index}") == 1)
    return out


async def poll_switch(session: SnmpSession, state: SwitchState, *, kind: Kind = "switch") -> list[Reading]:
    """Poll once. Raises DeviceError subclasses; the caller records the failure."""
    dev = session.device
    started = time.monotonic()
    scalars = await session.get([SYS_UPTIME, SYS_NAME])
    if scalars[SYS_UPTIME] is None:
        raise DeviceProtocolError("no sysUpTime.0")
    uptime = _int(scalars[SYS_UPTIME], "sysUpTime")
    state.sys_name = _text(scalars[SYS_NAME])
    # sysUpTime rides along in every GETBULK, so each counter's time is the device's own.
    cols, times = await session.walk_columns(list(COLUMNS.values()), clock=SYS_UPTIME.removesuffix(".0"))
    now = time.monotonic()
    time_ms = int(time.time() * 1000)
    interfaces = parse_interfaces(cols, times)
    state.interfaces = len(interfaces)
    result = state.rates.update(
        uptime_ticks=uptime, t=now, interfaces={i: s for i, (s, _) in interfaces.items()}
    )

    tags = {"vendor": dev.vendor} if dev.vendor else {}
    status_fields: dict[str, int | float | str] = {
        "up": 1,
        "uptime_s": uptime / 100,
        "poll_ms": round((now - started) * 1000, 1),
        "rate_dropped": result.dropped,
        "restarted": int(result.rebooted),
        "reason": "ok",
    }
    readings = [Reading(device=dev.id, kind=kind, measurement="device_status", time_ms=time_ms,
                        fields=status_fields, tags=tags)]
    for if_index in sorted(interfaces):
        sample, oper_up = interfaces[if_index]
        fields: dict[str, int | float | str] = {"oper_up": int(oper_up), "speed_mbps": sample.speed_mbps}
        rates = result.rates.get(if_index, {})
        fields.update({k: round(v, 3) for k, v in rates.items()})
        if sample.speed_mbps > 0 and "in_bps" in rates and "out_bps" in rates:
            fields["util_pct"] = round(max(rates["in_bps"], rates["out_bps"]) / (sample.speed_mbps * 1e4), 3)
        readings.append(Reading(device=dev.id, kind=kind, measurement="if_traffic", time_ms=time_ms,
                                fields=fields, tags={**tags, "if_name": sample.name}))
    return readings


def down_reading(*, device_id: str, kind: Kind, vendor: str | None, reason: str, poll_ms: float) -> Reading:
    """``device_status`` for a poll that failed: up=0 and why."""
    return Reading(
        device=device_id, kind=kind, measurement="device_status", time_ms=int(time.time() * 1000),
        fields={"up": 0, "poll_ms": round(poll_ms, 1), "reason": reason},
        tags={"vendor": vendor} if vendor else {},
    )
