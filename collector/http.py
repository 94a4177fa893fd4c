"""The collector's HTTP server: ``/healthz`` open, everything else behind ``http.token``.

Shared by ``wardwatch-collector run`` (health, and the alert API and the dashboard when it
runs the alert engine) and ``wardwatch-collector alerts`` (the engine alone). Signed
acknowledgement links (``/ack/...``) carry their own credential, the signature, so they
need no token; nor do ``/login`` and the dashboard's static files.

A request is let in by either credential (docs/web.md, "Login and CSRF"):

- ``Authorization: Bearer <token>`` (scripts, the API): no CSRF check, as a browser never
  sends it on its own;
- the session cookie ``ww_session`` that ``POST /login`` sets (the pages): a request that
  changes state (POST, PUT, PATCH, DELETE) must also carry the session's CSRF token in the
  ``X-CSRF-Token`` header or a ``csrf`` form field, else 403.

Without either, an API call (``/api/...``) or a request that is not a GET gets 401 JSON,
and a page a redirect to ``/login?next=...``. With no ``http.token`` configured (allowed
only on a loopback address) everything is open and nothing is checked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web

from wardwatch.collector.config import HttpSection
from wardwatch.collector.source import StartupError
from wardwatch.collector.web import auth as web_auth

log = logging.getLogger(__name__)

OPEN_PATHS: Final = ("/healthz", "/login")
OPEN_PREFIXES: Final = ("/ack/", "/static/")
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")
# Set when the server shuts down, so that long-lived responses (the dashboard's event
# stream) end at once instead of holding the shutdown for its timeout.
STOPPING: Final = web.AppKey("ww_stopping", asyncio.Event)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


HEALTH_OPEN: Final = frozenset({"status", "mqtt_connected", "mqtt_subscribed", "influx_ok"})


def _authed(a: web_auth.Auth, request: web.Request) -> bool:
    bearer = request.headers.get("Authorization")
    if bearer is not None:
        return a.bearer_ok(bearer)
    return a.session(request.cookies.get(web_auth.COOKIE, "")) is not None


def _unauthorized(message: str) -> web.Response:
    return web.json_response({"error": message}, status=401, headers={"WWW-Authenticate": 'Bearer realm="wardwatch"'})


def _auth(a: web_auth.Auth) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        request[web_auth.CSRF_TOKEN] = ""
        request[web_auth.AUTHED] = not a.required
        path = request.path
        if a.required and not is_open(path):
            bearer = request.headers.get("Authorization")
            if bearer is not None:
                if not a.bearer_ok(bearer):
                    return _unauthorized("missing or wrong bearer token")
                request[web_auth.AUTHED] = True
            else:
                sid = a.session(request.cookies.get(web_auth.COOKIE, ""))
                if sid is None:
                    if path.startswith("/api/") or request.method not in SAFE_METHODS:
                        return _unauthorized("log in (POST /login) or send Authorization: Bearer <token>")
                    raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
                request[web_auth.CSRF_TOKEN] = a.csrf(sid)
                request[web_auth.AUTHED] = True
                if request.method not in SAFE_METHODS:
                    given = request.headers.get(web_auth.CSRF_HEADER, "")
                    if not given and request.content_type in FORM_TYPES:
                        given = str((await request.post()).get(web_auth.CSRF_FIELD, ""))
                    if not a.csrf_ok(sid, given):
                        return web.json_response({"error": "missing or wrong CSRF token (X-CSRF-Token)"}, status=403)
        response: web.StreamResponse = await handler(request)
        return response

    return auth


def make_app(hcfg: HttpSection, *, health: Callable[[], dict[str, Any]], routes: Iterable[web.RouteDef] = ()
             ) -> web.Application:  # fmt: skip
    """The application: the auth middleware, ``/healthz``, ``/login``, ``/logout``, ``routes``."""

    a = web_auth.Auth(hcfg)

    async def healthz(request: web.Request) -> web.Response:
        """Open, for load balancers and systemd: the status only. With the token (bearer or
        a session), every counter too: agent names and the ledger are not for anyone."""
        doc = health()
        if a.required and not _authed(a, request):
            doc = {k: v for k, v in doc.items() if k in HEALTH_OPEN}
        return web.json_response(doc)

    app = web.Application(middlewares=[_auth(a)])
    app[web_auth.AUTH] = a
    app[STOPPING] = asyncio.Event()

    async def stopping(app: web.Application) -> None:
        app[STOPPING].set()

    app.on_shutdown.append(stopping)
    app.router.add_get("/healthz", healthz)
    app.add_routes(web_auth.routes())
    app.add_routes(list(routes))
    return app


async def start_http(
    hcfg: HttpSection, *, health: Callable[[], dict[str, Any]], routes: Iterable[web.RouteDef] = ()
) -> web.AppRunner:
    """Listen on ``http.host:http.port``; StartupError when the port cannot be had."""
    app = make_app(hcfg, health=health, routes=routes)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, hcfg.host, hcfg.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"http: cannot listen on {hcfg.host}:{hcfg.port}: {exc.strerror or exc}") from None
    log.info("http: serving on http://%s:%d%s", hcfg.host, hcfg.port, " (token required)" if hcfg.token else "")
    return runner
