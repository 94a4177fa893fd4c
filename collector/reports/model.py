"""What every report is made of, whatever its format: the contract between the report
builders (uptime, coverage, capacity) and the renderers (collector/reports/formats.py).

A builder queries InfluxDB (aggregation on the server, never raw points) and returns one
:class:`Report`. Every renderer (table, csv, json, html) renders the same Report, so the
CSV and the JSON cannot disagree: they carry the same numbers.

- ``Report.data`` is the JSON document (the contract of DESIGN.md: e.g. ``capacity`` has
  ``period``, ``wifi``, ``cameras``, ``poe``). ``--format json`` prints it as it is.
- ``Report.sections`` are the tables a person reads (table, csv, html), each with its
  columns and rows taken from ``data``, and optional charts (html only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Period:
    """The report's period: [start, end) in epoch ms, and the zone its local hours are in."""

    start_ms: int
    end_ms: int
    tz: ZoneInfo

    def as_json(self) -> dict[str, Any]:
        return {
            "from": datetime.fromtimestamp(self.start_ms / 1000, self.tz).isoformat(),
            "to": datetime.fromtimestamp(self.end_ms / 1000, self.tz).isoformat(),
            "timezone": self.tz.key,
        }


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # the key in each row (and in the JSON)
    title: str  # the header a person reads
    unit: str = ""  # "%", "min", "Mbit/s", "W", ...


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart for the HTML report: ``bars`` (one bar per label) or ``heatmap`` (hour of
    week: ``values`` is 7 rows of 24, Monday first, local hours)."""

    kind: Literal["bars", "heatmap", "line"]
    title: str
    labels: list[str]
    values: list[float | None] | list[list[float | None]]
    unit: str = ""
    limit: float | None = None  # a threshold line (bars, line)


@dataclass(slots=True)
class Section:
    key: str  # e.g. "devices", "rollup", "wifi"
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how a number is defined, the rule used, ...


@dataclass(slots=True)
class Report:
    kind: str  # uptime, coverage, capacity
    title: str
    period: Period
    sections: list[Section]
    data: dict[str, Any]  # the JSON document
    wards: dict[str, str] = field(default_factory=dict)  # ward id -> display name (with diacritics)
    notes: list[str] = field(default_factory=list)
