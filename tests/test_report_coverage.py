"""`report coverage` on a known data set in a real InfluxDB: Wi-Fi coverage (APs up), APs
serving clients, cameras OK, unknown time apart, availability by local hour, worst ward
first; CSV and JSON agree."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from tests.test_report_uptime import csv_blocks
from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.reports.common import make_period
from wardwatch.collector.reports.coverage import build
from wardwatch.collector.reports.formats import render
from wardwatch.collector.reports.model import Report
from wardwatch.simulators.lab import InfluxService

pytestmark = pytest.mark.services

# 2026-11-02 07:00-13:00 local (UTC+7): 72 steps of 5 minutes; poll k lands 42 s into step k.
START_MS = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)
STEPS = 72
STEP_S = 300


def polls(ward: str, device: str, kind: str, *, up: frozenset[int] | set[int] = frozenset(range(STEPS)),
          skip: frozenset[int] | set[int] = frozenset(), clients: dict[int, int] | None = None,
          ok: set[int] | None = None) -> list[bytes]:  # fmt: skip
    """A device's polls around the period (an hour either side, all up there): up=1 in
    ``up``; an AP's radios report ``clients`` (k -> total, split over two radios) when up;
    a camera's camera_health ok=1 in ``ok``."""
    lines = []
    for k in range(-12, STEPS + 12):
        if k in skip:
            continue
        t = START_MS + (k * STEP_S + 42) * 1000
        is_up = k in up or not 0 <= k < STEPS
        tags = f"ward={ward},device={device},kind={kind}"
        lines.append(f"device_status,{tags} up={int(is_up)}i {t}".encode())
        if clients is not None and is_up:
            n = clients.get(k, 0)
            lines.append(f"wifi_radio,{tags},radio=2.4GHz clients={n // 2}i {t}".encode())
            lines.append(f"wifi_radio,{tags},radio=5GHz clients={n - n // 2}i {t}".encode())
        if ok is not None:
            good = k in ok or not 0 <= k < STEPS
            lines.append(f'camera_health,{tags} ok={int(good)}i,reason="{"ok" if good else "no_video"}" {t}'.encode())
    return lines


ALL = set(range(STEPS))
HOUR_8 = set(range(12, 24))  # 08:00-09:00 local
HOUR_11 = set(range(48, 60))  # 11:00-12:00 local


def known_fleet() -> list[bytes]:
    return (
        # ward-a: ap-1 up throughout, clients in the first 3 hours only (the second radio's 1 client counts)
        polls("ward-a", "ap-1", "ap", clients={k: 1 for k in range(36)})
        # ap-2 down from 08:00 to 09:00, 5 clients whenever up
        + polls("ward-a", "ap-2", "ap", up=ALL - HOUR_8, clients={k: 5 for k in range(STEPS)})
        # a camera not OK for 6 steps (30 min)
        + polls("ward-a", "cam-a1", "camera", ok=ALL - set(range(30, 36)))
        # ward-b: ap-3 up, its agent offline 11:00-12:00 (no readings: unknown)
        + polls("ward-b", "ap-3", "ap", skip=HOUR_11, clients={k: 2 for k in range(STEPS)})
        + polls("ward-b", "cam-b1", "camera", ok=ALL)
        + polls("ward-b", "cam-b2", "camera", ok=set())  # up, but never OK (no video)
    )


def _build(influx: InfluxService, database: str) -> Report:
    cfg = CollectorConfig.model_validate({
        "influx": {"url": influx.url, "database": database}, "wards": {"ward-a": "Cẩm Phô", "ward-b": "Tân Hiệp"},
    })  # fmt: skip
    period = make_period("2026-11-02T07:00", "2026-11-02T13:00", cfg.tz)

    async def go() -> Report:
        async with InfluxV1Writer(url=influx.url, database=database) as client:
            await client.write(known_fleet())
            return await build(client, period=period, wards=[], cfg=cfg, options={"step": None})

    return asyncio.run(go())


def test_coverage_serving_cameras_ok_and_hours_equal_the_hand_computed(influx: InfluxService, database: str) -> None:
    report = _build(influx, database)
    rows = report.data["wards"]
    assert [r["ward"] for r in rows] == ["ward-a", "ward-b"]  # worst first
    a, b = rows
    assert a == {
        "ward": "ward-a", "aps": 2,
        "wifi_up_pct": round(100 * (72 + 60) / 144, 3),  # ap-2 down 12 of its 72 steps
        "serving_pct": round(100 * (36 + 60) / 144, 3),  # ap-1 with clients in 36, ap-2 in its 60 up
        "wifi_unknown_min": 0.0,
        "cameras": 1, "camera_ok_pct": round(100 * 66 / 72, 3), "camera_unknown_min": 0.0,
    }  # fmt: skip
    assert b == {
        "ward": "ward-b", "aps": 1, "wifi_up_pct": 100.0, "serving_pct": 100.0,
        "wifi_unknown_min": 60.0,  # excluded from the share, shown apart
        "cameras": 2, "camera_ok_pct": 50.0, "camera_unknown_min": 0.0,
    }  # fmt: skip

    hours = {h["hour"]: h for h in report.data["hours"]}
    assert len(hours) == 24
    assert [hours[h]["wifi_up_pct"] for h in range(7, 13)] == [100.0, round(100 * 24 / 36, 3), 100.0, 100.0,
                                                                100.0, 100.0]  # fmt: skip
    assert hours[11]["ap_hours"] == 2.0  # ap-3 unknown in that hour
    assert hours[6]["wifi_up_pct"] is None and hours[13]["wifi_up_pct"] is None  # outside the period

    (ward_chart,) = report.sections[0].charts
    assert ward_chart.labels == ["Cẩm Phô", "Tân Hiệp"] and ward_chart.values == [a["wifi_up_pct"], 100.0]
    assert report.sections[1].charts[0].kind == "line" and len(report.sections[1].charts[0].labels) == 24

    # CSV and JSON carry the same numbers
    doc = json.loads(render(report, "json"))
    blocks = csv_blocks(render(report, "csv"))
    for section in report.sections:
        header, *cells = blocks[section.key]
        for row, entry in zip(cells, doc[section.key], strict=True):
            for key, cell in zip(header, row, strict=True):
                want = report.wards[entry["ward"]] if key == "ward_name" else entry[key]
                assert cell == ("" if want is None else str(want)), (section.key, key)
