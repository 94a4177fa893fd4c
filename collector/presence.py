"""Is an agent there? ``agent_status`` points, so that an agent's silence reads as
*unknown* for its devices, never as *down*.

Two sources, both written as ``agent_status`` (tags ``ward``, ``agent``; fields
``online`` 0/1, ``state`` and ``how``):

- the agent's retained ``status`` topic: ``online`` when it connects, ``offline`` from its
  Last Will or a clean stop (``how`` = ``status``);
- the seq ledger in InfluxDB: an agent whose newest stored batch is older than
  ``stale_after`` is ``stale`` (``how`` = ``ledger``). Every collector reads the same
  ledger and writes the same point (its time is the last batch's time + stale_after), so
  any number of collectors agree.

Device uptime itself never needs these points: a time with no ``device_status`` reading
is unknown (collector/uptime.py). They say *why* it is unknown; and readings backfilled
from an agent's outbox later simply fill the gap.
"""

from __future__ import annotations

import time
from typing import Final

from wardwatch import wire
from wardwatch.collector import lineproto, seqlog

MEASUREMENT: Final = "agent_status"
LOOKBACK: Final = "1h"  # agents silent longer than this were marked stale already


def status_line(status: wire.Status, *, received_ms: int, retained: bool) -> bytes:
    """The point for a ``status`` message.

    A Last Will carries the time its agent *connected*; it is stamped with when it
    arrived instead, unless it is a retained copy (then the arrival time means nothing).
    """
    when = received_ms if status.state == "offline" and not retained else status.time_ms
    fields: dict[str, lineproto.FieldValue] = {
        "online": int(status.state == "online"),
        "state": status.state,
        "how": "status",
    }
    return lineproto.line(MEASUREMENT, {"agent": status.agent, "ward": status.ward}, fields, when)


async def stale_lines(influx: seqlog.Queryable, *, stale_after: float, already: set[str]) -> list[bytes]:
    """``stale`` points for agents whose newest batch is older than ``stale_after``.

    ``already`` holds the agents marked before; it is updated in place (an agent that
    sends again leaves it).
    """
    results = await influx.query(
        f"SELECT last(seq) FROM {seqlog.MEASUREMENT} WHERE time > now() - {LOOKBACK} GROUP BY agent, ward",
        epoch="ms",
    )
    now_ms = int(time.time() * 1000)
    lines = []
    fresh = set()
    for series in seqlog.series_of(results):
        tags, values = series.get("tags") or {}, series.get("values") or []
        agent, ward = tags.get("agent", ""), tags.get("ward", "")
        if not agent or not values or not isinstance(values[0][0], int | float):
            continue  # not the answer of an InfluxQL store (VictoriaMetrics' /query stub)
        last_ms = int(values[0][0])
        if now_ms - last_ms <= stale_after * 1000:
            fresh.add(agent)
            continue
        if agent in already:
            continue
        already.add(agent)
        fields: dict[str, lineproto.FieldValue] = {"online": 0, "state": "stale", "how": "ledger"}
        since = last_ms + int(stale_after * 1000)
        lines.append(lineproto.line(MEASUREMENT, {"agent": agent, "ward": ward}, fields, since))
    already.difference_update(fresh)
    return lines
