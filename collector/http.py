"""The collector's HTTP server: ``/healthz`` open, everything else behind ``http.token``.

Shared by ``wardwatch-collector run`` (health, and the alert API when it runs the alert
engine) and ``wardwatch-collector alerts`` (the engine alone). Signed acknowledgement
links (``/ack/...``) carry their own credential, the signature, so they need no token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

from aiohttp import web

from wardwatch.collector.config import HttpSection
from wardwatch.collector.source import StartupError

log = logging.getLogger(__name__)

OPEN_PATHS: Final = ("/healthz",)
OPEN_PREFIXES: Final = ("/ack/",)


def _auth(hcfg: HttpSection) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        token = hcfg.token
        path = request.path
        if token is not None and path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES):
            given = request.headers.get("Authorization", "")
            expected = f"Bearer {token.get_secret_value()}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return web.json_response(
                    {"error": "missing or wrong bearer token"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="wardwatch"'},
                )
        response: web.StreamResponse = await handler(request)
        return response

    return auth


async def start_http(
    hcfg: HttpSection, *, health: Callable[[], dict[str, Any]], routes: Iterable[web.RouteDef] = ()
) -> web.AppRunner:
    """Listen on ``http.host:http.port``; StartupError when the port cannot be had."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(health())

    app = web.Application(middlewares=[_auth(hcfg)])
    app.router.add_get("/healthz", healthz)
    app.add_routes(list(routes))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, hcfg.host, hcfg.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"http: cannot listen on {hcfg.host}:{hcfg.port}: {exc.strerror or exc}") from None
    log.info("http: serving on http://%s:%d%s", hcfg.host, hcfg.port, " (token required)" if hcfg.token else "")
    return runner
