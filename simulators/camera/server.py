"""One camera's HTTP server (SOAP services and snapshot) and its lifecycle; ``CameraFleet`` runs
many of them in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import Any

from aiohttp import web

from wardwatch.simulators.camera import garbage, jpeg, services, soap
from wardwatch.simulators.camera.brands import snapshot_path
from wardwatch.simulators.camera.digest import DigestAuth
from wardwatch.simulators.camera.rtsp import RtspServer
from wardwatch.simulators.camera.state import Camera, event_kind

log = logging.getLogger(__name__)
MAX_BODY = 256 * 1024
DEFAULT_REBOOT_DOWNTIME_S = 2.0


def _soap_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=soap.CONTENT_TYPE, charset="utf-8")


class CameraServer:
    """Serves one ``Camera``: ONVIF services and the snapshot over HTTP, and RTSP beside it."""

    def __init__(self, cam: Camera, *, rtsp_tls: ssl.SSLContext | None = None) -> None:
        self.cam = cam
        self.http_auth = DigestAuth(realm=cam.brand.realm, username=cam.username, password=cam.password)
        self.rtsp = RtspServer(cam, DigestAuth(realm=cam.brand.rtsp_realm, username=cam.username,
                                               password=cam.password, qop=False), tls=rtsp_tls)
        if rtsp_tls is not None:
            cam.rtsp_scheme = "rtsps"
        self._server: web.Server | None = None  # built in start(): it binds to the running loop
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None
        self._wakeup: asyncio.TimerHandle | None = None
        self._sync_lock = asyncio.Lock()
        self._service_paths = {"/onvif/device_service", cam.brand.media_path, cam.brand.events_path}
        self._snapshots = {snapshot_path(cam.brand, i) for i in range(len(cam.brand.streams))}

    # ---------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind both ports (ephemeral ones are read back and kept for restarts), then follow the knobs."""
        if self._runner is None:
            self._server = web.Server(self._handle, access_log=None, handler_cancellation=True)
            self._runner = web.ServerRunner(self._server, handle_signals=False, access_log=None)
            await self._runner.setup()
        async with self._sync_lock:
            await self._listen()
        await self.sync()

    async def _listen(self) -> None:
        if self._site is None and self._runner is not None:
            site = web.TCPSite(self._runner, self.cam.host, self.cam.onvif_port, backlog=128, reuse_address=True)
            await site.start()
            self._site = site
            if self.cam.onvif_port == 0:
                self.cam.onvif_port = self._runner.addresses[-1][1]
        await self.rtsp.start()

    async def sync(self) -> None:
        """Listen when the camera is available, stop listening (connections refused) when not."""
        async with self._sync_lock:
            if self.cam.available():
                await self._listen()
                return
            if self._site is not None:
                await self._site.stop()
                self._site = None
            for conn in self._server.connections if self._server is not None else []:
                conn.force_close()
                if conn.transport is not None:  # requests in flight (a PullMessages long poll) die too
                    conn.transport.close()
            await self.rtsp.stop()
            if not self.cam.faults.offline:
                delay = max(self.cam.down_until - time.monotonic(), 0.0)
                if self._wakeup is not None:
                    self._wakeup.cancel()
                self._wakeup = asyncio.get_running_loop().call_later(delay + 0.01, self._schedule_sync)

    def _schedule_sync(self) -> None:
        self._wakeup = None
        task = asyncio.get_running_loop().create_task(self.sync())
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    async def stop(self) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        await self.rtsp.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._server = None
        self._site = None

    async def apply(self, changes: dict[str, Any]) -> None:
        """Set fault knobs; ``reboot`` (true or seconds of downtime) and ``emit_event`` (a name
        or a list of names) act once. Raises ValueError, changing nothing, on a bad value."""
        values = dict(changes)
        reboot = values.pop("reboot", None)
        emit = values.pop("emit_event", None)
        names = [] if emit is None else ([emit] if isinstance(emit, str) else emit)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("emit_event: a topic name or a list of them")
        for n in names:
            event_kind(n, self.cam.brand)
        downtime = None
        if reboot is not None and reboot is not False:
            if reboot is True:
                downtime = DEFAULT_REBOOT_DOWNTIME_S
            elif isinstance(reboot, int | float) and reboot >= 0:
                downtime = float(reboot)
            else:
                raise ValueError("reboot: true or a number of seconds of downtime")
        self.cam.faults.update(values)
        if downtime is not None:
            self.cam.reboot(downtime)
        for n in names:
            self.cam.emit(n)
        await self.sync()

    # ------------------------------------------------------------------------- http

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        cam = self.cam
        if not cam.available():
            return self._drop(request)
        if cam.faults.slow:
            await asyncio.sleep(cam.faults.slow)
            if not cam.available():
                return self._drop(request)
        path_qs = request.raw_path
        if request.method == "GET" and path_qs in self._snapshots:
            return await self._snapshot(request)
        if request.method != "POST":
            return web.Response(status=405 if request.path in self._service_paths else 404)
        is_subscription = path_qs in cam.subscriptions or path_qs.startswith(
            cam.brand.subscription_path.split("{", 1)[0])
        if request.path not in self._service_paths and not is_subscription:
            return web.Response(status=404)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        data = await request.read()
        response = await self._soap(data, path_qs, is_subscription)
        if not cam.available():
            return self._drop(request)
        return response

    def _drop(self, request: web.BaseRequest) -> web.StreamResponse:
        """What an unreachable camera does to a request already on the wire: close the socket."""
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=503)

    async def _soap(self, data: bytes, path_qs: str, is_subscription: bool) -> web.Response:
        cam = self.cam
        try:
            req = soap.parse(data)
            handler = (services.SUBSCRIPTION_OPERATIONS.get(req.operation) if is_subscription else None) or \
                services.OPERATIONS.get(req.operation)
            if handler is None:
                raise soap.action_not_supported(req.operation)
            if req.operation not in services.PRE_AUTH:
                if cam.faults.auth_fail:
                    raise soap.not_authorized()
                soap.check_username_token(req, username=cam.username, password=cam.password, now=cam.now(),
                                          window_s=cam.auth_window_s, nonces=cam.nonces)
            arg = path_qs if req.operation in services.SUBSCRIPTION_OPERATIONS else ""
            body = await handler(cam, req, arg)
        except soap.SoapFault as f:
            if cam.faults.billion_laughs:
                return _soap_response(garbage.billion_laughs(soap.fault_body(f)), f.status)
            return _soap_response(soap.fault(f), f.status)
        action = services.ACTIONS.get(req.operation)
        header = soap.wsa_header(action) if action else ""
        if cam.faults.event_garbage and req.operation == "PullMessages":
            cam.garbage_sent += 1
            spoilt = garbage.event_garbage(cam.garbage_sent, body)
            if spoilt is not None:
                return _soap_response(spoilt)
            body = body.replace("</tev:PullMessagesResponse>",
                                garbage.odd_messages(cam.garbage_sent) + "</tev:PullMessagesResponse>")
        if cam.faults.billion_laughs:
            return _soap_response(garbage.billion_laughs(body, header))
        payload = soap.envelope(body, header)
        if cam.faults.soap_garbage and req.operation not in services.PRE_AUTH:
            cam.garbage_sent += 1
            payload = garbage.soap_garbage(cam.garbage_sent, payload)
        elif cam.faults.bad_xml and req.operation not in services.PRE_AUTH:
            # What broken firmware sends: a body cut short, with a byte that is not UTF-8.
            payload = payload[: len(payload) // 2] + b"\xff\xfe<"
        return _soap_response(payload)

    async def _snapshot(self, request: web.BaseRequest) -> web.StreamResponse:
        cam = self.cam
        if cam.faults.no_snapshot_uri:
            return web.Response(status=404)
        header = request.headers.get("Authorization")
        if header and header.lower().startswith("basic"):
            cam.basic_received += 1
        if cam.faults.basic_only:
            verdict = self.http_auth.verify_basic(header)
            if cam.faults.auth_fail or verdict != "ok":
                return web.Response(status=401, headers={"WWW-Authenticate": self.http_auth.basic_challenge()},
                                    text="Unauthorized")
        else:
            verdict = self.http_auth.verify(request.method, header)
            if cam.faults.auth_fail or verdict != "ok":
                return web.Response(status=401, headers={"WWW-Authenticate": self.http_auth.challenge(
                    stale=verdict == "stale" and not cam.faults.auth_fail)}, text="Unauthorized")
        if cam.faults.snapshot_redirect:
            return web.Response(status=302, headers={"Location": cam.faults.snapshot_redirect})
        if cam.faults.snapshot_huge:
            return await self._huge_snapshot(request, cam.faults.snapshot_huge)
        if not cam.faults.frozen:
            cam.snapshots += 1
        frame = jpeg.snapshot(cam.snapshots, f"{cam.id} frame {cam.snapshots} reboots {cam.reboots}"
                              + ("" if cam.faults.frozen else f" at {soap.xs_datetime(cam.now())}"))
        return web.Response(body=frame, content_type="image/jpeg")


    async def _huge_snapshot(self, request: web.BaseRequest, size: int) -> web.StreamResponse:
        """A JPEG of ``size`` bytes, chunked (no Content-Length: the client learns the size only by
        reading), generated on the fly: one 64 KiB chunk is all the simulator holds."""
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        head = garbage.JPEG_HEAD
        filler = bytes(range(256)) * (garbage.CHUNK // 256)
        try:
            await resp.write(head)
            left = max(size - len(head), 0)
            while left > 0 and self.cam.available():
                n = min(left, len(filler))
                await resp.write(filler[:n])
                left -= n
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up, as it should on a snapshot this size
        return resp


_TASKS: set[asyncio.Task[None]] = set()


async def close_quietly(server: CameraServer) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        await server.stop()
