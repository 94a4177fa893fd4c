"""SNMPv1/v2c over one asyncio UDP socket for the whole agent (issue 13).

:class:`UdpEngine` owns a socket per address family, bound to the running event loop on
first use, and matches each answer to its request by request-id, source address, version
and community (so a device answering with another request's id, or a stray datagram,
reaches nobody). :class:`UdpTransport` is one device's GET/GETNEXT/GETBULK with the
device's timeout and retries; a retry resends the same message with the same request-id,
so a late first answer still counts.

What cannot be read is translated at the edge:

- a datagram whose header is not a Response, or whose request-id nobody waits for, is
  dropped (counted in :attr:`UdpEngine.dropped`) and the request times out, as it would
  against a device that never answered;
- an answer to our request whose body is not BER SNMP (truncated, a bad length, a tag no
  SNMP type has) is :class:`DeviceProtocolError` "garbage answer";
- an error-status is :class:`DeviceProtocolError` naming it (``noSuchName at varbind 2``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Sequence
from typing import Any

from wardwatch.agent.core.config import DeviceConfig, SnmpAuth
from wardwatch.agent.core.errors import DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from wardwatch.agent.snmp import ber

log = logging.getLogger(__name__)

Bind = tuple[str, tuple[int, ...], Any]  # (oid, its arcs, value)
Address = tuple[Any, ...]
# request-id -> (the future, the address, version, community)
Pending = dict[int, tuple["asyncio.Future[tuple[int, int, list[Bind]]]", Address, int, bytes]]


class ErrorStatus(DeviceProtocolError):
    """The device answered with an error-status (``index`` counts varbinds from 1)."""

    def __init__(self, text: str, *, status: int, index: int) -> None:
        super().__init__(text)
        self.status, self.index = status, index


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, engine: UdpEngine) -> None:
        self.engine = engine

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.engine.received(data, addr)

    def error_received(self, exc: Exception) -> None:  # an ICMP error; the request will time out
        log.debug("SNMP socket: %s", exc)


class UdpEngine:
    """One UDP socket per address family for every v1/v2c device of the agent."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: dict[int, asyncio.DatagramTransport] = {}
        self.pending: Pending = {}
        self.dropped = 0  # datagrams that answered no request of ours

    async def socket(self, family: int) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (check, tests): the old sockets are dead with it
            self.close()
            self._loop = loop
        sock = self._sockets.get(family)
        if sock is None or sock.is_closing():
            host = "0.0.0.0" if family == socket.AF_INET else "::"
            sock, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(host, 0),
                                                          family=family)
            self._sockets[family] = sock
        return sock

    def received(self, data: bytes, addr: Address) -> None:
        try:
            version, community, request_id, pos = ber.response_header(data)
        except ber.BerError:
            self.dropped += 1
            return
        waiting = self.pending.get(request_id)
        if waiting is None or waiting[1][:2] != addr[:2] or waiting[2] != version or waiting[3] != community:
            self.dropped += 1
            return
        fut = waiting[0]
        if fut.done():
            return
        try:
            fut.set_result(ber.response_body(data, pos))
        except ber.BerError as exc:
            fut.set_exception(DeviceProtocolError(f"garbage answer: {exc}"))

    def close(self) -> None:
        for sock in self._sockets.values():
            try:
                sock.close()
            except RuntimeError as exc:  # its event loop is already closed
                log.debug("closing the SNMP socket: %s", exc)
        self._sockets.clear()
        for fut, *_ in self.pending.values():
            if not fut.done():
                fut.cancel()
        self.pending.clear()


class UdpTransport:
    """GET, GETNEXT and GETBULK to one v1/v2c device."""

    def __init__(self, *, engine: UdpEngine, device: DeviceConfig, auth: SnmpAuth) -> None:
        assert auth.community is not None  # the config validator guarantees it
        self.device = device
        self._engine = engine
        self._version = ber.V1 if auth.version == "1" else ber.V2C
        self._community = auth.community.get_secret_value().encode()
        self._address: Address | None = None
        self._family = socket.AF_INET

    async def _resolve(self) -> Address:
        if self._address is None:
            host, port = self.device.host, self.device.port or 161
            try:
                ip = ipaddress.ip_address(host)
                self._family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
                self._address = (str(ip), port)
            except ValueError:
                try:
                    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
                except OSError as exc:
                    raise DeviceUnreachable(f"cannot resolve {host}: {exc}") from None
                family, *_, sockaddr = infos[0]
                self._family, self._address = family, sockaddr
        return self._address

    async def request(self, oids: Sequence[str], *, bulk: tuple[int, int] | None = None,
                      next_: bool = False) -> list[Bind]:
        """GET ``oids`` (GETNEXT with ``next_``); with ``bulk=(non_repeaters,
        max_repetitions)`` GETBULK them."""
        address = await self._resolve()
        sock = await self._engine.socket(self._family)
        pending = self._engine.pending
        request_id = random.randrange(1, 2**31)
        while request_id in pending:
            request_id = random.randrange(1, 2**31)
        pdu = ber.GETBULK if bulk else ber.GETNEXT if next_ else ber.GET
        try:
            message = ber.encode_request(version=self._version, community=self._community, pdu=pdu,
                                         request_id=request_id, oids=list(oids),
                                         non_repeaters=bulk[0] if bulk else 0, max_repetitions=bulk[1] if bulk else 0)
        except ValueError as exc:
            raise DeviceProtocolError(f"cannot ask for it: {exc}") from None
        fut: asyncio.Future[tuple[int, int, list[Bind]]] = asyncio.get_running_loop().create_future()
        pending[request_id] = (fut, address, self._version, self._community)
        try:
            for _ in range(self.device.retries + 1):
                sock.sendto(message, address)
                try:
                    async with asyncio.timeout(self.device.timeout):
                        status, index, binds = await asyncio.shield(fut)
                    break
                except TimeoutError:
                    continue
            else:
                raise DeviceTimeout(f"no answer after {self.device.retries + 1} tries of {self.device.timeout:g}s")
        finally:
            pending.pop(request_id, None)
            if not fut.done():
                fut.cancel()
        if status:
            name = ber.ERROR_STATUS.get(status, f"error-status {status}")
            raise ErrorStatus(f"{name} at varbind {index}", status=status, index=index)
        return binds
