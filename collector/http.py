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
import ssl
from collections.abc import Callable, Iterable, MutableMapping
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


# On every response that does not set its own (the signed-link page does): the pages may load
# nothing but this server's own files, no inline script, and nothing may frame them. Static
# files are cacheable; everything else, the API first, is no-store.
SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}

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
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:  # a redirect, a 404: a response too
            _secure(request, exc.headers)
            raise
        if not response.prepared:  # a stream (the event feed) has sent its headers already
            _secure(request, response.headers)
        return response

    return auth


def _secure(request: web.Request, headers: MutableMapping[str, str]) -> None:
    """Add what a response has not set of :data:`SECURITY_HEADERS`, ``no-store`` but for static
    files, and HSTS over our own TLS listener (browsers keep to https from then on)."""
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def server_tls(hcfg: HttpSection) -> ssl.SSLContext | None:
    """The TLS context of ``http.tls_cert``/``tls_key`` (TLS 1.2 or later), or None for plain
    HTTP. StartupError names the file that cannot be read or does not match."""
    if hcfg.tls_cert is None or hcfg.tls_key is None:
        return None
    for path in (hcfg.tls_cert, hcfg.tls_key):
        if not path.is_file():  # ssl's own error names no file
            raise StartupError(f"http.tls: {path}: no such file")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(hcfg.tls_cert, hcfg.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise StartupError(
            f"http.tls: cannot use {hcfg.tls_cert} with {hcfg.tls_key}: {getattr(exc, 'reason', None) or exc}"
        ) from None
    return ctx


def base_url(hcfg: HttpSection) -> str:
    """Where this server is reached: ``http.external_url``, else its own listener's URL."""
    scheme = "https" if hcfg.tls_cert else "http"
    host = f"[{hcfg.host}]" if ":" in hcfg.host else hcfg.host
    return hcfg.external_url or f"{scheme}://{host}:{hcfg.port}"


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
    """Listen on ``http.host:http.port``, over TLS when ``http.tls_cert`` is set; StartupError
    when the port cannot be had or the certificate cannot be used."""
    tls = server_tls(hcfg)
    app = make_app(hcfg, health=health, routes=routes)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, hcfg.host, hcfg.port, ssl_context=tls)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"http: cannot listen on {hcfg.host}:{hcfg.port}: {exc.strerror or exc}") from None
    scheme = "https" if tls else "http"
    log.info("http: serving on %s://%s:%d%s", scheme, hcfg.host, hcfg.port, " (token required)" if hcfg.token else "")
    return runner
