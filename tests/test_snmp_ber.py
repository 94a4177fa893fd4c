"""The v1/v2c engine's BER codec (agent/snmp/ber.py) against pysnmp's own encoder and
decoder, and the engine against net-snmp's snmpd over a real socket: SNMPv1 walks by
GETNEXT, v2c by GETBULK, both giving the same table."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]
from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.proto import api, rfc1902, rfc1905

from wardwatch.agent.core.config import DeviceConfig, SnmpAuth
from wardwatch.agent.core.errors import DeviceProtocolError, DeviceTimeout
from wardwatch.agent.snmp import ber
from wardwatch.agent.snmp.client import Engines, SnmpSession
from wardwatch.agent.snmp.device import SnmpState, poll_device
from wardwatch.simulators.lab import Service, start_snmpd

arcs = st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=12)
oids = st.builds(lambda first, second, rest: ".".join(map(str, (first, second, *rest))),
                 st.integers(min_value=0, max_value=2), st.integers(min_value=0, max_value=39), arcs)
# (pysnmp value, what our decoder must give)
values = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31 - 1).map(lambda v: (rfc1902.Integer32(v), v)),
    st.integers(min_value=0, max_value=2**32 - 1).map(lambda v: (rfc1902.Counter32(v), v)),
    st.integers(min_value=0, max_value=2**32 - 1).map(lambda v: (rfc1902.Gauge32(v), v)),
    st.integers(min_value=0, max_value=2**32 - 1).map(lambda v: (rfc1902.TimeTicks(v), v)),
    st.integers(min_value=0, max_value=2**64 - 1).map(lambda v: (rfc1902.Counter64(v), v)),
    st.binary(max_size=300).map(lambda v: (rfc1902.OctetString(v), v)),
    st.binary(min_size=4, max_size=4).map(lambda v: (rfc1902.IpAddress(v), v)),
    oids.map(lambda v: (rfc1902.ObjectIdentifier(v), v)),
    st.just((univ.Null(""), b"")),
)


def response(binds: list[tuple[str, Any]], *, request_id: int = 7, status: int = 0, index: int = 0) -> bytes:
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = p.ResponsePDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, request_id)
    p.apiPDU.set_error_status(pdu, status)
    p.apiPDU.set_error_index(pdu, index)
    p.apiPDU.set_varbinds(pdu, binds)
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, "public")
    p.apiMessage.set_pdu(msg, pdu)
    out: bytes = encoder.encode(msg)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(oids, values), max_size=40))
def test_decodes_what_pysnmp_encodes(binds: list[tuple[str, tuple[Any, Any]]]) -> None:
    wire = response([(oid, v) for oid, (v, _) in binds], request_id=123456)
    version, community, request_id, pos = ber.response_header(wire)
    assert (version, community, request_id) == (ber.V2C, b"public", 123456)
    status, index, got = ber.response_body(wire, pos)
    assert (status, index) == (0, 0)
    assert [(name, value) for name, _raw, value in got] == [(oid, want) for oid, (_, want) in binds]


@settings(max_examples=200, deadline=None)
@given(st.lists(oids, min_size=1, max_size=20), st.integers(min_value=1, max_value=2**31 - 1),
       st.sampled_from([ber.GET, ber.GETNEXT, ber.GETBULK]))
def test_pysnmp_decodes_what_we_encode(names: list[str], request_id: int, pdu: int) -> None:
    bulk = pdu == ber.GETBULK
    wire = ber.encode_request(version=ber.V2C, community=b"c-1", pdu=pdu, request_id=request_id, oids=names,
                              non_repeaters=1 if bulk else 0, max_repetitions=9 if bulk else 0)
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    msg, rest = decoder.decode(wire, asn1Spec=p.Message())
    assert rest == b""
    got = p.apiMessage.get_pdu(msg)
    assert int(p.apiPDU.get_request_id(got)) == request_id
    assert [str(oid) for oid, _ in p.apiPDU.get_varbinds(got)] == names


@settings(max_examples=200, deadline=None)
@given(oids)
def test_an_oid_comes_back_as_its_text_and_arcs(oid: str) -> None:
    assert ber.decode_oid(ber.encode_oid(oid)) == (oid, tuple(map(int, oid.split("."))))


def test_exceptions_are_missing_and_unknown_tags_are_refused() -> None:
    missing = [rfc1905.NoSuchObject(""), rfc1905.NoSuchInstance(""), rfc1905.EndOfMibView("")]
    wire = response([(f"1.3.6.1.2.1.1.{i}.0", v) for i, v in enumerate(missing, 1)])
    _, _, _, pos = ber.response_header(wire)
    assert [v for _, _, v in ber.response_body(wire, pos)[2]] == [ber.MISSING] * 3
    wire = response([("1.3.6.1.2.1.1.5.0", rfc1902.OctetString(b"x"))])
    with pytest.raises(ber.BerError, match="no SNMP type"):
        ber.response_body(wire.replace(b"\x04\x01x", b"\x4a\x01x", 1), pos)  # application 10: no SNMP type
    with pytest.raises(ber.BerError):
        ber.response_header(wire[: len(wire) // 3])
    with pytest.raises(ber.BerError):  # a length that claims more than is there
        ber.response_header(b"\x30\x82\x01\x00" + wire[2:])


# -- against snmpd ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with start_snmpd(tmp_path_factory.mktemp("snmpd-ber"), sys_name="ber-test") as svc:
        yield svc


def _session(svc: Service, version: str, engines: Engines, **kw: Any) -> SnmpSession:
    dev = DeviceConfig(id=f"snmpd-v{version}", kind="switch", host="127.0.0.1", port=svc.port, auth="x",
                       profile="if_mib", timeout=2, retries=1, interval=30, **kw)
    return SnmpSession(engine=engines.default, device=dev, auth=SnmpAuth(version=version, community="public"))


@pytest.mark.services
def test_v1_walks_by_getnext_and_reads_what_v2c_reads(snmpd: Service) -> None:
    async def run() -> tuple[Any, Any, list[Any]]:
        engines = Engines()
        try:
            columns = ["1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.31.1.1.1.1", "1.3.6.1.2.1.31.1.1.1.6"]
            v1 = _session(snmpd, "1", engines)
            v2 = _session(snmpd, "2c", engines)
            # ifHCInOctets is a Counter64, which SNMPv1 cannot carry: that column is empty in v1
            t1, _ = await v1.walk_columns(columns, clock="1.3.6.1.2.1.1.3")
            t2, _ = await v2.walk_columns(columns, clock="1.3.6.1.2.1.1.3")
            readings = await poll_device(v1, SnmpState())
            # the end of the MIB in v1 is noSuchName: a walk there ends, it does not fail
            end, _ = await v1.walk_columns(["1.3.6.1.6.3.16.1.5.2.1.6"])
            with pytest.raises(DeviceProtocolError, match="noSuchName"):
                await v1.get(["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.99.0"])
            return (t1, t2, [readings, end])
        finally:
            engines.close()

    t1, t2, (readings, _end) = asyncio.run(run())
    assert t1["1.3.6.1.2.1.2.2.1.2"] == t2["1.3.6.1.2.1.2.2.1.2"] and t1["1.3.6.1.2.1.2.2.1.2"]
    assert t1["1.3.6.1.2.1.31.1.1.1.1"] == t2["1.3.6.1.2.1.31.1.1.1.1"]
    assert t1["1.3.6.1.2.1.31.1.1.1.6"] == {} and t2["1.3.6.1.2.1.31.1.1.1.6"]
    assert readings[0].fields["up"] == 1 and any(r.measurement == "if_traffic" for r in readings)


@pytest.mark.services
def test_nobody_answering_is_a_timeout_and_a_stray_answer_reaches_nobody() -> None:
    import socket

    async def run() -> tuple[float, int]:
        engines = Engines()
        quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        quiet.bind(("127.0.0.1", 0))
        try:
            dev = DeviceConfig(id="quiet", kind="switch", host="127.0.0.1", port=quiet.getsockname()[1], auth="x",
                               timeout=0.3, retries=1, interval=30)
            session = SnmpSession(engine=engines.default, device=dev, auth=SnmpAuth(version="2c", community="c"))
            loop = asyncio.get_running_loop()
            started = loop.time()
            task = asyncio.create_task(session.get(["1.3.6.1.2.1.1.3.0"]))
            with pytest.raises(DeviceTimeout, match="2 tries"):
                await task
            # an answer to a request-id nobody waits for, from a stranger: dropped and counted
            stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock = await engines.default.socket(socket.AF_INET)
            stranger.sendto(response([("1.3.6.1.2.1.1.3.0", rfc1902.TimeTicks(5))]), sock.get_extra_info("sockname"))
            stranger.close()
            for _ in range(200):  # bounded: 2 s at most
                if engines.default.dropped:
                    break
                await asyncio.sleep(0.01)  # the engine has no event to wait on
            return loop.time() - started, engines.default.dropped
        finally:
            quiet.close()
            engines.close()

    elapsed, dropped = asyncio.run(run())
    assert 0.55 <= elapsed < 3 and dropped == 1
