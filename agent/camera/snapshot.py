"""Fetch a camera snapshot over HTTP with Digest (or Basic) auth, and fingerprint it.

One HTTP client (agent/camera/http.py, connections kept alive between polls) serves every
camera of the agent. The image is hashed while it
streams in, 64 KiB at a time, and never kept: the hash is what frozen-image detection
compares from poll to poll, so a poll holds one chunk of the image, whatever its size.

A snapshot over :data:`MAX_BYTES` (16 MiB; a 4K JPEG is 1-3 MB) is not a snapshot: the
GET stops there, before or while reading, and the poll reports ``snapshot_failed`` with
``snapshot_error=snapshot_too_large``. Hashing only the first N bytes instead would let
a camera whose picture changes past the first N bytes look frozen, so there is no
partial hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from wardwatch.agent.camera.digest import DigestError, authorization, parse_challenges, pick
from wardwatch.agent.camera.http import BodyTooLarge, HttpClient
from wardwatch.agent.camera.rtsp import tls_context
from wardwatch.agent.camera.trust import BASIC_REFUSED, basic_allowed, offhost, redact, same_host
from wardwatch.agent.core.text import MAX_FIELD, clean

MAX_BYTES = 16 * 1024 * 1024
CHUNK = 64 * 1024
JPEG_MAGIC = b"\xff\xd8"
PNG_MAGIC = b"\x89PNG"
MAX_CHALLENGES = 8
_AGENT = b"User-Agent: wardwatch\r\n"


class SnapshotTooLarge(Exception):
    """The image is over MAX_BYTES (said by Content-Length, or found while reading)."""


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    ok: bool
    status: int  # HTTP status; 0 when there was none
    size: int  # bytes of image (read so far, when it failed while reading)
    ms: float
    # ok, snapshot_401, snapshot_http_<status>, snapshot_timeout, snapshot_refused,
    # snapshot_not_image, snapshot_too_large, snapshot_offhost, snapshot_basic_refused, snapshot_error
    reason: str
    detail: str = ""
    digest: str | None = None  # blake2b of the image, for frozen detection


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    challenges: list[str]
    size: int = 0
    head: bytes = b""  # the first bytes, for the image check
    digest: str | None = None
    location: str | None = None  # a redirect's Location


@dataclass(frozen=True, slots=True)
class URL:
    """An http(s) URI as the snapshot needs it, from urllib.parse (no yarl in the agent):
    the host without brackets, the port (the scheme's default when absent), the userinfo
    percent-decoded, and the text without userinfo for joins and requests."""

    scheme: str
    host: str | None
    port: int | None
    user: str | None
    password: str | None
    raw_path_qs: str
    text: str  # the URI without its userinfo

    @classmethod
    def parse(cls, text: str) -> URL:
        """Raises ValueError for what urllib cannot split (a port out of range, a bad IPv6 host)."""
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        explicit = parts.port
        port = explicit or {"http": 80, "https": 443}.get(scheme)
        host = parts.hostname
        netloc = (f"[{host}]" if host and ":" in host else host or "") + (f":{explicit}" if explicit else "")
        path_qs = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(scheme, host, port, user, password, path_qs, f"{scheme}://{netloc}{path_qs}")

    def join(self, location: str) -> URL:
        return URL.parse(urljoin(self.text, location))


def fingerprint(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def fetch(session: HttpClient, url: str, *, username: str | None, password: str | None,
                time_limit: float, tls: ssl.SSLContext | None = None, camera_host: str | None = None,
                allow_basic: bool = False) -> SnapshotResult:
    """GET ``url``, answering one auth challenge. Never raises for a device's fault.

    ``tls`` is the context for an https snapshot URI (None: the session's default).
    ``camera_host`` (the device's configured host): a URI, or a redirect, to any other host
    is not followed (``snapshot_offhost``), so the camera's credentials never leave it
    (agent/camera/trust.py). Basic goes only over https unless ``allow_basic``
    (``snapshot_basic_refused`` otherwise)."""
    started = time.monotonic()

    def done(ok: bool, status: int, reason: str, detail: str = "", size: int = 0,
             digest: str | None = None) -> SnapshotResult:
        return SnapshotResult(ok=ok, status=status, size=size, ms=round((time.monotonic() - started) * 1000, 1),
                              reason=reason, detail=clean(detail, limit=MAX_FIELD), digest=digest if ok else None)

    try:
        target = URL.parse(url)
    except (ValueError, TypeError) as exc:
        return done(False, 0, "snapshot_error", f"bad snapshot URI: {exc}")
    if target.scheme not in ("http", "https") or not target.host:
        return done(False, 0, "snapshot_error", f"not an http(s) snapshot URI: {clean(redact(url), limit=80)!r}")
    trusted = camera_host if camera_host is not None else target.host
    if not same_host(target.host, trusted):
        return done(False, 0, "snapshot_offhost", offhost("the snapshot URI", target.host, trusted))
    if target.user is not None:  # credentials in the URI win; never send them as URL userinfo
        username, password = target.user, target.password or ""
    status = 0
    try:
        async with asyncio.timeout(time_limit):
            for _hop in range(MAX_REDIRECTS + 1):
                ans = await _get(session, target, {}, tls)
                status = ans.status
                if ans.status == 401 and username is not None and password is not None:
                    challenge = pick(parse_challenges(ans.challenges[:MAX_CHALLENGES]))
                    if challenge is not None and challenge.scheme == "basic" and not basic_allowed(
                            target.scheme, allow_basic):
                        return done(False, status, "snapshot_basic_refused",
                                    BASIC_REFUSED.format(scheme=target.scheme) + " (no credentials sent)")
                    if challenge is not None:
                        uri = target.raw_path_qs
                        auth = authorization(challenge, method="GET", uri=uri, username=username, password=password)
                        ans = await _get(session, target, {"Authorization": auth}, tls)
                        status = ans.status
                if ans.status not in REDIRECTS or not ans.location:
                    break
                # A redirect: followed on the camera's own host only, and challenged afresh there.
                try:
                    nxt = target.join(ans.location)
                except (ValueError, TypeError):
                    return done(False, status, "snapshot_error", "an unusable redirect Location")
                if nxt.scheme not in ("http", "https") or not same_host(nxt.host, trusted):
                    return done(False, status, "snapshot_offhost", offhost("the snapshot redirect", nxt.host, trusted))
                target = nxt
            else:
                return done(False, status, "snapshot_error", f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError:
        return done(False, status, "snapshot_timeout", f"no image within {time_limit:g}s")
    except SnapshotTooLarge as exc:
        return done(False, status, "snapshot_too_large", f"too large: {exc}")
    except ConnectionRefusedError:
        return done(False, status, "snapshot_refused", f"{target.host}:{target.port} refused the connection")
    except ssl.SSLError as exc:  # before OSError, of which it is one
        return done(False, status, "snapshot_error", f"TLS: {exc.reason or exc}")
    except (OSError, DigestError, ValueError) as exc:
        # ValueError: urllib refuses some URIs (a port out of range, a bad host) this way; NotHttp
        # is one too (an answer that is not HTTP); Disconnected is an OSError
        return done(False, status, "snapshot_error", f"{type(exc).__name__}: {exc}")
    if status == 401:
        return done(False, status, "snapshot_401", "the credentials were refused")
    if status != 200:
        return done(False, status, f"snapshot_http_{status}", f"HTTP {status}")
    if not ans.head.startswith(JPEG_MAGIC) and not ans.head.startswith(PNG_MAGIC):
        return done(False, status, "snapshot_not_image", f"{ans.size} bytes that are not a JPEG or PNG image")
    return done(True, status, "ok", "", ans.size, ans.digest)


async def _get(client: HttpClient, url: URL, headers: dict[str, str], tls: ssl.SSLContext | None) -> _Answer:
    """One GET; a 200's body is hashed as it streams in, never held."""
    h = hashlib.blake2b(digest_size=16)
    first = bytearray()

    def sink(piece: bytes) -> None:
        if len(first) < 8:
            first.extend(piece[: 8 - len(first)])
        h.update(piece)

    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + _AGENT
    scheme = url.scheme
    ctx = (tls or tls_context(None)) if scheme == "https" else None
    try:
        resp = await client.request("GET", scheme, url.host or "", url.port or (443 if scheme == "https" else 80),
                                    url.raw_path_qs, head=head, tls=ctx, max_body=MAX_BYTES, sink=sink)
    except BodyTooLarge as exc:
        raise SnapshotTooLarge(str(exc)) from None
    if resp.status != 200:
        return _Answer(resp.status, resp.all("www-authenticate"), location=resp.header("location"))
    return _Answer(resp.status, [], resp.size, bytes(first), h.hexdigest())
