"""A minimal RTSP client: OPTIONS then DESCRIBE (with Digest or Basic when challenged).

Enough to prove that a camera's stream answers and describes a video track, without
pulling media: one TCP connection, two or three requests, the SDP parsed for its
tracks. Everything is bounded by one timeout.
"""

from __future__ import annotations

import asyncio
import errno
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from wardwatch.agent.camera.digest import Challenge, DigestError, authorization, parse_challenges, pick

USER_AGENT = "wardwatch"
MAX_HEADER_LINES = 100
MAX_BODY = 64 * 1024


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
    reason: str  # ok, rtsp_401, rtsp_404, rtsp_<status>, rtsp_timeout, rtsp_refused, rtsp_error, rtsp_no_video
    detail: str = ""
    media: tuple[SdpMedia, ...] = field(default_factory=tuple)

    @property
    def video(self) -> SdpMedia | None:
        return next((m for m in self.media if m.kind == "video"), None)


class RtspProtocolError(Exception):
    """A reply that is not RTSP."""


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
        out.append(SdpMedia(
            kind=sec["kind"], codec=codec.upper(), clock_rate=int(clock) if clock.isdigit() else 0,
            control=sec.get("control", ""), fps=fps,
        ))
    return tuple(out)


def split_url(url: str) -> tuple[str, str, int, str | None, str | None]:
    """rtsp URL -> (URL without credentials, host, port, user, password)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("rtsp", "rtsps") or not parts.hostname:
        raise ValueError(f"not an rtsp URL: {url!r}")
    port = parts.port or 554
    netloc = parts.netloc.rpartition("@")[2]
    clean = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return clean, parts.hostname, port, user, password


async def _read_reply(reader: asyncio.StreamReader) -> _Reply:
    status_line = (await reader.readline()).decode("latin-1").strip()
    if not status_line:
        raise RtspProtocolError("connection closed without a reply")
    proto, _, rest = status_line.partition(" ")
    code, _, text = rest.partition(" ")
    if not proto.startswith("RTSP/") or not code.isdigit():
        raise RtspProtocolError(f"not an RTSP status line: {status_line[:80]!r}")
    headers: list[tuple[str, str]] = []
    for _ in range(MAX_HEADER_LINES):
        line = (await reader.readline()).decode("latin-1")
        if not line.strip():
            break
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    else:
        raise RtspProtocolError("too many header lines")
    length_text = next((v for k, v in headers if k == "content-length"), "0")
    try:
        length = int(length_text)
    except ValueError:
        raise RtspProtocolError(f"bad Content-Length {length_text!r}") from None
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


async def probe(url: str, *, username: str | None, password: str | None, time_limit: float) -> RtspResult:
    """OPTIONS + DESCRIBE on ``url``; never raises for a device's fault, only reports it."""
    started = time.monotonic()

    def done(ok: bool, status: int, reason: str, detail: str = "",
             media: tuple[SdpMedia, ...] = ()) -> RtspResult:
        return RtspResult(ok=ok, status=status, ms=round((time.monotonic() - started) * 1000, 1),
                          reason=reason, detail=detail, media=media)

    try:
        clean, host, port, url_user, url_pass = split_url(url)
    except ValueError as exc:
        return done(False, 0, "rtsp_error", str(exc))
    user = url_user if url_user is not None else username
    pw = url_pass if url_pass is not None else password
    status = 0
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(time_limit):
            reader, writer = await asyncio.open_connection(host, port)
            conn = _Conn(reader, writer, clean)
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
    except (RtspProtocolError, DigestError, asyncio.IncompleteReadError) as exc:
        return done(False, status, "rtsp_error", str(exc) or type(exc).__name__)
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
    conn.challenge, conn.nc = challenge, 0
    return await conn.request(method, {**extra, **conn.auth_for(method, user, pw)})
