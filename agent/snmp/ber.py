"""The few BER shapes SNMPv1/v2c need: GET, GETNEXT and GETBULK requests out, Response PDUs in.

This is the hot path of every v1/v2c poll (issue 13): pyasn1's general decoder spent over
half of a poll's CPU building an object per value. An SNMP answer is a handful of TLV
shapes, read here straight into Python values:

- INTEGER, Counter32, Gauge32, TimeTicks, Counter64, Unsigned32 -> ``int``;
- OCTET STRING (and BITS), IpAddress, Opaque -> ``bytes``; Null -> ``b""``;
- OBJECT IDENTIFIER -> dotted ``str``;
- noSuchObject, noSuchInstance, endOfMibView -> :data:`MISSING`.

Anything else (an unknown tag, a length past the end, an indefinite length, a message
that is no Response) raises :class:`BerError`. The varbinds' names come back as the dotted
string with, beside it, the arcs as a tuple (what a walk compares: encoded bytes do not
order as OIDs do once arcs differ in length). Both are cached by the encoded bytes, since
a device's OIDs repeat every poll and switches of one model share them.
"""

from __future__ import annotations

from typing import Any, Final

GET, GETNEXT, RESPONSE, GETBULK = 0xA0, 0xA1, 0xA2, 0xA5
V1, V2C = 0, 1
_NULL = b"\x05\x00"
_CACHE_MAX = 65_536  # encoded OID -> dotted text; a device's OIDs repeat every poll


class BerError(ValueError):
    """Bytes that are not the SNMP message they claim to be."""


class _Missing:
    """noSuchObject, noSuchInstance or endOfMibView: the agent has no value there."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
_EXCEPTIONS = {0x80, 0x81, 0x82}
_UNSIGNED = {0x41, 0x42, 0x43, 0x46, 0x47}  # Counter32, Gauge32, TimeTicks, Counter64, Unsigned32
_OCTETS = {0x04, 0x40, 0x44}  # OCTET STRING, IpAddress, Opaque

# Dotted OID -> its encoded content, and back (with the arcs); both bounded.
_encoded: dict[str, bytes] = {}
_decoded: dict[bytes, tuple[str, tuple[int, ...]]] = {}


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _int(tag: int, value: int) -> bytes:
    return _tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def encode_oid(oid: str) -> bytes:
    """The content octets of an OBJECT IDENTIFIER (``1.3.6.1...``); ValueError if it is none."""
    hit = _encoded.get(oid)
    if hit is not None:
        return hit
    arcs = [int(a) for a in oid.strip(".").split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39) or min(arcs) < 0:
        raise ValueError(f"not an OID: {oid!r}")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    if len(_encoded) >= _CACHE_MAX:
        _encoded.clear()
    _encoded[oid] = raw = bytes(out)
    return raw


def decode_oid(raw: bytes) -> tuple[str, tuple[int, ...]]:
    """The dotted text and the arcs of an OBJECT IDENTIFIER's content octets."""
    hit = _decoded.get(raw)
    if hit is not None:
        return hit
    if not raw or raw[-1] & 0x80:
        raise BerError("an OBJECT IDENTIFIER that ends mid-arc")
    arcs: list[int] = []
    arc = 0
    for byte in raw:
        arc = (arc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(arc)
            arc = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    full = (*head, *arcs[1:])
    if len(_decoded) >= _CACHE_MAX:
        _decoded.clear()
    _decoded[raw] = out = (".".join(map(str, full)), full)
    return out


def encode_request(*, version: int, community: bytes, pdu: int, request_id: int, oids: list[str],
                   non_repeaters: int = 0, max_repetitions: int = 0) -> bytes:
    """A v1/v2c GET, GETNEXT or GETBULK message asking for ``oids``."""
    binds = b"".join(_tlv(0x30, _tlv(0x06, encode_oid(o)) + _NULL) for o in oids)
    body = _int(0x02, request_id) + _int(0x02, non_repeaters) + _int(0x02, max_repetitions) + _tlv(0x30, binds)
    return _tlv(0x30, _int(0x02, version) + _tlv(0x04, community) + _tlv(pdu, body))


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``pos``; BerError past ``end``."""
    if pos + 2 > end:
        raise BerError("truncated")
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        width = n & 0x7F
        if width == 0 or width > 4 or pos + width > end:
            raise BerError("a bad length")
        n = int.from_bytes(data[pos:pos + width], "big")
        pos += width
    if pos + n > end:
        raise BerError("a length past the end")
    return tag, pos, pos + n


def _integer(data: bytes, pos: int, end: int) -> tuple[int, int]:
    tag, start, stop = _header(data, pos, end)
    if tag != 0x02 or start == stop:
        raise BerError("expected an INTEGER")
    return int.from_bytes(data[start:stop], "big", signed=True), stop


def response_header(data: bytes) -> tuple[int, bytes, int, int]:
    """(version, community, request_id, where the rest starts) of a Response; BerError otherwise.

    Enough to find the request it answers before anything else is decoded."""
    tag, pos, end = _header(data, 0, len(data))
    if tag != 0x30:
        raise BerError("not a SEQUENCE")
    version, pos = _integer(data, pos, end)
    tag, start, pos = _header(data, pos, end)
    if tag != 0x04:
        raise BerError("no community")
    community = data[start:pos]
    tag, pos, end = _header(data, pos, end)
    if tag != RESPONSE:
        raise BerError(f"PDU type 0x{tag:02x} is not a Response")
    request_id, pos = _integer(data, pos, end)
    return version, community, request_id, pos


def response_body(data: bytes, pos: int) -> tuple[int, int, list[tuple[str, tuple[int, ...], Any]]]:
    """(error_status, error_index, [(oid, its arcs, value)]) of the Response whose
    request-id ended at ``pos``."""
    end = len(data)
    status, pos = _integer(data, pos, end)
    index, pos = _integer(data, pos, end)
    tag, pos, end = _header(data, pos, end)
    if tag != 0x30:
        raise BerError("no varbind list")
    binds: list[tuple[str, tuple[int, ...], Any]] = []
    append = binds.append
    decoded = _decoded
    while pos < end:
        tag, pos, bind_end = _header(data, pos, end)
        if tag != 0x30:
            raise BerError("a varbind that is no SEQUENCE")
        tag, start, pos = _header(data, pos, bind_end)
        if tag != 0x06:
            raise BerError("a varbind without an OID")
        raw = data[start:pos]
        name, arcs = decoded.get(raw) or decode_oid(raw)
        tag, start, pos = _header(data, pos, bind_end)
        if pos != bind_end:
            raise BerError("a varbind with more than a name and a value")
        if tag in _UNSIGNED:
            value: Any = int.from_bytes(data[start:pos], "big")
        elif tag == 0x02:
            value = int.from_bytes(data[start:pos], "big", signed=True)
        elif tag in _OCTETS:
            value = data[start:pos]
        elif tag in _EXCEPTIONS:
            value = MISSING
        elif tag == 0x06:
            value = decode_oid(data[start:pos])[0]
        elif tag == 0x05:
            value = b""
        else:
            raise BerError(f"a value with tag 0x{tag:02x}, which no SNMP type has")
        append((name, arcs, value))
    return status, index, binds


ERROR_STATUS = {
    1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess", 7: "wrongType",
    8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue", 11: "noCreation", 12: "inconsistentValue",
    13: "resourceUnavailable", 14: "commitFailed", 15: "undoFailed", 16: "authorizationError", 17: "notWritable",
    18: "inconsistentName",
}  # fmt: skip
