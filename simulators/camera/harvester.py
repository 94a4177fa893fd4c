"""A credential harvester: the "other host" a hostile camera's URIs point at (issue 14).

It listens on one address and port and answers every HTTP or RTSP request with a 401 and a
Basic challenge (what a harvester asks for: the password in clear), keeping the connection
for the retry. Every request head is recorded, so a test can tell whether a client sent it
an ``Authorization`` header, or connected at all. Loopback only in the tests (127.0.0.2).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

MAX_HEAD = 16 * 1024


@dataclass(slots=True)
class Seen:
    """One request the harvester got."""

    line: str  # the request line, e.g. "GET /snap.jpg HTTP/1.1"
    authorization: str | None  # the Authorization header's value, if one came


@dataclass
class Harvester:
    host: str = "127.0.0.2"
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None

    @property
    def authorizations(self) -> list[str]:
        return [r.authorization for r in self.requests if r.authorization is not None]

    def url(self, scheme: str = "http", path: str = "/snapshot.jpg") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Harvester:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for _ in range(8):  # a client retrying with credentials stays on this connection
                try:
                    async with asyncio.timeout(5):
                        head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                    return
                lines = head[:MAX_HEAD].decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:]) if k}
                self.requests.append(Seen(line=lines[0], authorization=headers.get("authorization")))
                length = headers.get("content-length", "0")
                if length.isdigit() and 0 < int(length) <= MAX_HEAD:
                    await reader.readexactly(int(length))
                proto = "RTSP/1.0" if lines[0].endswith("RTSP/1.0") else "HTTP/1.1"
                cseq = f"CSeq: {headers['cseq']}\r\n" if "cseq" in headers else ""
                writer.write(f'{proto} 401 Unauthorized\r\n{cseq}WWW-Authenticate: Basic realm="camera"\r\n'
                             "Content-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()
