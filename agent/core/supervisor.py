"""One supervisor per device: the schedule, the time budget, the one catch-all, the outbox put.

Whatever a device says, and whatever a poller does with it, ends here as that device's
poll and nobody else's:

- a poll runs at a fixed rate after a random start offset; a poll that overruns its slot
  skips (and counts) the missed slots instead of bunching up;
- a poll is bounded by the device's interval: past it, the result is ``timeout``;
- any exception other than a DeviceError (which pollers turn into failed results
  themselves) is logged with its traceback, counted in ``poll_errors`` and becomes the
  device's failed poll with reason ``internal_error`` and the exception's class in the
  ``error`` field. ``up`` stays what the device last showed: a bug of ours is no outage
  of theirs. It never stops another device or the process;
- the readings go to the outbox; a disk that refuses the write is logged loudly and the
  readings are counted in ``write_failed``; polling goes on, and the next write that
  succeeds ends it;
- every result's ``if_traffic``/``poe`` readings feed the switch-port state
  (agent/core/ports.py) that cameras and APs with a ``feed`` read;
- live events go out on the ``events`` topic after the readings are committed, at most
  ``MAX_LIVE_EVENTS`` a poll (the rest are counted in ``events_dropped``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from wardwatch import wire
from wardwatch.agent.core.config import DeviceConfig
from wardwatch.agent.core.outbox import Outbox, OutboxError
from wardwatch.agent.core.poller import Poller, PollResult
from wardwatch.agent.core.ports import PortStates
from wardwatch.agent.core.text import MAX_EVENT, clean, safe_readings

log = logging.getLogger(__name__)

MAX_START_OFFSET = 10.0  # spread the first polls over at most this many seconds
MAX_LIVE_EVENTS = 10  # live events per poll; the rest are counted (the reading has them all)
WRITE_ERRORS = (OutboxError, sqlite3.Error, OSError, wire.WireError)


@dataclass(slots=True)
class Counters:
    """The agent's poll counters, shared by every supervisor (the ``agent`` self-metrics)."""

    polls_ok: int = 0
    polls_failed: int = 0
    poll_errors: int = 0  # polls that raised something unexpected (internal_error)
    overruns: int = 0  # poll slots skipped because a poll overran
    bad_values: int = 0  # values skipped because a device sent something unreadable
    write_failed: int = 0  # readings the outbox refused (disk full, I/O error)
    events_capped: int = 0  # live events not sent because a poll had more than MAX_LIVE_EVENTS
    write_failing: bool = False


class Supervisor:
    """Runs one device's polls for as long as the agent runs."""

    def __init__(self, *, device: DeviceConfig, poller: Poller, outbox: Outbox | None, ports: PortStates,
                 counters: Counters, publish_event: Callable[[bytes], bool], agent: str, ward: str) -> None:
        self.device = device
        self.poller = poller
        self.outbox = outbox
        self.ports = ports
        self.counters = counters
        self.publish_event = publish_event
        self.agent, self.ward = agent, ward
        self.last_up: int | None = None  # what the device showed in its last poll
        self._was_ok: bool | None = None

    async def run(self) -> None:
        """Poll at a fixed rate after a random start offset; skip (and count) missed slots."""
        dev = self.device
        loop = asyncio.get_running_loop()
        due = loop.time() + random.uniform(0, min(dev.interval, MAX_START_OFFSET))
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self.step()
            due += dev.interval
            behind = loop.time() - due
            if behind > 0:  # the poll overran its slot: skip to the next one, don't bunch up
                skipped = int(behind // dev.interval) + 1
                self.counters.overruns += skipped
                due += skipped * dev.interval

    async def step(self) -> PollResult:
        """One poll, its readings committed and its events sent."""
        result = await self.poll()
        self._log(result)
        self.ports.ingest(result.readings)
        await self.commit(result)
        self._send(result)
        return result

    async def poll(self) -> PollResult:
        dev = self.device
        started = time.monotonic()
        try:
            async with asyncio.timeout(dev.interval):
                result = await self.poller.poll(dev)
        except TimeoutError:
            result = self.poller.failed(dev, reason="timeout", detail=f"poll took longer than {dev.interval:g}s",
                                        poll_ms=(time.monotonic() - started) * 1000, up=0)
        except Exception as exc:  # the one catch-all: a bug in a poller is this device's failed poll
            self.counters.poll_errors += 1
            log.error("device %s (%s): poll failed inside wardwatch: %s: %s", dev.id, dev.host,
                      type(exc).__name__, exc, exc_info=exc)
            result = self.poller.failed(dev, reason="internal_error", detail=f"{type(exc).__name__}: {exc}"[:256],
                                        poll_ms=(time.monotonic() - started) * 1000, up=self.last_up)
            for r in result.readings:
                r.fields["error"] = type(exc).__name__
        if result.ok:
            self.counters.polls_ok += 1
        else:
            self.counters.polls_failed += 1
        self.last_up = int(result.answered) if result.reason != "internal_error" else self.last_up
        for r in result.readings:
            if r.measurement == "device_status":
                bad = r.fields.get("bad_values", 0)
                self.counters.bad_values += bad if isinstance(bad, int) and 0 <= bad < 1_000_000 else 0
        return result

    async def commit(self, result: PollResult) -> bool:
        """Put the readings in the outbox. A refused write is logged (loudly, once per
        failing spell, then at debug) and counted; it never stops the polls. Without an
        outbox (``check``) nothing is kept."""
        if self.outbox is None:
            return False
        readings, removed = safe_readings(result.readings)
        if removed:
            self.counters.bad_values += removed
            log.warning("device %s: %d values the wire would refuse were removed", self.device.id, removed)
        try:
            await self.outbox.put(readings)
        except WRITE_ERRORS as exc:
            self.counters.write_failed += len(result.readings)
            if not self.counters.write_failing:
                log.error("outbox %s refuses writes (device %s's readings are lost until it recovers): %s: %s",
                          self.outbox.path, self.device.id, type(exc).__name__, exc)
            else:
                log.debug("device %s: outbox write failed: %s", self.device.id, exc)
            self.counters.write_failing = True
            return False
        if self.counters.write_failing:
            log.warning("outbox %s accepts writes again (%d readings were lost in all)", self.outbox.path,
                        self.counters.write_failed)
            self.counters.write_failing = False
        return True

    def _send(self, result: PollResult) -> None:
        if not result.events:
            return
        now_ms = int(time.time() * 1000)
        events = result.events
        if len(events) > MAX_LIVE_EVENTS:  # a camera in a loop (or lying) must not flood the topic
            self.counters.events_capped += len(events) - MAX_LIVE_EVENTS
            log.warning("device %s: %d live events in one poll; %d sent, the rest only counted", self.device.id,
                        len(events), MAX_LIVE_EVENTS)
            events = events[:MAX_LIVE_EVENTS]
        for ev in events:
            try:
                # Cleaned (and so redacted) here too, whatever poller made the event.
                data = {clean(k): clean(v, limit=MAX_EVENT) for k, v in ev.data.items()}
                payload = wire.event_payload(agent=self.agent, ward=self.ward, device=self.device.id, time_ms=now_ms,
                                             topic=clean(ev.topic, limit=MAX_EVENT), cls=clean(ev.cls),
                                             utc_time=ev.utc_time, data=data)  # fmt: skip
            except wire.WireError as exc:
                log.warning("device %s: event %s not sent: %s", self.device.id, ev.cls, exc)
                continue
            self.publish_event(payload)
            log.info("device %s: event %s (%s)", self.device.id, ev.cls, ev.topic)

    def _log(self, result: PollResult) -> None:
        dev = self.device
        if result.ok != self._was_ok:
            if result.ok:
                log.info("device %s (%s): up", dev.id, dev.host)
            else:
                log.warning("device %s (%s): %s: %s", dev.id, dev.host, result.reason, result.detail)
        else:
            log.debug("device %s: %s %s", dev.id, result.reason, result.detail)
        self._was_ok = result.ok
