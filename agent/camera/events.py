"""ONVIF events through a PullPoint subscription: create, renew, pull, recreate after a reboot.

The subscription is driven by the camera's polls (no background timers): each poll pulls
what the camera queued since the last one, renews when less than half the lifetime is
left, and recreates the subscription when the camera no longer knows it (a fault on the
old reference, as after a reboot). Messages are classified by topic into tamper, video
loss, storage failure, motion and other (topics as in devices.md section C).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from wardwatch.agent.camera.onvif import PULLPOINT_NS, OnvifClient, Unsupported
from wardwatch.agent.core.errors import DeviceError, DeviceProtocolError, DeviceTimeout

log = logging.getLogger(__name__)

CLASSES = ("tamper", "video_loss", "storage_failure", "motion", "other")
MESSAGE_LIMIT = 100
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


def _items(container: Any) -> dict[str, str]:
    if container is None:
        return {}
    if hasattr(container, "tag"):  # an lxml element
        return {str(e.get("Name")): str(e.get("Value")) for e in container if str(e.tag).endswith("SimpleItem")}
    items = getattr(container, "SimpleItem", None) or []
    return {str(getattr(i, "Name", "")): str(getattr(i, "Value", "")) for i in items}


def parse_message(msg: Any) -> CameraEvent | None:
    """A wsnt:NotificationMessage (as zeep gives it) -> CameraEvent; None when it has no topic."""
    topic_obj = getattr(msg, "Topic", None)
    topic = getattr(topic_obj, "_value_1", topic_obj)
    if topic is None or not str(topic).strip():
        return None
    topic = str(topic).strip()[:200]
    wrapper = getattr(msg, "Message", None)
    body = getattr(wrapper, "_value_1", wrapper)
    if body is None:
        return CameraEvent(topic=topic, cls=classify(topic))
    if hasattr(body, "tag"):  # lxml element tt:Message
        def child(name: str) -> Any:
            return next((c for c in body if str(c.tag).endswith("}" + name) or c.tag == name), None)

        return CameraEvent(
            topic=topic, cls=classify(topic), operation=str(body.get("PropertyOperation") or ""),
            utc_time=str(body.get("UtcTime") or ""), source=_items(child("Source")), data=_items(child("Data")),
        )
    utc = getattr(body, "UtcTime", None)
    return CameraEvent(
        topic=topic, cls=classify(topic), operation=str(getattr(body, "PropertyOperation", "") or ""),
        utc_time=utc.isoformat() if isinstance(utc, dt.datetime) else str(utc or ""),
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

    def __init__(self, client: OnvifClient, *, lifetime_s: float, pull_wait_s: float) -> None:
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

    @property
    def subscribed(self) -> bool:
        return self.address is not None

    def _expiry(self, answer: Any) -> None:
        now = time.monotonic()
        current, term = getattr(answer, "CurrentTime", None), getattr(answer, "TerminationTime", None)
        if isinstance(current, dt.datetime) and isinstance(term, dt.datetime):
            try:
                left = (term - current).total_seconds()
            except TypeError:  # one naive, one aware
                left = (term.replace(tzinfo=None) - current.replace(tzinfo=None)).total_seconds()
            self.expires_at = now + max(0.0, left)
        else:
            self.expires_at = now + self.lifetime_s

    async def start(self) -> None:
        cam = await self.client.camera()
        events = await self.client.service("events")
        answer = await self.client.call(
            "CreatePullPointSubscription",
            lambda: events.CreatePullPointSubscription({"InitialTerminationTime": f"PT{int(self.lifetime_s)}S"}),
        )
        ref = getattr(answer, "SubscriptionReference", None)
        addr_obj = getattr(ref, "Address", None)
        address = getattr(addr_obj, "_value_1", addr_obj)
        if not address:
            raise DeviceProtocolError("CreatePullPointSubscription: no SubscriptionReference/Address")
        cam.xaddrs[PULLPOINT_NS] = cam.rewrite_url(str(address).strip())
        # The library binds the pullpoint and subscription services to that address.
        await self.client.call("pullpoint service", lambda: cam.create_pullpoint_service())
        await self.client.call("subscription service",
                               lambda: cam.create_subscription_service("PullPointSubscription"))
        self.address = str(address).strip()
        self.created += 1
        self._expiry(answer)
        log.debug("camera %s: subscribed at %s", self.client.host, self.address)

    async def renew(self) -> None:
        cam = await self.client.camera()
        sub = await self.client.call("subscription service",
                                     lambda: cam.create_subscription_service("PullPointSubscription"))
        answer = await self.client.call(
            "Renew", lambda: sub.Renew({"TerminationTime": f"PT{int(self.lifetime_s)}S"})
        )
        self.renewed += 1
        self._expiry(answer)

    async def pull(self) -> list[CameraEvent]:
        cam = await self.client.camera()
        pp = await self.client.call("pullpoint service", lambda: cam.create_pullpoint_service())
        wait = dt.timedelta(seconds=self.pull_wait_s)
        answer = await self.client.call(
            "PullMessages", lambda: pp.PullMessages({"Timeout": wait, "MessageLimit": MESSAGE_LIMIT})
        )
        self._expiry(answer)
        msgs = getattr(answer, "NotificationMessage", None) or []
        return [ev for ev in (parse_message(m) for m in msgs) if ev is not None]

    def drop(self, why: str) -> None:
        if self.address is not None:
            log.info("camera %s: event subscription lost: %s", self.client.host, why)
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
            except DeviceTimeout as exc:
                self.last_error = str(exc)  # a slow camera is not a lost subscription
                return []
            except DeviceError as exc:
                was = self.subscribed
                self.drop(f"{exc.reason}: {exc}")
                if not was:
                    return []
        return []

    async def close(self) -> None:
        if self.address is None or self.client.cam is None:
            return
        self.address = None
        try:
            cam = self.client.cam
            sub = await self.client.call("subscription service",
                                         lambda: cam.create_subscription_service("PullPointSubscription"))
            await self.client.call("Unsubscribe", lambda: sub.Unsubscribe())
        except DeviceError as exc:
            log.debug("camera %s: Unsubscribe: %s", self.client.host, exc)
