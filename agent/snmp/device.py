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
from wardwatch.agent.core.text import MAX_TAG, clean
from wardwatch.agent.snmp.client import SnmpSession, Table, Times
from wardwatch.agent.snmp.evaluate import BadValue, evaluate, to_int, to_text
from wardwatch.agent.snmp.profiles import (
    MAX_ROWS,
    Catalog,
    ProfileError,
    Resolved,
    builtin_catalog,
    source_columns,
)
from wardwatch.agent.snmp.rates import Counter, IfSample, InterfaceRates, speed_is_limit
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
    "if_type": f"{IF}.3",
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
    "discontinuity": "ifCounterDiscontinuityTime", "oper_status": "ifOperStatus", "if_type": "ifType",
    "name": "ifName",
}
U32 = 2**32 - 1
# Each interface column's range: a value outside it (or of a type that is no number) is a
# bad value, skipped and counted, never a sample.
RANGES = {
    "in_octets64": (0, 2**64 - 1), "out_octets64": (0, 2**64 - 1), "in_octets32": (0, U32),
    "out_octets32": (0, U32), "in_errors": (0, U32), "out_errors": (0, U32), "in_discards": (0, U32),
    "out_discards": (0, U32), "high_speed": (0, U32), "discontinuity": (0, U32), "oper_status": (1, 7),
    "if_type": (1, 2**31 - 1),
}
WALK_SHARE = 0.7  # of the interval, for the table walk; the SNMP poller gives SNMP 0.9 in all
MAX_PROBLEMS = 100  # problems kept per poll (all are counted in bad_values)


@dataclass(slots=True)
class SnmpState:
    """What a poller remembers about one device between polls."""

    rates: InterfaceRates = field(default_factory=InterfaceRates)
    sys_name: str = ""
    sys_object_id: str = ""
    interfaces: int = 0
    clients: int | None = None  # Wi-Fi clients in the last poll, where the profile counts them
    catalog: Catalog | None = None  # None: the shipped profiles
    profile: Resolved | None = None
    problems: list[str] = field(default_factory=list)  # values the last poll could not read (the first 100)
    bad_values: int = 0  # how many values the last poll could not read
    rtt_ms: float | None = None  # the last ping's average round trip; None: no echo or no ICMP
    loss_pct: float | None = None


@dataclass(slots=True)
class Interface:
    """One row of ifTable/ifXTable as read: the sample for rates, and what is reported as is."""

    sample: IfSample
    oper_up: bool | None  # None: ifOperStatus missing or unreadable (no oper_up field then)
    speed_known: bool = True  # False: ifHighSpeed missing or unreadable (no speed_mbps field)


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


def _int(value: Any, what: str, lo: int = 0, hi: int = U32) -> int:
    """A scalar the poll cannot do without (sysUpTime): a device-level failure when unreadable."""
    try:
        return to_int(value, lo=lo, hi=hi)
    except BadValue as exc:
        raise DeviceProtocolError(f"{what}: {exc}") from None


def _text(value: Any) -> str:
    """Device text for a tag or a text field: printable, capped (core/text.py)."""
    try:
        return to_text(value, limit=MAX_TAG)
    except BadValue:
        return ""


def parse_interfaces(
    cols: Table, times: Times | None = None, columns: dict[str, str] | None = None,
    problems: list[str] | None = None,
) -> dict[int, Interface]:
    """Walked columns -> ifIndex -> :class:`Interface`. Prefers 64-bit octet counters.

    A value that cannot be read (a wrong type, text, a number outside the column's range)
    is skipped and described in ``problems``; the rest of its row and every other row are
    still read. An unreadable 64-bit octet counter falls back to its 32-bit twin. At most
    MAX_ROWS rows are read."""
    columns = COLUMNS if columns is None else columns
    by_name = {key: cols.get(columns[key], {}) if key in columns else {} for key in COLUMNS}
    times = times or {}
    bad = problems if problems is not None else []
    out: dict[int, Interface] = {}

    def read(key: str, index: str) -> int | None:
        raw = by_name[key].get(index)
        if raw is None:
            return None
        lo, hi = RANGES[key]
        try:
            return to_int(raw, lo=lo, hi=hi, what=MIB_NAMES[key])
        except BadValue as exc:
            bad.append(f"{MIB_NAMES[key]}.{clean(index, limit=32)}: {exc}")
            return None

    indices = list(dict.fromkeys([*by_name["oper_status"], *by_name["name"]]))
    for index in indices[:MAX_ROWS]:
        if not index.isdigit() or len(index) > 10:
            bad.append(f"ifIndex {clean(index, limit=32)!r} is not a number")
            continue
        if_index = int(index)
        counters: dict[str, Counter] = {}
        read_at = None
        for direction in ("in", "out"):
            for bits in (64, 32):
                value = read(f"{direction}_octets{bits}", index)
                if value is not None:
                    counters[f"{direction}_octets"] = Counter(value, bits)
                    read_at = read_at or times.get(columns.get(f"{direction}_octets{bits}", ""), {}).get(index)
                    break
            for kind in ("errors", "discards"):
                value = read(f"{direction}_{kind}", index)
                if value is not None:
                    counters[f"{direction}_{kind}"] = Counter(value, 32)
        name = _text(by_name["name"].get(index)) or f"if{if_index}"
        speed = read("high_speed", index)
        disc = read("discontinuity", index)
        oper = read("oper_status", index)
        sample = IfSample(
            name=name,
            counters=counters,
            speed_mbps=float(speed) if speed is not None else 0.0,
            discontinuity=disc if disc is not None else 0,
            t=read_at,
            if_type=read("if_type", index),
        )
        out[if_index] = Interface(sample, None if oper is None else oper == 1,
                                  speed is not None or index not in by_name["high_speed"])
    return out


async def identify(session: SnmpSession, state: SnmpState) -> Resolved:
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
    state.sys_object_id = clean(str(got[SYS_OBJECT_ID])) if got.get(SYS_OBJECT_ID) is not None else ""
    answered = [oid for oid in probes if got.get(oid) is not None]
    profile = catalog.match(state.sys_object_id, answered)
    if profile is None:
        raise DeviceProtocolError(f"no profile matches sysObjectID {state.sys_object_id or '(none)'}")
    return profile


async def poll_device(session: SnmpSession, state: SnmpState, *, kind: Kind = "switch") -> list[Reading]:
    """Poll once. Raises DeviceError subclasses; the caller records the failure."""
    dev = session.device
    started = time.monotonic()
    # Readings are stamped when the poll started, as Telegraf and Prometheus do: a slow
    # answer must not make the series look irregular (rates use the device's own clock).
    started_ms = int(time.time() * 1000)
    if state.profile is None:
        try:
            state.profile = await identify(session, state)
        except ProfileError as exc:
            raise DeviceProtocolError(str(exc)) from None
        log.info("device %s: profile %s (sysObjectID %s)", dev.id, state.profile.name, state.sys_object_id or "-")
    profile = state.profile
    scalars = await session.get([SYS_UPTIME, SYS_NAME, *profile.scalar_oids()])
    if scalars.get(SYS_UPTIME) is None:
        raise DeviceNoSuchObject("no sysUpTime.0")
    uptime = _int(scalars[SYS_UPTIME], "sysUpTime")
    state.sys_name = _text(scalars.get(SYS_NAME))
    # sysUpTime rides along in every GETBULK, so each counter's time is the device's own.
    columns = interface_columns(profile)
    walk = list(dict.fromkeys([*columns.values(), *profile.columns()]))
    # The walk may use most of the interval; what it read by then is kept (client.py).
    deadline = started + dev.interval * WALK_SHARE
    cols, times = (await session.walk_columns(walk, clock=SYS_UPTIME.removesuffix(".0"), deadline=deadline)
                   if walk else ({}, {}))
    if walk and not any(cols.get(c) for c in profile.metric_columns()):
        raise DeviceNoSuchObject(f"none of the tables of profile {profile.name} exist on this device")
    now = time.monotonic()
    time_ms = started_ms
    # What the device said wrongly, value by value: the walk's own (a column that did not
    # end or went backwards), the interfaces', the other tables'. Each is skipped and
    # counted; none of them fails the poll.
    problems = list(session.walk_problems)
    interfaces = parse_interfaces(cols, times, columns, problems) if columns else {}
    state.interfaces = len(interfaces)
    result = state.rates.update(
        uptime_ticks=uptime, t=now, interfaces={i: f.sample for i, f in interfaces.items()}
    )

    vendor = dev.vendor or profile.vendor
    tags = {"vendor": vendor} if vendor else {}
    extra = evaluate(profile, cols=cols, scalars=scalars, device=dev.id, kind=kind, time_ms=time_ms,
                     base_tags=tags)
    problems.extend(extra.problems)
    state.bad_values = len(problems)
    state.problems = problems[:MAX_PROBLEMS]
    for problem in problems[:3]:
        log.warning("device %s: %s", dev.id, problem)
    if len(problems) > 3:
        log.warning("device %s: %d more unreadable values", dev.id, len(problems) - 3)
    state.clients = _clients(extra.readings)
    status_fields: dict[str, int | float | str] = {
        "up": 1,
        "uptime_s": uptime / 100,
        "poll_ms": round((now - started) * 1000, 1),
        "rate_dropped": result.dropped,
        "restarted": int(result.rebooted),
        "reason": "ok",
        "bad_values": len(problems),
    }
    readings = [Reading(device=dev.id, kind=kind, measurement="device_status", time_ms=time_ms,
                        fields=status_fields, tags=tags)]
    for if_index in sorted(interfaces):
        iface = interfaces[if_index]
        sample = iface.sample
        fields: dict[str, int | float | str] = {}
        if iface.oper_up is not None:
            fields["oper_up"] = int(iface.oper_up)
        if iface.speed_known:
            fields["speed_mbps"] = sample.speed_mbps
        rates = result.rates.get(if_index, {})
        fields.update({k: round(v, 3) for k, v in rates.items()})
        if speed_is_limit(sample) and "in_bps" in rates and "out_bps" in rates:
            fields["util_pct"] = round(max(rates["in_bps"], rates["out_bps"]) / (sample.speed_mbps * 1e4), 3)
        if fields and dev.uplink is not None and sample.name == dev.uplink:
            fields["uplink"] = 1  # the ward's uplink (config `uplink:`): report capacity's headroom
        if fields:
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
