"""``CameraFleet``: many simulated cameras in one event loop, each on its own ports, with one
control endpoint and an optional WS-Discovery responder.

    async with CameraFleet(count=3, brand="mix", faults={"cam-002": {"clock_skew": 37}}) as fleet:
        for cam in fleet.listing(): ...            # id, host, onvif_port, rtsp_port, ...
        await fleet.apply("cam-001", {"rtsp": "401"})
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from wardwatch.simulators.camera.brands import brand_for
from wardwatch.simulators.camera.control import make_app
from wardwatch.simulators.camera.discovery import DiscoveryResponder
from wardwatch.simulators.camera.server import CameraServer
from wardwatch.simulators.camera.state import Camera, Faults

DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "Cam12345"
START_BATCH = 50


class CameraFleet:
    """``count`` cameras. Ports: ``base_port`` + 2i (ONVIF/HTTP) and + 2i + 1 (RTSP), or
    ephemeral ports when ``base_port`` is 0. ``host`` may contain ``{n}`` (1-based camera number)
    to give each camera its own loopback address, e.g. ``127.0.1.{n}``. ``faults`` maps a camera
    id, or ``*`` for all, to initial knobs. ``control_port`` None means no control endpoint, 0 an
    ephemeral one. ``discovery_interface`` starts a WS-Discovery responder joined on that address.
    ``rtsp_tls`` (a server ``ssl.SSLContext``) makes every camera's RTSP listener speak TLS and its
    GetStreamUri answer ``rtsps://``."""

    def __init__(self, *, count: int, host: str = "127.0.0.1", base_port: int = 0, brand: str = "mix",
                 username: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD, id_prefix: str = "cam",
                 faults: Mapping[str, Mapping[str, Any]] | None = None, control_host: str = "127.0.0.1",
                 control_port: int | None = None, discovery_interface: str | None = None,
                 discovery_port: int = 3702, rtsp_tls: ssl.SSLContext | None = None) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        self.username = username
        self.password = password
        self.servers: list[CameraServer] = []
        self._by_id: dict[str, CameraServer] = {}
        for i in range(count):
            cam = Camera(id=f"{id_prefix}-{i + 1:03d}", brand=brand_for(brand, i), host=host.format(n=i + 1),
                         onvif_port=base_port + 2 * i if base_port else 0,
                         rtsp_port=base_port + 2 * i + 1 if base_port else 0,
                         username=username, password=password, index=i)
            server = CameraServer(cam, rtsp_tls=rtsp_tls)
            self.servers.append(server)
            self._by_id[cam.id] = server
        self._initial = {k: dict(v) for k, v in (faults or {}).items()}
        unknown = set(self._initial) - set(self._by_id) - {"*"}
        if unknown:
            raise ValueError(f"faults for unknown cameras: {', '.join(sorted(unknown))}")
        for key, knobs in self._initial.items():
            one_shot = {"reboot", "emit_event"} & set(knobs)
            if one_shot:
                raise ValueError(f"{key}: {', '.join(sorted(one_shot))} act once; send them to the control endpoint")
            try:
                Faults().update(knobs)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        self._control_host = control_host
        self._control_port = control_port
        self._control: web.AppRunner | None = None
        self.control_url: str | None = None
        self._discovery_interface = discovery_interface
        self._discovery_port = discovery_port
        self.discovery: DiscoveryResponder | None = None

    def get(self, camera_id: str) -> CameraServer | None:
        return self._by_id.get(camera_id)

    def __getitem__(self, camera_id: str) -> CameraServer:
        return self._by_id[camera_id]

    async def apply(self, camera_id: str, changes: Mapping[str, Any]) -> None:
        await self._by_id[camera_id].apply(dict(changes))

    async def apply_all(self, changes: Mapping[str, Any]) -> None:
        for server in self.servers:
            await server.apply(dict(changes))

    async def start(self) -> None:
        for server in self.servers:
            for key in ("*", server.cam.id):
                if key in self._initial:
                    server.cam.faults.update(self._initial[key])
        try:
            for i in range(0, len(self.servers), START_BATCH):
                await asyncio.gather(*(self._start_one(s) for s in self.servers[i:i + START_BATCH]))
            if self._control_port is not None:
                self._control = web.AppRunner(make_app(self), handle_signals=False, access_log=None)
                await self._control.setup()
                site = web.TCPSite(self._control, self._control_host, self._control_port)
                await site.start()
                port = self._control.addresses[0][1]
                self.control_url = f"http://{self._control_host}:{port}"
            if self._discovery_interface is not None:
                self.discovery = DiscoveryResponder(interface=self._discovery_interface, port=self._discovery_port,
                                                    cameras=lambda: [s.cam for s in self.servers])
                await self.discovery.start()
        except BaseException:
            await self.stop()
            raise

    async def _start_one(self, server: CameraServer) -> None:
        await server.start()

    async def stop(self) -> None:
        if self.discovery is not None:
            await self.discovery.stop()
            self.discovery = None
        if self._control is not None:
            await self._control.cleanup()
            self._control = None
        for i in range(0, len(self.servers), START_BATCH):
            await asyncio.gather(*(s.stop() for s in self.servers[i:i + START_BATCH]), return_exceptions=True)

    async def __aenter__(self) -> CameraFleet:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def listing(self) -> list[dict[str, Any]]:
        """What a test or the demo needs to build agent configs, one dict per camera."""
        return [{"id": s.cam.id, "brand": s.cam.brand.key, "host": s.cam.host, "onvif_port": s.cam.onvif_port,
                 "rtsp_port": s.cam.rtsp_port, "rtsp_scheme": s.cam.rtsp_scheme,
                 "username": self.username, "password": self.password,
                 "device_service": f"http://{s.cam.host}:{s.cam.onvif_port}/onvif/device_service"}
                for s in self.servers]
