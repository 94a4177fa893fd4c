"""Login, the session cookie and CSRF for the dashboard (docs/web.md, "Login and CSRF").

The session cookie ``ww_session`` is ``<sid>.<expiry s>.<HMAC>``, signed with a key derived
from ``http.token``: it survives a collector restart, and changing the token ends every
session. ``POST /logout`` revokes its sid (kept in memory until the cookie would expire).
The CSRF token is an HMAC of the sid under the same key, so it needs no storage either.

Every comparison of a secret is ``hmac.compare_digest``. Failed logins are limited per
client address: :data:`FAILS_PER_WINDOW` in :data:`FAIL_WINDOW_S`, then 429 until the
oldest failure leaves the window.

Without ``http.token`` (only allowed on a loopback address) there is nothing to log in to:
the middleware lets everything through and ``/login`` redirects to ``/``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict, deque
from typing import Final

from aiohttp import web

from wardwatch.collector.config import HttpSection

log = logging.getLogger(__name__)

COOKIE: Final = "ww_session"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf"
SESSION_S: Final = 7 * 86400  # the page is left open all day; a week's cookie
FAILS_PER_WINDOW: Final = 9  # the tenth try within the window is refused, right token or not
FAIL_WINDOW_S: Final = 60.0
MAX_CLIENTS: Final = 10_000  # addresses tracked for the limit (oldest forgotten first)
MAX_REVOKED: Final = 100_000


class Auth:
    """The token, the signing key and the state that must live in the process."""

    def __init__(self, hcfg: HttpSection) -> None:
        self.token: bytes | None = hcfg.token.get_secret_value().encode() if hcfg.token is not None else None
        self.key = hmac.new(self.token or b"", b"wardwatch web session v1", hashlib.sha256).digest()
        self._revoked: dict[str, int] = {}  # sid -> expiry (s)
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def required(self) -> bool:
        return self.token is not None

    # tokens ---------------------------------------------------------------------

    def bearer_ok(self, header: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(header.encode(), b"Bearer " + self.token)

    def token_ok(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token)

    def _sign(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, *, now: float | None = None) -> tuple[str, str]:
        """-> (cookie value, sid)."""
        sid = secrets.token_urlsafe(24)
        expiry = int((now if now is not None else time.time()) + SESSION_S)
        body = f"{sid}.{expiry}"
        return f"{body}.{self._sign(body)}", sid

    def session(self, value: str, *, now: float | None = None) -> str | None:
        """The sid of a good, unexpired, unrevoked cookie value, else None."""
        parts = value.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        sid, expiry, sig = parts
        if not hmac.compare_digest(sig.encode(), self._sign(f"{sid}.{expiry}").encode()):
            return None
        if int(expiry) < (now if now is not None else time.time()) or sid in self._revoked:
            return None
        return sid

    def revoke(self, value: str) -> None:
        sid = self.session(value)
        if sid is None:
            return
        now = time.time()
        if len(self._revoked) >= MAX_REVOKED:
            self._revoked = {s: e for s, e in self._revoked.items() if e > now}
        self._revoked[sid] = int(value.split(".")[1])

    def csrf(self, sid: str) -> str:
        return self._sign(f"csrf:{sid}")

    def csrf_ok(self, sid: str, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.csrf(sid).encode())

    # the limit on failed logins -----------------------------------------------------

    def limited(self, client: str, *, now: float | None = None) -> float:
        """Seconds until ``client`` may try again (0: it may now)."""
        now = now if now is not None else time.monotonic()
        fails = self._fails.get(client)
        if fails is None:
            return 0.0
        while fails and now - fails[0] > FAIL_WINDOW_S:
            fails.popleft()
        if len(fails) < FAILS_PER_WINDOW:
            return 0.0
        return max(0.1, FAIL_WINDOW_S - (now - fails[0]))

    def failed(self, client: str, *, now: float | None = None) -> None:
        now = now if now is not None else time.monotonic()
        fails = self._fails.get(client)
        if fails is None:
            if len(self._fails) >= MAX_CLIENTS:
                self._fails.popitem(last=False)
            fails = self._fails[client] = deque(maxlen=FAILS_PER_WINDOW)
        self._fails.move_to_end(client)
        fails.append(now)


AUTH: Final = web.AppKey("ww_auth", Auth)
CSRF_TOKEN: Final = web.RequestKey("ww_csrf_token", str)  # set by the middleware ("" when none is needed)
AUTHED: Final = web.RequestKey("ww_authed", bool)


# Pages --------------------------------------------------------------------------


def safe_next(value: str) -> str:
    """Where to go after logging in: a path on this site only (no ``//host``, no scheme)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    return value[:2000]


def csrf_token(request: web.Request) -> str:
    """The CSRF token of this request's session ("" when there is none to protect)."""
    token: str = request.get(CSRF_TOKEN, "")
    return token


_PAGE_ERRORS: Final = {"wrong": "bad_token", "limited": "rate_limited"}


def login_page(request: web.Request, *, next_path: str, error: str = "", status: int = 200) -> web.Response:
    """The styled, translated form (pages.py, templates/login.html); the security headers
    come from the middleware (collector/http.py), as on every response."""
    from wardwatch.collector.web import pages  # here: the pages call back into this module

    response = pages.render_login(request, next=next_path, error=_PAGE_ERRORS.get(error, ""), status=status)
    if status == 429:
        response.headers["Retry-After"] = str(int(FAIL_WINDOW_S))
    return response


def client_of(request: web.Request) -> str:
    return request.remote or "?"


async def login_get(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH]
    next_path = safe_next(request.query.get("next", "/"))
    if not auth.required:
        raise web.HTTPSeeOther(next_path)
    return login_page(request, next_path=next_path)


async def login_post(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH]
    form = await request.post()
    next_path = safe_next(str(form.get("next", "/")))
    if not auth.required:
        raise web.HTTPSeeOther(next_path)
    client = client_of(request)
    if auth.limited(client) > 0:
        log.warning("web: login from %s refused: too many failed attempts", client)
        return login_page(request, next_path=next_path, error="limited", status=429)
    if not auth.token_ok(str(form.get("token", ""))):
        auth.failed(client)
        log.warning("web: failed login from %s", client)
        return login_page(request, next_path=next_path, error="wrong", status=401)
    value, _sid = auth.new_session()
    response = web.HTTPSeeOther(next_path)
    response.set_cookie(COOKIE, value, max_age=SESSION_S, path="/", httponly=True, samesite="Strict",
                        secure=request.secure)
    log.info("web: login from %s", client)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH]
    value = request.cookies.get(COOKIE)
    if value:
        auth.revoke(value)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def routes() -> list[web.RouteDef]:
    """``/login`` (open) and ``/logout`` (behind the session and CSRF); http.py adds them."""
    return [web.get("/login", login_get), web.post("/login", login_post), web.post("/logout", logout)]
