"""WS-Discovery (2005/04) responder: answers a multicast Probe for NetworkVideoTransmitter with
one ProbeMatches per available camera, sent unicast to the prober's address and port.

It joins 239.255.255.250 on one given interface address only; nothing else is touched. With
``unicast=True`` it listens on that address and a port instead (Probes sent straight to it:
tests that need no multicast route or namespace).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import uuid
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

from lxml import etree  # type: ignore[import-untyped]

from wardwatch.simulators.camera import garbage
from wardwatch.simulators.camera.services import scopes
from wardwatch.simulators.camera.state import Camera

log = logging.getLogger(__name__)
GROUP = "239.255.255.250"
PORT = 3702
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN = "http://www.onvif.org/ver10/network/wsdl"
PROBE_ACTION = WSD + "/Probe"
MATCH_ACTION = WSD + "/ProbeMatches"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def probe_matches(cam: Camera, relates_to: str, message_number: int) -> bytes:
    xaddr = f"http://{cam.host}:{cam.onvif_port}/onvif/device_service"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="{WSA}" xmlns:d="{WSD}" '
        f'xmlns:dn="{DN}" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Header>'
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID><wsa:RelatesTo>{escape(relates_to)}</wsa:RelatesTo>"
        f"<wsa:To>{WSA}/role/anonymous</wsa:To><wsa:Action>{MATCH_ACTION}</wsa:Action>"
        f'<d:AppSequence InstanceId="{cam.reboots + 1}" MessageNumber="{message_number}"/></env:Header>'
        f"<env:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>urn:uuid:{cam.uuid}"
        "</wsa:Address></wsa:EndpointReference><d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
        f"<d:Scopes>{escape(' '.join(scopes(cam)))}</d:Scopes><d:XAddrs>{escape(xaddr)}</d:XAddrs>"
        "<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"
    ).encode()


def parse_probe(data: bytes) -> tuple[str, list[str], list[str]] | None:
    """(MessageID, type local names, scopes) of a Probe, or None for anything else."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return None
    probe = root.xpath("//*[local-name()='Body']/*[local-name()='Probe']")
    if not probe:
        return None
    ids = root.xpath("//*[local-name()='Header']/*[local-name()='MessageID']/text()")
    types_text = " ".join(str(t) for t in probe[0].xpath("./*[local-name()='Types']/text()"))
    scopes_text = " ".join(str(t) for t in probe[0].xpath("./*[local-name()='Scopes']/text()"))
    types = [t.rsplit(":", 1)[-1] for t in types_text.split()]
    return (str(ids[0]).strip() if ids else "", types, scopes_text.split())


def matches(cam: Camera, types: Sequence[str], wanted_scopes: Sequence[str]) -> bool:
    if types and not set(types) & {"NetworkVideoTransmitter", "Device"}:
        return False
    have = scopes(cam)
    return all(any(s == w or s.startswith(w.rstrip("/") + "/") for s in have) for w in wanted_scopes)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, responder: DiscoveryResponder) -> None:
        self.responder = responder

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.responder.answer(data, addr)


class DiscoveryResponder:
    """Answers Probes arriving on ``interface`` (an IPv4 address) for the cameras ``cameras()`` returns."""

    def __init__(self, *, interface: str, cameras: Callable[[], Sequence[Camera]], port: int = PORT,
                 unicast: bool = False) -> None:
        self.interface = interface
        self.port = port
        self.unicast = unicast  # listen on interface:port (0: ephemeral) instead of joining the group
        self.cameras = cameras
        self._listen: asyncio.DatagramTransport | None = None
        self._send: socket.socket | None = None
        self._counter = 0
        self.probes = 0

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        if self.unicast:  # Probes sent straight to interface:port: tests without multicast routing
            sock.bind((self.interface, self.port))
            self.port = sock.getsockname()[1]
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((GROUP, self.port))
            mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(self.interface))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
        send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        send.bind((self.interface, 0))
        send.setblocking(False)
        self._send = send
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._listen = transport

    def answer(self, data: bytes, addr: tuple[str, int]) -> None:
        probe = parse_probe(data)
        if probe is None or self._send is None:
            return
        self.probes += 1
        message_id, types, wanted = probe
        for cam in self.cameras():
            if cam.available() and matches(cam, types, wanted):
                self._counter += 1
                answer = probe_matches(cam, message_id, self._counter)
                try:
                    if cam.faults.discovery_laughs:  # hostile: entity bombs, in UTF-8 and in UTF-16
                        for utf16 in (False, True):
                            self._send.sendto(garbage.laughs_document(answer, root="env:Envelope", utf16=utf16), addr)
                        continue
                    self._send.sendto(answer, addr)
                except OSError as exc:
                    log.warning("discovery: reply for %s to %s failed: %s", cam.id, addr, exc)

    async def stop(self) -> None:
        if self._listen is not None:
            self._listen.close()
            self._listen = None
        if self._send is not None:
            self._send.close()
            self._send = None
