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


# Inventory ------------------------------------------------------------------------

def inventory_doc(devices: list[dict[str, object]], **changes: object) -> bytes:
    import json

    return json.dumps({"schema": 1, "agent": "cam-pho-1", "ward": "cam-pho", "time_ms": 1, "devices": devices,
                       **changes}).encode()


SW = {"id": "sw-a", "kind": "switch", "interval_s": 60, "host": "10.0.0.1", "vendor": "cisco", "uplink": "Te1/0/24"}
CAM = {"id": "cam-1", "kind": "camera", "interval_s": 30, "host": "cam-1.hoian.local",
       "feed": {"switch": "sw-a", "port": "Gi0/5"}}
INV_TOPIC = "wardwatch/v1/cam-pho/cam-pho-1/inventory"


def test_inventory_round_trips_through_its_topic() -> None:
    assert wire.inventory_topic("cam-pho", "cam-pho-1") == INV_TOPIC
    assert wire.INVENTORY_FILTER == "wardwatch/v1/+/+/inventory" and wire.EVENTS_FILTER == "wardwatch/v1/+/+/events"
    doc = wire.decode_inventory(INV_TOPIC, inventory_doc([SW, CAM]))
    assert doc.devices[1].feed == wire.FeedRef(switch="sw-a", port="Gi0/5")
    assert doc.devices[0].vendor == "cisco" and doc.devices[1].vendor is None
    again = wire.inventory_payload(agent="cam-pho-1", ward="cam-pho", time_ms=1, devices=doc.devices)
    assert wire.decode_inventory(INV_TOPIC, again) == doc


@pytest.mark.parametrize(("devices", "changes", "reason"), [
    ([SW, CAM, {**CAM, "feed": None}], {}, r"devices\[2\].id: 'cam-1' is listed twice"),
    ([SW, CAM, {**CAM, "id": "cam-2", "feed": {"switch": "cam-1", "port": "eth0"}}], {},
     r"devices\[2\].feed.switch: 'cam-1' is a camera, not a switch"),
    ([CAM], {}, r"devices\[0\].feed.switch: 'sw-a' is not in this inventory"),
    ([SW, {**CAM, "uplink": "Gi0/1"}], {}, r"devices\[1\].uplink: only a switch"),
    ([SW], {"schema": 2}, "schema 2 is not supported"),
    ([SW], {"agent": "cam-pho-2"}, r"payload says ward='cam-pho' agent='cam-pho-2'"),
    ([{**SW, "kind": "router"}], {}, "bad inventory payload"),
    ([{**SW, "interval_s": 0}], {}, "bad inventory payload"),
    ([{**SW, "extra": 1}], {}, "bad inventory payload"),
    ([{**CAM, "feed": {"switch": "sw-a", "port": "x" * 65}}, SW], {}, "bad inventory payload"),
])
def test_bad_inventories_are_refused_with_a_reason(devices: list[dict[str, object]], changes: dict[str, object],
                                                   reason: str) -> None:
    with pytest.raises(wire.WireError, match=reason):
        wire.decode_inventory(INV_TOPIC, inventory_doc(devices, **changes))


def test_inventory_on_another_topic_or_over_the_cap_is_refused() -> None:
    good = inventory_doc([SW, CAM])
    with pytest.raises(wire.WireError, match="is not a inventory topic"):
        wire.decode_inventory("wardwatch/v1/cam-pho/cam-pho-1/status", good)
    with pytest.raises(wire.WireError, match="over the 1048576-byte cap"):
        wire.decode_inventory(INV_TOPIC, good + b" " * wire.MAX_PAYLOAD_BYTES)


def test_inventory_payload_refuses_what_decoding_would() -> None:
    sw = wire.InventoryDevice(id="sw-a", kind="switch", interval_s=60.0, host="10.0.0.1")
    cam = wire.InventoryDevice(id="cam-1", kind="camera", interval_s=60.0, host="h",
                               feed=wire.FeedRef(switch="sw-x", port="Gi0/1"))
    with pytest.raises(wire.WireError, match="'sw-x' is not in this inventory"):
        wire.inventory_payload(agent="a", ward="w", time_ms=1, devices=[sw, cam])
    with pytest.raises(wire.WireError, match="not a finite number"):
        wire.inventory_payload(agent="a", ward="w", time_ms=1,
                               devices=[wire.InventoryDevice(id="sw-a", kind="switch", interval_s=float("nan"),
                                                             host="h")])
    # The most devices an agent's config may hold (5,000), each with a vendor and a feed, fit the 1 MiB cap.
    many = [wire.InventoryDevice(id="sw-a", kind="switch", interval_s=60.0, host="10.0.0.1", uplink="Te1/0/24")]
    many += [wire.InventoryDevice(id=f"cam-{i:05}", kind="camera", interval_s=60.0, host=f"cam-{i:05}.hoian.local",
                                  vendor="hikvision", feed=wire.FeedRef(switch="sw-a", port=f"Gi1/0/{i % 48}"))
             for i in range(4999)]
    assert len(wire.inventory_payload(agent="a", ward="w", time_ms=1, devices=many)) < wire.MAX_PAYLOAD_BYTES


def test_the_inventory_example_in_docs_mqtt_md_decodes() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "mqtt.md").read_text()
    section = doc.split("## `inventory`", 1)[1]
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    inv = wire.decode_inventory(wire.inventory_topic("cam-pho", "cam-pho-1"), example.encode())
    assert [d.id for d in inv.devices] == ["sw-core", "sw-cho", "cam-cho-1", "ap-cho-1"]
    assert inv.devices[2].feed == wire.FeedRef(switch="sw-cho", port="Gi0/5")
