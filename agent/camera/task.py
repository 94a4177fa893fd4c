"""Cameras inside the running agent: one step per camera poll, its readings into the outbox,
its events onto the MQTT ``events`` topic.

The agent schedules :meth:`CameraTask.step` like a switch poll (agent/app.py). The readings
(``camera_health``, ``device_status``, ``camera_event``) are committed to the outbox first:
they are the durable record. The events themselves then go out live, best effort, on
``wardwatch/v1/{ward}/{agent}/events`` (docs/mqtt.md); an event that finds no connection is
dropped and counted, and is still counted in the ``camera_event`` reading.

The ONVIF library is imported only by an agent that has cameras (:func:`camera_poller`): it
costs about 75 MB of RSS, which a switches-only agent on a small box should not pay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from wardwatch import wire
from wardwatch.agent.core.config import AgentConfig, DeviceConfig
from wardwatch.agent.core.icmp import Pinger
from wardwatch.agent.core.outbox import Outbox
from wardwatch.wire import Reading

if TYPE_CHECKING:
    from wardwatch.agent.camera.events import CameraEvent
    from wardwatch.agent.camera.poll import CameraPoller, CameraPollResult

log = logging.getLogger(__name__)

# Classes sent live on the events topic. Motion is counted in camera_event but not sent
# one by one: a busy street makes thousands a day, and nobody acts on each.
LIVE_CLASSES = frozenset({"tamper", "video_loss", "storage_failure", "other"})


@asynccontextmanager
async def camera_poller(cfg: AgentConfig, *, pinger: Pinger) -> AsyncIterator[CameraPoller | None]:
    """The agent's one CameraPoller, or None when the config has no cameras."""
    if not any(d.kind == "camera" for d in cfg.devices):
        yield None
        return
    from wardwatch.agent.camera.poll import CameraPoller  # heavy: only agents with cameras pay for it

    async with CameraPoller(cfg, icmp=pinger.ping if pinger.available else None) as poller:
        yield poller


def live(ev: CameraEvent) -> bool:
    """An event worth a live message: a new one (not a state going back to normal, not the
    state the camera reports at subscription time) of a class people act on."""
    return ev.cls in LIVE_CLASSES and ev.active and ev.operation != "Initialized"


class CameraTask:
    """One camera in the running agent."""

    def __init__(self, *, poller: CameraPoller, device: DeviceConfig, outbox: Outbox,
                 publish_event: Callable[[bytes], bool], agent: str, ward: str) -> None:
        self.poller = poller
        self.device = device
        self.outbox = outbox
        self.publish_event = publish_event
        self.agent, self.ward = agent, ward
        self.cam = poller.session(device)
        self.events_sent = 0

    async def step(self) -> None:
        """Poll once (bounded by the interval), commit the readings, then send the events."""
        dev = self.device
        started = time.monotonic()
        try:
            async with asyncio.timeout(dev.interval):
                result = await self.poller.poll(self.cam)
        except TimeoutError:
            self.poller.polls_failed += 1
            log.warning("camera %s (%s): poll took longer than its interval %gs", dev.id, dev.host, dev.interval)
            await self.outbox.put(overrun_readings(dev, poll_ms=(time.monotonic() - started) * 1000))
            return
        await self.outbox.put(result.readings)
        self._send(result)

    def _send(self, result: CameraPollResult) -> None:
        now_ms = int(time.time() * 1000)
        for ev in result.events:
            if not live(ev):
                continue
            payload = wire.event_payload(agent=self.agent, ward=self.ward, device=self.device.id, time_ms=now_ms,
                                         topic=ev.topic, cls=ev.cls, utc_time=ev.utc_time, data=ev.data)
            if self.publish_event(payload):
                self.events_sent += 1
            log.info("camera %s: event %s (%s)", self.device.id, ev.cls, ev.topic)


def overrun_readings(dev: DeviceConfig, *, poll_ms: float) -> list[Reading]:
    """What a camera poll that did not finish within its interval reports: not OK, timeout."""
    now_ms = int(time.time() * 1000)
    tags = {"vendor": dev.vendor} if dev.vendor else {}
    poll_ms = round(poll_ms, 1)
    return [
        Reading(device=dev.id, kind="camera", measurement="camera_health", time_ms=now_ms, tags=tags,
                fields={"ok": 0, "reason": "offline", "error": "timeout", "poll_ms": poll_ms}),
        Reading(device=dev.id, kind="camera", measurement="device_status", time_ms=now_ms, tags=tags,
                fields={"up": 0, "reason": "timeout", "poll_ms": poll_ms}),
    ]

