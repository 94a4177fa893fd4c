"""Hostile cameras (issue 14, "Camera traffic"): the camera's credentials never leave its host,
Basic never crosses plain http/rtsp unless allowed, and a billion-laughs WS-Discovery answer
costs no memory.

The simulator (real sockets on loopback) plays the hostile camera; the "other host" is a
credential harvester on 127.0.0.2 (simulators/camera/harvester.py) that records every request
and answers each with a Basic challenge, as a harvester would.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wardwatch.agent.camera import wsdiscovery
from wardwatch.agent.camera.poll import CameraPoller, CameraPollResult, CameraSession
from wardwatch.agent.core.config import AgentConfig
from wardwatch.simulators.camera import CameraFleet
from wardwatch.simulators.camera.discovery import DiscoveryResponder
from wardwatch.simulators.camera.harvester import Harvester
from wardwatch.simulators.camera.server import CameraServer


@dataclass
class Rig:
    fleet: CameraFleet
    server: CameraServer
    poller: CameraPoller
    cam: CameraSession
    harvester: Harvester
    listing: dict[str, Any]

    async def poll(self) -> CameraPollResult:
        return await self.poller.poll(self.cam)

    async def knobs(self, **changes: Any) -> None:
        await self.fleet.apply(self.listing["id"], changes)


def health(result: CameraPollResult) -> dict[str, Any]:
    return next(r.fields for r in result.readings if r.measurement == "camera_health")


def status(result: CameraPollResult) -> dict[str, Any]:
    return next(r.fields for r in result.readings if r.measurement == "device_status")


def config(tmp_path: Path, listing: dict[str, Any], *, allow_basic: bool = False) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"id": "agent-1", "ward": "ward-1"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"cam": {"onvif": {"username": listing["username"], "password": listing["password"],
                                   "allow_basic": allow_basic}}},
        "devices": [{"id": listing["id"], "kind": "camera", "host": listing["host"], "port": listing["onvif_port"],
                     "auth": "cam", "interval": 30, "timeout": 2.0, "icmp": False}],
    })


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    opts: dict[str, Any] = getattr(request, "param", {})
    async with CameraFleet(count=1, brand="hikvision") as fleet, Harvester(host="127.0.0.2") as harvester:
        listing = fleet.listing()[0]
        cfg = config(tmp_path, listing, **opts)
        async with CameraPoller(cfg) as poller:
            yield Rig(fleet, fleet[listing["id"]], poller, poller.session(cfg.devices[0]), harvester, listing)


def own_snapshot(listing: dict[str, Any], host: str) -> str:
    return f"http://{host}:{listing['onvif_port']}/onvif-http/snapshot?Profile_1"


async def test_snapshot_uri_on_another_host_gets_no_credentials(rig: Rig) -> None:
    await rig.knobs(snapshot_uri=rig.harvester.url())
    result = await rig.poll()
    h = health(result)
    assert rig.harvester.connections == 0 and rig.harvester.authorizations == []
    # ONVIF answered: the camera is up, and the technician is told what was not followed
    assert status(result)["up"] == 1 and h["online"] == 1 and h["auth_ok"] == 1 and h["rtsp_ok"] == 1
    assert (result.reason, h["snapshot_ok"], h["snapshot_error"]) == ("snapshot_failed", 0, "snapshot_offhost")
    assert "127.0.0.2" in result.detail and "not the camera (127.0.0.1)" in result.detail
    assert "not followed" in result.detail
    await rig.knobs(snapshot_uri=False)
    assert (await rig.poll()).ok


async def test_same_address_by_another_name_is_another_host(rig: Rig) -> None:
    # "localhost" is this very camera, but the configured host is 127.0.0.1: only that is trusted
    before = rig.server.cam.snapshots
    await rig.knobs(snapshot_uri=own_snapshot(rig.listing, "localhost"))
    result = await rig.poll()
    assert health(result)["snapshot_error"] == "snapshot_offhost", result.detail
    assert rig.server.cam.snapshots == before  # not fetched at all
    # another port on the configured host is the camera's own business
    await rig.knobs(snapshot_uri=own_snapshot(rig.listing, "127.0.0.1"))
    assert (await rig.poll()).ok


async def test_stream_uri_on_another_host_is_not_connected_to(rig: Rig) -> None:
    await rig.knobs(stream_uri=rig.harvester.url("rtsp", "/Streaming/Channels/101"))
    result = await rig.poll()
    h = health(result)
    assert rig.harvester.connections == 0
    assert status(result)["up"] == 1 and h["snapshot_ok"] == 1
    assert (result.reason, h["rtsp_ok"], h["rtsp_error"]) == ("rtsp_error", 0, "rtsp_offhost")
    assert "stream URI points at 127.0.0.2" in result.detail


async def test_snapshot_redirect_to_another_host_is_not_followed(rig: Rig) -> None:
    await rig.knobs(snapshot_redirect=rig.harvester.url())
    result = await rig.poll()
    h = health(result)
    assert rig.harvester.connections == 0
    assert (h["snapshot_error"], status(result)["up"]) == ("snapshot_offhost", 1)
    assert "redirect points at 127.0.0.2" in result.detail


async def test_service_addresses_on_another_host_are_asked_at_the_camera(tmp_path: Path) -> None:
    # XAddrs and the PullPoint's address name the harvester; the UsernameTokens still go to the camera
    async with Harvester(host="127.0.0.2") as harvester:
        hostile = {"*": {"xaddr_host": f"127.0.0.2:{harvester.port}"}}
        async with CameraFleet(count=1, brand="dahua", faults=hostile) as fleet:
            listing = fleet.listing()[0]
            cfg = config(tmp_path, listing)
            async with CameraPoller(cfg) as poller:
                cam = poller.session(cfg.devices[0])
                results = [await poller.poll(cam) for _ in range(3)]  # events (PullPoint) from the second
            subscriptions = fleet[listing["id"]].cam.next_subscription
    assert [r.ok for r in results] == [True] * 3, [r.detail for r in results]
    assert subscriptions >= 1  # the PullPoint was created at the camera
    assert harvester.connections == 0


async def test_basic_only_camera_gets_no_password_over_plain_http(rig: Rig) -> None:
    await rig.knobs(basic_only=True)
    result = await rig.poll()
    h = health(result)
    assert rig.server.cam.basic_received == 0  # neither the snapshot nor RTSP sent the password
    assert (result.ok, result.reason, status(result)["up"]) == (False, "auth", 1)
    assert (h["rtsp_error"], h["snapshot_error"]) == ("rtsp_basic_refused", "snapshot_basic_refused")
    assert "only Basic offered over plain" in result.detail and "allow_basic: true" in result.detail


@pytest.mark.parametrize("rig", [{"allow_basic": True}], indirect=True)
async def test_allow_basic_lets_a_basic_only_camera_work(rig: Rig) -> None:
    await rig.knobs(basic_only=True)
    result = await rig.poll()
    assert result.ok, result.detail
    assert rig.server.cam.basic_received == 2  # the snapshot GET and the RTSP DESCRIBE


# WS-Discovery ------------------------------------------------------------------------------


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux 4.0+)


async def test_billion_laughs_discovery_answer_is_refused_without_memory_growth() -> None:
    # One hostile camera (its ProbeMatches a billion-laughs document in UTF-8 and in UTF-16, where
    # no "<!DOCTYPE" bytes show) and one honest one, answering a real Probe over a UDP socket.
    async with CameraFleet(count=2, brand="mix", faults={"cam-001": {"discovery_laughs": True}}) as fleet:
        responder = DiscoveryResponder(interface="127.0.0.1", port=0, unicast=True,
                                       cameras=lambda: [s.cam for s in fleet.servers])
        await responder.start()
        try:
            reset_peak_rss()
            rss0 = peak_rss_kb()
            tracemalloc.start()
            try:
                result = await wsdiscovery.probe(wait=0.4, interface="127.0.0.1", port=responder.port,
                                                 group="127.0.0.1")
                _, traced_peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            rss_growth_mb = (peak_rss_kb() - rss0) / 1024
        finally:
            await responder.stop()
    honest = fleet.servers[1].cam
    assert [m.address for m in result.matches] == [f"urn:uuid:{honest.uuid}"]
    assert result.stats.dropped >= 2  # both bombs (each Probe is sent twice), refused
    assert traced_peak < 2 * 2**20, traced_peak  # Python-level allocations while probing
    assert rss_growth_mb < 8, rss_growth_mb  # expat expanding the UTF-16 bomb took 66 MB here


def test_billion_laughs_in_utf16_is_refused_by_the_parser() -> None:
    from wardwatch.simulators.camera import garbage
    from wardwatch.simulators.camera.discovery import probe_matches

    async def one() -> bytes:
        async with CameraFleet(count=1) as fleet:
            return probe_matches(fleet.servers[0].cam, "urn:uuid:x", 1)

    bomb = garbage.laughs_document(asyncio.run(one()), root="env:Envelope", utf16=True)
    assert b"<!DOCTYPE" not in bomb and b"<!ENTITY" not in bomb
    with pytest.raises(wsdiscovery.BadDatagram, match="DTD, entities or external references, refused"):
        wsdiscovery.parse_matches(bomb, source="127.0.0.1", relates_to=None)
