"""One camera's state: identity, fault knobs, clock, uptime, PullPoint subscriptions and events."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from wardwatch.simulators.camera.brands import Brand
from wardwatch.simulators.camera.soap import NonceCache

RTSP_MODES = ("ok", "404", "401", "timeout")
MAX_SUBSCRIPTIONS = 10
MAX_QUEUED_EVENTS = 100
# size knobs: true means the default size, false or 0 off, a number that many bytes
SIZE_KNOBS = {"rtsp_long_line": 1024 * 1024, "snapshot_huge": 100 * 1024 * 1024}
MAX_SIZE_KNOB = 16 * 1024 ** 3
URI_KNOBS = ("snapshot_uri", "stream_uri", "snapshot_redirect", "xaddr_host")


def _size(key: str, value: Any) -> int:
    if value is True:
        return SIZE_KNOBS[key]
    if value is False or value is None:
        return 0
    if isinstance(value, int) and 0 <= value <= MAX_SIZE_KNOB:
        return value
    raise ValueError(f"{key}: true, false or a number of bytes (0..{MAX_SIZE_KNOB}) expected, got {value!r}")


@dataclass(slots=True)
class Faults:
    """Persistent fault knobs of one camera. ``reboot`` and ``emit_event`` are one-shot actions
    and live in ``Camera.apply`` instead."""

    offline: bool = False
    slow: float = 0.0
    auth_fail: bool = False
    clock_skew: float = 0.0
    bad_xml: bool = False
    no_snapshot_uri: bool = False
    rtsp: str = "ok"
    frozen: bool = False
    # garbage from broken or hostile firmware (docs/camera-simulator.md, "Garbage knobs")
    soap_garbage: bool = False  # SOAP answers (but GetSystemDateAndTime): random bytes, cut or misshapen XML
    billion_laughs: bool = False  # every SOAP answer is an XML entity-expansion bomb
    rtsp_long_line: int = 0  # bytes of one header line in every RTSP reply (true: 1 MiB)
    snapshot_huge: int = 0  # bytes of a snapshot streamed on the fly, chunked (true: 100 MiB)
    event_garbage: bool = False  # PullMessages answers carry odd-shaped messages, now and then garbage bytes
    # hostile cameras (docs/camera-simulator.md, "Hostile knobs")
    snapshot_uri: str = ""  # GetSnapshotUri answers this URI (another host's, say) instead of its own
    stream_uri: str = ""  # GetStreamUri answers this URI instead of its own
    snapshot_redirect: str = ""  # an authenticated snapshot GET answers 302 to this Location
    xaddr_host: str = ""  # host:port named in every service XAddr and subscription address instead of its own
    basic_only: bool = False  # snapshot and RTSP DESCRIBE challenge with HTTP Basic only (and accept it)
    discovery_laughs: bool = False  # this camera's ProbeMatches are billion-laughs documents (UTF-8 and UTF-16)

    def update(self, values: dict[str, Any]) -> None:
        """Set the given knobs; unknown names or wrong types raise ValueError and change nothing."""
        known = {f.name: f.type for f in fields(self)}
        staged: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}")
            if key in ("slow", "clock_skew"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{key}: a number of seconds expected, got {value!r}")
                if key == "slow" and value < 0:
                    raise ValueError("slow: must be >= 0")
                staged[key] = float(value)
            elif key in SIZE_KNOBS:
                staged[key] = _size(key, value)
            elif key in URI_KNOBS:
                text = "" if value in (None, False) else value
                if not isinstance(text, str) or len(text) > 4096 or not text.isprintable():
                    raise ValueError(f"{key}: a URI (printable, at most 4096 characters) or false, got {value!r}")
                staged[key] = text
            elif key == "rtsp":
                text = "ok" if value in (None, False) else str(value)
                if text not in RTSP_MODES:
                    raise ValueError(f"rtsp: one of {', '.join(RTSP_MODES)}, got {value!r}")
                staged[key] = text
            else:
                if not isinstance(value, bool):
                    raise ValueError(f"{key}: true or false expected, got {value!r}")
                staged[key] = value
        for key, value in staged.items():
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EventKind:
    topic: str
    source: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]


def event_kind(name: str, brand: Brand) -> EventKind:
    """A short name (tamper, video_loss, storage_failure, motion) or a full ``tns1:`` topic."""
    hik = brand.key == "hikvision"
    vs = "VideoSourceToken" if hik else "VideoSource0"
    if name == "tamper":
        if hik:
            return EventKind("tns1:RuleEngine/TamperDetector/Tamper",
                             (("VideoSourceConfigurationToken", "VideoSourceToken"),
                              ("VideoAnalyticsConfigurationToken", "VideoAnalyticsToken"),
                              ("Rule", "MyTamperDetectorRule")),
                             (("IsTamper", "true"),))
        return EventKind("tns1:VideoSource/GlobalSceneChange/ImagingService", (("Source", vs),),
                         (("State", "true"),))
    if name == "video_loss":
        return EventKind("tns1:VideoSource/SignalLoss", (("Source", vs),), (("State", "true"),))
    if name == "storage_failure":
        return EventKind("tns1:Device/HardwareFailure/StorageFailure", (("Token", "SD_DISK_20200"),),
                         (("Failed", "true"),))
    if name == "motion":
        return EventKind("tns1:VideoSource/MotionAlarm", (("Source", vs),), (("State", "true"),))
    if name.startswith("tns1:") and " " not in name and "<" not in name:
        return EventKind(name, (("Source", vs),), (("State", "true"),))
    raise ValueError(f"emit_event: tamper, video_loss, storage_failure, motion or a tns1: topic, got {name!r}")


@dataclass(slots=True)
class Event:
    kind: EventKind
    at: dt.datetime


@dataclass(slots=True)
class Subscription:
    idx: int
    path: str
    terminates: dt.datetime
    queue: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_QUEUED_EVENTS))
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class Camera:
    """Everything one simulated camera knows; the servers read and change it."""

    id: str
    brand: Brand
    host: str
    onvif_port: int
    rtsp_port: int
    username: str
    password: str
    index: int = 0
    faults: Faults = field(default_factory=Faults)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    boot_monotonic: float = field(default_factory=time.monotonic)
    down_until: float = 0.0
    reboots: int = 0
    snapshots: int = 0
    nonces: NonceCache = field(default_factory=NonceCache)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    next_subscription: int = 0
    auth_window_s: float = 300.0
    garbage_sent: int = 0  # answers spoilt by a garbage knob so far (picks the next kind)
    rtsp_scheme: str = "rtsp"  # "rtsps" when the RTSP listener speaks TLS
    basic_received: int = 0  # requests (snapshot, RTSP) that carried a Basic Authorization header

    @property
    def serial(self) -> str:
        return f"{self.brand.serial_prefix}{self.index:05d}"

    @property
    def mac(self) -> str:
        n = self.index + 1
        oui = "c0:56:e3" if self.brand.key == "hikvision" else "3c:ef:8c"
        return f"{oui}:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"

    def now(self) -> dt.datetime:
        """The camera's clock: real UTC plus the injected skew."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.faults.clock_skew)

    def uptime_s(self) -> float:
        return time.monotonic() - self.boot_monotonic

    def boot_time(self) -> dt.datetime:
        return self.now() - dt.timedelta(seconds=self.uptime_s())

    def available(self) -> bool:
        """False while offline or rebooting: no service answers."""
        return not self.faults.offline and time.monotonic() >= self.down_until

    def reboot(self, downtime_s: float) -> None:
        """Drop subscriptions and nonces, reset uptime, and stay unavailable for ``downtime_s``."""
        for sub in self.subscriptions.values():
            sub.wake.set()
        self.subscriptions.clear()
        self.nonces.clear()
        self.reboots += 1
        self.boot_monotonic = time.monotonic() + downtime_s
        self.down_until = time.monotonic() + downtime_s

    def emit(self, name: str) -> EventKind:
        """Queue an event on every live subscription (events with no subscriber are lost, as on cameras)."""
        kind = event_kind(name, self.brand)
        self.expire()
        for sub in self.subscriptions.values():
            sub.queue.append(Event(kind=kind, at=self.now()))
            sub.wake.set()
        return kind

    def expire(self) -> None:
        now = self.now()
        for key in [k for k, s in self.subscriptions.items() if s.terminates < now]:
            self.subscriptions.pop(key).wake.set()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "brand": self.brand.key,
            "host": self.host,
            "onvif_port": self.onvif_port,
            "rtsp_port": self.rtsp_port,
            "device_service": f"http://{self.host}:{self.onvif_port}/onvif/device_service",
            "faults": self.faults.as_dict(),
            "uptime_s": round(max(self.uptime_s(), 0.0), 1),
            "reboots": self.reboots,
            "subscriptions": len(self.subscriptions),
            "available": self.available(),
        }
