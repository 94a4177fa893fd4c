"""``report coverage``: per ward, how much of the period the public Wi-Fi was there and
serving, and the cameras OK; Wi-Fi availability by local hour of day; worst wards first.

Every device is cut into steps of its own poll interval (collector/uptime.py; the
``--step`` option fixes one for all), and each number is a share of device-steps, weighted
by the seconds of each step inside the period:

- **coverage** (``wifi_up_pct``): AP-steps where the AP is up (``device_status.up``) over
  AP-steps with a reading; unknown steps (no reading: the agent offline) are excluded and
  shown in minutes;
- **serving** (``serving_pct``): AP-steps where the AP is up *and* its radios had at least
  one client (``max(clients)`` of ``wifi_radio`` in the step >= 1), over the same denominator;
  an up step without a ``wifi_radio`` reading counts as not serving;
- **cameras OK** (``camera_ok_pct``): camera-steps where ``camera_health.ok`` = 1 over
  camera-steps with a ``camera_health`` reading;
- **by hour**: per local hour of day (the report's zone), AP-steps up over AP-steps known,
  all the wards in the report together; a step belongs to the hour it starts in.

Maintenance windows are not taken out: coverage is what the public got. An "AP" is a
``device_status`` device of kind ``ap``: a stand-alone AP, or a controller (the APs behind
a controller are not devices of their own). Definitions and queries: docs/reports.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.reports.common import Queryable, time_clause, ward_clause
from wardwatch.collector.reports.model import Chart, Column, Period, Report, Section
from wardwatch.collector.seqlog import series_of
from wardwatch.collector.uptime import FALLBACK_STEP_S, device_steps, poll_intervals, step_for

WARD_COLUMNS = [
    Column("ward", "Phường, xã / Ward"),
    Column("aps", "Số AP / APs"),
    Column("wifi_up_pct", "Phủ sóng Wi-Fi (AP hoạt động) / Wi-Fi coverage (APs up)", "%"),
    Column("serving_pct", "AP có người dùng / APs serving clients", "%"),
    Column("wifi_unknown_min", "AP không rõ / AP unknown", "min"),
    Column("cameras", "Camera / Cameras"),
    Column("camera_ok_pct", "Camera tốt / Cameras OK", "%"),
    Column("camera_unknown_min", "Camera không rõ / Camera unknown", "min"),
]
HOUR_COLUMNS = [
    Column("hour", "Giờ địa phương / Local hour"),
    Column("wifi_up_pct", "Wi-Fi sẵn sàng (AP hoạt động) / Wi-Fi available (APs up)", "%"),
    Column("ap_hours", "AP-giờ đã biết / AP-hours known", "h"),
]

Key = tuple[str, str]  # (ward, device)


def _pct(part: float, whole: float) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 3)


def step_query(measurement: str, fld: str, period: Period, step_s: int, wards: Sequence[str]) -> str:
    """Per device and step, the highest ``fld`` of ``measurement``; -1 marks an empty step."""
    margin = step_s * 1000
    span = Period(start_ms=period.start_ms - margin, end_ms=period.end_ms + margin, tz=period.tz)
    return (
        f"SELECT max({fld}) FROM {measurement} WHERE {time_clause(span)}{ward_clause(wards)} "
        f"GROUP BY time({step_s}s), ward, device fill(-1)"
    )


async def _per_step(influx: Queryable, measurement: str, fld: str, period: Period, step_s: int,
                    wards: Sequence[str]) -> dict[Key, dict[int, float]]:  # fmt: skip
    results = await influx.query(step_query(measurement, fld, period, step_s, wards), epoch="ms")
    out: dict[Key, dict[int, float]] = {}
    for series in series_of(results):
        tags = series.get("tags", {})
        values = {int(t): float(v) for t, v in series.get("values", []) if v is not None and v >= 0}
        out[(tags.get("ward", ""), tags.get("device", ""))] = values
    return out


async def build(influx: Queryable, *, period: Period, wards: list[str], cfg: CollectorConfig,
                options: dict[str, Any]) -> Report:  # fmt: skip
    step = options.get("step")
    aps = await device_steps(influx, start_ms=period.start_ms, end_ms=period.end_ms, step_s=step, wards=wards,
                             kinds=["ap"])  # fmt: skip
    ap_step = {(d.ward, d.device): d.step_s for d in aps}
    clients: dict[Key, dict[int, float]] = {}
    for s in sorted(set(ap_step.values())):
        for key, values in (await _per_step(influx, "wifi_radio", "clients", period, s, wards)).items():
            if ap_step.get(key) == s:
                clients[key] = values
    cameras = await _camera_steps(influx, period, wards, step)

    per_ward: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    hours: dict[int, list[float]] = {h: [0.0, 0.0] for h in range(24)}  # hour -> [up_s, known_s]
    for d in aps:
        w = per_ward[d.ward]
        w["aps"] += 1
        seen = clients.get((d.ward, d.device), {})
        for st in d.steps:
            if st.state == "unknown":
                w["wifi_unknown_s"] += st.span_s
                continue
            up = st.state == "up"
            w["wifi_known_s"] += st.span_s
            w["wifi_up_s"] += st.span_s if up else 0
            w["serving_s"] += st.span_s if up and seen.get(st.t_ms, 0) >= 1 else 0
            hour = datetime.fromtimestamp(max(st.t_ms, period.start_ms) / 1000, period.tz).hour
            hours[hour][0] += st.span_s if up else 0
            hours[hour][1] += st.span_s
    for (ward, _device), (step_s, ok) in cameras.items():
        w = per_ward[ward]
        w["cameras"] += 1
        for t in range(period.start_ms - period.start_ms % (step_s * 1000), period.end_ms, step_s * 1000):
            inside = (min(t + step_s * 1000, period.end_ms) - max(t, period.start_ms)) / 1000
            if t not in ok:
                w["camera_unknown_s"] += inside
            else:
                w["camera_known_s"] += inside
                w["camera_ok_s"] += inside if ok[t] >= 1 else 0

    rows: list[dict[str, Any]] = [{
        "ward": ward, "aps": int(w["aps"]),
        "wifi_up_pct": _pct(w["wifi_up_s"], w["wifi_known_s"]),
        "serving_pct": _pct(w["serving_s"], w["wifi_known_s"]),
        "wifi_unknown_min": round(w["wifi_unknown_s"] / 60, 3),
        "cameras": int(w["cameras"]),
        "camera_ok_pct": _pct(w["camera_ok_s"], w["camera_known_s"]),
        "camera_unknown_min": round(w["camera_unknown_s"] / 60, 3),
    } for ward, w in per_ward.items()]  # fmt: skip
    rows.sort(key=_worst_first)
    by_hour: list[dict[str, Any]] = [{"hour": h, "wifi_up_pct": _pct(up, known), "ap_hours": round(known / 3600, 3)}
               for h, (up, known) in hours.items()]  # fmt: skip

    names = {w: cfg.wards.get(w, w) for w in sorted({*wards, *(r["ward"] for r in rows)})}
    ward_chart = Chart(kind="bars", title="Wi-Fi coverage by ward (APs up)", unit="%",
                       labels=[names[r["ward"]] for r in rows], values=[r["wifi_up_pct"] for r in rows])  # fmt: skip
    hour_chart = Chart(kind="line", title=f"Wi-Fi availability by hour of day ({period.tz.key})", unit="%",
                       labels=[f"{h:02d}:00" for h in range(24)],
                       values=[r["wifi_up_pct"] for r in by_hour])  # fmt: skip
    return Report(
        kind="coverage",
        title="Phủ sóng Wi-Fi và camera / Wi-Fi coverage and cameras OK by ward",
        period=period,
        sections=[
            Section("wards", "Theo phường, kém nhất trước / By ward, worst first",
                    WARD_COLUMNS, rows, charts=[ward_chart], notes=[
                "coverage = AP-steps up / AP-steps with a reading; serving = AP-steps up with at least one client "
                "/ the same; cameras OK = camera-steps with ok = 1 / camera-steps with a reading",
                "unknown steps (no reading: agent offline) are excluded and shown in minutes; maintenance is not",
                "worst first: by coverage, then cameras OK",
            ]),
            Section("hours", f"Wi-Fi sẵn sàng theo giờ địa phương / Wi-Fi availability by local hour ({period.tz.key})",
                    HOUR_COLUMNS, by_hour,
                    charts=[hour_chart], notes=["AP-steps up / AP-steps known, every ward in the report together"]),
        ],
        data={"period": period.as_json(), "wards": rows, "hours": by_hour},
        wards=names,
    )


def _worst_first(row: dict[str, Any]) -> tuple[float, float, str]:
    def low(v: float | None) -> float:
        return 101.0 if v is None else v

    return (low(row["wifi_up_pct"]), low(row["camera_ok_pct"]), row["ward"])


async def _camera_steps(influx: Queryable, period: Period, wards: Sequence[str],
                        step: int | None) -> dict[Key, tuple[int, dict[int, float]]]:  # fmt: skip
    """Each camera's step and, per step start, its highest ``camera_health.ok``. The step is
    the camera's poll interval (from its ``device_status``), as for uptime."""
    if step is not None:
        return {k: (step, v) for k, v in (await _per_step(influx, "camera_health", "ok", period, step, wards)).items()}
    intervals = await poll_intervals(influx, start_ms=period.start_ms, end_ms=period.end_ms, wards=wards,
                                     kinds=["camera"])  # fmt: skip
    steps = {key: step_for(i) for key, i in intervals.items()}
    out: dict[Key, tuple[int, dict[int, float]]] = {}
    for s in sorted({*steps.values(), FALLBACK_STEP_S}):
        for key, values in (await _per_step(influx, "camera_health", "ok", period, s, wards)).items():
            if steps.get(key, FALLBACK_STEP_S) == s and any(period.start_ms <= t < period.end_ms for t in values):
                out[key] = (s, values)
    return out

