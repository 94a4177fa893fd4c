"""A stand-in for ``report uptime`` until collector/reports/uptime.py exists: the old
per-device report (collector/uptime.py) as a :class:`Report`, so that it goes through the
same formats (table, csv, json, html) as the other reports. Remove it when the new
builder lands; collector/cli.py uses it only while ``wardwatch.collector.reports.uptime``
cannot be imported.

Unknown time (no reading: the agent was offline or stale) is kept apart from downtime
and excluded from the uptime percentage. Each device's period is cut into steps of its
own poll interval, learned from its readings, unless ``--step`` fixes one for all; see
collector/uptime.py and docs/reliability.md.
"""

from __future__ import annotations

import json
from typing import Any

from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.reports.common import Queryable, ward_clause
from wardwatch.collector.reports.model import Column, Period, Report, Section
from wardwatch.collector.uptime import device_uptime

COLUMNS = (
    Column("ward", "Ward"),
    Column("device", "Device"),
    Column("uptime_pct", "Uptime", "%"),
    Column("up_s", "Up", "s"),
    Column("down_s", "Down", "s"),
    Column("unknown_s", "Unknown", "s"),
    Column("step_s", "Step", "s"),
)


async def build(influx: Queryable, *, period: Period, wards: list[str], cfg: CollectorConfig,
                options: dict[str, Any]) -> Report:  # fmt: skip
    ward_clause(wards)  # checks the ids
    rows = []
    each: list[str | None] = [*wards] or [None]
    for ward in each:
        rows += await device_uptime(
            influx, start_ms=period.start_ms, end_ms=period.end_ms, step_s=options.get("step"), ward=ward
        )
    devices = [r.as_json() for r in rows]
    section = Section(
        key="devices",
        title="Devices",
        columns=list(COLUMNS),
        rows=devices,
        notes=["uptime = up / (up + down); unknown time (no reading: agent offline or stale) is excluded"],
    )
    return Report(kind="uptime", title="Uptime", period=period, sections=[section], data={"devices": devices},
                  wards=dict(getattr(cfg, "wards", {})))  # fmt: skip


def legacy_json(report: Report) -> bytes:
    """The old ``--format json``: a list of device entries (tests/test_report_uptime.py)."""
    return (json.dumps(report.data["devices"], indent=2) + "\n").encode()
