"""The dashboard's live state (collector/web/live.py): the device and ward state rules as
pure logic on a fake clock, and the event stream delivering a change over a real socket."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from wardwatch import wire
from wardwatch.collector.config import HttpSection
from wardwatch.collector.http import make_app
from wardwatch.collector.web import api
from wardwatch.collector.web.live import Fleet

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = 1_790_000_000_000  # ms
WARDS = {"cam-pho": "Cẩm Phô", "minh-an": "Minh An"}


def inv(ward: str = "cam-pho", agent: str = "ag1", devices: list[wire.InventoryDevice] | None = None) -> wire.Inventory:
    return wire.Inventory(schema=1, agent=agent, ward=ward, time_ms=T0, devices=devices or [
        wire.InventoryDevice(id="sw-a", kind="switch", interval_s=60, host="10.0.0.1", vendor="cisco"),
        wire.InventoryDevice(id="ap-1", kind="ap", interval_s=60, host="10.0.0.2",
                             feed=wire.FeedRef(switch="sw-a", port="Gi0/2")),
        wire.InventoryDevice(id="cam-1", kind="camera", interval_s=60, host="10.0.0.3",
                             feed=wire.FeedRef(switch="sw-a", port="Gi0/5")),
        wire.InventoryDevice(id="cam-2", kind="camera", interval_s=60, host="10.0.0.4"),
    ])


def status(state: str, ward: str = "cam-pho", agent: str = "ag1", t: int = T0) -> wire.Status:
    return wire.Status(schema=1, agent=agent, ward=ward, state=state, time_ms=t)  # type: ignore[arg-type]


def r(device: str, kind: str, measurement: str, t: int, tags: dict[str, str] | None = None,
      **fields: Any) -> wire.Reading:  # fmt: skip
    return wire.Reading(device=device, kind=kind, measurement=measurement, time_ms=t,  # type: ignore[arg-type]
                        fields=fields, tags=tags or {})


def batch(*readings: wire.Reading, ward: str = "cam-pho", agent: str = "ag1", seq: int = 0) -> wire.Batch:
    return wire.Batch(schema=1, agent=agent, ward=ward, seq=seq, readings=list(readings))


def healthy(t: int) -> wire.Batch:
    return batch(
        r("sw-a", "switch", "device_status", t, up=1, reason="ok", rtt_ms=1.0),
        r("ap-1", "ap", "device_status", t, up=1, reason="ok"),
        r("ap-1", "ap", "wifi_radio", t, {"radio": "2.4GHz"}, clients=10),
        r("ap-1", "ap", "wifi_radio", t, {"radio": "5GHz"}, clients=20),
        r("cam-1", "camera", "device_status", t, up=1, reason="ok"),
        r("cam-1", "camera", "camera_health", t, ok=1, reason="ok", online=1),
        r("cam-2", "camera", "device_status", t, up=1, reason="ok"),
        r("cam-2", "camera", "camera_health", t, ok=1, reason="ok", online=1),
    )


@dataclass
class FakeAlert:
    fingerprint: str
    state: str
    labels: dict[str, str] = field(default_factory=dict)
    acked_by: str | None = None
    suppressed_by: str | None = None


def make_fleet(alerts: list[FakeAlert] | None = None) -> tuple[Fleet, list[tuple[str, dict[str, Any]]]]:
    fleet = Fleet(wards=WARDS, tz=TZ, stale_after=90, alerts=lambda: list(alerts or []))
    events: list[tuple[str, dict[str, Any]]] = []
    fleet.listeners.append(lambda kind, data: events.append((kind, data)))
    return fleet, events


def states(fleet: Fleet, ward: str = "cam-pho") -> dict[str, tuple[str, str]]:
    return {d.id: (d.state, d.reason) for d in fleet.devices(ward)}


def test_never_reported_devices_are_listed_unknown_and_every_ward_is_there() -> None:
    fleet, _ = make_fleet()
    fleet.observe_inventory(inv())
    doc = fleet.wards_json()
    assert [w["id"] for w in doc["wards"]] == ["cam-pho", "minh-an"]
    assert doc["wards"][0]["name"] == "Cẩm Phô"
    assert {s for s, _ in states(fleet).values()} == {"unknown"}
    assert doc["wards"][0]["state"] == "unknown"  # its agent never said online
    assert doc["wards"][1]["state"] == "unknown" and doc["wards"][1]["counts"]["camera"] == {"up": 0, "total": 0}
    row = fleet.ward_json("cam-pho")
    assert row is not None
    assert [d["id"] for d in row["devices"]] == ["sw-a", "ap-1", "cam-1", "cam-2"]  # switches, APs, cameras
    assert row["devices"][2]["feed"] == "sw-a Gi0/5"


def test_device_states_from_readings() -> None:
    fleet, events = make_fleet()
    fleet.observe_inventory(inv())
    fleet.observe_status(status("online"), now_ms=T0)
    fleet.observe_batch(healthy(T0), now_ms=T0 + 100)
    assert {s for s, _ in states(fleet).values()} == {"ok"}
    summary = fleet.wards_json()["wards"][0]
    assert summary["state"] == "ok"
    assert summary["counts"] == {"switch": {"up": 1, "total": 1}, "ap": {"up": 1, "total": 1},
                                 "camera": {"up": 2, "total": 2}}
    assert summary["wifi_clients"] == 30 and summary["wifi_peak_today"] == 30
    events.clear()
    # camera answering but not ok: degraded with the reason; not answering: down
    t = T0 + 60_000
    fleet.observe_batch(batch(r("cam-1", "camera", "device_status", t, up=1, reason="ok"),
                              r("cam-1", "camera", "camera_health", t, ok=0, reason="snapshot_failed", online=1),
                              r("cam-2", "camera", "device_status", t, up=0, reason="timeout"),
                              r("cam-2", "camera", "camera_health", t, ok=0, reason="offline", online=0)),
                        now_ms=t + 100)
    assert states(fleet)["cam-1"] == ("degraded", "snapshot_failed")
    assert states(fleet)["cam-2"] == ("down", "timeout")
    dev = fleet.device("cam-pho", "cam-1")
    assert dev is not None and dev.since_ms == t  # since the reading that changed it
    device_events = [d for k, d in events if k == "device"]
    assert {(d["id"], d["state"]) for d in device_events} == {("cam-1", "degraded"), ("cam-2", "down")}
    ward_events = [d for k, d in events if k == "ward"]
    assert ward_events[-1]["state"] == "degraded"  # 2 of 4 down is not more than half
    # an older reading (backlog) does not move the live state
    fleet.observe_batch(batch(r("cam-2", "camera", "device_status", T0 + 30_000, up=1, reason="ok")),
                        now_ms=t + 200)
    assert states(fleet)["cam-2"] == ("down", "timeout")
    # a switch down: the ward is down
    fleet.observe_batch(batch(r("sw-a", "switch", "device_status", t, up=0, reason="timeout")), now_ms=t + 300)
    assert states(fleet)["sw-a"] == ("down", "timeout")
    assert fleet.wards_json()["wards"][0]["state"] == "down"


def test_more_than_half_down_is_down() -> None:
    fleet, _ = make_fleet()
    fleet.observe_inventory(inv())
    fleet.observe_status(status("online"), now_ms=T0)
    fleet.observe_batch(healthy(T0), now_ms=T0)
    t = T0 + 1000
    fleet.observe_batch(batch(*(r(d, "camera", "device_status", t, up=0, reason="timeout") for d in ("cam-1", "cam-2")),
                              r("ap-1", "ap", "device_status", t, up=0, reason="timeout")), now_ms=t)
    assert fleet.wards_json()["wards"][0]["state"] == "down"


def test_unknown_when_the_agent_is_offline_silent_or_the_device_stale() -> None:
    fleet, _ = make_fleet()
    fleet.observe_inventory(inv())
    fleet.observe_status(status("online"), now_ms=T0)
    fleet.observe_batch(healthy(T0), now_ms=T0)
    fleet.observe_status(status("offline"), now_ms=T0 + 5000)
    assert set(states(fleet).values()) == {("unknown", "agent_offline")}
    assert fleet.wards_json()["wards"][0]["state"] == "unknown"
    fleet.observe_status(status("online"), now_ms=T0 + 6000)
    assert {s for s, _ in states(fleet).values()} == {"ok"}
    # silent for longer than stale_after (90 s): unknown at the next tick
    fleet.tick(T0 + 6000 + 89_000)
    assert {s for s, _ in states(fleet).values()} == {"ok"}
    fleet.tick(T0 + 6000 + 91_000)
    assert set(states(fleet).values()) == {("unknown", "agent_offline")}
    # the agent keeps sending, but one device has had no reading for 3 intervals
    for minute in range(1, 5):
        t = T0 + minute * 60_000
        fleet.observe_batch(batch(*(x for x in healthy(t).readings if x.device != "cam-2")), now_ms=t + 50)
        fleet.tick(t + 100)
    assert states(fleet)["cam-2"] == ("unknown", "stale")
    assert states(fleet)["cam-1"] == ("ok", "")
    assert fleet.wards_json()["wards"][0]["state"] == "degraded"


def test_inventory_replaces_and_forget_removes() -> None:
    fleet, _ = make_fleet()
    fleet.observe_inventory(inv())
    fleet.observe_inventory(inv(devices=[wire.InventoryDevice(id="sw-a", kind="switch", interval_s=60, host="h")]))
    assert list(states(fleet)) == ["sw-a"]
    fleet.forget("cam-pho", "ag1")
    assert states(fleet) == {}


def test_wifi_peak_is_of_the_local_day() -> None:
    fleet, _ = make_fleet()
    fleet.observe_inventory(inv())
    fleet.observe_status(status("online"), now_ms=T0)
    fleet.observe_batch(healthy(T0), now_ms=T0)
    t = T0 + 60_000
    fleet.observe_batch(batch(r("ap-1", "ap", "wifi_radio", t, {"radio": "5GHz"}, clients=2)), now_ms=t)
    w = fleet.wards_json()["wards"][0]
    assert (w["wifi_clients"], w["wifi_peak_today"]) == (12, 30)
    # the next local day (Asia/Ho_Chi_Minh midnight) starts a new peak
    from datetime import datetime, timedelta
    next_day = datetime.fromtimestamp(t / 1000, TZ).replace(hour=0, minute=0, second=1) + timedelta(days=1)
    fleet.tick(int(next_day.timestamp() * 1000))
    w = fleet.wards_json()["wards"][0]
    assert (w["wifi_clients"], w["wifi_peak_today"]) == (12, 12)


def test_alert_changes_are_pushed_and_counted_per_ward() -> None:
    alerts = [FakeAlert("f1", "pending", {"ward": "cam-pho", "device": "sw-a"})]
    fleet, events = make_fleet(alerts)
    fleet.observe_inventory(inv())
    fleet.tick(T0)
    assert ("alert", {"fingerprint": "f1", "state": "pending", "acked": False, "ward": "cam-pho",
                      "device": "sw-a"}) in events
    assert fleet.wards_json()["wards"][0]["alerts"] == 0
    alerts[0].state = "firing"
    events.clear()
    fleet.tick(T0 + 1000)
    assert [d["state"] for k, d in events if k == "alert"] == ["firing"]
    assert [d["alerts"] for k, d in events if k == "ward"] == [1]
    alerts[0].acked_by = "Lan"
    events.clear()
    fleet.tick(T0 + 2000)
    assert [d["acked"] for k, d in events if k == "alert"] == [True]
    # A device behind it, suppressed by it: the tile still says one root cause.
    alerts.append(FakeAlert("f2", "firing", {"ward": "cam-pho", "device": "cam-1"}, suppressed_by="device:sw-a"))
    fleet.tick(T0 + 2500)
    assert fleet.wards_json()["wards"][0]["alerts"] == 1
    alerts.clear()
    events.clear()
    fleet.tick(T0 + 3000)
    assert [d["state"] for k, d in events if k == "alert"] == ["gone", "gone"]


def test_a_reading_costs_little() -> None:
    """2,000 devices in 13 wards; a minute of the whole fleet's readings (one batch per device)."""
    fleet, _ = make_fleet()
    wards = [f"w{n:02d}" for n in range(13)]
    batches = []
    for ward in wards:
        devices = [wire.InventoryDevice(id=f"cam-{i:03d}", kind="camera", interval_s=60, host="h") for i in range(154)]
        fleet.observe_inventory(inv(ward=ward, devices=devices))
        fleet.observe_status(status("online", ward=ward), now_ms=T0)
        batches += [batch(r(d.id, "camera", "device_status", T0, up=1, reason="ok"),
                          r(d.id, "camera", "camera_health", T0, ok=1, reason="ok", online=1), ward=ward)
                    for d in devices]
    t0 = time.process_time()
    for b in batches:
        fleet.observe_batch(b, now_ms=T0)
    spent = time.process_time() - t0
    t0 = time.process_time()
    fleet.tick(T0 + 1000)
    tick = time.process_time() - t0
    assert fleet.device_count() == 13 * 154
    assert spent < 2.0, f"{spent:.2f} s of CPU for 2,002 batches"  # the real load is ~35 batches a second
    assert tick < 0.2, f"a tick over 2,002 devices took {tick * 1000:.0f} ms of CPU"


class _Backend:
    def alerts(self) -> list[Any]:
        return []

    def timezone(self) -> ZoneInfo:
        return TZ

    def ward_name(self, ward: str) -> str:
        return WARDS.get(ward, ward)


class _NoInflux:
    async def query(self, q: str, *, epoch: str | None = None) -> list[dict[str, Any]]:
        return []


async def test_events_deliver_a_device_change_within_a_second() -> None:
    fleet, _ = make_fleet()
    fleet.observe_inventory(inv())
    fleet.observe_status(status("online"), now_ms=T0)
    now = int(time.time() * 1000)
    fleet.observe_batch(healthy(now), now_ms=now)
    a = api.Api(fleet, _Backend(), _NoInflux(), uptime=api.CityUptime(_NoInflux(), wards=None))
    app = make_app(HttpSection(token="t" * 16), health=dict, routes=api.routes(a))
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        url = server.make_url("/api/v1/events")
        async with session.get(url) as resp:
            assert resp.status == 401
        headers = {"Authorization": "Bearer " + "t" * 16}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            assert "no-cache" in resp.headers["Cache-Control"]
            first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
            assert b"event: hello" in first and b"retry: " in first
            t = now + 1000
            sent = time.monotonic()
            fleet.observe_batch(batch(r("cam-1", "camera", "device_status", t, up=0, reason="timeout")), now_ms=t)
            got: dict[str, Any] = {}
            while True:
                chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
                lines = dict(line.split(": ", 1) for line in chunk.decode().strip().split("\n") if ": " in line)
                if lines.get("event") == "device":
                    got = json.loads(lines["data"])
                    break
            assert time.monotonic() - sent < 1.0
            assert got["ward"] == "cam-pho" and got["id"] == "cam-1" and got["state"] == "down"
            assert got["reason"] == "timeout" and got["since_ms"] == t
            ward = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
            assert b"event: ward" in ward and b'"state":"degraded"' in ward


async def test_a_client_that_falls_behind_is_dropped_not_waited_for() -> None:
    fleet, _ = make_fleet()
    hub = api.Hub(fleet)
    q: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=3)
    hub.clients.add(q)
    for i in range(5):
        hub.publish("device", {"i": i})
    assert q not in hub.clients and hub.dropped == 1
    assert q.get_nowait() is None  # the stream ends; the browser reconnects


@pytest.mark.parametrize(("range_s", "least", "want"), [(86400, 60, 180), (7 * 86400, 60, 1800),
                                                        (30 * 86400, 60, 7200), (86400, 300, 300)])
def test_series_steps_stay_under_500_points(range_s: int, least: int, want: int) -> None:
    step = api.choose_step(range_s, least=least)
    assert step == want and range_s / step <= api.MAX_POINTS


def test_a_controller_counts_as_its_aps_and_all_their_clients() -> None:
    """A WLC answers for its APs: the tile counts them (not the controller as one AP), each
    up while it is in the controller's tables with a radio up, and every radio's clients."""
    fleet, _ = make_fleet()
    fleet.observe_inventory(inv(devices=[wire.InventoryDevice(id="wlc", kind="ap", interval_s=60, host="10.0.0.9")]))
    fleet.observe_status(status("online"), now_ms=T0)

    def poll(t: int, aps: dict[str, int]) -> None:
        rows = [r("wlc", "ap", "device_status", t, up=1, reason="ok")]
        for ap, up in aps.items():
            rows += [r("wlc", "ap", "wifi_radio", t, {"ap": ap, "radio": radio}, clients=5, up=up) for radio in "01"]
        fleet.observe_batch(batch(*rows), now_ms=t)
        fleet.tick(t)

    poll(T0, {"ap-a": 1, "ap-b": 1, "ap-c": 0})
    w = fleet.wards_json()["wards"][0]
    assert w["counts"]["ap"] == {"up": 2, "total": 3}
    assert w["wifi_clients"] == 30  # six radios of 5, not two (the radio names repeat per AP)
    # ap-b leaves the controller's tables: still up for two polls, then down.
    poll(T0 + 60_000, {"ap-a": 1, "ap-c": 0})
    assert fleet.wards_json()["wards"][0]["counts"]["ap"] == {"up": 2, "total": 3}
    poll(T0 + 180_000, {"ap-a": 1, "ap-c": 1})
    assert fleet.wards_json()["wards"][0]["counts"]["ap"] == {"up": 2, "total": 3}  # ap-a and ap-c
