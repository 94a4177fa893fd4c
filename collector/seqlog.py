"""Proof of no loss that holds with any number of collectors: the seq ledger in InfluxDB.

Every collector writes, in the same write as a batch's points (or the same spool
chunk), one ``wardwatch_batch`` point recording that batch's agent and ``seq``. So a seq
is in the ledger exactly when its points are stored, whichever collector stored them,
and a redelivered batch overwrites its own record (same series, same time).

:func:`reconcile` asks InfluxDB, per agent, which seqs are recorded. A seq counts as
*missing* only below the agent's ``pending_from`` (the lowest seq still in its outbox
when it committed a later batch): anything higher may still be on its way, such as a
backlog draining after an uplink outage. The agent's own ``dropped`` count (batches its
outbox deleted to stay within bounds) is reported beside it, so ``missing - dropped`` is
what the transport lost. Why InfluxDB and not a shared cache: it is the one store every
collector already writes, durably, in the same request as the data it vouches for
(docs/reliability.md).
"""

from __future__ import annotations

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


def readings_in(lines: list[bytes]) -> int:
    """How many of ``lines`` are agents' readings, not the collector's bookkeeping points."""
    return sum(1 for line in lines if not line.startswith(_NOT_READINGS))


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
    first: int  # lowest seq recorded
    last: int  # highest seq recorded
    received: int  # distinct seqs recorded
    floor: int  # every seq below this has left the agent's outbox
    missing: int  # seqs in [first, floor) never recorded
    dropped: int  # batches the agent's outbox dropped (its own count)

    @property
    def in_flight(self) -> int:
        """Seqs at or above the floor not recorded yet: still on their way, or lost later."""
        return max(0, self.last - self.first + 1 - self.received - self.missing)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "in_flight": self.in_flight}


async def reconcile(influx: Queryable) -> dict[str, AgentLedger]:
    """The ledger of every agent, from what InfluxDB holds now."""
    results = await influx.query(
        f"SELECT min(seq), max(seq), count(seq), max(pending_from), max(dropped) FROM {MEASUREMENT} GROUP BY agent"
    )
    out: dict[str, AgentLedger] = {}
    for series in series_of(results):
        agent = series["tags"].get("agent", "")
        if not _SAFE.match(agent):  # never put a name we did not check into a query
            continue
        _, first, last, received, floor, dropped = series["values"][0]
        first, last, received = int(first), int(last), int(received)
        floor = int(floor) if floor is not None else last + 1
        below = 0
        if floor > first:
            counted = await influx.query(
                f"SELECT count(seq) FROM {MEASUREMENT} WHERE agent = '{agent}' AND seq >= {first} AND seq < {floor}"
            )
            rows = series_of(counted)
            below = int(rows[0]["values"][0][1]) if rows else 0
        missing = max(0, floor - first - below)
        out[agent] = AgentLedger(first, last, received, floor, missing, int(dropped or 0))
    return out


def series_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not results:
        return []
    series: list[dict[str, Any]] = results[0].get("series", [])
    return series
