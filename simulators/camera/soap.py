"""SOAP 1.2 envelopes as ONVIF cameras speak them: parsing requests, WS-Security UsernameToken
verification, and building responses and faults.

Responses are written as text (with escaping); requests are parsed with lxml with entity
resolution and network access off.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree  # type: ignore[import-untyped]

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "ter": "http://www.onvif.org/ver10/error",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "wsrf-rw": "http://docs.oasis-open.org/wsrf/rw-2",
    "wsrf-bf": "http://docs.oasis-open.org/wsrf/bf-2",
    "wsa5": "http://www.w3.org/2005/08/addressing",
    "tns1": "http://www.onvif.org/ver10/topics",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}
CONTENT_TYPE = "application/soap+xml"
PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
_NSDECL = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)


class SoapFault(Exception):
    """A fault to send back: code Sender or Receiver, ONVIF subcodes, a reason and HTTP status."""

    def __init__(self, code: str, subcodes: tuple[str, ...], reason: str, *, status: int | None = None,
                 detail: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.subcodes = subcodes
        self.reason = reason
        self.status = status if status is not None else (400 if code == "Sender" else 500)
        self.detail = detail


def not_authorized() -> SoapFault:
    return SoapFault("Sender", ("ter:NotAuthorized",), "Sender not Authorized")


def invalid_arg(reason: str, subcode: str = "ter:InvalidArgVal") -> SoapFault:
    return SoapFault("Sender", ("ter:InvalidArgs", subcode), reason)


def action_not_supported(name: str) -> SoapFault:
    return SoapFault("Receiver", ("ter:ActionNotSupported",), f"Optional Action Not Implemented: {name}")


@dataclass(slots=True)
class Request:
    """A parsed SOAP request: the body's first child and the headers we look at."""

    operation: str  # local name of the body's first child
    namespace: str
    body: Any  # lxml element of the operation
    header: Any | None  # lxml env:Header element, if any

    def text(self, path: str) -> str | None:
        """Text of the first element under the operation matching ``path`` (local names, / separated)."""
        found = self.body.xpath("./" + "/".join(f"*[local-name()='{p}']" for p in path.split("/")))
        if not found:
            return None
        value = found[0].text
        return None if value is None else str(value).strip()


def parse(data: bytes) -> Request:
    """Parse a SOAP 1.2 envelope; malformed input is a Sender fault (HTTP 400), as cameras answer."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Sender", ("ter:WellFormed",), f"Well-formed Error: {exc}") from None
    if etree.QName(root).localname != "Envelope":
        raise SoapFault("Sender", ("ter:WellFormed",), "not a SOAP envelope")
    if etree.QName(root).namespace != NS["env"]:
        raise SoapFault("Sender", ("ter:WellFormed",), "SOAP 1.2 envelope expected", status=400)
    header = root.find(f"{{{NS['env']}}}Header")
    body = root.find(f"{{{NS['env']}}}Body")
    if body is None or len(body) == 0:
        raise SoapFault("Sender", ("ter:WellFormed",), "empty SOAP Body")
    op = body[0]
    qn = etree.QName(op)
    return Request(operation=qn.localname, namespace=qn.namespace or "", body=op, header=header)


def parse_xs_datetime(text: str) -> dt.datetime:
    """An xs:dateTime; no zone means UTC (what cameras assume of a UsernameToken's Created)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


class NonceCache:
    """Nonces seen recently, bounded in size; a replay within the window is rejected."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def seen(self, nonce: bytes) -> bool:
        return nonce in self._seen

    def add(self, nonce: bytes) -> None:
        self._seen[nonce] = None
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)

    def clear(self) -> None:
        self._seen.clear()


def check_username_token(req: Request, *, username: str, password: str, now: dt.datetime,
                         window_s: float, nonces: NonceCache) -> None:
    """Verify ``wsse:Security/wsse:UsernameToken``; raise NotAuthorized when it does not hold.

    PasswordDigest = Base64(SHA-1(nonce + Created + password)); Created must lie within
    ``window_s`` of ``now`` (the camera's own clock) and the nonce must not have been used.
    PasswordText is accepted too, as most cameras do.
    """
    if req.header is None:
        raise not_authorized()
    tokens = req.header.xpath("./*[local-name()='Security']/*[local-name()='UsernameToken']")
    if not tokens:
        raise not_authorized()
    token = tokens[0]

    def child(name: str) -> Any | None:
        found = token.xpath(f"./*[local-name()='{name}']")
        return found[0] if found else None

    user_el, pw_el, nonce_el, created_el = child("Username"), child("Password"), child("Nonce"), child("Created")
    if user_el is None or pw_el is None or (user_el.text or "").strip() != username:
        raise not_authorized()
    ptype = pw_el.get("Type", PASSWORD_TEXT)
    supplied = (pw_el.text or "").strip()
    if ptype == PASSWORD_TEXT:
        if not hmac.compare_digest(supplied.encode(), password.encode()):
            raise not_authorized()
        return
    if ptype != PASSWORD_DIGEST or nonce_el is None or created_el is None:
        raise not_authorized()
    created = (created_el.text or "").strip()
    try:
        nonce = base64.b64decode((nonce_el.text or "").strip(), validate=True)
        created_at = parse_xs_datetime(created)
    except (binascii.Error, ValueError):
        raise not_authorized() from None
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    if not hmac.compare_digest(expected.encode(), supplied.encode()):
        raise not_authorized()
    if abs((now - created_at).total_seconds()) > window_s:
        raise not_authorized()
    if nonces.seen(nonce):
        raise not_authorized()
    nonces.add(nonce)


def wsa_header(action: str, relates_to: str | None = None) -> str:
    rel = f"<wsa5:RelatesTo>{escape(relates_to)}</wsa5:RelatesTo>" if relates_to else ""
    return f"<wsa5:Action>{escape(action)}</wsa5:Action>{rel}"


def envelope(body: str, header: str = "") -> bytes:
    head = f"<env:Header>{header}</env:Header>" if header else "<env:Header/>"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope {_NSDECL}>{head}'
            f"<env:Body>{body}</env:Body></env:Envelope>").encode()


def fault_body(f: SoapFault) -> str:
    sub = ""
    for code in reversed(f.subcodes):
        sub = f"<env:Subcode><env:Value>{code}</env:Value>{sub}</env:Subcode>"
    detail = f"<env:Detail>{f.detail}</env:Detail>" if f.detail else ""
    return (f"<env:Fault><env:Code><env:Value>env:{f.code}</env:Value>{sub}</env:Code>"
            f'<env:Reason><env:Text xml:lang="en">{escape(f.reason)}</env:Text></env:Reason>{detail}</env:Fault>')


def fault(f: SoapFault) -> bytes:
    return envelope(fault_body(f), wsa_header("http://www.w3.org/2005/08/addressing/soap/fault"))


def xs_datetime(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration_or_time(text: str, now: dt.datetime) -> dt.datetime:
    """A wsnt termination time: an xs:duration (``PT60S``, ``PT1M``, ``PT1H2M3.5S``) or an xs:dateTime."""
    value = text.strip()
    if value.startswith("P"):
        return now + dt.timedelta(seconds=parse_duration(value))
    return parse_xs_datetime(value)


def parse_duration(value: str) -> float:
    """Seconds in an xs:duration limited to days, hours, minutes and seconds."""
    v = value.strip()
    if not v.startswith("P"):
        raise ValueError(f"not a duration: {value!r}")
    total = 0.0
    number = ""
    in_time = False
    units = {"D": 86400.0, "H": 3600.0, "S": 1.0}
    for ch in v[1:]:
        if ch == "T":
            in_time = True
        elif ch.isdigit() or ch == ".":
            number += ch
        elif ch == "M":
            total += float(number) * (60.0 if in_time else 30 * 86400.0)
            number = ""
        elif ch in units or ch == "Y" or ch == "W":
            total += float(number) * {"Y": 365 * 86400.0, "W": 7 * 86400.0}.get(ch, units.get(ch, 0.0))
            number = ""
        else:
            raise ValueError(f"bad duration: {value!r}")
    if number:
        raise ValueError(f"bad duration: {value!r}")
    return total
