"""Fetch a camera snapshot over HTTP with Digest (or Basic) auth, and fingerprint it.

One aiohttp session serves every camera of the agent. The image is hashed, never kept:
the hash is what frozen-image detection compares from poll to poll.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from wardwatch.agent.camera.digest import DigestError, authorization, parse_challenges, pick

MAX_BYTES = 16 * 1024 * 1024
JPEG_MAGIC = b"\xff\xd8"


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    ok: bool
    status: int  # HTTP status; 0 when there was none
    size: int  # bytes of image
    ms: float
    # ok, snapshot_401, snapshot_http_<status>, snapshot_timeout, snapshot_refused,
    # snapshot_not_image, snapshot_error
    reason: str
    detail: str = ""
    digest: str | None = None  # blake2b of the image, for frozen detection


def fingerprint(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


async def fetch(session: aiohttp.ClientSession, url: str, *, username: str | None, password: str | None,
                time_limit: float) -> SnapshotResult:
    """GET ``url``, answering one auth challenge. Never raises for a device's fault."""
    started = time.monotonic()

    def done(ok: bool, status: int, reason: str, detail: str = "", data: bytes = b"") -> SnapshotResult:
        return SnapshotResult(ok=ok, status=status, size=len(data), ms=round((time.monotonic() - started) * 1000, 1),
                              reason=reason, detail=detail, digest=fingerprint(data) if ok else None)

    try:
        target = URL(url)
    except ValueError as exc:
        return done(False, 0, "snapshot_error", f"bad snapshot URI: {exc}")
    if target.user is not None:  # credentials in the URI win; never send them as URL userinfo
        username, password = target.user, target.password or ""
        target = target.with_user(None)
    status = 0
    try:
        async with asyncio.timeout(time_limit):
            status, headers, body = await _get(session, target, {})
            if status == 401 and username is not None and password is not None:
                challenge = pick(parse_challenges(headers))
                if challenge is not None:
                    uri = target.raw_path_qs
                    auth = authorization(challenge, method="GET", uri=uri, username=username, password=password)
                    status, headers, body = await _get(session, target, {"Authorization": auth})
    except TimeoutError:
        return done(False, status, "snapshot_timeout", f"no image within {time_limit:g}s")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            return done(False, status, "snapshot_refused", f"{target.host}:{target.port} refused the connection")
        return done(False, status, "snapshot_error", str(exc))
    except (aiohttp.ClientError, DigestError, ValueError) as exc:
        return done(False, status, "snapshot_error", f"{type(exc).__name__}: {exc}")
    if status == 401:
        return done(False, status, "snapshot_401", "the credentials were refused")
    if status != 200:
        return done(False, status, f"snapshot_http_{status}", f"HTTP {status}")
    if not body.startswith(JPEG_MAGIC) and not body.startswith(b"\x89PNG"):
        return done(False, status, "snapshot_not_image", f"{len(body)} bytes that are not a JPEG or PNG image")
    return done(True, status, "ok", "", body)


async def _get(session: aiohttp.ClientSession, url: URL, headers: dict[str, str]) -> tuple[int, list[str], bytes]:
    async with session.get(url, headers=headers, allow_redirects=False) as resp:
        challenges = resp.headers.getall("WWW-Authenticate", [])
        if resp.status != 200:
            return resp.status, challenges, b""
        length = resp.content_length
        if length is not None and length > MAX_BYTES:
            raise ValueError(f"image of {length} bytes is over the {MAX_BYTES}-byte cap")
        body = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > MAX_BYTES:
                raise ValueError(f"image over the {MAX_BYTES}-byte cap")
        return resp.status, challenges, bytes(body)
