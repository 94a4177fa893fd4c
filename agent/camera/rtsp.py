"""A minimal RTSP client: OPTIONS then DESCRIBE (with Digest or Basic when challenged).

Enough to prove that a camera's stream answers and describes a video track, without
pulling media: one TCP connection, two or three requests, the SDP parsed for its
tracks. Everything is bounded by one timeout, and by sizes: a reply line is at most
:data:`MAX_LINE` bytes, a reply's head :data:`MAX_HEAD` bytes in :data:`MAX_HEADER_LINES`
lines, its body :data:`MAX_BODY` bytes. A camera that sends more is an ``rtsp_error``;
the client never holds more than about twice a line's cap.

``rtsps://`` URLs (RTSP over TLS, RFC 7826 section 19.2; default port 322) are spoken over
TLS, never in plaintext. Cameras ship self-signed certificates, so by default the
certificate is not checked (the stream is encrypted, not authenticated); with a CA file
(``camera.tls_ca``) it is verified, host name included. See docs/cameras.md.
"""

from __future__ import annotations

import asyncio
import errno
import math
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from wardwatch.agent.camera.digest import Challenge, DigestError, authorization, parse_challenges, pick
from wardwatch.agent.camera.trust import BASIC_REFUSED, basic_allowed, offhost, redact, same_host
from wardwatch.agent.core.text import MAX_FIELD, clean

USER_AGENT = "wardwatch"
MAX_LINE = 8 * 1024  # one status or header line
MAX_HEAD = 32 * 1024  # status line and headers together
MAX_HEADER_LINES = 100
MAX_BODY = 64 * 1024
MAX_URL = 2048
DEFAULT_PORT = 554
DEFAULT_TLS_PORT = 322


@dataclass(frozen=True, slots=True)
class SdpMedia:
    """One ``m=`` section of an SDP."""

    kind: str  # video, audio, application
    codec: str = ""  # H264, H265, JPEG, PCMA, ...
    clock_rate: int = 0
    control: str = ""
    fps: float | None = None


@dataclass(frozen=True, slots=True)
class RtspResult:
    ok: bool
    status: int  # the last RTSP status seen; 0 when there was none
    ms: float
    # ok, rtsp_401, rtsp_404, rtsp_<status>, rtsp_timeout, rtsp_refused, rtsp_error, rtsp_no_video,
    # rtsp_offhost, rtsp_basic_refused
    reason: str
    detail: str = ""
    media: tuple[SdpMedia, ...] = field(default_factory=tuple)

    @property
    def video(self) -> SdpMedia | None:
        return next((m for m in self.media if m.kind == "video"), None)


class RtspProtocolError(Exception):
    """A reply that is not RTSP, or one over the size caps."""


class BasicRefused(Exception):
    """The server offers only Basic over plaintext RTSP, and the profile does not allow it."""


_CONTEXTS: dict[str | None, ssl.SSLContext] = {}


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The client context for rtsps (and https snapshots): with ``ca_file``, the camera's
    certificate must chain to it and name the host; without, any certificate is taken
    (cameras on a LAN present self-signed ones), but the session is still TLS 1.2+.

    One context per CA file, shared by every camera that names it: a context that loads
    the system CAs costs ~0.8 MB, which was 50 MB for a ward's 60 cameras (issue 13). The
    one without a CA file loads none (it verifies nothing)."""
    ctx = _CONTEXTS.get(ca_file)
    if ctx is None:
        if ca_file is not None:
            ctx = ssl.create_default_context(cafile=ca_file)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _CONTEXTS[ca_file] = ctx
    return ctx


@dataclass(slots=True)
class _Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


def parse_sdp(text: str) -> tuple[SdpMedia, ...]:
    """The media sections of an SDP body (RFC 8866): kind, codec, clock rate, control, fps."""
    sections: list[dict[str, str]] = []
    rtpmap: dict[int, dict[str, str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        key, value = line[0], line[2:]
        if key == "m":
            parts = value.split()
            sections.append({"kind": parts[0] if parts else "", "fmt": parts[3] if len(parts) > 3 else ""})
            rtpmap[len(sections) - 1] = {}
        elif key == "a" and sections:
            name, _, arg = value.partition(":")
            cur = sections[-1]
            if name == "rtpmap":
                pt, _, enc = arg.partition(" ")
                rtpmap[len(sections) - 1][pt.strip()] = enc.strip()
            elif name == "control":
                cur["control"] = arg.strip()
            elif name in ("framerate", "x-framerate"):
                cur["fps"] = arg.strip()
    out: list[SdpMedia] = []
    for i, sec in enumerate(sections):
        enc = rtpmap[i].get(sec["fmt"], "")
        codec, _, rest = enc.partition("/")
        clock = rest.partition("/")[0]
        if not codec and sec["fmt"] == "26":
            codec, clock = "JPEG", "90000"  # static payload type 26 (RFC 3551)
        fps: float | None
        try:
            fps = float(sec["fps"]) if "fps" in sec else None
        except ValueError:
            fps = None
        if fps is not None and not (math.isfinite(fps) and 0 <= fps <= 1000):
            fps = None
        clock_ok = clock.isascii() and clock.isdigit() and len(clock) <= 9
        out.append(SdpMedia(
            kind=clean(sec["kind"], limit=32), codec=clean(codec.upper(), limit=32),
            clock_rate=int(clock) if clock_ok else 0, control=clean(sec.get("control", ""), limit=MAX_FIELD), fps=fps,
        ))
    return tuple(out)


def split_url(url: str) -> tuple[str, str, int, str | None, str | None]:
    """rtsp URL -> (URL without credentials, host, port, user, password)."""
    if len(url) > MAX_URL or not url.isprintable():
        raise ValueError(f"not a usable rtsp URL: {clean(redact(url), limit=80)!r}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("rtsp", "rtsps") or not parts.hostname:
        raise ValueError(f"not an rtsp URL: {clean(redact(url), limit=80)!r}")
    port = parts.port or (DEFAULT_TLS_PORT if parts.scheme.lower() == "rtsps" else DEFAULT_PORT)
    netloc = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return bare, parts.hostname, port, user, password


async def _line(reader: asyncio.StreamReader, budget: int) -> str:
    """One reply line, at most MAX_LINE bytes (and what is left of the head's ``budget``).

    ``readuntil`` stops at the reader's limit (MAX_LINE, set at connect): a longer line is
    refused without being buffered, where ``readline()`` would raise ValueError past 64 KiB."""
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise RtspProtocolError(f"a reply line longer than {MAX_LINE} bytes") from None
    except asyncio.IncompleteReadError as exc:
        raw = exc.partial  # the camera closed the connection; what came is the last line
    if len(raw) > budget:
        raise RtspProtocolError(f"a reply head longer than {MAX_HEAD} bytes")
    return raw.decode("latin-1")


async def _read_reply(reader: asyncio.StreamReader) -> _Reply:
    budget = MAX_HEAD
    raw = await _line(reader, budget)
    budget -= len(raw)
    status_line = raw.strip()
    if not status_line:
        raise RtspProtocolError("connection closed without a reply")
    proto, _, rest = status_line.partition(" ")
    code, _, text = rest.partition(" ")
    if not proto.startswith("RTSP/") or not (len(code) == 3 and code.isascii() and code.isdigit()):
        raise RtspProtocolError(f"not an RTSP status line: {clean(status_line, limit=80)!r}")
    text = clean(text, limit=80)
    headers: list[tuple[str, str]] = []
    for _ in range(MAX_HEADER_LINES):
        line = await _line(reader, budget)
        budget -= len(line)
        if not line.strip():
            break
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    else:
        raise RtspProtocolError("too many header lines")
    length_text = next((v for k, v in headers if k == "content-length"), "0")
    if not (length_text.isascii() and length_text.isdigit() and len(length_text) <= 12):
        raise RtspProtocolError(f"bad Content-Length {clean(length_text, limit=40)!r}")
    length = int(length_text)
    if length < 0 or length > MAX_BODY:
        raise RtspProtocolError(f"Content-Length {length} out of range")
    body = await reader.readexactly(length) if length else b""
    return _Reply(int(code), text, headers, body)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str) -> None:
        self.reader, self.writer, self.url = reader, writer, url
        self.cseq = 0
        self.challenge: Challenge | None = None
        self.nc = 0
        self.basic_ok = False  # may a Basic challenge be answered (rtsps, or allow_basic)

    def auth_for(self, method: str, user: str | None, pw: str | None) -> dict[str, str]:
        """An Authorization header for ``method`` from the last challenge, if there was one."""
        if self.challenge is None or user is None or pw is None:
            return {}
        self.nc += 1
        value = authorization(self.challenge, method=method, uri=self.url, username=user, password=pw, nc=self.nc)
        return {"Authorization": value}

    async def request(self, method: str, extra: dict[str, str] | None = None) -> _Reply:
        self.cseq += 1
        lines = [f"{method} {self.url} RTSP/1.0", f"CSeq: {self.cseq}", f"User-Agent: {USER_AGENT}"]
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        return await _read_reply(self.reader)


async def probe(url: str, *, username: str | None, password: str | None, time_limit: float,
                tls: ssl.SSLContext | None = None, camera_host: str | None = None,
                allow_basic: bool = False) -> RtspResult:
    """OPTIONS + DESCRIBE on ``url``; never raises for a device's fault, only reports it.

    ``rtsps`` URLs go over TLS with ``tls`` (default: :func:`tls_context`, no verification).
    ``camera_host``: a URL naming another host is not connected to (``rtsp_offhost``), so
    the camera's credentials never leave it. Basic is answered only over rtsps, or with
    ``allow_basic`` (``rtsp_basic_refused`` otherwise; agent/camera/trust.py)."""
    started = time.monotonic()

    def done(ok: bool, status: int, reason: str, detail: str = "",
             media: tuple[SdpMedia, ...] = ()) -> RtspResult:
        return RtspResult(ok=ok, status=status, ms=round((time.monotonic() - started) * 1000, 1),
                          reason=reason, detail=clean(detail, limit=MAX_FIELD), media=media)

    try:
        bare, host, port, url_user, url_pass = split_url(url)
    except ValueError as exc:
        return done(False, 0, "rtsp_error", str(exc))
    if camera_host is not None and not same_host(host, camera_host):
        return done(False, 0, "rtsp_offhost", offhost("the stream URI", host, camera_host))
    user = url_user if url_user is not None else username
    pw = url_pass if url_pass is not None else password
    secure = bare.lower().startswith("rtsps:")
    ctx = (tls or tls_context()) if secure else None
    handshake_s = max(time_limit / 2, 0.1)
    status = 0
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(time_limit):
            reader, writer = await asyncio.open_connection(
                host, port, limit=MAX_LINE, ssl=ctx, server_hostname=host if ctx is not None else None,
                ssl_handshake_timeout=handshake_s if ctx is not None else None)
            conn = _Conn(reader, writer, bare)
            conn.basic_ok = basic_allowed("rtsps" if secure else "rtsp", allow_basic)
            reply = await conn.request("OPTIONS")
            status = reply.status
            if reply.status == 401:  # some servers challenge OPTIONS already
                reply = await _authenticate(conn, "OPTIONS", reply, {}, user, pw)
                status = reply.status
            if reply.status != 200:
                return done(False, status, f"rtsp_{reply.status}", f"OPTIONS: {reply.status} {reply.reason}")
            accept = {"Accept": "application/sdp"}
            reply = await conn.request("DESCRIBE", {**accept, **conn.auth_for("DESCRIBE", user, pw)})
            status = reply.status
            if reply.status == 401:
                reply = await _authenticate(conn, "DESCRIBE", reply, accept, user, pw)
                status = reply.status
            if reply.status != 200:
                return done(False, status, f"rtsp_{reply.status}", f"DESCRIBE: {reply.status} {reply.reason}")
            media = parse_sdp(reply.body.decode("utf-8", "replace"))
            if not any(m.kind == "video" for m in media):
                return done(False, status, "rtsp_no_video", "the SDP has no video track", media)
            return done(True, status, "ok", "", media)
    except TimeoutError:
        return done(False, status, "rtsp_timeout", f"no answer within {time_limit:g}s")
    except ConnectionRefusedError:
        return done(False, status, "rtsp_refused", f"{host}:{port} refused the connection")
    except BasicRefused:
        return done(False, status, "rtsp_basic_refused", BASIC_REFUSED.format(scheme="rtsp") + " (no credentials sent)")
    except (RtspProtocolError, DigestError, asyncio.IncompleteReadError) as exc:
        return done(False, status, "rtsp_error", str(exc) or type(exc).__name__)
    except ssl.SSLError as exc:  # before OSError, of which it is one
        return done(False, status, "rtsp_error", f"TLS: {exc.reason or exc} (is {host}:{port} plaintext RTSP?)")
    except ConnectionAbortedError as exc:  # asyncio's TLS handshake timeout
        if secure and "handshake" in str(exc).lower():
            return done(False, status, "rtsp_error",
                        f"no TLS handshake within {handshake_s:g}s (is {host}:{port} plaintext RTSP?)")
        return done(False, status, "rtsp_error", f"{type(exc).__name__}: {exc}")
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return done(False, status, "rtsp_refused", f"{host}:{port} refused the connection")
        return done(False, status, "rtsp_error", f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()
            try:
                async with asyncio.timeout(0.5):
                    await writer.wait_closed()
            except (TimeoutError, OSError):
                pass


async def _authenticate(conn: _Conn, method: str, reply: _Reply, extra: dict[str, str], user: str | None,
                        pw: str | None) -> _Reply:
    """Answer a 401 once; the reply is 401 again when the credentials are refused."""
    challenge = pick(parse_challenges(reply.all("WWW-Authenticate")))
    if challenge is None or user is None or pw is None:
        return reply
    if challenge.scheme == "basic" and not conn.basic_ok:
        raise BasicRefused
    conn.challenge, conn.nc = challenge, 0
    return await conn.request(method, {**extra, **conn.auth_for(method, user, pw)})
