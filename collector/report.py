"""``wardwatch-collector report uptime``: device uptime over a period, from InfluxDB.

Unknown time (no reading: the agent was offline or stale) is kept apart from downtime
and excluded from the uptime percentage. Each device's period is cut into steps of its
own poll interval, learned from its readings, unless ``--step`` fixes one for all; see
collector/uptime.py and docs/reliability.md.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.uptime import DeviceUptime, device_uptime

FORMATS = ("table", "csv", "json")
COLUMNS = ("ward", "device", "uptime_pct", "up_s", "down_s", "unknown_s", "step_s")


def parse_time(text: str) -> int:
    """An ISO 8601 time (``2026-11-27T08:00:00+07:00``; UTC if no offset) as epoch ms."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time, e.g. 2026-11-27T08:00:00+07:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


async def uptime(
    cfg: CollectorConfig, *, start_ms: int, end_ms: int, step_s: int | None, ward: str | None
) -> list[DeviceUptime]:
    """``step_s`` None: each device in steps of its own poll interval (collector/uptime.py)."""
    icfg = cfg.influx
    password = icfg.password.get_secret_value() if icfg.password else None
    async with InfluxV1Writer(
        url=icfg.url, database=icfg.database, rp=icfg.rp, username=icfg.username, password=password,
        timeout=icfg.timeout,
    ) as influx:  # fmt: skip
        return await device_uptime(influx, start_ms=start_ms, end_ms=end_ms, step_s=step_s, ward=ward)


def render(rows: list[DeviceUptime], fmt: str) -> str:
    records = [r.as_json() for r in rows]
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    cells = [[_cell(r[c]) for c in COLUMNS] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    if not cells:
        lines.append("(no device_status readings in this period)")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if value != int(value) else str(int(value))
    return str(value)
