"""The agent process: one task per device, the publisher, and self-metrics, in one TaskGroup.

Each device runs on its own schedule (a random start offset, then a fixed rate), so a
slow or dead device never delays another's polls. Every poll ends in the outbox: a
successful one as ``device_status`` + ``if_traffic`` readings, a failed one as
``device_status`` with ``up=0`` and the reason. Cameras follow the same schedule
(agent/camera_task.py); every switch poll's readings also feed the cameras' switch-port
state, so that a camera behind a port without PoE is ``poe_lost``, not just offline.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wardwatch.agent.camera.task import CameraTask, camera_poller
from wardwatch.agent.core.config import AgentConfig, DeviceConfig
from wardwatch.agent.core.errors import DeviceError
from wardwatch.agent.core.icmp import Pinger, combine
from wardwatch.agent.core.outbox import Outbox
from wardwatch.agent.core.publisher import Publisher
from wardwatch.agent.snmp.client import Engines, SnmpSession
from wardwatch.agent.snmp.device import SwitchState, down_reading, poll_switch
from wardwatch.agent.snmp.profiles import load_catalog
from wardwatch.wire import Reading

if TYPE_CHECKING:
    from wardwatch.agent.camera.poll import CameraPoller

log = logging.getLogger(__name__)

MAX_START_OFFSET = 10.0  # spread the first polls over at most this many seconds
PROFILE_PATH_ENV = "WARDWATCH_PROFILE_PATH"  # extra vendor profile directories, colon-separated


@dataclass(slots=True)
class PollResult:
    device: DeviceConfig
    readings: list[Reading]
    ok: bool
    reason: str
    detail: str
    state: SwitchState
    version: str


class Poller:
    """Polls devices; shared by ``run`` and ``check``. Vendor profiles are the shipped ones
    plus those in the directories of ``profile_dirs`` or ``$WARDWATCH_PROFILE_PATH``
    (colon-separated); a bad profile raises ProfileError here, at start-up."""

    def __init__(self, cfg: AgentConfig, *, profile_dirs: Sequence[Path] | None = None) -> None:
        self.cfg = cfg
        if profile_dirs is None:
            profile_dirs = [Path(p) for p in os.environ.get(PROFILE_PATH_ENV, "").split(":") if p]
        self.catalog = load_catalog(profile_dirs)
        self.engines = Engines()
        self.engine = self.engines.default
        self.pinger = Pinger()
        self.polls_ok = 0
        self.polls_failed = 0

    def close(self) -> None:
        self.engines.close()

    def session(self, dev: DeviceConfig) -> SnmpSession:
        snmp = self.cfg.auth[dev.auth].snmp
        assert snmp is not None  # config.check() guarantees it
        return SnmpSession(engine=self.engines.for_auth(snmp), device=dev, auth=snmp)

    async def poll(self, session: SnmpSession, state: SwitchState) -> PollResult:
        """SNMP and, alongside it, ICMP; ``device_status`` says what each found (agent/icmp.py)."""
        dev = session.device
        if state.catalog is None:
            state.catalog = self.catalog
        pinging = asyncio.create_task(self.pinger.ping(dev.host)) if dev.icmp and self.pinger.available else None
        try:
            result = await self._poll_snmp(session, state)
            ping = await pinging if pinging else None
        except BaseException:
            if pinging:
                pinging.cancel()
            raise
        combine(result.readings[0].fields, snmp_ok=result.ok, reason=result.reason, ping=ping)
        state.rtt_ms = ping.rtt_ms if ping else None
        state.loss_pct = ping.loss_pct if ping else None
        return result

    async def _poll_snmp(self, session: SnmpSession, state: SwitchState) -> PollResult:
        dev = session.device
        started = time.monotonic()
        try:
            # A bound on the whole poll, whatever the per-request timeouts add up to.
            async with asyncio.timeout(dev.interval):
                readings = await poll_switch(session, state, kind=dev.kind)
        except DeviceError as exc:
            return self._failed(session, state, exc.reason, str(exc), started)
        except TimeoutError:
            return self._failed(session, state, "timeout", f"poll took longer than {dev.interval:g}s", started)
        self.polls_ok += 1
        return PollResult(dev, readings, True, "ok", "", state, session.version)

    def _failed(self, session: SnmpSession, state: SwitchState, reason: str, detail: str,
                started: float) -> PollResult:
        self.polls_failed += 1
        dev = session.device
        reading = down_reading(device_id=dev.id, kind=dev.kind, vendor=dev.vendor, reason=reason,
                               poll_ms=(time.monotonic() - started) * 1000)
        return PollResult(dev, [reading], False, reason, detail, state, session.version)


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.poller = Poller(cfg)
        ob = cfg.outbox
        self.outbox = Outbox(
            ob.path, agent=cfg.agent.id, ward=cfg.agent.ward, max_bytes=ob.max_mb * 2**20, max_age=ob.max_age
        )
        self.publisher = Publisher(
            cfg=cfg.mqtt, agent=cfg.agent.id, ward=cfg.agent.ward, outbox=self.outbox, drain_rate=ob.drain_rate
        )
        self.overruns = 0
        self.cameras: CameraPoller | None = None

    async def run(self) -> None:
        log.info("agent %s (ward %s): %d devices, outbox %s", self.cfg.agent.id, self.cfg.agent.ward,
                 len(self.cfg.devices), self.cfg.outbox.path)
        try:
            async with (self.outbox, camera_poller(self.cfg, pinger=self.poller.pinger) as cameras,
                        asyncio.TaskGroup() as tg):
                self.cameras = cameras
                tg.create_task(self.publisher.run(), name="publisher")
                tg.create_task(self._self_metrics(), name="self-metrics")
                for dev in self.cfg.devices:
                    if dev.kind == "camera":
                        assert cameras is not None
                        cam = CameraTask(poller=cameras, device=dev, outbox=self.outbox, agent=self.cfg.agent.id,
                                         ward=self.cfg.agent.ward, publish_event=self.publisher.publish_event)
                        tg.create_task(self._every(dev, cam.step), name=f"device-{dev.id}")
                    else:
                        tg.create_task(self._every(dev, self._switch_step(dev)), name=f"device-{dev.id}")
        finally:
            self.poller.close()

    @property
    def polls_ok(self) -> int:
        return self.poller.polls_ok + (self.cameras.polls_ok if self.cameras else 0)

    @property
    def polls_failed(self) -> int:
        return self.poller.polls_failed + (self.cameras.polls_failed if self.cameras else 0)

    def _switch_step(self, dev: DeviceConfig) -> Callable[[], Awaitable[None]]:
        session = self.poller.session(dev)
        state = SwitchState()
        was_ok: bool | None = None

        async def step() -> None:
            nonlocal was_ok
            result = await self.poller.poll(session, state)
            if result.ok != was_ok:
                if result.ok:
                    log.info("device %s (%s): up, %d interfaces", dev.id, dev.host, state.interfaces)
                else:
                    log.warning("device %s (%s): down: %s: %s", dev.id, dev.host, result.reason, result.detail)
            else:
                log.debug("device %s: %s %s", dev.id, result.reason, result.detail)
            was_ok = result.ok
            await self.outbox.put(result.readings)
            if self.cameras is not None:
                self.cameras.ports.ingest(result.readings)

        return step

    async def _every(self, dev: DeviceConfig, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` at a fixed rate after a random start offset; skip (and count) missed slots."""
        loop = asyncio.get_running_loop()
        due = loop.time() + random.uniform(0, min(dev.interval, MAX_START_OFFSET))
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            await step()
            due += dev.interval
            behind = loop.time() - due
            if behind > 0:  # the poll overran its slot: skip to the next one, don't bunch up
                skipped = int(behind // dev.interval) + 1
                self.overruns += skipped
                due += skipped * dev.interval

    async def _self_metrics(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.self_interval)
            box = await self.outbox.stats()
            reading = Reading(
                device=self.cfg.agent.id, kind="agent", measurement="agent", time_ms=int(time.time() * 1000),
                fields={
                    "outbox_depth": box.depth,
                    "outbox_oldest_s": box.oldest_s,
                    "outbox_mb": round(box.bytes / 2**20, 3),
                    "dropped": box.dropped_readings,
                    "polls_ok": self.polls_ok,
                    "polls_failed": self.polls_failed,
                    "overruns": self.overruns,
                    "published": self.publisher.published,
                    "events_sent": self.publisher.events_sent,
                    "events_dropped": self.publisher.events_dropped,
                    "mqtt_connected": int(self.publisher.connected),
                    "rss_mb": round(_rss_mb(), 1),
                },
            )
            await self.outbox.put([reading])


def _rss_mb() -> float:
    """Current resident set size; falls back to the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
