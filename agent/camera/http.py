"""A lean HTTP/1.1 client for the camera poll: asyncio streams, keep-alive, hard bounds (issue 13).

A poll makes the same few requests to the same camera every minute (five to seven SOAP
POSTs, the snapshot GET and its Digest retry). aiohttp's general machinery (cookie jar,
tracing, middlewares, its payload and writer layers) was most of a request's CPU here, and its
15 s keep-alive meant a new TCP connection for every poll. This client writes the request
in one ``write``, reads the head in one ``readuntil`` and keeps one idle connection per
camera between polls (:data:`IDLE_S`), so a poll usually costs no TCP handshake at all; TCP
keep-alive finds a connection that died silently while idle (a camera's reboot, a firewall's
timeout) before the next poll would wait on it. It
speaks only what cameras answer: ``Content-Length``, ``chunked``, or a body up to EOF.

Bounds, as before with aiohttp: a header line of at most :data:`MAX_LINE` bytes, a head of
:data:`MAX_HEAD` in at most :data:`MAX_HEADERS` lines, a body of the caller's ``max_body``
(:class:`BodyTooLarge` beyond, the connection dropped). Anything else is :class:`NotHttp`.
A reused connection that the camera had closed (RFC 9112 9.3.1 lets it) is retried once on a
new one, only when nothing of an answer came back. No redirects are followed here, and
nothing is resolved but by the OS's ``getaddrinfo`` on the host the caller gives.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_LINE = 8 * 1024
MAX_HEAD = 32 * 1024
MAX_HEADERS = 100
CHUNK = 64 * 1024
IDLE_S = 150.0  # an idle connection kept this long (a poll a minute reuses it)
MAX_IDLE = 512  # idle connections kept in all (file descriptors stay bounded)
KEEPALIVE_IDLE_S = 20  # TCP keep-alive probes after this long idle (a dead peer is known within ~30 s)


class NotHttp(ValueError):
    """An answer that is not HTTP/1.x: a bad status line, a header line over the caps, bad chunking."""


class BodyTooLarge(ValueError):
    """The body is over the caller's cap (said by Content-Length, or found while reading)."""


class Disconnected(ConnectionError):
    """The connection closed before a whole answer came."""


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]]  # (lower-case name, value), in order
    body: bytes  # empty when a sink took it
    size: int  # body bytes read

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


Key = tuple[str, str, int]  # scheme, host, port


class _Conn:
    __slots__ = ("key", "reader", "used", "writer")

    def __init__(self, key: Key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.key, self.reader, self.writer = key, reader, writer
        self.used = time.monotonic()

    def alive(self, now: float) -> bool:
        return (now - self.used < IDLE_S and not self.reader.at_eof() and not self.writer.is_closing()
)

    def close(self) -> None:
        self.writer.close()


class HttpClient:
    """One per agent (the camera poller's): connections pooled by (scheme, host, port)."""

    def __init__(self) -> None:
        self._idle: dict[Key, list[_Conn]] = {}
        self._count = 0

    async def request(self, method: str, scheme: str, host: str, port: int, target: str, *,
                      head: bytes, body: bytes = b"", tls: ssl.SSLContext | None = None, max_body: int,
                      sink: Callable[[bytes], None] | None = None) -> Response:
        """Send ``method target`` with the header lines ``head`` (``Name: value\\r\\n`` each;
        Host and Content-Length are added); the answer, its body read into memory or fed to
        ``sink`` piece by piece. The caller bounds the time (asyncio.timeout)."""
        key = (scheme, host, port)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        data = b"".join((f"{method} {target} HTTP/1.1\r\nHost: {netloc}\r\n".encode(), head,
                         b"Content-Length: %d\r\n\r\n" % len(body) if body or method == "POST" else b"\r\n", body))
        conn = self._take(key)
        if conn is not None:
            try:
                return await self._exchange(conn, method, data, max_body, sink, reused=True)
            except _Stale:
                pass  # closed by the camera while idle: once more on a new connection
        conn = await self._connect(key, tls)
        try:
            return await self._exchange(conn, method, data, max_body, sink, reused=False)
        except _Stale:
            raise Disconnected("the camera closed the connection without answering") from None

    def _take(self, key: Key) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            self._count -= 1
            if conn.alive(now):
                return conn
            conn.close()
        return None

    async def _connect(self, key: Key, tls: ssl.SSLContext | None) -> _Conn:
        scheme, host, port = key
        ctx = tls if scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            host, port, limit=MAX_HEAD, ssl=ctx, server_hostname=host if ctx is not None else None)
        _keepalive(writer.get_extra_info("socket"))
        return _Conn(key, reader, writer)

    def _give_back(self, conn: _Conn) -> None:
        if self._count >= MAX_IDLE:
            self._evict()
        conn.used = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        self._count += 1

    def _evict(self) -> None:
        """Close every stale idle connection; when none is, the oldest one."""
        now, oldest = time.monotonic(), None
        for key, conns in list(self._idle.items()):
            keep = [c for c in conns if c.alive(now)]
            for c in conns:
                if c not in keep:
                    c.close()
            self._count -= len(conns) - len(keep)
            if keep:
                self._idle[key] = keep
                first = min(keep, key=lambda c: c.used)
                if oldest is None or first.used < oldest.used:
                    oldest = first
            else:
                del self._idle[key]
        if self._count >= MAX_IDLE and oldest is not None:
            self._idle[oldest.key].remove(oldest)
            self._count -= 1
            oldest.close()

    async def _exchange(self, conn: _Conn, method: str, data: bytes, max_body: int,
                        sink: Callable[[bytes], None] | None, *, reused: bool) -> Response:
        started = False
        try:
            conn.writer.write(data)
            await conn.writer.drain()
            while True:  # 1xx answers (100 Continue) come before the real one
                try:
                    raw = await conn.reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial and reused:
                        raise _Stale from None
                    raise Disconnected("the camera closed the connection in the answer's head") from None
                except asyncio.LimitOverrunError:
                    raise NotHttp(f"an answer head over {MAX_HEAD // 1024} KiB") from None
                started = True
                status, headers, keep = _parse_head(raw)
                if status >= 200 or status == 101:
                    break
            size, body, reusable = await _read_body(conn.reader, method, status, headers, max_body, sink)
            if keep and reusable:
                self._give_back(conn)
            else:
                conn.close()
            return Response(status, headers, body, size)
        except (ConnectionResetError, BrokenPipeError) as exc:
            conn.close()
            if reused and not started:
                raise _Stale from None
            raise Disconnected(f"the camera closed the connection ({type(exc).__name__})") from None
        except BaseException:
            conn.close()
            raise

    async def aclose(self) -> None:
        conns = [c for cs in self._idle.values() for c in cs]
        self._idle.clear()
        self._count = 0
        for c in conns:
            c.close()
        for c in conns:
            try:
                async with asyncio.timeout(0.5):
                    await c.writer.wait_closed()
            except (TimeoutError, OSError, ssl.SSLError):
                pass


def _keepalive(sock: socket.socket | None) -> None:
    """TCP keep-alive on an idle connection: a camera (or a firewall between) that dropped it
    without a word is found out while it idles, so the next poll opens a new one rather than
    waiting out its timeout on a dead one; and the probes keep a firewall's state alive."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 2)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass


class _Stale(Exception):
    """A reused connection closed before any answer: retry on a new one."""


def _parse_head(raw: bytes) -> tuple[int, list[tuple[str, str]], bool]:
    """(status, headers, keep-alive) of an answer head."""
    lines = raw[:-4].split(b"\r\n")
    if len(lines) > MAX_HEADERS + 1:
        raise NotHttp(f"more than {MAX_HEADERS} header lines")
    status_line = lines[0]
    proto, _, rest = status_line.partition(b" ")
    code = rest[:3]
    if proto not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit() or rest[3:4] not in (b"", b" "):
        raise NotHttp(f"not an HTTP status line: {status_line[:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if len(line) > MAX_LINE:
            raise NotHttp(f"a header line longer than {MAX_LINE} bytes")
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise NotHttp(f"a malformed header line: {line[:60]!r}")
        headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
    keep = proto == b"HTTP/1.1"
    for k, v in headers:
        if k == "connection":
            tokens = v.lower()
            keep = "keep-alive" in tokens if proto == b"HTTP/1.0" else "close" not in tokens
    return int(code), headers, keep


async def _read_body(reader: asyncio.StreamReader, method: str, status: int, headers: list[tuple[str, str]],
                     max_body: int, sink: Callable[[bytes], None] | None) -> tuple[int, bytes, bool]:
    """(size, body, whether the connection can carry another request)."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return 0, b"", True
    parts: list[bytes] = []

    def take(piece: bytes) -> None:
        if sink is not None:
            sink(piece)
        else:
            parts.append(piece)

    encoding = next((v.lower() for k, v in headers if k == "transfer-encoding"), "")
    length_text = next((v for k, v in headers if k == "content-length"), None)
    size = 0
    if "chunked" in encoding:
        while True:
            try:
                line = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError:
                raise NotHttp("a chunk size line over the caps") from None
            except asyncio.IncompleteReadError:
                raise Disconnected("the camera closed the connection in a chunked body") from None
            hex_size = line.split(b";", 1)[0].strip()
            try:
                n = int(hex_size, 16)
            except ValueError:
                raise NotHttp(f"a bad chunk size {hex_size[:20]!r}") from None
            if n < 0:
                raise NotHttp("a negative chunk size")
            if n == 0:
                for _ in range(MAX_HEADERS):  # trailers, up to the empty line
                    try:
                        if await reader.readuntil(b"\r\n") == b"\r\n":
                            break
                    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                        raise Disconnected("the camera closed the connection in a chunked body") from None
                else:
                    raise NotHttp("too many trailer lines")
                break
            if size + n > max_body:
                raise BodyTooLarge(f"over the {_mib(max_body)} cap")
            size += await _copy(reader, n, take)
            if await _exactly(reader, 2) != b"\r\n":
                raise NotHttp("a chunk without its CRLF")
    elif length_text is not None:
        if not (length_text.isascii() and length_text.isdigit() and len(length_text) <= 15):
            raise NotHttp(f"a bad Content-Length {length_text[:20]!r}")
        n = int(length_text)
        if n > max_body:
            raise BodyTooLarge(f"Content-Length {n} is over the {_mib(max_body)} cap")
        if n and sink is None:
            parts.append(await _exactly(reader, n))
            size = n
        else:
            size += await _copy(reader, n, take)
    else:  # the body runs to EOF; the connection ends with it
        while True:
            piece = await reader.read(CHUNK)
            if not piece:
                break
            size += len(piece)
            if size > max_body:
                raise BodyTooLarge(f"over the {_mib(max_body)} cap")
            take(piece)
        return size, b"".join(parts), False
    return size, parts[0] if len(parts) == 1 else b"".join(parts), True


async def _exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise Disconnected("the camera closed the connection in the body") from None


async def _copy(reader: asyncio.StreamReader, n: int, take: Callable[[bytes], None]) -> int:
    """Hand exactly ``n`` bytes of the body to ``take``, in pieces of at most CHUNK."""
    left = n
    while left:
        piece = await _exactly(reader, min(left, CHUNK))
        left -= len(piece)
        take(piece)
    return n


def _mib(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} bytes"
