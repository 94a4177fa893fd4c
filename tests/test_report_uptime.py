"""`report uptime` cuts each device's period into steps of its own poll interval, learned
from the data in InfluxDB: a device polled every 5 minutes is not 80% unknown at a 60 s
step, and a hole in its readings is unknown, not down (collector/uptime.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.util import BIN, write_yaml
from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.reports.common import make_period
from wardwatch.collector.reports.formats import render
from wardwatch.collector.reports.model import Report
from wardwatch.collector.reports.uptime import build
from wardwatch.collector.uptime import DeviceUptime, device_uptime, poll_intervals
from wardwatch.simulators.lab import InfluxService

pytestmark = pytest.mark.services

# 2026-11-02T00:00Z: a whole number of 300 s and 30 s steps from the epoch, so the
# report's period starts and ends on step boundaries of both devices.
START_MS = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)
HOURS = 6
END_MS = START_MS + HOURS * 3600 * 1000
WARD = "hoi-an"


def readings(device: str, *, every_s: int, phase_s: float, jitter_s: float = 0.0, skip: range = range(0),
             down: range | set[int] = range(0), seed: int = 1, ward: str = WARD,
             kind: str = "switch") -> list[bytes]:  # fmt: skip
    """``device_status`` lines every ``every_s`` from an hour before START_MS to an hour after
    END_MS (polling goes on around the report's period), at ``phase_s`` into each interval
    and moved by up to ``jitter_s`` either way (a poll's time varies). Poll k is the one
    ``k * every_s`` after START_MS; those in ``skip`` are missing, those in ``down`` say up=0."""
    rng = random.Random(seed)
    lines = []
    around = 3600 // every_s
    for k in range(-around, (HOURS * 3600) // every_s + around):
        if k in skip:
            continue
        t = START_MS + round((k * every_s + phase_s + rng.uniform(-jitter_s, jitter_s)) * 1000)
        up = 0 if k in down else 1
        lines.append(f"device_status,ward={ward},device={device},kind={kind} up={up}i,rtt_ms=1.5 {t}".encode())
    return lines


async def _write_and_report(influx: InfluxService, database: str, lines: list[bytes],
                            step_s: int | None = None) -> dict[str, DeviceUptime]:  # fmt: skip
    async with InfluxV1Writer(url=influx.url, database=database) as client:
        await client.write(lines)
        rows = await device_uptime(client, start_ms=START_MS, end_ms=END_MS, step_s=step_s, ward=WARD)
    return {r.device: r for r in rows}


def test_a_5_minute_and_a_30_second_device_fully_up_are_100_percent_with_no_unknown(
    influx: InfluxService, database: str
) -> None:
    # The 30 s switch's polls land 0.1 s before a step boundary, give or take 0.3 s:
    # many cross it, leaving their own step empty and the next with two.
    lines = readings("sw-slow", every_s=300, phase_s=7.0, jitter_s=2.0) + readings(
        "sw-fast", every_s=30, phase_s=29.9, jitter_s=0.3
    )
    got = asyncio.run(_write_and_report(influx, database, lines))
    period = HOURS * 3600.0
    assert set(got) == {"sw-slow", "sw-fast"}
    for device, step in (("sw-slow", 300), ("sw-fast", 30)):
        row = got[device]
        assert row.step_s == step, row
        assert (row.up_s, row.down_s, row.unknown_s, row.uptime_pct) == (period, 0, 0, 100.0), row

    # The jitter really crosses boundaries: a fixed 30 s step without the learned
    # interval's tolerance sees empty steps. And the old default of 60 s makes the
    # 5-minute switch 80% unknown: why the step is learned.
    fixed = asyncio.run(_write_and_report(influx, database, [], step_s=30))
    assert fixed["sw-fast"].unknown_s > 0, fixed["sw-fast"]
    sixty = asyncio.run(_write_and_report(influx, database, [], step_s=60))
    assert sixty["sw-slow"].unknown_s == pytest.approx(0.8 * period), sixty["sw-slow"]
    assert sixty["sw-slow"].uptime_pct == 100.0


def test_a_20_minute_hole_is_unknown_and_up_0_is_down(influx: InfluxService, database: str) -> None:
    # Polls 40..43 never arrive (20 minutes); polls 60..62 answer up=0 (15 minutes).
    lines = readings("sw-hole", every_s=300, phase_s=42.0, jitter_s=1.0, skip=range(40, 44), down=range(60, 63))
    (row,) = asyncio.run(_write_and_report(influx, database, lines)).values()
    assert row.step_s == 300
    assert row.unknown_s == 20 * 60, row
    assert row.down_s == 15 * 60, row
    assert row.up_s == HOURS * 3600 - 35 * 60, row
    assert row.uptime_pct == round(100 * row.up_s / (row.up_s + row.down_s), 3)


def test_the_interval_is_the_median_spacing_computed_by_the_server(influx: InfluxService, database: str) -> None:
    # A hole and jitter do not move the median; a device with one reading has no interval.
    lines = readings("sw-a", every_s=300, phase_s=1.0, jitter_s=1.0, skip=range(10, 30)) + readings(
        "sw-b", every_s=30, phase_s=3.0, jitter_s=0.5
    )
    lines.append(f"device_status,ward={WARD},device=sw-once,kind=switch up=1i {START_MS + 3_600_000}".encode())

    async def go() -> tuple[dict[tuple[str, str], float], dict[str, DeviceUptime]]:
        async with InfluxV1Writer(url=influx.url, database=database) as client:
            await client.write(lines)
            got = await poll_intervals(client, start_ms=START_MS, end_ms=END_MS, ward=WARD)
            rows = await device_uptime(client, start_ms=START_MS, end_ms=END_MS, ward=WARD)
        return got, {r.device: r for r in rows}

    intervals, rows = asyncio.run(go())
    assert set(intervals) == {(WARD, "sw-a"), (WARD, "sw-b")}
    assert intervals[(WARD, "sw-a")] == pytest.approx(300, abs=2)
    assert intervals[(WARD, "sw-b")] == pytest.approx(30, abs=1)
    # The single reading still shows, in steps of the fallback 60 s: one step up, the rest unknown.
    assert rows["sw-once"].step_s == 60 and rows["sw-once"].up_s == 60, rows["sw-once"]
    assert rows["sw-once"].unknown_s == HOURS * 3600 - 60


def test_the_command_learns_the_step_and_step_overrides_it(influx: InfluxService, database: str,
                                                           tmp_path: Path) -> None:  # fmt: skip
    lines = readings("sw-slow", every_s=300, phase_s=11.0, jitter_s=1.0, skip=range(40, 44)) + readings(
        "sw-fast", every_s=30, phase_s=5.0, jitter_s=1.0
    )

    async def write() -> None:
        async with InfluxV1Writer(url=influx.url, database=database) as client:
            await client.write(lines)

    asyncio.run(write())
    cfg = write_yaml(tmp_path / "collector.yaml", {
        "mqtt": {"host": "127.0.0.1", "port": 1},
        "influx": {"api": "v1", "url": influx.url, "database": database},
    })  # fmt: skip

    def report(*extra: str) -> dict[str, dict[str, object]]:
        argv = [str(BIN / "wardwatch-collector"), "report", "uptime", "-c", str(cfg),
                "--from", "2026-11-02T07:00+07:00", "--to", "2026-11-02T13:00+07:00",
                "--ward", WARD, "--format", "json", *extra]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return {r["device"]: r for r in json.loads(done.stdout)["devices"]}

    learned = report()
    assert {k: learned["sw-slow"][k] for k in ("ward", "device", "up_s", "down_s", "unknown_s", "step_s")} == {
        "ward": WARD, "device": "sw-slow", "up_s": HOURS * 3600 - 1200, "down_s": 0, "unknown_s": 1200,
        "step_s": 300,
    }  # fmt: skip
    assert learned["sw-slow"]["uptime_pct"] == 100.0
    assert (learned["sw-fast"]["unknown_s"], learned["sw-fast"]["step_s"], learned["sw-fast"]["uptime_pct"]) == (
        0, 30, 100.0
    )
    forced = report("--step", "60")
    assert forced["sw-slow"]["step_s"] == 60 and forced["sw-fast"]["step_s"] == 60
    # 4 of every 5 minutes without a reading: what --step 60 did to a 5-minute device.
    assert forced["sw-slow"]["unknown_s"] == HOURS * 3600 * 4 // 5 + 4 * 60

    table = subprocess.run([str(BIN / "wardwatch-collector"), "report", "uptime", "--help"], capture_output=True,
                           text=True, timeout=60, check=True).stdout  # fmt: skip
    assert "poll interval" in " ".join(table.split())  # argparse wraps the help


# The known data set of the grown-up report: 2026-11-02 07:00-13:00 local (a Monday), every
# 5-minute device's poll k lands 42 s (give or take 1 s) into step k.
MAINTENANCE = [
    # Mondays 09:00-09:30 local = steps 24..29 of the 5-minute devices: ward-a's switches only.
    {"wards": ["ward-a"], "devices": "sw-*", "rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9", "duration": "30m"},
    # mutes camera alerts only: not taken out of uptime
    {"wards": ["ward-b"], "rules": ["camera_not_ok"], "rrule": "FREQ=DAILY;BYHOUR=8", "duration": "4h"},
]


def known_fleet() -> list[bytes]:
    return (
        # two outages (15 and 20 min), an outage of 15 min inside the window, 20 min unknown
        readings("sw-1", every_s=300, phase_s=42, jitter_s=1, ward="ward-a",
                 down={10, 11, 12, 50, 51, 52, 53, 25, 26, 27}, skip=range(60, 64))
        + readings("sw-2", every_s=300, phase_s=42, jitter_s=1, ward="ward-a", seed=2)
        # a camera polled every minute, down for 5 minutes inside the window that is not its own
        + readings("cam-1", every_s=60, phase_s=20, jitter_s=1, ward="ward-a", kind="camera", down=range(125, 130))
        # down 10 min, a missed poll (unknown), down 5 min more: one outage of 15 min
        + readings("sw-3", every_s=300, phase_s=42, jitter_s=1, ward="ward-b", down={30, 31, 33}, skip=range(32, 33))
    )


def _build(influx: InfluxService, database: str, lines: list[bytes]) -> Report:
    cfg = CollectorConfig.model_validate({
        "influx": {"url": influx.url, "database": database}, "wards": {"ward-a": "Cẩm Phô", "ward-b": "Tân Hiệp"},
        "alerts": {"maintenance": MAINTENANCE},
    })  # fmt: skip
    period = make_period("2026-11-02T07:00", "2026-11-02T13:00", cfg.tz)

    async def go() -> Report:
        async with InfluxV1Writer(url=influx.url, database=database) as client:
            await client.write(lines)
            return await build(client, period=period, wards=[], cfg=cfg, options={"step": None})

    return asyncio.run(go())


def test_outages_unknown_and_maintenance_per_device_and_rolled_up(influx: InfluxService, database: str) -> None:
    report = _build(influx, database, known_fleet())
    devices = {d["device"]: d for d in report.data["devices"]}
    pick = ("uptime_pct", "down_min", "outages", "longest_outage_min", "mttr_min", "unknown_min",
            "maintenance_min", "step_s", "kind")  # fmt: skip
    got = {name: tuple(d[k] for k in pick) for name, d in devices.items()}
    assert got == {
        # up 55 steps (275 min) of 72; down 7 (35 min); 20 unknown; 30 maintenance (its 15-min outage too)
        "sw-1": (round(100 * 275 / 310, 3), 35.0, 2, 20.0, 17.5, 20.0, 30.0, 300, "switch"),
        "sw-2": (100.0, 0.0, 0, 0.0, None, 0.0, 30.0, 300, "switch"),
        "cam-1": (round(100 * 355 / 360, 3), 5.0, 1, 5.0, 5.0, 0.0, 0.0, 60, "camera"),
        "sw-3": (round(100 * 340 / 355, 3), 15.0, 1, 15.0, 15.0, 5.0, 0.0, 300, "switch"),
    }, got
    assert [d["device"] for d in report.data["devices"]] == ["sw-1", "sw-2", "cam-1", "sw-3"]  # ward, kind

    rollup = {(r["ward"], r["kind"]): r for r in report.data["rollup"]}
    pick = ("devices", "uptime_pct", "down_min", "outages", "unknown_min", "maintenance_min")
    assert {k: tuple(r[c] for c in pick) for k, r in rollup.items()} == {
        ("ward-a", "switch"): (2, round(100 * 605 / 640, 3), 35.0, 2, 20.0, 60.0),  # sum(up) / sum(up + down)
        ("ward-a", "camera"): (1, round(100 * 355 / 360, 3), 5.0, 1, 0.0, 0.0),
        ("ward-b", "switch"): (1, round(100 * 340 / 355, 3), 15.0, 1, 5.0, 0.0),
    }
    (window,) = report.data["maintenance"]  # the camera-only window of ward-b took nothing
    assert (window["from"], window["to"], window["applied_to"], window["maintenance_min"]) == (
        "2026-11-02T09:00:00+07:00", "2026-11-02T09:30:00+07:00", 2, 60.0)
    assert report.wards == {"ward-a": "Cẩm Phô", "ward-b": "Tân Hiệp"}
    assert set(report.data) == {"period", "devices", "rollup", "maintenance"}


def test_uptime_csv_and_json_carry_the_same_numbers(influx: InfluxService, database: str) -> None:
    report = _build(influx, database, known_fleet())
    doc = json.loads(render(report, "json"))
    blocks = csv_blocks(render(report, "csv"))
    for section in report.sections:
        header, *rows = blocks[section.key]
        assert len(rows) == len(doc[section.key])
        for cells, entry in zip(rows, doc[section.key], strict=True):
            for key, cell in zip(header, cells, strict=True):
                if key == "ward_name":
                    assert cell == report.wards[entry["ward"]]
                else:
                    assert cell == ("" if entry[key] is None else str(entry[key])), (section.key, key)


def csv_blocks(body: bytes) -> dict[str, list[list[str]]]:
    """The CSV's titled blocks (``# key: title``, header, rows), by section key."""
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    out: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for row in csv.reader(io.StringIO(text[1:])):
        if row and row[0].startswith("# "):
            current = out.setdefault(row[0][2:].split(":")[0], [])
        elif row:
            current.append(row)
    return out
