"""Proof of no loss that holds with any number of collectors: the seq ledger in InfluxDB.

Every collector writes, in the same write as a batch's points (or the same spool
chunk), one ``wardwatch_batch`` point recording that batch's agent and ``seq``. So a seq
is in the ledger exactly when its points are stored, whichever collector stored them,
and a redelivered batch overwrites its own record (same series, same time).

:func:`reconcile` asks InfluxDB, per agent, which seqs are recorded, incrementally (a
checkpoint per agent, queries bounded by time: the same cost at day 300 as at day 1). A seq counts as
*missing* only below the agent's ``pending_from`` (the lowest seq still in its outbox
when it committed a later batch): anything higher may still be on its way, such as a
backlog draining after an uplink outage. The agent's own ``dropped`` count (batches its
outbox deleted to stay within bounds) is reported beside it, so ``missing - dropped`` is
what the transport lost. Why InfluxDB and not a shared cache: it is the one store every
collector already writes, durably, in the same request as the data it vouches for
(docs/reliability.md).
"""

from __future__ import annotations

import operator
import re
import time
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

from wardwatch import wire
from wardwatch.collector import lineproto

MEASUREMENT: Final = "wardwatch_batch"
_SAFE = re.compile(wire.NAME_PATTERN)


# The collector's own bookkeeping points: this ledger and presence.MEASUREMENT.
_NOT_READINGS: Final = (MEASUREMENT.encode() + b",", b"agent_status,")


_is_bookkeeping: Final = operator.methodcaller("startswith", _NOT_READINGS)


def readings_in(lines: list[bytes]) -> int:
    """How many of ``lines`` are agents' readings, not the collector's bookkeeping points."""
    bookkeeping: int = sum(map(_is_bookkeeping, lines))
    return len(lines) - bookkeeping


class Queryable(Protocol):
    async def query(self, q: str, *, epoch: str | None = None) -> list[dict[str, Any]]: ...


def record_line(batch: wire.Batch, collector: str) -> bytes:
    """The ledger point for ``batch``.

    Its time is the second of the batch's first reading, with the milliseconds set to
    ``seq % 1000``: unique per seq for any agent sending under 1000 batches a second, and
    inside the same retention as the readings it vouches for.
    """
    first = min((r.time_ms for r in batch.readings), default=int(time.time() * 1000))
    fields: dict[str, lineproto.FieldValue] = {
        "seq": batch.seq,
        "readings": len(batch.readings),
        "collector": collector,
    }
    if batch.pending_from is not None:
        fields["pending_from"] = batch.pending_from
    if batch.dropped is not None:
        fields["dropped"] = batch.dropped
    tags = {"agent": batch.agent, "ward": batch.ward}
    return lineproto.line(MEASUREMENT, tags, fields, first - first % 1000 + batch.seq % 1000)


@dataclass
class AgentLedger:
    first: int  # lowest seq recorded (in the window this collector has looked at)
    last: int  # highest seq recorded
    received: int  # distinct seqs recorded from first on
    floor: int  # every seq below this has left the agent's outbox
    missing: int  # seqs in [first, floor) never recorded
    dropped: int  # batches the agent's outbox dropped (its own count)

    @property
    def in_flight(self) -> int:
        """Seqs at or above the floor not recorded yet: still on their way, or lost later."""
        return max(0, self.last - self.first + 1 - self.received - self.missing)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "in_flight": self.in_flight}


# How far before the newest settled ledger point a later seq's point may lie: a batch's
# time is its first reading's, and a poll that started before an earlier batch was
# committed may commit after it. Polls are bounded by their interval; 1 h covers any
# interval up to an hour (a longer one could show a false "missing", never lose data).
SLACK_MS: Final = 3_600_000


@dataclass
class Checkpoint:
    """What one reconcile settled for an agent, so the next reads only what came after."""

    base: int  # every seq below it is settled: recorded, or counted missing
    since_ms: int  # no ledger point of a seq >= base is older than this
    first: int
    received: int  # seqs in [first, base) recorded
    missing: int  # seqs in [first, base) never recorded


async def reconcile(
    influx: Queryable, checkpoints: dict[str, Checkpoint], *, now_ms: int, window_s: float
) -> dict[str, AgentLedger]:
    """The ledger of every agent, read incrementally: its cost does not grow with history.

    - Agents come from the tag index (``SHOW TAG VALUES``), not from the points.
    - The first time an agent is seen, only the last ``window_s`` of its ledger is read.
    - After that, only seqs from its checkpoint's ``base`` on, and only ledger points no
      older than the checkpoint's ``since_ms``. The base moves up to the floor each time:
      below the floor nothing more can arrive, so what is not recorded there is missing
      for good and is added to the checkpoint's count once.

    So the queries cover the seqs still in flight (at most an agent's outbox age behind,
    usually seconds) plus ``SLACK_MS``, at day 300 as at day 1. ``checkpoints`` is
    updated in place.
    """
    out: dict[str, AgentLedger] = {}
    for agent in await _agents(influx):
        cp = checkpoints.get(agent)
        since = cp.since_ms if cp else now_ms - int(window_s * 1000)
        base = cp.base if cp else 0
        where = f"agent = '{agent}' AND time >= {since}ms"
        row = await _one(influx, f"SELECT count(seq), min(seq), max(seq), max(pending_from), max(dropped) "
                                 f"FROM {MEASUREMENT} WHERE {where} AND seq >= {base}")
        if row is None:
            if cp is not None:
                out[agent] = AgentLedger(cp.first, cp.base - 1, cp.received, cp.base, cp.missing, 0)
            continue
        _, count, low, last, floor_v, dropped = row
        count, last = int(count), int(last)
        first = cp.first if cp else int(low)
        lo = base if cp else int(low)
        floor = max(lo, int(floor_v) if floor_v is not None else last + 1)
        received, missing = (cp.received, cp.missing) if cp else (0, 0)
        if floor > lo:
            counted = await _one(influx, f"SELECT count(seq) FROM {MEASUREMENT} WHERE {where} "
                                         f"AND seq >= {lo} AND seq < {floor}")
            below = int(counted[1]) if counted else 0
            newest = await _one(influx, f"SELECT last(seq) FROM {MEASUREMENT} WHERE {where} "
                                        f"AND seq >= {lo} AND seq < {floor}")
            received += below
            missing += floor - lo - below
            since_ms = int(newest[0]) - SLACK_MS if newest else since
            checkpoints[agent] = Checkpoint(floor, max(since, since_ms), first, received, missing)
        elif cp is None:
            checkpoints[agent] = Checkpoint(lo, since, first, 0, 0)
        above = count - (received - (cp.received if cp else 0))
        out[agent] = AgentLedger(first, last, received + above, floor, missing, int(dropped or 0))
    return out


async def _agents(influx: Queryable) -> list[str]:
    results = await influx.query(f'SHOW TAG VALUES FROM {MEASUREMENT} WITH KEY = "agent"')
    names = [str(v[1]) for s in series_of(results) for v in s.get("values", []) if len(v) >= 2]
    return [a for a in names if _SAFE.match(a)]  # never put a name we did not check into a query


async def _one(influx: Queryable, q: str) -> list[Any] | None:
    """The one row of an aggregate query (times as epoch ms), or None when nothing matched."""
    rows = series_of(await influx.query(q, epoch="ms"))
    if not rows or not rows[0].get("values"):
        return None
    value: list[Any] = rows[0]["values"][0]
    return value


def series_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not results:
        return []
    series: list[dict[str, Any]] = results[0].get("series", [])
    return series
