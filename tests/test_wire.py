"""The wire contract: what round-trips, and what is refused with a reason."""

from __future__ import annotations

import pytest

from wardwatch import wire


def batch(**changes: object) -> wire.Batch:
    reading = wire.Reading(device="sw-core", kind="switch", measurement="if_traffic", time_ms=1_700_000_000_000,
                           fields={"in_bps": 1.5e6, "oper_up": 1}, tags={"if_name": "Gi1/0/1"})
    fields = {"schema": 1, "agent": "cam-pho-1", "ward": "cam-pho", "seq": 7, "readings": [reading], **changes}
    return wire.Batch(**fields)  # type: ignore[arg-type]


def test_round_trip_through_the_topic() -> None:
    b = batch()
    topic = wire.readings_topic("cam-pho", "cam-pho-1")
    assert topic == "wardwatch/v1/cam-pho/cam-pho-1/readings"
    assert wire.decode_from(topic, wire.encode(b)) == b


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json", "not JSON"),
    (b'{"schema": 2, "agent": "a", "ward": "w", "seq": 1, "readings": []}', "schema 2 is not supported"),
    (b'{"schema": 1, "agent": "a", "ward": "w", "seq": -1, "readings": []}', "seq"),
    (b'{"schema": 1, "agent": "a", "ward": "w", "seq": 1, "readings": [], "extra": 1}', "extra"),
    (b'{"schema": 1, "agent": "a b", "ward": "w", "seq": 1, "readings": []}', "agent"),
])
def test_bad_payloads_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(wire.WireError, match=reason):
        wire.decode(payload)


def test_non_finite_and_unknown_measurement_are_refused() -> None:
    good = wire.encode(batch())
    with pytest.raises(wire.WireError, match=r"Number out of range|finite"):
        wire.decode(good.replace(b"1500000.0", b"1e999"))
    with pytest.raises(wire.WireError, match=r"Invalid enum value .if_trafic. - at `\$.readings\[0\].measurement`"):
        wire.decode(good.replace(b"if_traffic", b"if_trafic"))
    with pytest.raises(wire.WireError, match="booleans"):
        wire.encode(batch(readings=[wire.Reading(device="d", kind="switch", measurement="poe", time_ms=0,
                                                 fields={"delivering": True})]))


def test_payload_must_come_from_its_own_topic() -> None:
    with pytest.raises(wire.WireError, match="topic says"):
        wire.decode_from(wire.readings_topic("minh-an", "cam-pho-1"), wire.encode(batch()))
    with pytest.raises(wire.WireError, match="not wardwatch/v1"):
        wire.decode_from("other/topic", wire.encode(batch()))


def test_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(wire.WireError, match="cap"):
        wire.decode(b" " * (wire.MAX_PAYLOAD_BYTES + 1))


def test_field_and_tag_keys_are_plain_names() -> None:
    good = wire.encode(batch())
    with pytest.raises(wire.WireError, match=r"readings\[0\]\.fields: key 'In-Bps'"):
        wire.decode(good.replace(b'"in_bps"', b'"In-Bps"'))
    with pytest.raises(wire.WireError, match=r"readings\[0\]\.tags: key 'if name'"):
        wire.decode(good.replace(b'"if_name"', b'"if name"'))


@pytest.mark.parametrize("depth", [100, 10_000])
def test_deep_nesting_is_a_wire_error_not_a_crash(depth: int) -> None:
    payload = b'{"schema":1,"readings":' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(wire.WireError):
        wire.decode(payload)
