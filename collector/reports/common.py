"""What every report builder shares: the InfluxDB connection, times, ward filters, p95.

Every builder has the same shape::

    async def build(influx: Queryable, *, period: Period, wards: list[str], cfg: CollectorConfig,
                    options: dict[str, Any]) -> Report

``wards`` empty means all wards. Builders aggregate on the server (``GROUP BY time(...)``)
and never pull raw points over a long range.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.influx import open_influx as influx_writer
from wardwatch.collector.reports.model import Period

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")  # ward and device ids (wire.NAME_PATTERN)


class Queryable(Protocol):
    async def query(self, q: str, *, epoch: str | None = None) -> list[dict[str, Any]]: ...


@asynccontextmanager
async def open_influx(cfg: CollectorConfig) -> AsyncIterator[InfluxV1Writer]:
    async with influx_writer(cfg.influx) as influx:
        yield influx


def parse_time(text: str, tz: ZoneInfo | None = None) -> int:
    """An ISO 8601 time (``2026-11-27T08:00:00+07:00``) as epoch ms. Without an offset it is
    local time in ``tz`` (UTC when none is given)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time, e.g. 2026-11-27T08:00:00+07:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz or UTC)
    return int(when.timestamp() * 1000)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}, e.g. Asia/Ho_Chi_Minh") from None


def make_period(start: str, end: str, tz: ZoneInfo) -> Period:
    start_ms, end_ms = parse_time(start, tz), parse_time(end, tz)
    if end_ms <= start_ms:
        raise ValueError(f"--to {end} is not after --from {start}")
    return Period(start_ms=start_ms, end_ms=end_ms, tz=tz)


def time_clause(period: Period) -> str:
    """``time >= ... AND time < ...`` for InfluxQL (epoch ms)."""
    return f"time >= {period.start_ms}ms AND time < {period.end_ms}ms"


def ward_clause(wards: Sequence[str]) -> str:
    """`` AND (ward = 'a' OR ward = 'b')``, or "" for all wards. Ids are checked: no injection."""
    for w in wards:
        if not _SAFE.match(w):
            raise ValueError(f"--ward {w!r} is not a ward id")
    if not wards:
        return ""
    return " AND (" + " OR ".join(f"ward = '{w}'" for w in wards) + ")"


def nearest_rank(values: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``pct``% of the values
    at or below it (p95 of 100 values is the 95th smallest). None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
