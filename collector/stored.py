"""What the collectors tell each agent is durably stored: the ``stored`` watermark.

An agent deletes a batch from its outbox only when a ``stored`` message covers it
(docs/reliability.md), so nothing here may ever claim a seq that is not durably stored.

Per agent, a collector keeps:

- ``mark``: every seq below it is durably stored, or below the agent's own
  ``pending_from`` (the agent no longer holds it: it was covered by an earlier watermark,
  or dropped by the outbox bounds and counted in ``dropped``);
- ``ranges``: stored seqs above ``mark``, as disjoint inclusive ranges.

It learns them from two sources only:

1. the batches it stored itself, after the InfluxDB write (or the spool commit) returned;
2. the ``stored`` messages of the other collectors (it subscribes to every agent's
   ``stored`` topic, without the share group, and never to its own echoes), whose every
   claim came from source 1 of some collector.

So every claim traces back to a write that returned. In a share group each member
stores interleaved seqs; each publishes its ranges, each learns the others', and the
contiguous ``mark`` advances over the union. The agent itself combines too: it keeps the
highest watermark it has seen and deletes the ranges of every message.

The ranges are bounded (``MAX_RANGES``): past the cap the highest are forgotten and
counted (``overflow``); forgetting is always safe, because the agent then sends those
batches again and they are stored (and claimed) again.
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass, field
from typing import Final

from wardwatch import wire

log = logging.getLogger(__name__)

MAX_RANGES: Final = 4096


@dataclass
class AgentMark:
    ward: str
    mark: int = 0
    starts: list[int] = field(default_factory=list)  # range starts, ascending
    ends: list[int] = field(default_factory=list)  # inclusive ends, same index
    dirty: bool = False  # changed by our own stores since we last published
    overflow: int = 0  # ranges forgotten to stay within MAX_RANGES

    def raise_mark(self, to: int) -> None:
        if to <= self.mark:
            return
        self.mark = to
        # Drop the ranges wholly below, trim the one the mark cuts.
        i = bisect.bisect_right(self.ends, to - 1)
        del self.starts[:i], self.ends[:i]
        if self.starts and self.starts[0] < to:
            self.starts[0] = to
        self._absorb()

    def add(self, first: int, last: int) -> None:
        """Record ``first..last`` (inclusive) as stored."""
        first = max(first, self.mark)
        if last < first:
            return
        i = bisect.bisect_left(self.ends, first - 1)  # the first range that ends at or after first-1
        j = i
        while j < len(self.starts) and self.starts[j] <= last + 1:
            first, last = min(first, self.starts[j]), max(last, self.ends[j])
            j += 1
        self.starts[i:j], self.ends[i:j] = [first], [last]
        self._absorb()
        if len(self.starts) > MAX_RANGES:
            self.overflow += len(self.starts) - MAX_RANGES
            del self.starts[MAX_RANGES:], self.ends[MAX_RANGES:]

    def _absorb(self) -> None:
        if self.starts and self.starts[0] <= self.mark:
            self.mark = max(self.mark, self.ends[0] + 1)
            del self.starts[0], self.ends[0]

    def ranges(self, limit: int = wire.MAX_STORED_RANGES) -> list[tuple[int, int]]:
        return list(zip(self.starts[:limit], self.ends[:limit], strict=True))

    def covers(self, seq: int) -> bool:
        if seq < self.mark:
            return True
        i = bisect.bisect_right(self.starts, seq) - 1
        return i >= 0 and self.ends[i] >= seq


class StoredMarks:
    """Every agent's ``AgentMark``, as this collector knows it."""

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self.agents: dict[str, AgentMark] = {}

    def _get(self, ward: str, agent: str) -> AgentMark:
        state = self.agents.get(agent)
        if state is None:
            state = self.agents[agent] = AgentMark(ward=ward)
        state.ward = ward
        return state

    def stored(self, *, ward: str, agent: str, seq: int, pending_from: int | None) -> None:
        """This collector stored batch ``seq`` durably (call only after the write returned)."""
        state = self._get(ward, agent)
        if pending_from is not None:
            state.raise_mark(pending_from)
        state.add(seq, seq)
        state.dirty = True

    def learn(self, msg: wire.Stored) -> None:
        """Another collector's claims; they need no republishing by us."""
        state = self._get(msg.ward, msg.agent)
        state.raise_mark(msg.watermark)
        for first, last in msg.ranges:
            state.add(first, last)

    def take_dirty(self) -> list[tuple[str, bytes]]:
        """(topic, payload) of each agent changed by our own stores since the last call."""
        out: list[tuple[str, bytes]] = []
        now_ms = int(time.time() * 1000)
        for agent, state in self.agents.items():
            if not state.dirty:
                continue
            state.dirty = False
            payload = wire.stored_payload(
                agent=agent, ward=state.ward, watermark=state.mark, time_ms=now_ms, ranges=state.ranges(),
                collector=self.collector,
            )
            out.append((wire.stored_topic(state.ward, agent), payload))
        return out
