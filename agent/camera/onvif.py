"""ONVIF's shared parts: the agent's camera error classes, the result types and the parsers.

The calls themselves are fixed SOAP envelopes in agent/camera/soap.py (the poll and
``discover`` both use :class:`~wardwatch.agent.camera.soap.SoapClient`); its answers are
read with lxml and handed here through :class:`~wardwatch.agent.camera.soap.Node`, which
gives an element the attribute shape the parsers read. Errors are the agent's own (STYLE 5):
:class:`~wardwatch.agent.core.errors.DeviceError` subclasses whose ``reason`` is the class.

What a camera says is untrusted: soap.py reads at most :data:`MAX_ANSWER` bytes and refuses
a DTD, entities and external references; the parsers here take numbers only when finite and
sane, URIs only when printable and at most :data:`MAX_URI` long, and clean every text that
leaves (:func:`wardwatch.agent.core.text.clean`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from wardwatch.agent.camera.trust import redact
from wardwatch.agent.core.errors import (
    DeviceAuthError,
    DeviceProtocolError,
    DeviceUnreachable,
)
from wardwatch.agent.core.text import MAX_FIELD, clean

EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"


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
    """An answer that is not HTTP: a header line over agent/camera/http.py's limits, a broken status line."""

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


# Parsing ------------------------------------------------------------------------------


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
