"""The camera poll's lean HTTP client (agent/camera/http.py) against real servers on loopback:
keep-alive between requests, a connection the camera closed while idle, chunked bodies, and
the bounds that make a hostile answer an error rather than a memory or time sink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from wardwatch.agent.camera import trust
from wardwatch.agent.camera.http import BodyTooLarge, Disconnected, HttpClient, NotHttp, Response

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Raw:
    """A TCP server whose handler writes whatever bytes a test wants."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Raw:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    c = HttpClient()
    yield c
    await c.aclose()


async def get(client: HttpClient, port: int) -> Response:
    return await client.request("GET", "http", "127.0.0.1", port, "/x", head=b"", max_body=1024)


async def test_keep_alive_reuses_one_connection_and_reads_chunked(client: HttpClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n"
                         b"0\r\nX-Trailer: 1\r\n\r\n")
            await writer.drain()

    async with Raw(handler) as srv:
        bodies = [(await client.request("POST", "http", "127.0.0.1", srv.port, "/s", head=b"", body=b"hi",
                                        max_body=1024)).body for _ in range(3)]
    assert bodies == [b"abcde"] * 3 and srv.connections == 1


async def test_a_connection_closed_while_idle_is_retried_once_on_a_new_one(client: HttpClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_request(reader)  # the next request on this connection: closed unanswered

    async with Raw(handler) as srv:
        first = await client.request("GET", "http", "127.0.0.1", srv.port, "/", head=b"", max_body=10)
        second = await client.request("GET", "http", "127.0.0.1", srv.port, "/", head=b"", max_body=10)
    assert (first.body, second.body, srv.connections) == (b"ok", b"ok", 2)


@pytest.mark.parametrize(("answer", "error"), [
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", NotHttp),  # a header line over 8 KiB
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 40000, NotHttp),  # a head that never ends, over 32 KiB
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", NotHttp),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", BodyTooLarge),  # over the caller's 1024
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", NotHttp),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"100\r\n" + b"a" * 256 + b"\r\n" * 1 +
     b"400\r\n" + b"a" * 1024 + b"\r\n0\r\n\r\n", BodyTooLarge),  # chunks adding up past the cap
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", Disconnected),  # closed mid-body
])
async def test_hostile_answers_are_errors_within_bounds(client: HttpClient, answer: bytes,
                                                        error: type[Exception]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async with Raw(handler) as srv:
        with pytest.raises(error):
            async with asyncio.timeout(5):
                await get(client, srv.port)


async def test_a_body_to_eof_is_read_and_the_connection_not_reused(client: HttpClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        await writer.drain()

    async with Raw(handler) as srv:
        bodies = [(await get(client, srv.port)).body for _ in range(2)]
    assert bodies == [b"all of it"] * 2 and srv.connections == 2


def test_trust_compares_hosts_without_resolving() -> None:
    assert trust.same_host("CAM.example.", "cam.example") and trust.same_host("[::1]", "::1")
    assert not trust.same_host("localhost", "127.0.0.1") and not trust.same_host(None, "10.0.0.1")
    assert trust.basic_allowed("https", False) and trust.basic_allowed("rtsps", False)
    assert not trust.basic_allowed("http", False) and trust.basic_allowed("rtsp", True)
    assert trust.redact("rtsp://admin:s3cret@10.0.0.5:554/live?x=1") == "rtsp://10.0.0.5:554/live?x=1"
