"""Garbage from SNMP devices: a device that answers is never down because of what it said.

A fuzzer drives the whole value path (parse_interfaces, rates, evaluate, the readings of
poll_device) with values of any type; then a real agent polls a healthy switch beside
snmpsim recordings of broken ones and simulators/garbage_snmp.py's malformed answers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Coroutine, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.type import univ
from pysnmp.proto import rfc1902

from tests.snmp_pipeline import pipeline
from tests.util import wait_for
from wardwatch import wire
from wardwatch.agent.core.config import DeviceConfig
from wardwatch.agent.core.errors import DeviceError
from wardwatch.agent.snmp.device import SYS_NAME, SYS_UPTIME, SnmpState, interface_columns, poll_device
from wardwatch.agent.snmp.profiles import builtin_catalog
from wardwatch.simulators.aps import write_many
from wardwatch.simulators.garbage_snmp import GarbageResponder
from wardwatch.simulators.lab import InfluxService, Service, SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, octets, render, replace_rows

# -- the fuzzer -------------------------------------------------------------------------

PROFILES = ["generic_switch", "unifi", "mikrotik", "cisco_wlc", "aruba_instant", "ruijie_ac"]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**64, 2**64 - 1, 2**63, -(2**63) - 1, 10**400, 2**5000]),
    st.floats(),  # NaN and the infinities included
    st.binary(max_size=200),
    st.sampled_from([b"x" * 10_000, "Gi1/0/1\n" * 1000, bytes(range(256)) * 40]),
    st.text(max_size=40),
    st.sampled_from([b"nan", b"inf", b"-inf", b"1e999", b"-1e999", "NaN", b"1" * 5000, b"\n\r\x00\x1b[2J", b""]),
    st.integers(min_value=0, max_value=2**64 - 1).map(rfc1902.Counter64),
    st.integers(min_value=0, max_value=2**32 - 1).map(rfc1902.Counter32),
    st.integers(min_value=0, max_value=2**32 - 1).map(rfc1902.Gauge32),
    st.integers(min_value=0, max_value=2**32 - 1).map(rfc1902.TimeTicks),
    st.integers(min_value=-(2**31), max_value=2**31 - 1).map(rfc1902.Integer32),
    st.binary(max_size=300).map(rfc1902.OctetString),
    st.sampled_from([rfc1902.ObjectIdentifier("1.3.6.1.4.1.32473"), rfc1902.IpAddress("10.0.0.1"), univ.Null(""),
                     rfc1902.Opaque(b"\x9f\x78\x04\x42\xf6\x00\x00"), rfc1902.Bits(b"\x80")]),
)
# Real walks give dotted digits; garbage may give anything.
indices = st.one_of(st.integers(min_value=0, max_value=2**32).map(str),
                    st.sampled_from(["1.2", "0.5.1", "1.1.0.0.0.0.0.0.1", "x", ""]))
ticks = st.one_of(st.integers(min_value=0, max_value=2**32 - 1).map(rfc1902.TimeTicks), values)


class FakeSession:
    """Answers from dicts: the device says whatever the example says."""

    def __init__(self, device: DeviceConfig) -> None:
        self.device = device
        self.scalars: dict[str, Any] = {}
        self.cols: dict[str, dict[str, Any]] = {}
        self.walk_problems: list[str] = []

    async def get(self, oids: list[str]) -> dict[str, Any]:
        return {oid: self.scalars.get(oid) for oid in oids}

    async def walk_columns(self, columns: list[str], *, clock: str | None = None,
                           deadline: float | None = None) -> tuple[Any, Any]:
        self.walk_problems = []
        return {c: dict(self.cols.get(c, {})) for c in columns}, {}


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never waits (the fake session does not)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the poll waited on something")


@st.composite
def poll_answers(draw: st.DrawFn, columns: list[str], scalar_oids: list[str]) -> tuple[dict, dict]:
    rows = draw(st.lists(indices, min_size=1, max_size=4, unique=True))
    cols = {c: {i: draw(values) for i in rows if draw(st.booleans())} for c in columns}
    scalars = {SYS_UPTIME: draw(ticks), SYS_NAME: draw(values), **{o: draw(values) for o in scalar_oids}}
    return scalars, cols


@st.composite
def device_answers(draw: st.DrawFn) -> tuple[str, list[tuple[dict, dict]]]:
    name = draw(st.sampled_from(PROFILES))
    profile = builtin_catalog().resolve(name)
    columns = list(dict.fromkeys([*interface_columns(profile).values(), *profile.columns()]))
    polls = draw(st.lists(poll_answers(columns, profile.scalar_oids()), min_size=2, max_size=3))
    return name, polls


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(device_answers())
def test_fuzz_any_value_gives_encodable_readings_or_a_device_error(answers: tuple[str, list[Any]]) -> None:
    name, polls = answers
    dev = DeviceConfig(id="sw-fuzz", kind="switch", host="127.0.0.1", auth="x", profile=name)
    session, state = FakeSession(dev), SnmpState()
    for seq, (scalars, cols) in enumerate(polls):
        session.scalars, session.cols = scalars, cols
        try:
            readings = run(poll_device(session, state))  # type: ignore[arg-type]
        except DeviceError:
            continue  # a device-level failure (no sysUpTime, say): reported as such, fine
        status = readings[0]
        assert status.measurement == "device_status" and status.fields["up"] == 1
        assert status.fields["bad_values"] == state.bad_values >= len(state.problems)
        batch = wire.Batch(schema=wire.SCHEMA, agent="fuzz", ward="fuzz", seq=seq, readings=readings)
        assert wire.decode(wire.encode(batch)) == batch  # what the collector would accept
        for r in readings:
            for tag in r.tags.values():
                assert tag.isprintable() and 0 < len(tag) <= 128, tag
            for key in ("in_bps", "out_bps", "in_err_ps", "out_err_ps", "in_disc_ps", "out_disc_ps"):
                assert r.fields.get(key, 0) >= 0, r


# -- real processes ---------------------------------------------------------------------

pytest_services = pytest.mark.services
IF, IFX = "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"
# Every IF-MIB column the agent reads, by column OID.
IF_COLUMNS = [f"{IF}.3", f"{IF}.8", f"{IF}.10", f"{IF}.13", f"{IF}.14", f"{IF}.16", f"{IF}.19", f"{IF}.20",
              f"{IFX}.1", f"{IFX}.6", f"{IFX}.10", f"{IFX}.15", f"{IFX}.19"]
WRONG = ["4|fast", "6|1.3.6.1.4.1.32473.1", "64|10.1.2.3", "4x|ff00fe", "2|-5"]
LLDP_REM_SYSNAME, LLDP_LOC_PORT_ID = "1.0.8802.1.1.2.1.4.1.1.9", "1.0.8802.1.1.2.1.3.7.1.3"
INTERVAL = 5.0
SPOILED = {1, 2, 3}  # the ports a broken recording spoils; ports 4..24 stay sane


def spec(name: str, **extras: bool) -> SwitchSpec:
    """Switches alike but for the extras a recording needs (snmpsim is slow: the fewer rows, the better)."""
    return SwitchSpec(name=name, ports=24, seed=5, **extras)


def recordings() -> dict[str, str]:
    """community -> recording: one healthy switch and the broken ones."""
    wrong_types = {f"{col}.{port}": WRONG[(n + port) % len(WRONG)]
                   for n, col in enumerate(IF_COLUMNS) for port in (1, 2)}
    wrong_types[f"{IFX}.15.3"] = "4|fast"  # the case: ifHighSpeed an OctetString
    text_numbers = {f"{col}.{port}": f"4|{text}" for port, text in zip(SPOILED, ["nan", "inf", "1e999"], strict=True)
                    for col in (f"{IFX}.6", f"{IF}.14", f"{IFX}.15", f"{IF}.8")}
    text_numbers.update({"1.3.6.1.2.1.105.1.3.1.1.2.1": "4|nan", "1.3.6.1.2.1.25.3.3.1.2.1": "4|inf",
                         "1.3.6.1.2.1.99.1.1.1.4.1": "4|1e999", "1.3.6.1.2.1.99.1.1.1.2.1": "2|2147483647"})
    lldp_port = next(p.index for p in spec("x").port_specs() if p.name in spec("x", lldp=True).lldp_neighbors())
    long_text = {f"{IFX}.1.1": octets("Gi1/0/1\nDROP MEASUREMENT if_traffic\r\n"), f"{IFX}.1.2": octets("x" * 10_000),
                 f"{IFX}.1.3": octets(b"\x1b[31mGi1/0/3\x00\x07"),
                 f"{LLDP_REM_SYSNAME}.0.{lldp_port}.1": octets("cam\nfake_series,ward=x up=0\n" + "y" * 10_000),
                 f"{LLDP_LOC_PORT_ID}.{lldp_port}": octets(f"Gi1/0/{lldp_port}\n" + "z" * 10_000)}
    backwards = {f"{IFX}.6.1": "70:numeric|rate=-100000,initial=1000000000000"}
    return {
        "public": render(spec("sw-healthy")),
        "wrong-types": replace_rows(render(spec("sw-wrong-types")), wrong_types),
        "text-numbers": replace_rows(render(spec("sw-text-numbers", poe=True, health=True)), text_numbers),
        "long-text": replace_rows(render(spec("sw-long-text", lldp=True)), long_text),
        "backwards": replace_rows(render(spec("sw-backwards")), backwards),
    }


GARBAGE = ["truncated", "wrong_length", "random", "wrong_request_id", "bad_tag", "bad_error", "empty", "wrong_types",
           "repeat", "endless"]
ANSWERS = {"wrong_types", "repeat", "endless"}  # the garbage modes that still answer something usable


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    data = tmp_path / "data"
    write_many(data, recordings())
    port = free_port("udp")
    responders = [GarbageResponder(port=0, mode=mode) for mode in GARBAGE]
    with start_snmpsim(tmp_path / "sim", agents=[SnmpsimAgent(data_dir=data, port=port)]):
        for r in responders:
            r.__enter__()
        try:
            # snmpsim is slow (services.md), and five switches' first polls come at once: 2 tries of 2.4 s.
            common = {"kind": "switch", "host": "127.0.0.1", "interval": f"{INTERVAL}s", "icmp": False}
            sim = {**common, "port": port, "timeout": "2.4s", "retries": 1}
            devs = [{"id": "sw-healthy", "auth": "public", **sim}]
            devs += [{"id": f"sw-{c}", "auth": c, **sim} for c in recordings() if c != "public"]
            # Each garbage device has a community of its own: pysnmp matches a v1/v2c answer to its
            # request by request-id and community only, not by the address it came from, so the
            # wrong_request_id device would otherwise answer other devices' requests. A retry: the
            # responders are Python, and one answer in the endless walk's ~40 can be late on a loaded box.
            devs += [{"id": f"g-{r.mode.replace('_', '-')}", "port": r.port, "auth": f"g-{r.mode}", "profile": "if_mib",
                      "timeout": "1s", "retries": 1, "max_repetitions": 50, **common} for r in responders]
            yield devs
        finally:
            for r in responders:
                r.close()


@pytest_services
def test_broken_devices_report_with_a_reason_and_their_sane_rows(tmp_path: Path, mosquitto: Service,
                                                                 influx: InfluxService, database: str, unique: str,
                                                                 devices: list[dict[str, Any]]) -> None:
    auth = {c: {"snmp": {"version": 2, "community": c}} for c in [*recordings(), *(f"g-{m}" for m in GARBAGE)]}
    ids = [d["id"] for d in devices]
    status_q = "SELECT up, reason, bad_values, rate_dropped, poll_ms, device FROM device_status"
    rates_q = "SELECT in_bps, out_bps, if_name, device FROM if_traffic WHERE in_bps >= 0"
    with pipeline(tmp_path, mosquitto=mosquitto, influx=influx, database=database, agent_id=f"gb-{unique}",
                  auth=auth, devices=devices) as (agent, _collector):

        def enough() -> bool:
            counts: dict[str, int] = defaultdict(int)
            for r in influx.points(status_q, db=database):
                counts[r["device"]] += 1
            return min(counts[i] for i in ids) >= 4

        wait_for(enough, timeout=90, what=lambda: f"four polls of every device\n{agent.log_tail()}")
        assert agent.running(), agent.log_tail()
        status = influx.points(status_q, db=database, epoch="ms")
        rates = influx.points(rates_q, db=database)
        names = {r["if_name"] for r in influx.points("SELECT speed_mbps, if_name FROM if_traffic", db=database)}
    by_dev: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in status:
        by_dev[r["device"]].append(r)
    rated: dict[str, set[str]] = defaultdict(set)
    for r in rates:
        rated[r["device"]].add(r["if_name"])
    assert not (tmp_path / "dead-letter.jsonl").exists() or not (tmp_path / "dead-letter.jsonl").read_text()

    healthy = by_dev["sw-healthy"]
    assert all(r["up"] == 1 and r["bad_values"] == 0 for r in healthy), healthy
    gaps = [(b - a) / 1000 for a, b in pairwise(sorted(r["time"] for r in healthy))]
    assert max(gaps) <= INTERVAL + 1.5, gaps  # it kept every poll
    assert len(rated["sw-healthy"]) == 24

    sane = {p.name for p in spec("x").port_specs() if p.index not in SPOILED}
    for dev in ("sw-wrong-types", "sw-text-numbers", "sw-long-text"):
        rows = by_dev[dev]
        spoiled = dev != "sw-long-text"  # long text with newlines is cleaned and capped, not a bad value
        assert all(r["up"] == 1 and r["reason"] == "ok" and (r["bad_values"] > 0) == spoiled for r in rows), (dev, rows)
        assert sane <= rated[dev], (dev, sane - rated[dev])
    assert all(r["up"] == 1 and r["bad_values"] == 0 for r in by_dev["sw-backwards"])
    assert sum(r["rate_dropped"] for r in by_dev["sw-backwards"]) >= 2  # each poll's reset refused and counted
    assert "Gi1/0/1" not in rated["sw-backwards"] and sane <= rated["sw-backwards"]

    for mode in GARBAGE:
        rows = by_dev[f"g-{mode.replace('_', '-')}"]
        if mode in ANSWERS:
            assert all(r["up"] == 1 and r["bad_values"] > 0 for r in rows), (mode, rows)
            assert all(r["poll_ms"] < INTERVAL * 1000 for r in rows), (mode, rows)
        else:
            assert all(r["up"] == 0 and r["reason"] in ("timeout", "protocol") for r in rows), (mode, rows)
    assert len(rated["g-endless"]) == 4  # its capped walk still gave every port its rates
    assert all(n.isprintable() and 0 < len(n) <= 128 for n in names), [n for n in names if len(n) > 128]
    assert "Gi1/0/1 DROP MEASUREMENT if_traffic" in names and "x" * 128 in names
