"""The camera poll's ONVIF calls as fixed SOAP 1.2 envelopes, answers read with lxml (issue 13).

A poll makes the same dozen calls every time (GetSystemDateAndTime, GetDeviceInformation,
GetServices, GetProfiles, GetStreamUri, GetSnapshotUri and the PullPoint's Create, Pull,
Renew, Unsubscribe); zeep's general machinery cost ~2 MB and most of a poll's CPU per
camera (two zeep clients and an HTTP session per service). Here every camera shares the
poller's one lean HTTP client (agent/camera/http.py: keep-alive between polls, one write per
request), the envelopes are written out, and an answer's element is
read through :class:`Node`, which gives it the attribute shape zeep gives (child elements
and attributes by name, text leaves as ``str``, several children of a name as a list,
``_value_1`` for any-content), so :func:`~wardwatch.agent.camera.onvif.parse_clock`,
``parse_profiles`` and :func:`~wardwatch.agent.camera.events.parse_message` read it.
``discover`` (agent/camera/discover.py) asks GetDeviceInformation through the same client.

What a camera says is untrusted: at most ``MAX_ANSWER`` bytes
are read; an answer with a DTD, an entity declaration or an external reference is refused
unparsed; lxml parses without entity expansion, network access or huge trees. Every error
becomes one of the agent's (:func:`net_error`, :func:`_fault`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from wardwatch.agent.camera.http import BodyTooLarge, Disconnected, HttpClient, NotHttp
from wardwatch.agent.camera.onvif import (
    EVENTS_NS,
    MAX_ANSWER,
    AnswerTooLarge,
    BadHttp,
    BadXml,
    CameraDisconnected,
    CameraRefused,
    ClockReading,
    DeviceInfo,
    NoSnapshotUri,
    ProfileInfo,
    SoapFaultError,
    Unsupported,
    _text,
    _uri,
    parse_clock,
    parse_profiles,
)
from wardwatch.agent.camera.rtsp import tls_context
from wardwatch.agent.camera.trust import redact, same_host
from wardwatch.agent.core.errors import (
    DeviceAuthError,
    DeviceError,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
)
from wardwatch.agent.core.text import clean

log = logging.getLogger(__name__)
etree: Any = importlib.import_module("lxml.etree")  # lxml has no type stubs here

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
SCHEMA_NS = "http://www.onvif.org/ver10/schema"
WSN_NS = "http://docs.oasis-open.org/wsn/b-2"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
# GetCapabilities' categories -> the service namespaces GetServices would name
CAPABILITY_NS = {
    "Device": DEVICE_NS, "Media": MEDIA_NS, "Events": EVENTS_NS,
    "Imaging": "http://www.onvif.org/ver20/imaging/wsdl", "PTZ": "http://www.onvif.org/ver20/ptz/wsdl",
    "Analytics": "http://www.onvif.org/ver20/analytics/wsdl",
}
# recover: cameras send sloppy XML (an unescaped character in an attribute), which zeep's
# parser recovers from too; what recovers into no SOAP envelope is BadXml all the same.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                          remove_comments=True, remove_pis=True, recover=True)
_REFUSED = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype")
_TLS = tls_context(None)  # an https XAddr: encrypted, the camera's self-signed certificate taken


def _local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


class Node:
    """An answer's element with the attribute shape zeep gives it (see the module's text)."""

    __slots__ = ("_e",)

    def __init__(self, element: Any) -> None:
        self._e = element

    def __getattr__(self, name: str) -> Any:
        if name == "_value_1":  # zeep's any-content or simple content: the first child element, else the text
            child = next((c for c in self._e if isinstance(c.tag, str)), None)
            return child if child is not None else (self._e.text or "").strip()
        kids = [c for c in self._e if _local(c.tag) == name]
        if not kids:
            return self._e.get(name)
        if len(kids) > 1:
            return [wrap(k) for k in kids]
        return wrap(kids[0])

    def all(self, name: str) -> list[Any]:
        """Every child of ``name``, as a list even when there is one."""
        return [wrap(c) for c in self._e if _local(c.tag) == name]


def wrap(element: Any) -> Any:
    """A leaf (no child elements, no attributes) is its text; anything else a Node."""
    if not any(isinstance(c.tag, str) for c in element) and not element.attrib:
        return (element.text or "").strip()
    return Node(element)


def _fault(fault: Any, what: str) -> DeviceError:
    """A SOAP Fault: ``ter:NotAuthorized`` (or "auth" in its text) is auth, ActionNotSupported
    is Unsupported, anything else SoapFaultError."""
    codes: list[str] = []
    node = next((c for c in fault if _local(c.tag) == "Code"), None)
    while node is not None:
        value = next((c for c in node if _local(c.tag) == "Value"), None)
        if value is not None and value.text:
            codes.append(value.text.strip())
        node = next((c for c in node if _local(c.tag) == "Subcode"), None)
    if not codes:  # SOAP 1.1: faultcode
        codes = [(c.text or "").strip() for c in fault if _local(c.tag) == "faultcode"]
    reason = " ".join(t.strip() for t in fault.xpath(".//*[local-name()='Text' or local-name()='faultstring']/text()"))
    text = clean(f"{reason or 'SOAP fault'} (code:{codes[0] if codes else '-'})"
                 + (f" (subcodes:{','.join(codes[1:])})" if codes[1:] else ""), limit=240)
    if any("NotAuthorized" in c for c in codes[1:]) or "auth" in text.lower():
        return DeviceAuthError(f"{what}: {text}")
    if any("ActionNotSupported" in c for c in codes) or "ActionNotSupported" in text:
        return Unsupported(f"{what}: {text}")
    return SoapFaultError(f"{what}: {text}")


def parse_answer(status: int, body: bytes, what: str) -> Any:
    """The first element inside the answer's Body; the fault or error it is otherwise."""
    if status in (401, 403):
        raise DeviceAuthError(f"{what}: HTTP {status}")
    if any(marker in body for marker in _REFUSED):
        raise BadXml(f"{what}: the answer has a DTD, entities or external references (refused, not expanded)")
    try:
        root = etree.fromstring(body, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        if status == 200:
            raise BadXml(f"{what}: invalid XML in the answer") from None
        raise DeviceProtocolError(f"{what}: HTTP {status}") from None
    if root is None or _local(root.tag) != "Envelope" or root.tag.partition("}")[0][1:] not in (SOAP12, SOAP11):
        raise BadXml(f"{what}: the answer is no SOAP envelope")
    body_el = next((c for c in root if _local(c.tag) == "Body"), None)
    if body_el is None:
        raise BadXml(f"{what}: malformed answer (no Body)")
    first = next((c for c in body_el if isinstance(c.tag, str)), None)
    if first is not None and _local(first.tag) == "Fault":
        raise _fault(first, what)
    if status != 200:
        raise DeviceProtocolError(f"{what}: HTTP {status}")
    if first is None:
        raise BadXml(f"{what}: malformed answer (an empty Body)")
    return first


_HEADS: dict[str, bytes] = {}  # SOAPAction -> the request's header lines, built once per process


def _head(action: str) -> bytes:
    head = _HEADS.get(action)
    if head is None:
        head = _HEADS[action] = (f'Content-Type: application/soap+xml; charset=utf-8; action="{action}"\r\n'
                                 "User-Agent: wardwatch\r\n").encode()
    return head


Target = tuple[str, str, int, str]  # scheme, host, port, path and query


def net_error(exc: BaseException, what: str) -> DeviceError | None:
    """The agent's exception for a transport error of agent/camera/http.py, or None."""
    if isinstance(exc, DeviceError):
        return exc
    if isinstance(exc, TimeoutError):
        return DeviceTimeout(f"{what}: no answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return CameraRefused(f"{what}: connection refused")
    if isinstance(exc, Disconnected | ConnectionResetError | BrokenPipeError):
        return CameraDisconnected(f"{what}: the camera closed the connection")
    if isinstance(exc, BodyTooLarge):
        return AnswerTooLarge(f"{what}: answer {exc}")
    if isinstance(exc, NotHttp):
        return BadHttp(f"{what}: not a usable HTTP answer: {clean(str(exc), limit=120)}")
    if isinstance(exc, ssl.SSLError):
        return DeviceUnreachable(f"{what}: TLS: {clean(str(exc.reason or exc), limit=120)}")
    if isinstance(exc, OSError):
        return DeviceUnreachable(f"{what}: {type(exc).__name__}: {clean(str(exc), limit=120)}")
    return None


class SoapClient:
    """One camera's ONVIF calls over a shared HTTP client (the poller's, or discover's)."""

    def __init__(self, *, host: str, port: int, username: str, password: str, time_limit: float,
                 http: Callable[[], HttpClient]) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self._password = password.encode()
        self._username = escape(username)
        self.time_limit = time_limit
        self._http = http
        self.offset_s: float | None = None  # applied to wsu:Created when the clock breaks auth
        self.xaddrs: dict[str, str] = {}
        self.xaddrs_ok = False
        self.device_url = f"http://{host}:{port}/onvif/device_service"
        self._netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._urls: dict[str, Target] = {}  # an address the camera named -> where it is asked (on_camera)

    def on_camera(self, url: str) -> Target:
        """``url`` (an XAddr or subscription address the camera named) on the configured host,
        as (scheme, host, port, target): an address on another host is asked at the camera's own
        host:port with the same path, so the UsernameToken never goes to a host the camera
        names (agent/camera/trust.py)."""
        known = self._urls.get(url)
        if known is not None:
            return known
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise DeviceProtocolError(f"unusable service address {clean(redact(url), limit=80)!r}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise DeviceProtocolError(f"the service address is not an http URL: {clean(redact(url), limit=80)!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if same_host(parts.hostname, self.host):
            fixed = (scheme, self.host, port or (443 if scheme == "https" else 80), target)
        else:
            fixed = ("http", self.host, self.port, target)
            log.info("camera %s:%s names %s for a service; asked at %s instead", self.host, self.port,
                     redact(url)[:120], self._netloc)
        if len(self._urls) < 64:
            self._urls[url] = fixed
        return fixed

    def set_time_offset(self, seconds: float | None) -> None:
        self.offset_s = seconds

    def _security(self) -> str:
        now = time.time() + (self.offset_s or 0.0)
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        nonce = os.urandom(16)
        digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + self._password).digest()).decode()
        return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" s:mustUnderstand="true"><wsse:UsernameToken>'
                f"<wsse:Username>{self._username}</wsse:Username>"
                f'<wsse:Password Type="{DIGEST}">{digest}</wsse:Password>'
                f'<wsse:Nonce EncodingType="{B64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
                f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>")

    async def request(self, what: str, url: str, action: str, body: str, *, auth: bool = True) -> Any:
        """POST one envelope; the answer's element (an lxml element) or the agent's error."""
        scheme, host, port, target = self.on_camera(url)
        header = self._security() if auth else ""
        envelope = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP12}"><s:Header>{header}'
                    f"</s:Header><s:Body>{body}</s:Body></s:Envelope>").encode()
        try:
            async with asyncio.timeout(self.time_limit):
                answer = await self._http().request("POST", scheme, host, port, target, head=_head(action),
                                                    body=envelope, tls=_TLS if scheme == "https" else None,
                                                    max_body=MAX_ANSWER)
        except asyncio.CancelledError:
            raise
        except (TimeoutError, OSError, ValueError) as exc:
            err = net_error(exc, what)
            if err is None:
                raise DeviceProtocolError(f"{what}: {type(exc).__name__}: {clean(str(exc), limit=120)}") from None
            raise err from None
        if answer.status == 401:
            challenges = answer.all("www-authenticate")
            if challenges and all(c.lower().startswith("basic") for c in challenges):
                raise DeviceAuthError(f"{what}: HTTP 401: the camera wants HTTP Basic auth; wardwatch signs SOAP "
                                      "calls with a WS-UsernameToken digest and never sends the password itself")
        return parse_answer(answer.status, answer.body, what)

    # The device service ------------------------------------------------------------------

    async def clock(self) -> ClockReading:
        body = f'<GetSystemDateAndTime xmlns="{DEVICE_NS}"/>'
        action = f"{DEVICE_NS}/GetSystemDateAndTime"
        sent = time.time()
        try:
            answer = await self.request("GetSystemDateAndTime", self.device_url, action, body, auth=False)
        except DeviceAuthError:  # some cameras want auth even for this
            sent = time.time()
            answer = await self.request("GetSystemDateAndTime", self.device_url, action, body)
        received = time.time()
        return parse_clock(Node(answer).SystemDateAndTime, sent=sent, received=received)

    async def device_info(self) -> DeviceInfo:
        a = Node(await self.request("GetDeviceInformation", self.device_url, f"{DEVICE_NS}/GetDeviceInformation",
                                    f'<GetDeviceInformation xmlns="{DEVICE_NS}"/>'))
        return DeviceInfo(
            manufacturer=_text(a, "Manufacturer"), model=_text(a, "Model"), firmware=_text(a, "FirmwareVersion"),
            serial=_text(a, "SerialNumber"), hardware_id=_text(a, "HardwareId"),
        )

    async def discover(self) -> None:
        """XAddrs of the camera's services: GetServices, or GetCapabilities when that faults
        or names none (the order common ONVIF clients use)."""
        xaddrs: dict[str, str] = {}
        try:
            answer = Node(await self.request(
                "GetServices", self.device_url, f"{DEVICE_NS}/GetServices",
                f'<GetServices xmlns="{DEVICE_NS}"><IncludeCapability>false</IncludeCapability></GetServices>'))
            for svc in answer.all("Service"):
                ns, addr = getattr(svc, "Namespace", None), getattr(svc, "XAddr", None)
                if isinstance(ns, str) and isinstance(addr, str) and ns and addr:
                    xaddrs[ns] = addr
        except (SoapFaultError, Unsupported, DeviceProtocolError) as exc:
            if isinstance(exc, BadXml | AnswerTooLarge):
                raise
        if not xaddrs:
            answer = Node(await self.request(
                "GetCapabilities", self.device_url, f"{DEVICE_NS}/GetCapabilities",
                f'<GetCapabilities xmlns="{DEVICE_NS}"><Category>All</Category></GetCapabilities>'))
            caps = answer.Capabilities
            for category, ns in CAPABILITY_NS.items():
                addr = getattr(getattr(caps, category, None), "XAddr", None) if isinstance(caps, Node) else None
                if isinstance(addr, str) and addr:
                    xaddrs[ns] = addr
        self.xaddrs = xaddrs
        self.xaddrs_ok = True

    @property
    def has_events(self) -> bool:
        return EVENTS_NS in self.xaddrs

    def _service_url(self, ns: str, what: str) -> str:
        url = self.xaddrs.get(ns)
        if url is None:
            raise Unsupported(f"{what}: the camera names no {ns.rsplit('/', 2)[-2]} service")
        if len(url) > 2048 or not url.isprintable() or not url.lower().startswith(("http://", "https://")):
            raise DeviceProtocolError(f"{what}: the service address is not an http URL")
        return url

    # The media service -------------------------------------------------------------------

    async def profiles(self) -> list[ProfileInfo]:
        url = self._service_url(MEDIA_NS, "GetProfiles")
        answer = Node(await self.request("GetProfiles", url, f"{MEDIA_NS}/GetProfiles",
                                         f'<GetProfiles xmlns="{MEDIA_NS}"/>'))
        try:
            return parse_profiles(answer.all("Profiles"))
        except (TypeError, AttributeError) as exc:
            raise BadXml(f"GetProfiles: unusable answer: {exc}") from None

    async def stream_uri(self, token: str) -> str:
        url = self._service_url(MEDIA_NS, "GetStreamUri")
        body = (f'<GetStreamUri xmlns="{MEDIA_NS}"><StreamSetup><Stream xmlns="{SCHEMA_NS}">RTP-Unicast</Stream>'
                f'<Transport xmlns="{SCHEMA_NS}"><Protocol>RTSP</Protocol></Transport></StreamSetup>'
                f"<ProfileToken>{escape(token)}</ProfileToken></GetStreamUri>")
        answer = Node(await self.request("GetStreamUri", url, f"{MEDIA_NS}/GetStreamUri", body))
        uri = _uri(answer.MediaUri, "GetStreamUri")
        if uri is None:
            raise DeviceProtocolError("GetStreamUri: no Uri in the answer")
        return uri

    async def snapshot_uri(self, token: str) -> str:
        try:
            url = self._service_url(MEDIA_NS, "GetSnapshotUri")
            answer = Node(await self.request(
                "GetSnapshotUri", url, f"{MEDIA_NS}/GetSnapshotUri",
                f'<GetSnapshotUri xmlns="{MEDIA_NS}"><ProfileToken>{escape(token)}</ProfileToken></GetSnapshotUri>'))
        except (Unsupported, SoapFaultError) as exc:
            raise NoSnapshotUri(str(exc)) from None
        uri = _uri(answer.MediaUri, "GetSnapshotUri")
        if uri is None:
            raise NoSnapshotUri("GetSnapshotUri: no Uri in the answer")
        return uri

    # The event service (events.py's PullPoint drives these) --------------------------------

    async def create_pullpoint(self, lifetime: str) -> Node:
        url = self._service_url(EVENTS_NS, "CreatePullPointSubscription")
        body = (f'<CreatePullPointSubscription xmlns="{EVENTS_NS}"><InitialTerminationTime>{lifetime}'
                f"</InitialTerminationTime></CreatePullPointSubscription>")
        return Node(await self.request("CreatePullPointSubscription", url,
                                       f"{EVENTS_NS}/EventPortType/CreatePullPointSubscriptionRequest", body))

    async def pull_messages(self, address: str, wait: str, limit: int) -> Node:
        body = (f'<PullMessages xmlns="{EVENTS_NS}"><Timeout>{wait}</Timeout><MessageLimit>{limit}</MessageLimit>'
                f"</PullMessages>")
        return Node(await self.request("PullMessages", address,
                                       f"{EVENTS_NS}/PullPointSubscription/PullMessagesRequest", body))

    async def renew(self, address: str, termination: str) -> Node:
        body = f'<Renew xmlns="{WSN_NS}"><TerminationTime>{termination}</TerminationTime></Renew>'
        return Node(await self.request("Renew", address, f"{WSN_NS}/SubscriptionManager/RenewRequest", body))

    async def unsubscribe(self, address: str) -> None:
        await self.request("Unsubscribe", address, f"{WSN_NS}/SubscriptionManager/UnsubscribeRequest",
                           f'<Unsubscribe xmlns="{WSN_NS}"/>')

    async def close(self) -> None:
        """Nothing of its own to close: the HTTP session is the poller's."""
