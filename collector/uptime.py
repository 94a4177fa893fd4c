"""Device uptime over a period, with unknown time kept apart from downtime.

The period is cut into steps. In each step a device is *up* if any ``device_status``
reading there says ``up=1``, *down* if readings exist and all say ``up=0``, and *unknown*
if there is no reading at all: its agent was offline or stale (``agent_status`` says
which), or the collector had not stored the readings yet. Readings an agent backfills
from its outbox after an uplink outage land in their original steps, so a later report
shows them as up or down, not unknown.

``uptime_pct`` is up / (up + down): unknown time is excluded, and reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wardwatch import wire
from wardwatch.collector.seqlog import Queryable, series_of


@dataclass(frozen=True)
class DeviceUptime:
    ward: str
    device: str
    up_s: float
    down_s: float
    unknown_s: float

    @property
    def uptime_pct(self) -> float | None:
        known = self.up_s + self.down_s
        return None if known == 0 else round(100 * self.up_s / known, 3)

    def as_json(self) -> dict[str, Any]:
        return {
            "ward": self.ward,
            "device": self.device,
            "up_s": self.up_s,
            "down_s": self.down_s,
            "unknown_s": self.unknown_s,
            "uptime_pct": self.uptime_pct,
        }


def query(start_ms: int, end_ms: int, step_s: int, ward: str | None = None) -> str:
    """The InfluxQL behind :func:`device_uptime`: -1 marks a step with no reading."""
    where = f"time >= {start_ms}ms AND time < {end_ms}ms"
    if ward is not None:
        if not wire.NAME_RE.match(ward):
            raise ValueError(f"ward {ward!r} is not a valid name")
        where += f" AND ward = '{ward}'"
    return f"SELECT max(up) FROM device_status WHERE {where} GROUP BY time({step_s}s), ward, device fill(-1)"


async def device_uptime(
    influx: Queryable, *, start_ms: int, end_ms: int, step_s: int = 60, ward: str | None = None
) -> list[DeviceUptime]:
    """Up, down and unknown seconds of every device with a reading in the period."""
    if step_s < 1 or end_ms <= start_ms:
        raise ValueError("need step_s >= 1 and end after start")
    results = await influx.query(query(start_ms, end_ms, step_s, ward), epoch="ms")
    out = []
    for series in series_of(results):
        tags = series.get("tags", {})
        up = down = unknown = 0.0
        for t, value in series["values"]:
            # The first and last steps may stick out of the period: count only the overlap.
            span = (min(int(t) + step_s * 1000, end_ms) - max(int(t), start_ms)) / 1000
            if span <= 0:
                continue
            if value is None or value < 0:
                unknown += span
            elif value >= 1:
                up += span
            else:
                down += span
        out.append(DeviceUptime(tags.get("ward", ""), tags.get("device", ""), up, down, unknown))
    return sorted(out, key=lambda d: (d.ward, d.device))
