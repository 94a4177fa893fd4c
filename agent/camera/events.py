"""ONVIF events through a PullPoint subscription: create, renew, pull, recreate after a reboot.

The subscription is driven by the camera's polls (no background timers): each poll pulls
what the camera queued since the last one, renews when less than half the lifetime is
left, and recreates the subscription when the camera no longer knows it (a fault on the
old reference, as after a reboot). Messages are classified by topic into tamper, video
loss, storage failure, motion and other (topics as in devices.md section C).

Messages come in every shape (no topic, a topic made of elements, a Message that is only
text, items without names, 10 kB values): each is read defensively, its text cleaned and
capped (:func:`wardwatch.agent.core.text.clean`), at most :data:`MAX_ITEMS` items each and
:data:`MESSAGE_LIMIT` messages a pull. One that cannot be read at all is skipped and counted
(``PullPoint.skipped``), never the end of the poll.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from wardwatch.agent.camera.onvif import BadXml, Unsupported
from wardwatch.agent.camera.soap import SoapClient
from wardwatch.agent.core.errors import DeviceError, DeviceProtocolError, DeviceTimeout
from wardwatch.agent.core.text import MAX_EVENT, MAX_FIELD, MAX_TAG, clean

log = logging.getLogger(__name__)

CLASSES = ("tamper", "video_loss", "storage_failure", "motion", "other")
MESSAGE_LIMIT = 100
MAX_ITEMS = 32  # SimpleItems kept per Source or Data
# what reading an odd message can raise (zeep objects and lxml elements of unexpected shapes)
ODD_SHAPE = (AttributeError, TypeError, ValueError, KeyError, IndexError)
_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no"}


def classify(topic: str) -> str:
    """Event class of an ONVIF topic such as ``tns1:RuleEngine/TamperDetector/Tamper``."""
    path = "/".join(part.rpartition(":")[2] for part in topic.strip().split("/")).lower()
    if "tamper" in path or "globalscenechange" in path:
        return "tamper"
    if "signalloss" in path or "videoloss" in path:
        return "video_loss"
    if "storagefailure" in path or ("storage" in path and "fail" in path):
        return "storage_failure"
    if "motion" in path:
        return "motion"
    return "other"


@dataclass(frozen=True, slots=True)
class CameraEvent:
    topic: str
    cls: str
    operation: str = ""  # Initialized, Changed, Deleted (ONVIF PropertyOperation)
    utc_time: str = ""
    source: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """An event that happened, as opposed to a state that went back to normal: a message
        whose data are all false-like (``IsTamper=false``) is the end of one, not a new one."""
        values = [v.strip().lower() for v in self.data.values()]
        return not values or not all(v in _FALSE for v in values)


def _scalar(value: Any, limit: int) -> str:
    """Cleaned text of an attribute or element text; anything else (an element, a list) is ""."""
    if isinstance(value, str | int | float | bool):
        return clean(str(value), limit=limit)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return ""


def _items(container: Any) -> dict[str, str]:
    """Name -> Value of the SimpleItems under ``container``: at most MAX_ITEMS, names and
    values cleaned; items without a name are skipped."""
    if container is None:
        return {}
    if hasattr(container, "tag"):  # an lxml element
        pairs = ((e.get("Name"), e.get("Value")) for e in container if str(e.tag).endswith("SimpleItem"))
    else:
        items = getattr(container, "SimpleItem", None) or []
        if not isinstance(items, list):
            items = [items]
        pairs = ((getattr(i, "Name", None), getattr(i, "Value", None)) for i in items)
    out: dict[str, str] = {}
    for name, value in pairs:
        key = _scalar(name, MAX_TAG)
        if key:
            out[key] = _scalar(value, MAX_EVENT)
            if len(out) >= MAX_ITEMS:
                break
    return out


def parse_message(msg: Any) -> CameraEvent | None:
    """A wsnt:NotificationMessage (as zeep gives it) -> CameraEvent; None when it has no
    usable topic. Raises one of ODD_SHAPE for a message of a shape beyond reading."""
    topic_obj = getattr(msg, "Topic", None)
    topic = _scalar(getattr(topic_obj, "_value_1", topic_obj), MAX_FIELD)
    if not topic:
        return None
    wrapper = getattr(msg, "Message", None)
    body = getattr(wrapper, "_value_1", wrapper)
    if body is None or isinstance(body, str | bytes | list):
        return CameraEvent(topic=topic, cls=classify(topic))
    if hasattr(body, "tag"):  # lxml element tt:Message
        def child(name: str) -> Any:
            return next((c for c in body if str(c.tag).endswith("}" + name) or c.tag == name), None)

        return CameraEvent(
            topic=topic, cls=classify(topic), operation=_scalar(body.get("PropertyOperation") or "", 32),
            utc_time=_scalar(body.get("UtcTime") or "", 64), source=_items(child("Source")),
            data=_items(child("Data")),
        )
    return CameraEvent(
        topic=topic, cls=classify(topic), operation=_scalar(getattr(body, "PropertyOperation", "") or "", 32),
        utc_time=_scalar(getattr(body, "UtcTime", None) or "", 64),
        source=_items(getattr(body, "Source", None)), data=_items(getattr(body, "Data", None)),
    )


@dataclass(slots=True)
class EventCounts:
    """Counts since the last reading, and what outlives readings."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    messages: int = 0
    last_topic: str = ""

    def add(self, ev: CameraEvent) -> None:
        self.messages += 1
        self.last_topic = ev.topic
        if ev.active and ev.operation != "Initialized":
            self.counts[ev.cls] += 1

    def take(self) -> dict[str, int]:
        out = dict(self.counts)
        self.counts = dict.fromkeys(CLASSES, 0)
        return out


class PullPoint:
    """One camera's PullPoint subscription."""

    def __init__(self, client: SoapClient, *, lifetime_s: float, pull_wait_s: float, device: str = "") -> None:
        self.device = device or client.host  # the camera's id in log lines (logs.py lifts it)
        self.client = client
        self.lifetime_s = lifetime_s
        self.pull_wait_s = pull_wait_s
        self.address: str | None = None
        self.expires_at = 0.0  # monotonic
        self.created = 0  # subscriptions created, ever
        self.recreated = 0  # of which after the camera lost the previous one
        self.renewed = 0
        self.unsupported = False
        self.last_error = ""
        self.skipped = 0  # messages that could not be read at all, ever

    @property
    def subscribed(self) -> bool:
        return self.address is not None

    def _expiry(self, answer: Any) -> None:
        now = time.monotonic()
        current = _when(getattr(answer, "CurrentTime", None))
        term = _when(getattr(answer, "TerminationTime", None))
        if current is not None and term is not None:
            try:
                left = (term - current).total_seconds()
            except TypeError:  # one naive, one aware
                left = (term.replace(tzinfo=None) - current.replace(tzinfo=None)).total_seconds()
            self.expires_at = now + min(max(0.0, left), 10 * self.lifetime_s)
        else:
            self.expires_at = now + self.lifetime_s

    async def start(self) -> None:
        answer = await self.client.create_pullpoint(f"PT{int(self.lifetime_s)}S")
        ref = getattr(answer, "SubscriptionReference", None)
        addr_obj = getattr(ref, "Address", None)
        address = getattr(addr_obj, "_value_1", addr_obj) if not isinstance(addr_obj, str) else addr_obj
        if not address:
            raise DeviceProtocolError("CreatePullPointSubscription: no SubscriptionReference/Address")
        if not isinstance(address, str) or len(address) > 2048 or not address.strip().isprintable() \
                or not address.strip().lower().startswith(("http://", "https://")):
            raise DeviceProtocolError("CreatePullPointSubscription: the subscription's Address is not an http URL")
        self.address = str(address).strip()
        self.created += 1
        self._expiry(answer)
        log.debug("camera %s: subscribed at %s", self.device, self.address)

    async def renew(self) -> None:
        assert self.address is not None
        answer = await self.client.renew(self.address, f"PT{int(self.lifetime_s)}S")
        self.renewed += 1
        self._expiry(answer)

    async def pull(self) -> list[CameraEvent]:
        assert self.address is not None
        answer = await self.client.pull_messages(self.address, f"PT{self.pull_wait_s:g}S", MESSAGE_LIMIT)
        self._expiry(answer)
        msgs = answer.all("NotificationMessage")
        if len(msgs) > MESSAGE_LIMIT:  # more than asked for
            self.skipped += len(msgs) - MESSAGE_LIMIT
            msgs = msgs[:MESSAGE_LIMIT]
        out: list[CameraEvent] = []
        for m in msgs:
            try:
                ev = parse_message(m)
            except ODD_SHAPE as exc:
                self.skipped += 1
                log.debug("camera %s: unreadable event message: %s: %s", self.device, type(exc).__name__, exc)
                continue
            if ev is not None:
                out.append(ev)
        return out

    def drop(self, why: str) -> None:
        why = clean(why, limit=MAX_FIELD)
        if self.address is not None:
            log.info("camera %s: event subscription lost: %s", self.device, why)
        self.address = None
        self.last_error = why

    async def step(self) -> list[CameraEvent]:
        """One poll's worth of event work; never raises a device's fault (it is recorded).

        Pulls first; when the camera no longer knows the subscription (a fault, 404 or a
        closed connection on the old reference), it is recreated at once and pulled again.
        """
        if self.unsupported:
            return []
        for _ in range(2):
            try:
                if not self.subscribed:
                    await self.start()
                    if self.created > 1:
                        self.recreated += 1
                elif self.expires_at - time.monotonic() < self.lifetime_s / 2:
                    await self.renew()
                events = await self.pull()
                self.last_error = ""
                return events
            except Unsupported as exc:
                if not self.subscribed:  # CreatePullPointSubscription itself is not offered
                    self.unsupported = True
                    self.drop(str(exc))
                    return []
                self.drop(f"{exc.reason}: {exc}")
            except (DeviceTimeout, BadXml) as exc:
                # A slow camera, or one whose answer was garbage, has not lost its subscription:
                # recreating it would leave the old one to pile up on the camera until it expires.
                self.last_error = clean(f"{exc.reason}: {exc}", limit=MAX_FIELD)
                return []
            except DeviceError as exc:
                was = self.subscribed
                self.drop(f"{exc.reason}: {exc}")
                if not was:
                    return []
        return []

    async def close(self) -> None:
        if self.address is None:
            return
        address, self.address = self.address, None
        try:
            await self.client.unsubscribe(address)
        except DeviceError as exc:
            log.debug("camera %s: Unsubscribe: %s", self.device, exc)


def _when(value: Any) -> dt.datetime | None:
    """An xs:dateTime as the answer gives it (text; a datetime from zeep), or None."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    text = value.strip()
    try:
        return dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        return None
