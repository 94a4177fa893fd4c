"""WS-Discovery (2005/04) client: find ONVIF cameras with one multicast Probe.

:func:`probe` sends a Probe for ``dn:NetworkVideoTransmitter`` (SOAP-over-UDP to
239.255.255.250:3702, a fresh ``urn:uuid`` MessageID, sent twice as SOAP-over-UDP's
multicast repeat asks) from an ephemeral port, and collects the ProbeMatches that come back
to that port for a bounded time. Matches are deduplicated by their endpoint reference
address (the camera's stable ``urn:uuid``), so a camera answering both copies of the Probe,
or several times, is one :class:`ProbeMatch`.

Nothing here trusts the network: a datagram larger than :data:`MAX_DATAGRAM`, one that is
not XML, carries a DTD, is not a ProbeMatches, or answers somebody else's Probe is dropped
with a debug line and counted in :class:`Stats`; at most :data:`MAX_DATAGRAMS` datagrams and
:data:`MAX_MATCHES` cameras are taken per probe. Datagrams are parsed with defusedxml
(issue 14) with ``forbid_dtd``: a DTD, an entity declaration or an external reference stops
the parse where it starts, in whatever encoding it comes (a UTF-16 billion-laughs answer has
no ``<!DOCTYPE`` bytes to spot), so no entity is ever expanded; SOAP forbids DTDs anyway.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import defusedxml  # type: ignore[import-untyped]
import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

GROUP = "239.255.255.250"
PORT = 3702
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
PROBE_ACTION = f"{WSD}/Probe"
MATCHES_ACTION = f"{WSD}/ProbeMatches"
MAX_DATAGRAM = 32_768  # a ProbeMatches is 1-3 KB; anything far larger is not one
MAX_DATAGRAMS = 10_000  # per probe
MAX_MATCHES = 4_096  # distinct cameras per probe
MAX_WAIT = 60.0
SCOPE_PREFIX = "onvif://www.onvif.org/"
# Brands named in scopes: the lower-case word to look for, and the vendor tag it gives.
BRANDS: dict[str, str] = {
    "hikvision": "hikvision", "dahua": "dahua", "kbvision": "kbvision", "axis": "axis", "hanwha": "hanwha",
    "samsung": "hanwha", "uniview": "uniview", "unv": "uniview", "vivotek": "vivotek", "bosch": "bosch",
    "panasonic": "panasonic", "imou": "dahua", "ezviz": "hikvision", "tiandy": "tiandy", "milesight": "milesight",
}


class BadDatagram(ValueError):
    """A datagram that is not a usable ProbeMatches answer to our Probe."""


@dataclass(frozen=True, slots=True)
class ProbeMatch:
    address: str  # EndpointReference/Address, e.g. urn:uuid:...
    xaddrs: tuple[str, ...]
    scopes: tuple[str, ...]
    types: tuple[str, ...]
    source: str  # the IP address the answer came from
    metadata_version: int = 0

    def scope(self, kind: str) -> str | None:
        """The value of ``onvif://www.onvif.org/{kind}/VALUE`` (percent-decoded), if any."""
        prefix = f"{SCOPE_PREFIX}{kind}/".lower()
        for s in self.scopes:
            if s.lower().startswith(prefix) and len(s) > len(prefix):
                return unquote(s[len(prefix):]).strip() or None
        return None

    @property
    def name(self) -> str | None:
        return self.scope("name")

    @property
    def hardware(self) -> str | None:
        return self.scope("hardware")

    @property
    def location(self) -> str | None:
        return self.scope("location")

    @property
    def brand(self) -> str | None:
        """The vendor, where the scopes say it: a ``manufacturer``/``mfr`` scope, or a known
        brand word in the name or hardware scope. None rather than a guess."""
        for text in (self.scope("manufacturer"), self.scope("mfr"), self.name, self.hardware):
            if not text:
                continue
            for word in _words(text):
                if word in BRANDS:
                    return BRANDS[word]
        return None

    def endpoint(self) -> tuple[str, int, str] | None:
        """(host, port, XAddr) to poll: an http IPv4 XAddr, preferring the answering address."""
        best: tuple[int, tuple[str, int, str]] | None = None
        for x in self.xaddrs:
            try:
                url = urlsplit(x)
                host, port = url.hostname, url.port
            except ValueError:
                continue
            if url.scheme not in ("http", "https") or not host or not _plausible_host(host):
                continue
            port = port or (443 if url.scheme == "https" else 80)
            rank = (url.scheme == "http") * 4 + (host == self.source) * 2 + (":" not in host)
            if best is None or rank > best[0]:
                best = (rank, (host, port, x))
        return best[1] if best else None


@dataclass
class Stats:
    datagrams: int = 0
    dropped: int = 0  # garbage, oversized, other probes' answers, over the bounds
    matches: int = 0  # ProbeMatch elements accepted (before dedup)


@dataclass
class ProbeResult:
    message_id: str
    matches: list[ProbeMatch] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)


def _words(text: str) -> list[str]:
    out, cur = [], []
    for ch in text.lower():
        if ch.isalnum():
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def _plausible_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.rstrip(".").split(".")
        return len(host) <= 253 and all(0 < len(x) <= 63 and x.replace("-", "").isalnum() for x in labels)


def probe_message(message_id: str, types: str = "dn:NetworkVideoTransmitter") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        f'xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        f"<s:Header><a:MessageID>{message_id}</a:MessageID>"
        "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
        f"<a:Action>{PROBE_ACTION}</a:Action></s:Header>"
        f"<s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body></s:Envelope>"
    ).encode()


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: ET.Element | None, name: str) -> str:
    c = None if el is None else _child(el, name)
    return (c.text or "").strip() if c is not None else ""


def parse_matches(data: bytes, *, source: str, relates_to: str | None) -> list[ProbeMatch]:
    """The ProbeMatch entries of one datagram; :class:`BadDatagram` for anything else.

    ``relates_to``: our Probe's MessageID; an answer naming another one is refused (an answer
    without RelatesTo is taken, as some cameras omit it)."""
    if len(data) > MAX_DATAGRAM:
        raise BadDatagram(f"{len(data)} bytes, more than {MAX_DATAGRAM}")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # the cheap common case, before any parsing
        raise BadDatagram("carries a DTD (SOAP forbids them)")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise BadDatagram(f"carries a DTD, entities or external references, refused ({type(exc).__name__})") from None
    except (ET.ParseError, ValueError) as exc:
        raise BadDatagram(f"not XML: {exc}") from None
    if _local(root.tag) != "Envelope":
        raise BadDatagram(f"not a SOAP envelope: <{_local(root.tag)[:40]}>")
    header, body = _child(root, "Header"), _child(root, "Body")
    related = _text(header, "RelatesTo")
    if relates_to is not None and related and related != relates_to:
        raise BadDatagram(f"answers another probe ({related[:60]})")
    pms = None if body is None else _child(body, "ProbeMatches")
    if pms is None:
        raise BadDatagram("no ProbeMatches in the body")
    out = []
    for pm in pms:
        if _local(pm.tag) != "ProbeMatch":
            continue
        epr = _child(pm, "EndpointReference")
        xaddrs = tuple(_text(pm, "XAddrs").split())
        address = _text(epr, "Address") or (xaddrs[0] if xaddrs else "")
        if not address:
            continue
        version = _text(pm, "MetadataVersion")
        out.append(ProbeMatch(
            address=address[:256], xaddrs=xaddrs[:16], scopes=tuple(_text(pm, "Scopes").split())[:64],
            types=tuple(_text(pm, "Types").split())[:16], source=source,
            metadata_version=int(version) if version.isdigit() and len(version) < 12 else 0,
        ))
    if not out:
        raise BadDatagram("ProbeMatches without a usable ProbeMatch")
    return out


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.stats = Stats()
        self.found: dict[str, ProbeMatch] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        source = str(addr[0])
        self.stats.datagrams += 1
        if self.stats.datagrams > MAX_DATAGRAMS:
            self.stats.dropped += 1
            return
        try:
            matches = parse_matches(data, source=source, relates_to=self.message_id)
        except BadDatagram as exc:
            self.stats.dropped += 1
            log.debug("ws-discovery: datagram from %s dropped: %s", source, exc)
            return
        for m in matches:
            self.stats.matches += 1
            old = self.found.get(m.address)
            if old is None and len(self.found) >= MAX_MATCHES:
                self.stats.dropped += 1
                log.debug("ws-discovery: %s from %s dropped: more than %d cameras", m.address, source, MAX_MATCHES)
            elif old is None or m.metadata_version > old.metadata_version:
                self.found[m.address] = m

    def error_received(self, exc: Exception) -> None:
        log.debug("ws-discovery: socket error: %s", exc)


async def probe(*, wait: float = 3.0, interface: str | None = None, port: int = PORT,
                group: str = GROUP) -> ProbeResult:
    """Multicast a Probe and collect ProbeMatches for ``wait`` seconds.

    ``interface``: the IPv4 address to send from (``IP_MULTICAST_IF``); the routing table's
    choice when None. The multicast TTL is 1: cameras on the local segment only."""
    if not 0 < wait <= MAX_WAIT:
        raise ValueError(f"wait {wait:g}s: must be in (0, {MAX_WAIT:g}]")
    message_id = f"urn:uuid:{uuid.uuid4()}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        if interface is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        sock.bind((interface or "0.0.0.0", 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: _Collector(message_id), sock=sock)
    try:
        msg = probe_message(message_id)
        transport.sendto(msg, (group, port))
        # SOAP-over-UDP: repeat a multicast once after 50-250 ms; duplicates are deduplicated.
        gap = min(random.uniform(0.05, 0.25), wait / 2)
        await asyncio.sleep(gap)
        transport.sendto(msg, (group, port))
        await asyncio.sleep(wait - gap)
    finally:
        transport.close()
    return ProbeResult(message_id=message_id, matches=list(proto.found.values()), stats=proto.stats)
