"""The SNMP poller: a device's matched profile, turned into readings.

One poll = one GET (sysUpTime, sysName and the profile's scalars) + one multi-column
GETBULK walk of every table the profile names (IF-MIB and the vendor's), with sysUpTime
riding along in each request. It yields ``device_status``, one ``if_traffic`` reading per
interface (rates, agent/rates.py) and whatever else the profile measures (``poe``,
``wifi_radio``, ``wifi_ssid``, ``lldp_link``, ``device_health``).

The profile is chosen once, on the first poll: the device config's ``profile`` by name,
else by sysObjectID and probe OIDs (agent/profiles.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from wardwatch.agent.core.errors import DeviceNoSuchObject, DeviceProtocolError
from wardwatch.agent.snmp.client import SnmpSession, Table, Times
from wardwatch.agent.snmp.evaluate import evaluate
from wardwatch.agent.snmp.profiles import Catalog, ProfileError, Resolved, builtin_catalog, source_columns
from wardwatch.agent.snmp.rates import Counter, IfSample, InterfaceRates
from wardwatch.wire import Kind, Reading

log = logging.getLogger(__name__)

SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

IF = "1.3.6.1.2.1.2.2.1"
IFX = "1.3.6.1.2.1.31.1.1.1"
# The IF-MIB columns by canonical name (agent/profiles/if_mib.yaml), and the MIB names
# used in error messages.
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
MIB_NAMES = {
    "in_octets64": "ifHCInOctets", "out_octets64": "ifHCOutOctets", "in_octets32": "ifInOctets",
    "out_octets32": "ifOutOctets", "in_errors": "ifInErrors", "out_errors": "ifOutErrors",
    "in_discards": "ifInDiscards", "out_discards": "ifOutDiscards", "high_speed": "ifHighSpeed",
    "discontinuity": "ifCounterDiscontinuityTime", "oper_status": "ifOperStatus",
}


@dataclass(slots=True)
class SwitchState:
    """What a poller remembers about one device between polls."""

    rates: InterfaceRates = field(default_factory=InterfaceRates)
    sys_name: str = ""
    sys_object_id: str = ""
    interfaces: int = 0
    clients: int | None = None  # Wi-Fi clients in the last poll, where the profile counts them
    catalog: Catalog | None = None  # None: the shipped profiles
    profile: Resolved | None = None
    problems: list[str] = field(default_factory=list)  # values the last poll could not read
    rtt_ms: float | None = None  # the last ping's average round trip; None: no echo or no ICMP
    loss_pct: float | None = None


def interface_columns(profile: Resolved | None) -> dict[str, str]:
    """Canonical interface column -> OID, from the profile's if_traffic table."""
    table = profile.interface_table() if profile else None
    if table is None:
        return {}
    cols = {name: source_columns(table, m)[0] for name, m in table.metrics.items() if source_columns(table, m)}
    name_tag = table.tags.get("if_name")
    if name_tag is not None and source_columns(table, name_tag):
        cols["name"] = source_columns(table, name_tag)[0]
    return cols


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


def parse_interfaces(
    cols: Table, times: Times | None = None, columns: dict[str, str] | None = None
) -> dict[int, tuple[IfSample, bool]]:
    """Walked columns -> ifIndex -> (sample, oper_up). Prefers 64-bit octet counters."""
    columns = COLUMNS if columns is None else columns
    by_name = {key: cols.get(columns[key], {}) if key in columns else {} for key in COLUMNS}
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
                read_at = read_at or times.get(columns.get(f"{direction}_octets64", ""), {}).get(index)
            elif lc is not None:
                counters[f"{direction}_octets"] = Counter(_int(lc, f"if{direction.title()}Octets.{index}"), 32)
                read_at = read_at or times.get(columns.get(f"{direction}_octets32", ""), {}).get(index)
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


async def identify(session: SnmpSession, state: SwitchState) -> Resolved:
    """Choose the device's profile: by name from its config, else by sysObjectID and the
    probe OIDs it answers."""
    catalog = state.catalog or builtin_catalog()
    dev = session.device
    if dev.profile:
        if dev.profile not in catalog.profiles:
            raise DeviceProtocolError(f"unknown profile {dev.profile!r}")
        return catalog.resolve(dev.profile)
    probes = catalog.probe_oids()
    try:
        got = await session.get([SYS_OBJECT_ID, *probes])
    except DeviceProtocolError:  # SNMPv1 fails the whole GET for one missing OID
        got = {SYS_OBJECT_ID: (await session.get([SYS_OBJECT_ID]))[SYS_OBJECT_ID]}
        for oid in probes:
            try:
                got.update(await session.get([oid]))
            except DeviceProtocolError:
                continue
    state.sys_object_id = str(got[SYS_OBJECT_ID]) if got.get(SYS_OBJECT_ID) is not None else ""
    answered = [oid for oid in probes if got.get(oid) is not None]
    profile = catalog.match(state.sys_object_id, answered)
    if profile is None:
        raise DeviceProtocolError(f"no profile matches sysObjectID {state.sys_object_id or '(none)'}")
    return profile


async def poll_switch(session: SnmpSession, state: SwitchState, *, kind: Kind = "switch") -> list[Reading]:
    """Poll once. Raises DeviceError subclasses; the caller records the failure."""
    dev = session.device
    started = time.monotonic()
    if state.profile is None:
        try:
            state.profile = await identify(session, state)
        except ProfileError as exc:
            raise DeviceProtocolError(str(exc)) from None
        log.info("device %s: profile %s (sysObjectID %s)", dev.id, state.profile.name, state.sys_object_id or "-")
    profile = state.profile
    scalars = await session.get([SYS_UPTIME, SYS_NAME, *profile.scalar_oids()])
    if scalars[SYS_UPTIME] is None:
        raise DeviceNoSuchObject("no sysUpTime.0")
    uptime = _int(scalars[SYS_UPTIME], "sysUpTime")
    state.sys_name = _text(scalars[SYS_NAME])
    # sysUpTime rides along in every GETBULK, so each counter's time is the device's own.
    columns = interface_columns(profile)
    walk = list(dict.fromkeys([*columns.values(), *profile.columns()]))
    cols, times = await session.walk_columns(walk, clock=SYS_UPTIME.removesuffix(".0")) if walk else ({}, {})
    if walk and not any(cols.get(c) for c in profile.metric_columns()):
        raise DeviceNoSuchObject(f"none of the tables of profile {profile.name} exist on this device")
    now = time.monotonic()
    time_ms = int(time.time() * 1000)
    interfaces = parse_interfaces(cols, times, columns) if columns else {}
    state.interfaces = len(interfaces)
    result = state.rates.update(
        uptime_ticks=uptime, t=now, interfaces={i: s for i, (s, _) in interfaces.items()}
    )

    vendor = dev.vendor or profile.vendor
    tags = {"vendor": vendor} if vendor else {}
    extra = evaluate(profile, cols=cols, scalars=scalars, device=dev.id, kind=kind, time_ms=time_ms,
                     base_tags=tags)
    state.problems = extra.problems
    for problem in extra.problems[:3]:
        log.warning("device %s: %s", dev.id, problem)
    state.clients = _clients(extra.readings)
    status_fields: dict[str, int | float | str] = {
        "up": 1,
        "uptime_s": uptime / 100,
        "poll_ms": round((now - started) * 1000, 1),
        "rate_dropped": result.dropped,
        "restarted": int(result.rebooted),
        "reason": "ok",
        "bad_values": len(extra.problems),
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
    readings.extend(extra.readings)
    return readings


def _clients(readings: list[Reading]) -> int | None:
    """Wi-Fi clients on the device: per radio where it says, else per SSID."""
    for measurement in ("wifi_radio", "wifi_ssid"):
        counts = [r.fields["clients"] for r in readings if r.measurement == measurement and "clients" in r.fields]
        if counts:
            return int(sum(c for c in counts if not isinstance(c, str)))
    return None


def down_reading(*, device_id: str, kind: Kind, vendor: str | None, reason: str, poll_ms: float) -> Reading:
    """``device_status`` for a poll that failed: up=0 and why."""
    return Reading(
        device=device_id, kind=kind, measurement="device_status", time_ms=int(time.time() * 1000),
        fields={"up": 0, "poll_ms": round(poll_ms, 1), "reason": reason},
        tags={"vendor": vendor} if vendor else {},
    )
