"""The fleet's control endpoint (one per process):

GET  /cameras                  every camera: id, brand, ports, faults, uptime, subscriptions
GET  /cameras/{id}             one camera
POST /cameras/{id}/faults      JSON object of knobs, e.g. {"clock_skew": 37, "rtsp": "401", "reboot": true}
POST /faults                   the same knobs for every camera
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from wardwatch.simulators.camera.fleet import CameraFleet

FLEET: web.AppKey[CameraFleet] = web.AppKey("fleet")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "body is not JSON")
    if not isinstance(data, dict):
        return _error(400, "a JSON object of fault knobs expected")
    return data


async def list_cameras(request: web.Request) -> web.Response:
    return web.json_response([s.cam.describe() for s in request.app[FLEET].servers])


async def get_camera(request: web.Request) -> web.Response:
    server = request.app[FLEET].get(request.match_info["id"])
    if server is None:
        return _error(404, f"no camera {request.match_info['id']!r}")
    return web.json_response(server.cam.describe())


async def set_faults(request: web.Request) -> web.Response:
    server = request.app[FLEET].get(request.match_info["id"])
    if server is None:
        return _error(404, f"no camera {request.match_info['id']!r}")
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    try:
        await server.apply(body)
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response(server.cam.describe())


async def set_all_faults(request: web.Request) -> web.Response:
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    try:
        await request.app[FLEET].apply_all(body)
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response([s.cam.describe() for s in request.app[FLEET].servers])


def make_app(fleet: CameraFleet) -> web.Application:
    app = web.Application()
    app[FLEET] = fleet
    app.router.add_get("/cameras", list_cameras)
    app.router.add_get("/cameras/{id}", get_camera)
    app.router.add_post("/cameras/{id}/faults", set_faults)
    app.router.add_post("/faults", set_all_faults)
    return app
