"""The camera poller against the project's ONVIF camera simulator, over real loopback sockets.

Each fault knob of the simulator must come out as the camera_health fields and reason an
operator would act on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wardwatch.agent.camera.poll import CameraPoller, CameraPollResult, CameraSession
from wardwatch.agent.camera.poller import check_row
from wardwatch.agent.core.config import AgentConfig
from wardwatch.agent.core.ports import PortStates
from wardwatch.simulators.camera import CameraFleet
from wardwatch.wire import Reading


@dataclass
class Rig:
    fleet: CameraFleet
    poller: CameraPoller
    cam: CameraSession
    cam_id: str

    async def poll(self) -> CameraPollResult:
        return await self.poller.poll(self.cam)

    async def knobs(self, **changes: Any) -> None:
        await self.fleet.apply(self.cam_id, changes)


def health(result: CameraPollResult) -> dict[str, Any]:
    return next(r.fields for r in result.readings if r.measurement == "camera_health")


def events(result: CameraPollResult) -> dict[str, Any]:
    return next(r.fields for r in result.readings if r.measurement == "camera_event")


def config(tmp_path: Path, listing: dict[str, Any], *, timeout: float = 2.0, **camera: Any) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": "agent-1", "ward": "ward-1"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"cam": {"onvif": {"username": listing["username"], "password": listing["password"]}},
                 "sw": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": [
            {"id": "sw-1", "kind": "switch", "host": "127.0.0.1", "auth": "sw"},
            {"id": listing["id"], "kind": "camera", "host": listing["host"], "port": listing["onvif_port"],
             "auth": "cam", "interval": 30, "timeout": timeout, "feed": {"switch": "sw-1", "port": "Gi0/5"},
             "camera": camera},
        ],
    })


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    opts: dict[str, Any] = getattr(request, "param", {})
    brand = opts.pop("brand", "hikvision")
    async with CameraFleet(count=1, brand=brand) as fleet:
        listing = fleet.listing()[0]
        cfg = config(tmp_path, listing, **opts)
        async with CameraPoller(cfg, ports=PortStates()) as poller:
            yield Rig(fleet, poller, poller.session(cfg.devices[1]), listing["id"])


async def poll_until(rig: Rig, predicate: Any, *, deadline_s: float = 10.0) -> CameraPollResult:
    """Poll until ``predicate(result)``; fail at the deadline (no fixed sleeps)."""
    end = time.monotonic() + deadline_s
    while True:
        result = await rig.poll()
        if predicate(result) or time.monotonic() > end:
            return result
        await asyncio.sleep(0.1)


async def test_healthy_camera_reports_every_field(rig: Rig) -> None:
    result = await rig.poll()
    h = health(result)
    assert (result.ok, result.reason, h["reason"], h["ok"]) == (True, "ok", "ok", 1)
    assert h["online"] == 1 and h["auth_ok"] == 1 and h["rtsp_ok"] == 1 and h["snapshot_ok"] == 1
    assert h["rtsp_status"] == 200 and h["rtsp_codec"] in ("H264", "H265")
    assert h["snapshot_bytes"] > 100 and h["rtt_ms"] > 0
    assert abs(h["clock_skew_s"]) <= 1
    assert h["bitrate_kbps"] > 0 and h["fps"] > 0 and h["width"] >= 640 and h["height"] >= 360
    # inventory rides on the first poll as fields, never as tags
    assert h["manufacturer"] and h["model"] and h["firmware"] and h["serial"]
    assert all(r.tags.keys() <= {"vendor"} for r in result.readings)
    status = next(r.fields for r in result.readings if r.measurement == "device_status")
    assert status["up"] == 1 and status["reason"] == "ok"
    assert "manufacturer" not in health(await rig.poll())  # inventory is low-rate


@pytest.mark.parametrize(("knobs", "reason", "fields"), [
    ({"auth_fail": True}, "auth", {"online": 1, "auth_ok": 0, "error": "auth"}),
    ({"bad_xml": True}, "bad_xml", {"online": 1, "error": "bad_xml"}),
    ({"no_snapshot_uri": True}, "no_snapshot_uri", {"snapshot_ok": 0, "rtsp_ok": 1}),
    ({"rtsp": "401"}, "rtsp_401", {"rtsp_ok": 0, "rtsp_status": 401, "snapshot_ok": 1}),
    ({"rtsp": "404"}, "rtsp_404", {"rtsp_ok": 0, "rtsp_status": 404}),
    ({"rtsp": "timeout"}, "rtsp_timeout", {"rtsp_ok": 0, "snapshot_ok": 1}),
    ({"offline": True}, "offline", {"online": 0, "error": "refused"}),
])
async def test_fault_knob_gives_its_reason(rig: Rig, knobs: dict[str, Any], reason: str,
                                           fields: dict[str, Any]) -> None:
    assert (await rig.poll()).ok
    await rig.knobs(**knobs)
    result = await rig.poll()
    h = health(result)
    assert (result.ok, result.reason, h["reason"]) == (False, reason, reason), result.detail
    assert {k: h.get(k) for k in fields} == fields
    await rig.knobs(**{k: False if v is True else "ok" for k, v in knobs.items()})
    assert (await rig.poll()).reason == "ok"  # and it recovers


@pytest.mark.parametrize("rig", [{"timeout": 1.0}], indirect=True)
async def test_slow_camera_is_a_timeout(rig: Rig) -> None:
    await rig.knobs(slow=1.5)
    result = await rig.poll()
    assert (result.reason, result.error_class, health(result)["online"]) == ("offline", "timeout", 0)


async def test_clock_skew_of_37s_is_reported_as_37(rig: Rig) -> None:
    await rig.knobs(clock_skew=37)
    result = await rig.poll()
    assert health(result)["clock_skew_s"] == pytest.approx(37, abs=1)
    await rig.knobs(clock_skew=-37)
    assert health(await rig.poll())["clock_skew_s"] == pytest.approx(-37, abs=1)


async def test_skew_that_breaks_auth_is_named_and_worked_around(rig: Rig) -> None:
    await rig.knobs(clock_skew=3600)  # far outside the camera's WS-Security window
    result = await rig.poll()
    h = health(result)
    assert (result.ok, result.reason) == (False, "clock_skew_auth")
    assert h["clock_skew_s"] == pytest.approx(3600, abs=1)
    # both facts: auth failed at our clock, and works at the camera's, so the rest was checked
    assert (h["clock_skew_auth"], h["auth_ok"], h["time_offset_applied"]) == (1, 1, 1)
    assert h["rtsp_ok"] == 1 and h["snapshot_ok"] == 1
    assert (await rig.poll()).reason == "clock_skew_auth"  # sticky while the clock is off
    await rig.knobs(clock_skew=0)
    h = health(await rig.poll())
    assert (h["reason"], h["clock_skew_auth"], h["time_offset_applied"]) == ("ok", 0, 0)


async def test_frozen_image_is_detected_after_three_same_snapshots(rig: Rig) -> None:
    await rig.knobs(frozen=True)
    reasons = [(await rig.poll()).reason for _ in range(4)]
    # the first frozen frame may still differ from the one before; by the fourth poll it is frozen
    assert reasons[-1] == "frozen" and reasons[0] == "ok"
    assert health(await rig.poll())["same_snapshots"] >= 3
    await rig.knobs(frozen=False)
    assert (await rig.poll()).reason == "ok"


async def test_events_start_after_first_good_poll_and_are_counted(rig: Rig) -> None:
    first = await rig.poll()
    assert not any(r.measurement == "camera_event" for r in first.readings)  # not on the first poll
    second = await rig.poll()
    assert events(second)["subscribed"] == 1
    await rig.knobs(emit_event=["tamper", "video_loss", "storage_failure", "tamper"])
    ev = events(await rig.poll())
    assert (ev["tamper"], ev["video_loss"], ev["storage_failure"]) == (2, 1, 1)
    assert ev["last_topic"] == "tns1:RuleEngine/TamperDetector/Tamper"
    assert events(await rig.poll())["tamper"] == 0  # counts are per reading


async def test_reboot_reestablishes_the_event_subscription(rig: Rig) -> None:
    await rig.poll()
    assert events(await rig.poll())["subscriptions"] == 1
    await rig.knobs(reboot=0.5)
    result = await poll_until(rig, lambda r: r.ok and events(r).get("resubscriptions", 0) >= 1)
    ev = events(result)
    assert (ev["subscribed"], ev["subscriptions"], ev["resubscriptions"]) == (1, 2, 1)
    await rig.knobs(emit_event="video_loss")
    assert events(await rig.poll())["video_loss"] == 1  # the new subscription delivers


async def test_subscription_is_renewed_before_it_expires(rig: Rig) -> None:
    await rig.poll()
    await rig.poll()
    pullpoint = rig.cam.state.events
    assert pullpoint is not None
    pullpoint.expires_at = time.monotonic() + 5  # as if most of its lifetime had passed
    await rig.knobs(emit_event="storage_failure")
    ev = events(await rig.poll())
    assert (ev["renewals"], ev["subscriptions"], ev["storage_failure"]) == (1, 1, 1)
    assert pullpoint.expires_at - time.monotonic() > 30  # the camera granted a new lifetime


async def test_switch_port_explains_an_offline_camera(rig: Rig) -> None:
    ports = rig.poller.ports
    await rig.knobs(offline=True)
    ports.ingest([Reading(device="sw-1", kind="switch", measurement="if_traffic", time_ms=1,
                          fields={"oper_up": 0}, tags={"if_name": "Gi0/5"})])
    assert (await rig.poll()).reason == "port_down"
    ports.ingest([Reading(device="sw-1", kind="switch", measurement="poe", time_ms=1,
                          fields={"delivering": 0, "power_w": 0.0}, tags={"if_name": "Gi0/5"})])
    result = await rig.poll()
    assert result.reason == "poe_lost"
    assert (health(result)["feed_oper_up"], health(result)["feed_poe_delivering"]) == (0, 0)
    # device_status says it too: the shipped poe_lost rule reads it, and device_down leaves it out.
    status = next(r for r in result.readings if r.measurement == "device_status")
    assert (status.fields["up"], status.fields["reason"]) == (0, "poe_lost")
    await rig.knobs(offline=False)
    assert (await rig.poll()).reason == "ok"  # a camera that answers is judged on its answers


@dataclass(frozen=True)
class Pong:
    reachable: bool
    rtt_ms: float | None


async def test_camera_alive_to_ping_but_not_onvif(rig: Rig) -> None:
    async def ping(host: str) -> Pong:  # stands in for agent/icmp.py's Pinger.ping
        assert host == "127.0.0.1"
        return Pong(True, 0.05)

    rig.poller.icmp = ping
    await rig.knobs(offline=True)
    result = await rig.poll()
    status = next(r.fields for r in result.readings if r.measurement == "device_status")
    assert (result.reason, health(result)["icmp_ok"], health(result)["online"]) == ("offline", 1, 0)
    assert (status["up"], status["reason"], status["icmp_up"]) == (1, "onvif_refused", 1)


@pytest.mark.parametrize("rig", [{"brand": "dahua"}, {"brand": "kbvision"}], indirect=True)
async def test_other_brands_poll_clean(rig: Rig) -> None:
    result = await rig.poll()
    assert result.ok, result.detail
    assert health(result)["manufacturer"]


async def test_check_row_names_the_error_class(rig: Rig) -> None:
    await rig.knobs(offline=True)
    row = check_row(await rig.poll())
    assert (row.protocol, row.status) == ("onvif", "offline (refused)")
