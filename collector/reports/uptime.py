"""``report uptime``: per device and per ward and asset class, with outages, unknown time
(the agent offline) and maintenance windows kept apart from up and down.

The steps and their states come from collector/uptime.py (each device in steps of its
own poll interval, learned from its readings; ``options["step"]`` fixes one for all).
Per step the server answers ``max(up)`` and ``count(up)`` (``GROUP BY time(step), ward,
device, kind``), so one row per step and device comes back, never the raw points.

Maintenance windows are ``alerts.maintenance`` of the config: each window's rrule is
expanded in the deployment's zone (``timezone``) over the period; a window applies to a
device when its ward is in ``wards`` (or none are given), its id matches ``devices`` and
its ``rules`` are all rules or include ``device_down``. Definitions: docs/reports.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from wardwatch.collector.alerts import maintenance
from wardwatch.collector.alerts.config import MaintenanceWindow
from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.reports.common import Queryable
from wardwatch.collector.reports.model import Chart, Column, Period, Report, Section
from wardwatch.collector.uptime import DeviceSteps, device_steps, summarise

KIND_ORDER = {"switch": 0, "ap": 1, "camera": 2}
RULE = "device_down"  # the alert rule whose maintenance windows take time out of uptime

DEVICE_COLUMNS = [
    Column("ward", "Phường, xã / Ward"),
    Column("device", "Thiết bị / Device"),
    Column("kind", "Loại / Kind"),
    Column("uptime_pct", "Hoạt động / Up", "%"),
    Column("down_min", "Ngừng / Down", "min"),
    Column("outages", "Số lần ngừng / Outages"),
    Column("longest_outage_min", "Ngừng lâu nhất / Longest outage", "min"),
    Column("mttr_min", "Khôi phục trung bình / Mean time to restore", "min"),
    Column("unknown_min", "Không rõ (agent mất kết nối) / Unknown (agent offline)", "min"),
    Column("maintenance_min", "Bảo trì / Maintenance", "min"),
    Column("step_s", "Bước / Step", "s"),
]
ROLLUP_COLUMNS = [
    Column("ward", "Phường, xã / Ward"),
    Column("kind", "Loại / Kind"),
    Column("devices", "Thiết bị / Devices"),
    Column("uptime_pct", "Hoạt động / Up", "%"),
    Column("down_min", "Ngừng / Down", "min"),
    Column("outages", "Số lần ngừng / Outages"),
    Column("unknown_min", "Không rõ (agent mất kết nối) / Unknown (agent offline)", "min"),
    Column("maintenance_min", "Bảo trì / Maintenance", "min"),
]
MAINTENANCE_COLUMNS = [
    Column("from", "Từ / From"),
    Column("to", "Đến / To"),
    Column("rrule", "Lặp lại / Recurrence"),
    Column("wards", "Phường, xã / Wards"),
    Column("devices", "Thiết bị (mẫu) / Devices (glob)"),
    Column("applied_to", "Thiết bị áp dụng / Devices in it"),
    Column("maintenance_min", "thiết bị-phút / Device-minutes", "min"),
]


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a maintenance window: [start_ms, end_ms)."""

    index: int  # which alerts.maintenance entry
    window: MaintenanceWindow
    start_ms: int
    end_ms: int


def occurrences(windows: list[MaintenanceWindow], period: Period, tz: ZoneInfo) -> list[Occurrence]:
    """Every occurrence of ``windows`` that overlaps the period, the rrules read as local
    times in ``tz`` (the deployment's zone, not the report's). The alert engine's
    maintenance.between expands each rule from near the period, not from its anchor in 2000
    (an hourly rule took 0.7 s that way)."""
    out = [
        Occurrence(index, window, start_ms, end_ms)
        for index, window in enumerate(windows)
        for start_ms, end_ms in maintenance.between(window, start_ms=period.start_ms, end_ms=period.end_ms, tz=tz)
    ]
    return sorted(out, key=lambda o: (o.start_ms, o.index))


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 3)


def _pct(up: float, down: float) -> float | None:
    return None if up + down == 0 else round(100 * up / (up + down), 3)


async def build(influx: Queryable, *, period: Period, wards: list[str], cfg: CollectorConfig,
                options: dict[str, Any]) -> Report:  # fmt: skip
    step = options.get("step")
    found = occurrences(cfg.alerts.maintenance if cfg.alerts else [], period, cfg.tz)

    def applying(ward: str, device: str) -> list[tuple[int, int]]:
        return [(o.start_ms, o.end_ms) for o in found if o.window.applies_to(ward, device, RULE)]

    steps = await device_steps(influx, start_ms=period.start_ms, end_ms=period.end_ms, step_s=step, wards=wards,
                               maintenance=applying)  # fmt: skip
    steps.sort(key=lambda d: (d.ward, KIND_ORDER.get(d.kind, 9), d.kind, d.device))
    devices = [_device_row(ds) for ds in steps]
    rollup = _rollup(devices)
    maintenance = _maintenance_rows(found, steps, period)

    names = {w: cfg.wards.get(w, w) for w in sorted({*wards, *(d["ward"] for d in devices)})}
    chart = Chart(
        kind="bars", title="Hoạt động % / Up % by ward and asset class", unit="%",
        labels=[f"{names.get(r['ward'], r['ward'])} · {r['kind']}" for r in rollup],
        values=[r["uptime_pct"] for r in rollup],
    )  # fmt: skip
    notes = [
        "up % = up / (up + down); unknown (no reading: agent offline) and maintenance time are excluded "
        "and shown apart",
        "an outage is a run of down steps ended by an up step; unknown or maintenance steps inside it do not "
        "end it and add nothing to its length; mean time to restore = mean outage length",
        "each device's step is its own poll interval (the median spacing of its readings)"
        if step is None else f"every device in steps of {step} s (--step)",
    ]  # fmt: skip
    return Report(
        kind="uptime",
        title="Thời gian hoạt động / Uptime by device, ward and asset class",
        period=period,
        sections=[
            Section("rollup", "Theo phường và loại thiết bị / By ward and asset class",
                    ROLLUP_COLUMNS, rollup, charts=[chart],
                    notes=["up % of a ward and kind = sum(up) / sum(up + down) over its devices"]),
            Section("devices", "Theo thiết bị / Per device", DEVICE_COLUMNS, devices, notes=notes),
            Section("maintenance", "Các đợt bảo trì đã áp dụng / Maintenance windows that applied",
                    MAINTENANCE_COLUMNS, maintenance,
                    notes=[f"alerts.maintenance rrules in {cfg.timezone}; a step is maintenance when it starts "
                           "inside a window"]),
        ],
        data={"period": period.as_json(), "devices": devices, "rollup": rollup, "maintenance": maintenance},
        wards=names,
        notes=notes[:1],
    )


def _device_row(ds: DeviceSteps) -> dict[str, Any]:
    u = summarise(ds)
    return {
        "ward": u.ward,
        "device": u.device,
        "kind": u.kind,
        "uptime_pct": u.uptime_pct,
        "down_min": _minutes(u.down_s),
        "outages": len(u.outages),
        "longest_outage_min": _minutes(u.longest_outage_s),
        "mttr_min": _minutes(u.mttr_s),
        "unknown_min": _minutes(u.unknown_s),
        "maintenance_min": _minutes(u.maintenance_s),
        "step_s": u.step_s,
        "up_s": u.up_s,
        "down_s": u.down_s,
        "unknown_s": u.unknown_s,
        "maintenance_s": u.maintenance_s,
    }


def _rollup(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in devices:
        groups.setdefault((d["ward"], d["kind"]), []).append(d)
    out = []
    for (ward, kind), rows in groups.items():
        up, down = sum(r["up_s"] for r in rows), sum(r["down_s"] for r in rows)
        unknown, maint = sum(r["unknown_s"] for r in rows), sum(r["maintenance_s"] for r in rows)
        out.append({
            "ward": ward, "kind": kind, "devices": len(rows), "uptime_pct": _pct(up, down),
            "down_min": _minutes(down), "outages": sum(r["outages"] for r in rows),
            "unknown_min": _minutes(unknown), "maintenance_min": _minutes(maint),
            "up_s": up, "down_s": down, "unknown_s": unknown, "maintenance_s": maint,
        })  # fmt: skip
    return out


def _maintenance_rows(found: list[Occurrence], steps: list[DeviceSteps], period: Period) -> list[dict[str, Any]]:
    """Each occurrence that took time from at least one reported device, with how much."""
    seconds = [0.0] * len(found)
    devices: list[set[tuple[str, str]]] = [set() for _ in found]
    for ds in steps:
        for step in ds.steps:
            if step.state != "maintenance":
                continue
            begin = max(step.t_ms, period.start_ms)
            for i, o in enumerate(found):
                if o.start_ms <= begin < o.end_ms and o.window.applies_to(ds.ward, ds.device, RULE):
                    seconds[i] += step.span_s
                    devices[i].add((ds.ward, ds.device))
                    break
    rows = []
    for i, o in enumerate(found):
        if not devices[i]:
            continue
        rows.append({
            "from": datetime.fromtimestamp(o.start_ms / 1000, period.tz).isoformat(),
            "to": datetime.fromtimestamp(o.end_ms / 1000, period.tz).isoformat(),
            "rrule": o.window.rrule,
            "wards": ", ".join(o.window.wards) or "*",
            "devices": o.window.devices,
            "applied_to": len(devices[i]),
            "maintenance_min": _minutes(seconds[i]),
        })  # fmt: skip
    return rows
