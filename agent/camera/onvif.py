"""ONVIF over onvif-zeep-async, behind the agent's own exception types.

One :class:`OnvifClient` per camera, created once and reused: the library builds an
aiohttp session and two zeep clients per service (device, media, events, ...), and parses
the packaged WSDLs once per process (cached by path, off the event loop). Nothing is
fetched from the network but the camera itself.

Every library error is translated here (STYLE 5): timeouts, refused connections, SOAP
faults (``ter:NotAuthorized`` is auth), HTTP 401, broken XML. Callers see only
:class:`~wardwatch.agent.core.errors.DeviceError` subclasses whose ``reason`` is the error class.

What a camera says is untrusted (see :func:`_harden`): answers are parsed without entity
expansion, DTDs or external references, within libxml2's depth and size limits
(onvif-zeep-async turns those off with ``xml_huge_tree``; we turn them back on), and read
only up to :data:`MAX_ANSWER` bytes. Text that leaves this module is cleaned
(:func:`wardwatch.agent.core.text.clean`).

The ``onvif`` package is imported lazily (it takes ~0.4 s and configures the root logger
at import; see :func:`_lib`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import importlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any, TypeVar

import aiohttp

from wardwatch.agent.camera.trust import redact
from wardwatch.agent.core.errors import (
    DeviceAuthError,
    DeviceError,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
)
from wardwatch.agent.core.text import MAX_FIELD, clean

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
PULLPOINT_NS = f"{EVENTS_NS}/PullPointSubscription"


class CameraRefused(DeviceUnreachable):
    reason = "refused"


class CameraDisconnected(DeviceUnreachable):
    """The camera accepted the connection and closed it without an answer."""

    reason = "disconnected"


class ClockSkewAuthError(DeviceAuthError):
    """Auth failed while the camera's clock is off by more than the window."""

    reason = "clock_skew_auth"


class BadXml(DeviceProtocolError):
    reason = "bad_xml"


class AnswerTooLarge(BadXml):
    """A SOAP answer over MAX_ANSWER bytes: not read, not parsed."""


class BadHttp(DeviceProtocolError):
    """An answer that is not HTTP: a header line over aiohttp's limit, a broken status line."""

    reason = "bad_http"


MAX_ANSWER = 8 * 1024 * 1024  # a SOAP answer; GetEventProperties of a big NVR is well under 1 MB
MAX_URI = 2048


class SoapFaultError(DeviceProtocolError):
    reason = "soap_fault"


class Unsupported(DeviceProtocolError):
    """The camera does not offer a service or operation."""

    reason = "unsupported"


class NoSnapshotUri(DeviceProtocolError):
    reason = "no_snapshot_uri"


# The library, imported on first use --------------------------------------------------

_LIB: SimpleNamespace | None = None


def _lib() -> SimpleNamespace:
    """Import onvif-zeep-async. Its ``onvif.client`` calls ``logging.basicConfig(level=INFO)``
    at import, which would win over the CLI's ``--log-level`` and print every zeep debug
    line at INFO; the root logger is put back as it was."""
    global _LIB
    if _LIB is None:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        import onvif
        import onvif.client
        import onvif.exceptions
        import onvif.settings
        import onvif.util
        import zeep.exceptions
        etree = importlib.import_module("lxml.etree")  # lxml has no type stubs here

        root.handlers[:] = handlers
        root.setLevel(level)
        _harden(onvif.settings.DEFAULT_SETTINGS)
        for name in ("zeep.xsd.types.simple", "zeep.xsd.elements.attribute"):
            logging.getLogger(name).addFilter(_quiet_zeep)
        _LIB = SimpleNamespace(onvif=onvif, client=onvif.client, exc=onvif.exceptions, util=onvif.util,
                               zexc=zeep.exceptions, etree=etree)
    return _LIB


def _quiet_zeep(record: logging.LogRecord) -> bool:
    """zeep logs a full traceback at ERROR for every value it cannot read (a camera's
    ``UtcTime="yesterday"``), then reads it as None and goes on. Once per message and poll,
    that buries the agent's log; it becomes one DEBUG line with the error's text."""
    if record.exc_info and record.exc_info[1] is not None:
        record.msg = f"{record.getMessage()}: {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _harden(settings: Any) -> None:
    """Make the library's shared zeep settings safe for answers from untrusted devices.

    onvif-zeep-async parses every answer (and its packaged WSDLs) with one ``Settings``
    object that has ``xml_huge_tree=True``, which lifts libxml2's limits on depth, text
    size and entity amplification. zeep always parses with ``resolve_entities=False``;
    on top of that an answer with a DTD (the carrier of a billion-laughs bomb), an entity
    declaration or an external reference is refused outright. The packaged WSDLs have
    none of them. ``strict`` stays False: cameras send sloppy XML, and zeep's recovery
    of it is what the library relies on."""
    settings.xml_huge_tree = False
    settings.forbid_dtd = True
    settings.forbid_entities = True
    settings.forbid_external = True


async def _bounded_post(transport: Any, address: str, message: str | bytes,
                        headers: dict[str, str]) -> tuple[Any, bytes]:
    """The library's ``AIOHTTPTransport._post_internal``, reading at most MAX_ANSWER bytes.

    The library reads an answer whole (``response.read()``), whatever its size; a camera
    that streams an endless body would take the agent's memory with it."""
    headers = dict(headers or {})
    headers.setdefault("Content-Type", 'text/xml; charset="utf-8"')
    data = message.encode("utf-8") if isinstance(message, str) else message
    response = await transport.session.post(address, data=data, headers=headers, proxy=transport.proxy,
                                            timeout=transport._client_timeout)
    try:
        length = response.content_length
        if length is not None and length > MAX_ANSWER:
            raise AnswerTooLarge(f"answer of {length} bytes is over the {MAX_ANSWER // 2**20} MiB cap")
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > MAX_ANSWER:
                raise AnswerTooLarge(f"answer over the {MAX_ANSWER // 2**20} MiB cap")
    except AnswerTooLarge:
        response.close()  # drop the connection rather than read the rest
        raise
    response.release()
    return response, bytes(body)


def _bound_answers(cam: Any) -> None:
    """Put :func:`_bounded_post` in place on each of the camera's service transports (once each).
    A library whose transport no longer looks as expected is left as it is, with a warning."""
    for svc in list(getattr(cam, "services", {}).values()):
        transport = getattr(svc, "transport", None)
        if transport is None or getattr(transport, "_wardwatch_bounded", False):
            continue
        transport._wardwatch_bounded = True
        if not all(hasattr(transport, a) for a in ("_post_internal", "session", "proxy", "_client_timeout")):
            log.warning("onvif-zeep-async's transport has changed: SOAP answers are not size-capped")
            continue
        transport._post_internal = functools.partial(_bounded_post, transport)


def onvif_module() -> ModuleType:
    mod: ModuleType = _lib().onvif
    return mod


# Results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockReading:
    skew_s: float | None  # camera - agent; None when the camera gave no UTC time
    rtt_ms: float
    camera_utc: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    token: str
    name: str
    encoding: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    bitrate_kbps: int = 0


# Error translation --------------------------------------------------------------------


def http_error(exc: BaseException, what: str) -> DeviceError | None:
    """The agent's exception for a timeout or an aiohttp error, or None when ``exc`` is none
    (shared by this client and agent/camera/soap.py)."""
    if isinstance(exc, DeviceError):
        return exc
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return DeviceTimeout(f"{what}: no answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return CameraRefused(f"{what}: connection refused")
        return DeviceUnreachable(f"{what}: {exc.os_error or exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | ConnectionResetError):
        return CameraDisconnected(f"{what}: the camera closed the connection")
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp's parser refused the answer (a header line over 8 KiB, a broken status line):
        # the camera answered, with something that is not HTTP.
        return BadHttp(f"{what}: not a usable HTTP answer: {clean(str(exc.message), limit=120)}")
    if isinstance(exc, aiohttp.ClientError | ConnectionError):
        return DeviceUnreachable(f"{what}: {type(exc).__name__}: {exc}")
    return None


def translate(exc: BaseException, what: str) -> DeviceError | None:
    """The agent's exception for a library error, or None when ``exc`` is not one."""
    lib = _lib()
    if isinstance(exc, AnswerTooLarge):  # raised by _bounded_post, which does not know the operation
        return AnswerTooLarge(f"{what}: {exc}")
    if isinstance(exc, lib.exc.ONVIFTimeoutError):
        return DeviceTimeout(f"{what}: no answer in time")
    err = http_error(exc, what)
    if err is not None:
        return err
    if isinstance(exc, lib.exc.ONVIFAuthError):
        return DeviceAuthError(f"{what}: {exc}")
    if isinstance(exc, lib.zexc.Fault):
        text = lib.util.stringify_onvif_error(exc)
        if lib.util.is_auth_error(exc):
            return DeviceAuthError(f"{what}: {text}")
        subcodes = " ".join(lib.util.extract_subcodes_as_strings(exc.subcodes)) if exc.subcodes else ""
        if "ActionNotSupported" in subcodes or "ActionNotSupported" in text:
            return Unsupported(f"{what}: {text}")
        return SoapFaultError(f"{what}: {text}")
    if isinstance(exc, lib.zexc.TransportError):
        status = getattr(exc, "status_code", 0)
        if status in (401, 403):
            return DeviceAuthError(f"{what}: HTTP {status}")
        if "invalid XML" in str(exc) or status == 200:
            return BadXml(f"{what}: invalid XML in the answer")
        return DeviceProtocolError(f"{what}: HTTP {status}")
    if isinstance(exc, lib.zexc.XMLSyntaxError | lib.zexc.XMLParseError | lib.etree.XMLSyntaxError
                  | UnicodeDecodeError):
        return BadXml(f"{what}: invalid XML in the answer")
    if isinstance(exc, lib.zexc.DTDForbidden | lib.zexc.EntitiesForbidden | lib.zexc.ExternalReferenceForbidden):
        return BadXml(f"{what}: the answer has a DTD, entities or external references (refused, not expanded)")
    if isinstance(exc, lib.zexc.Error):
        return DeviceProtocolError(f"{what}: {type(exc).__name__}: {clean(str(exc), limit=120)}")
    if isinstance(exc, lib.exc.ONVIFError):
        cause = exc.__cause__
        if cause is not None and cause is not exc:
            inner = translate(cause, what)
            if inner is not None:
                return inner
        return Unsupported(f"{what}: {exc}")
    return None


def _text(obj: Any, *path: str) -> str:
    """Device text at ``path``, cleaned (control characters out, at most MAX_FIELD characters)."""
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return ""
    if not isinstance(obj, str | int | float):  # an element, a list: not text
        return ""
    return clean(str(obj), limit=MAX_FIELD)


MAX_NUMBER = 1e12  # no resolution, frame rate or bitrate comes near


def _num(obj: Any, *path: str) -> float:
    """A number at ``path``; 0 when absent, not a number, not finite (``nan``, ``1e999``) or absurd."""
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return 0.0
    if isinstance(obj, str) and len(obj) > 64:
        return 0.0
    try:
        value = float(obj)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return value if math.isfinite(value) and abs(value) <= MAX_NUMBER else 0.0


def parse_clock(answer: Any, *, sent: float, received: float) -> ClockReading:
    """GetSystemDateAndTime -> skew against the agent clock at the request's midpoint.

    Cameras report whole seconds, truncated, so half a second is added: the estimate is
    then unbiased and within +-0.5 s plus half the round trip.
    """
    rtt_ms = round((received - sent) * 1000, 1)
    utc = getattr(answer, "UTCDateTime", None)
    date, tod = getattr(utc, "Date", None), getattr(utc, "Time", None)
    if date is None or tod is None:
        return ClockReading(None, rtt_ms, None)
    try:
        cam = dt.datetime(int(date.Year), int(date.Month), int(date.Day), int(tod.Hour), int(tod.Minute),
                          int(tod.Second), tzinfo=dt.UTC)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise BadXml(f"GetSystemDateAndTime: unusable UTCDateTime: {clean(str(exc), limit=120)}") from None
    skew = cam.timestamp() + 0.5 - (sent + received) / 2
    return ClockReading(round(skew, 1), rtt_ms, cam)


def parse_profiles(answer: Any) -> list[ProfileInfo]:
    out: list[ProfileInfo] = []
    for p in answer or []:
        vec = getattr(p, "VideoEncoderConfiguration", None)
        token = getattr(p, "token", None) or getattr(p, "_token", None)
        if not token:
            continue
        out.append(ProfileInfo(
            token=str(token),
            name=_text(p, "Name"),
            encoding=_text(vec, "Encoding"),
            width=int(_num(vec, "Resolution", "Width")),
            height=int(_num(vec, "Resolution", "Height")),
            fps=_num(vec, "RateControl", "FrameRateLimit"),
            bitrate_kbps=int(_num(vec, "RateControl", "BitrateLimit")),
        ))
    return out


def _uri(answer: Any, what: str) -> str | None:
    """MediaUri/Uri; a URI that is not text, is longer than MAX_URI or holds control
    characters is refused (it would go on a request line)."""
    uri = getattr(answer, "Uri", None)
    if uri is None and isinstance(answer, dict):
        uri = answer.get("Uri")
    if uri is None:
        return None
    if not isinstance(uri, str):
        raise BadXml(f"{what}: the Uri is not text")
    text = uri.strip()
    if len(text) > MAX_URI or not text.isprintable():
        shown = clean(redact(text), limit=60)
        raise DeviceProtocolError(f"{what}: unusable Uri ({len(text)} characters: {shown!r}...)")
    return text or None


# The client ---------------------------------------------------------------------------


SERVICE_LIMIT = 10.0


class OnvifClient:
    """One camera's ONVIF session: services built once, reused every poll."""

    def __init__(self, *, host: str, port: int, username: str, password: str, time_limit: float) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.time_limit = time_limit
        self.cam: Any = None
        self.offset_s: float | None = None  # applied to wsu:Created when the clock breaks auth
        self.xaddrs_ok = False

    async def camera(self) -> Any:
        if self.cam is None:
            lib = _lib()
            # no_cache: no SqliteCache file; the packaged wsdl_dir is the default.
            self.cam = lib.client.ONVIFCamera(self.host, self.port, self.username, self.password,
                                              no_cache=True, adjust_time=False)
        return self.cam

    async def call(self, what: str, fn: Callable[[], Awaitable[T]], *, limit: float | None = None) -> T:
        """Run one request under the per-request time limit, translating errors."""
        try:
            async with asyncio.timeout(limit or self.time_limit):
                if self.cam is not None:
                    _bound_answers(self.cam)
                result = await fn()
                if self.cam is not None:
                    _bound_answers(self.cam)  # services created by fn(), before their first request
                return result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # translated below; anything unknown is re-raised as is
            err = translate(exc, what)
            if err is None:
                if not isinstance(exc, TypeError | AttributeError | IndexError | KeyError | ValueError):
                    raise
                # zeep with strict=False parses what it can of a broken document (a truncated
                # body "recovers" into one without env:Body) and then trips over the hole.
                log.debug("camera %s:%s: %s: malformed answer", self.host, self.port, what, exc_info=True)
                err = BadXml(f"{what}: malformed answer ({type(exc).__name__}: {exc})")
            raise err from exc

    async def service(self, name: str) -> Any:
        cam = await self.camera()
        # Building a service parses its WSDL (about 0.5 s the first time in a process) and
        # opens its HTTP session; cancelling that half-way leaks the session inside the
        # library, so it gets a generous limit of its own rather than the request's.
        return await self.call(
            f"create {name} service", lambda: cam.create_onvif_service(name), limit=max(self.time_limit, SERVICE_LIMIT)
        )

    async def clock(self) -> ClockReading:
        dm = await self.service("devicemgmt")
        sent = time.time()
        try:
            answer = await self.call("GetSystemDateAndTime", lambda: dm.authless_GetSystemDateAndTime())
        except DeviceAuthError:  # some cameras want auth even for this
            sent = time.time()
            answer = await self.call("GetSystemDateAndTime", lambda: dm.GetSystemDateAndTime())
        return parse_clock(answer, sent=sent, received=time.time())

    async def device_info(self) -> DeviceInfo:
        dm = await self.service("devicemgmt")
        a = await self.call("GetDeviceInformation", lambda: dm.GetDeviceInformation())
        return DeviceInfo(
            manufacturer=_text(a, "Manufacturer"), model=_text(a, "Model"), firmware=_text(a, "FirmwareVersion"),
            serial=_text(a, "SerialNumber"), hardware_id=_text(a, "HardwareId"),
        )

    def set_time_offset(self, seconds: float | None) -> None:
        """Shift wsu:Created by ``seconds`` (camera - agent) on every service, present and future.

        The library applies ``dt_diff`` only to services created after it is set (each service
        holds its own UsernameToken), so the tokens of existing services are updated too.
        """
        self.offset_s = seconds
        diff = None if seconds is None else dt.timedelta(seconds=seconds)
        if self.cam is None:
            return
        self.cam.dt_diff = diff
        for svc in self.cam.services.values():
            svc.dt_diff = diff
            wsse = getattr(getattr(svc, "zeep_client", None), "wsse", None)
            if wsse is not None:
                wsse.dt_diff = diff

    async def discover(self) -> None:
        """XAddrs of the camera's services (GetServices, falling back to GetCapabilities)."""
        cam = await self.camera()
        pullpoint = cam.xaddrs.get(PULLPOINT_NS)
        await self.call("GetServices", lambda: cam.update_xaddrs())
        if pullpoint is not None:  # update_xaddrs() starts afresh; keep our subscription's address
            cam.xaddrs.setdefault(PULLPOINT_NS, pullpoint)
        # update_xaddrs() resets dt_diff; put the offset back for services created from now on.
        self.set_time_offset(self.offset_s)
        self.xaddrs_ok = True

    @property
    def has_events(self) -> bool:
        return self.cam is not None and EVENTS_NS in self.cam.xaddrs

    async def profiles(self) -> list[ProfileInfo]:
        media = await self.service("media")
        answer = await self.call("GetProfiles", lambda: media.GetProfiles())
        try:
            return parse_profiles(answer)
        except (TypeError, AttributeError) as exc:
            raise BadXml(f"GetProfiles: unusable answer: {exc}") from None

    async def stream_uri(self, token: str) -> str:
        media = await self.service("media")
        req = {"ProfileToken": token, "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}}
        uri = _uri(await self.call("GetStreamUri", lambda: media.GetStreamUri(req)), "GetStreamUri")
        if uri is None:
            raise DeviceProtocolError("GetStreamUri: no Uri in the answer")
        return uri

    async def snapshot_uri(self, token: str) -> str:
        media = await self.service("media")
        try:
            answer = await self.call("GetSnapshotUri", lambda: media.GetSnapshotUri({"ProfileToken": token}))
        except (Unsupported, SoapFaultError) as exc:
            raise NoSnapshotUri(str(exc)) from None
        uri = _uri(answer, "GetSnapshotUri")
        if uri is None:
            raise NoSnapshotUri("GetSnapshotUri: no Uri in the answer")
        return uri

    async def close(self) -> None:
        if self.cam is not None:
            cam, self.cam = self.cam, None
            try:
                async with asyncio.timeout(2):
                    await cam.close()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.debug("camera %s:%s: close: %s", self.host, self.port, exc)
