"""The agent process: one supervisor per device, the publisher, and self-metrics, in one TaskGroup.

The agent knows devices only through the :class:`~wardwatch.agent.core.poller.Poller`
contract: for each kind in the config it opens that family's poller (agent/core/poller.py
``FAMILIES``), hands it its devices, and gives each device a
:class:`~wardwatch.agent.core.supervisor.Supervisor` that schedules, bounds, catches and
commits its polls. A slow, dead or misbehaving device therefore never delays another's
polls, and nothing a device says can stop the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from wardwatch import wire
from wardwatch.agent.core.config import AgentConfig, DeviceConfig
from wardwatch.agent.core.icmp import Pinger
from wardwatch.agent.core.outbox import Outbox
from wardwatch.agent.core.poller import Context, Poller, PollerFactory, factory
from wardwatch.agent.core.ports import PortStates
from wardwatch.agent.core.publisher import Publisher
from wardwatch.agent.core.supervisor import WRITE_ERRORS, Counters, Supervisor
from wardwatch.wire import Reading

log = logging.getLogger(__name__)

PROFILE_PATH_ENV = "WARDWATCH_PROFILE_PATH"  # extra vendor profile directories, colon-separated


def profile_dirs_from_env() -> tuple[Path, ...]:
    return tuple(Path(p) for p in os.environ.get(PROFILE_PATH_ENV, "").split(":") if p)


@asynccontextmanager
async def open_pollers(cfg: AgentConfig, ctx: Context) -> AsyncIterator[dict[str, Poller]]:
    """Device id -> its family's poller, each poller opened once and given its devices.
    Families whose kinds the config lacks are never imported."""
    async with AsyncExitStack() as stack:
        by_class: dict[PollerFactory, Poller] = {}
        by_device: dict[str, Poller] = {}
        for dev in cfg.devices:
            make = factory(dev.kind)
            if make not in by_class:
                by_class[make] = await stack.enter_async_context(make(ctx))
            poller = by_class[make]
            poller.add(dev)
            by_device[dev.id] = poller
        yield by_device


def inventory_payload(cfg: AgentConfig, *, time_ms: int) -> bytes:
    """The retained ``inventory`` message: the config's devices, their kind, vendor, interval,
    host, the switch port that feeds them and a switch's uplink port (docs/mqtt.md)."""
    devices = [
        wire.InventoryDevice(
            id=dev.id, kind=dev.kind, interval_s=float(dev.interval), host=dev.host, vendor=dev.vendor,
            feed=None if dev.feed is None else wire.FeedRef(switch=dev.feed.switch, port=dev.feed.port),
            uplink=dev.uplink,
        )
        for dev in cfg.devices
    ]
    return wire.inventory_payload(agent=cfg.agent.id, ward=cfg.agent.ward, time_ms=time_ms, devices=devices)


def _inventory_or_none(cfg: AgentConfig) -> bytes | None:
    """The config check already refuses what the wire would (ids twice, a feed that is not a
    switch); what is left is size: 5,000 devices with the longest names pass the 1 MiB cap.
    The agent still polls without it, and says so."""
    try:
        return inventory_payload(cfg, time_ms=int(time.time() * 1000))
    except wire.WireError as exc:
        log.error("agent %s: no inventory published (the alert engine will not know its topology): %s",
                  cfg.agent.id, exc)
        return None


class Agent:
    def __init__(self, cfg: AgentConfig, *, profile_dirs: Sequence[Path] | None = None) -> None:
        self.cfg = cfg
        ob = cfg.outbox
        self.outbox = Outbox(
            ob.path, agent=cfg.agent.id, ward=cfg.agent.ward, max_bytes=ob.max_mb * 2**20, max_age=ob.max_age
        )
        self.publisher = Publisher(
            cfg=cfg.mqtt, agent=cfg.agent.id, ward=cfg.agent.ward, outbox=self.outbox, drain_rate=ob.drain_rate,
            inventory=_inventory_or_none(cfg),
        )
        dirs = tuple(profile_dirs) if profile_dirs is not None else profile_dirs_from_env()
        self.ctx = Context(cfg=cfg, pinger=Pinger(), ports=PortStates(), profile_dirs=dirs)
        self.counters = Counters()
        self.supervisors: dict[str, Supervisor] = {}

    async def run(self) -> None:
        log.info("agent %s (ward %s): %d devices, outbox %s", self.cfg.agent.id, self.cfg.agent.ward,
                 len(self.cfg.devices), self.cfg.outbox.path)
        async with self.outbox, open_pollers(self.cfg, self.ctx) as pollers, asyncio.TaskGroup() as tg:
            tg.create_task(self.publisher.run(), name="publisher")
            tg.create_task(self._self_metrics(), name="self-metrics")
            for dev in self.cfg.devices:
                sup = self.supervisor(dev, pollers[dev.id])
                tg.create_task(sup.run(), name=f"device-{dev.id}")

    def supervisor(self, dev: DeviceConfig, poller: Poller) -> Supervisor:
        sup = Supervisor(device=dev, poller=poller, outbox=self.outbox, ports=self.ctx.ports, counters=self.counters,
                         publish_event=self.publisher.publish_event, agent=self.cfg.agent.id,
                         ward=self.cfg.agent.ward)
        self.supervisors[dev.id] = sup
        return sup

    def self_reading(self, box_depth: int, box_oldest_s: float, box_mb: float, box_dropped: int) -> Reading:
        c = self.counters
        pub = self.publisher
        fields: dict[str, int | float | str] = {
            "outbox_depth": box_depth,
            "outbox_oldest_s": box_oldest_s,
            "outbox_mb": box_mb,
            "dropped": box_dropped + c.write_failed,
            "write_failed": c.write_failed,
            "polls_ok": c.polls_ok,
            "polls_failed": c.polls_failed,
            "poll_errors": c.poll_errors,
            "bad_values": c.bad_values,
            "overruns": c.overruns,
            "published": pub.published,
            "refused": pub.refused,
            "stored": pub.stored,
            "resent": pub.resent,
            "watermark": pub.watermark,
            "events_sent": pub.events_sent,
            "events_dropped": pub.events_dropped + c.events_capped,
            "mqtt_connected": int(pub.connected),
            "rss_mb": round(_rss_mb(), 1),
        }
        return Reading(device=self.cfg.agent.id, kind="agent", measurement="agent", time_ms=int(time.time() * 1000),
                       fields=fields)

    async def _self_metrics(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.self_interval)
            try:
                box = await self.outbox.stats()
            except WRITE_ERRORS as exc:  # the disk may be failing: never stop
                log.warning("outbox stats unavailable: %s: %s", type(exc).__name__, exc)
                continue
            reading = self.self_reading(box.depth, box.oldest_s, round(box.bytes / 2**20, 3), box.dropped_readings)
            try:
                await self.outbox.put([reading])
            except WRITE_ERRORS as exc:
                self.counters.write_failed += 1
                log.debug("self-metrics not stored: %s", exc)


def _rss_mb() -> float:
    """Current resident set size; falls back to the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
