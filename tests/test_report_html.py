"""The HTML report opens in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright for Python; never `playwright install`) and shows what it should: its SVG charts
drawn with a size, the Vietnamese ward names as text, and not one request beyond the file
itself. A missing chromium fails these tests (scripts/install-deps.sh installs it).

One report is built by hand with known numbers, so that what the page says can be checked;
another is the capacity builder's, on the data set of tests/test_report_capacity.py in a real
InfluxDB. Set WARDWATCH_SCREENSHOT=PATH (WARDWATCH_SCREENSHOT_INFLUX=PATH) to keep their
screenshots (docs/report-example.png and docs/report-capacity.png).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, Request, Route

from tests.browser import chromium
from tests.test_report_capacity import report as capacity_from_influx
from wardwatch.collector.reports.formats import render
from wardwatch.collector.reports.model import Chart, Column, Period, Report, Section
from wardwatch.simulators.lab import InfluxService

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# 2026-11-01T00:00+07:00 .. 2026-12-01T00:00+07:00
START_MS, END_MS = 1_793_466_000_000, 1_796_058_000_000
WARDS = {"cam-pho": "Cẩm Phô", "minh-an": "Minh An", "son-phong": "Sơn Phong", "cam-chau": "Cẩm Châu",
         "thanh-ha": "Thanh Hà", "cua-dai": "Cửa Đại"}  # fmt: skip


def capacity_report() -> Report:
    """A capacity report with known numbers: Minh An's AP peaks at 41 clients on Friday 19h."""
    wifi = [
        {"ward": "minh-an", "ap": "ap-cho", "peak_clients": 41, "p95_clients": 33, "hours_over": 12, "extra_aps": 1},
        {"ward": "cam-pho", "ap": "ap-ubnd", "peak_clients": 27, "p95_clients": 21.5, "hours_over": 0, "extra_aps": 0},
        {"ward": "son-phong", "ap": "ap-nha-van-hoa", "peak_clients": 34, "p95_clients": 29, "hours_over": 3,
         "extra_aps": 0},
        {"ward": "cua-dai", "ap": "ap-bien", "peak_clients": 18, "p95_clients": 12, "hours_over": 0, "extra_aps": 0},
    ]  # fmt: skip
    cameras = [
        {"ward": "minh-an", "cameras": 8, "bitrate_kbps_sum": 32768, "uplink_mbps": 100.0, "uplink_p95_mbps": 61.25,
         "headroom_mbps": 38.75},
        {"ward": "cam-chau", "cameras": 5, "bitrate_kbps_sum": 20480, "uplink_mbps": 50.0, "uplink_p95_mbps": 44.5,
         "headroom_mbps": 5.5},
        {"ward": "thanh-ha", "cameras": 3, "bitrate_kbps_sum": 6144, "uplink_mbps": 100.0, "uplink_p95_mbps": 12.0,
         "headroom_mbps": 88.0},
    ]  # fmt: skip
    poe = [
        {"ward": "minh-an", "switch": "sw-core", "budget_w": 370.0, "draw_w": 301.4, "headroom_w": 68.6},
        {"ward": "cam-chau", "switch": "sw-poe-1", "budget_w": 120.0, "draw_w": 112.0, "headroom_w": 8.0},
    ]
    # Hour of week, Monday first: evenings busier, and the peak (41) on Friday at 19:00.
    profile: list[list[float | None]] = [
        [round(3 + 20 * max(0.0, 1 - abs(h - 19) / 9) + d, 1) for h in range(24)] for d in range(7)
    ]
    profile[4][19] = 41.0
    profile[6][3] = None  # an hour with no reading
    uplink: list[float | None] = [round(20 + 40 * max(0.0, 1 - abs(h - 20) / 10), 2) for h in range(24)]
    uplink[5] = None
    sections = [
        Section(
            key="wifi",
            title="Wi-Fi: khách đồng thời / concurrent clients",
            columns=[Column("ward", "Phường / Ward"), Column("ap", "AP"), Column("peak_clients", "Peak"),
                     Column("p95_clients", "p95"), Column("hours_over", "Hours over", "h"),
                     Column("extra_aps", "Extra APs")],
            rows=wifi,
            charts=[
                Chart(kind="bars", title="Peak clients per AP", labels=[f"{r['ap']}" for r in wifi],
                      values=[float(r["peak_clients"]) for r in wifi], limit=30),
                Chart(kind="heatmap", title="Minh An: clients by hour of week", labels=[], values=profile,
                      unit="clients", limit=30),
            ],
            notes=["extra APs = ceil(p95 / 30) - APs; threshold 30 clients per radio"],
        ),
        Section(
            key="cameras",
            title="Camera: băng thông đường lên / uplink headroom",
            columns=[Column("ward", "Phường / Ward"), Column("cameras", "Cameras"),
                     Column("bitrate_kbps_sum", "Bitrate sum", "kbit/s"), Column("uplink_mbps", "Uplink", "Mbit/s"),
                     Column("uplink_p95_mbps", "Uplink p95", "Mbit/s"),
                     Column("headroom_mbps", "Headroom", "Mbit/s")],
            rows=cameras,
            charts=[
                Chart(kind="bars", title="Headroom per ward", labels=[r["ward"] for r in cameras],
                      values=[r["headroom_mbps"] for r in cameras], unit="Mbit/s"),
                Chart(kind="line", title="Minh An uplink, by local hour", labels=[f"{h:02d}h" for h in range(24)],
                      values=uplink, unit="Mbit/s", limit=80.0),
            ],
        ),
        Section(
            key="poe",
            title="PoE: công suất / power budget",
            columns=[Column("ward", "Phường / Ward"), Column("switch", "Switch"), Column("budget_w", "Budget", "W"),
                     Column("draw_w", "Draw", "W"), Column("headroom_w", "Headroom", "W")],
            rows=poe,
        ),
    ]
    return Report(
        kind="capacity",
        title="Báo cáo dung lượng / Capacity report <Hội An>",
        period=Period(start_ms=START_MS, end_ms=END_MS, tz=TZ),
        sections=sections,
        data={"wifi": wifi, "cameras": cameras, "poe": poe},
        wards=WARDS,
        notes=["p95 = nearest-rank 95th percentile of the per-step maxima"],
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def open_page(browser: Browser, path: Path) -> tuple[Page, set[str]]:
    """The page at ``path``, with every request other than the file itself refused and listed."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    own = path.resolve().as_uri()
    foreign: set[str] = set()

    def guard(route: Route) -> None:
        if route.request.url == own:
            route.continue_()
        else:
            foreign.add(route.request.url)
            route.abort()

    def seen(request: Request) -> None:
        if request.url != own:
            foreign.add(request.url)

    page.route("**/*", guard)
    page.on("request", seen)
    page.goto(own, wait_until="load")
    return page, foreign


def test_the_capacity_report_shows_its_charts_and_ward_names_and_fetches_nothing(
    browser: Browser, tmp_path: Path
) -> None:
    report = capacity_report()
    path = tmp_path / "capacity.html"
    path.write_bytes(render(report, "html"))
    page, foreign = open_page(browser, path)

    assert page.evaluate("document.documentElement.lang") == "vi"
    text = page.inner_text("body")
    for name in ("Cẩm Phô", "Minh An", "Sơn Phong", "Cẩm Châu", "Thanh Hà", "Cửa Đại"):
        assert name in text, name
    assert "cam-pho" not in text  # shown by name, the id only in a tooltip
    header = page.inner_text("header")
    assert "Asia/Ho_Chi_Minh (UTC+07:00)" in header and "2026-11-01 00:00" in header and "2026-12-01 00:00" in header
    assert "Kỳ báo cáo / Period" in header and "Dung lượng / Capacity" in header
    assert "<Hội An>" in page.inner_text("h1")  # escaped, not a tag

    charts = page.locator("svg.chart")
    assert charts.count() == 4
    for i in range(4):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 50, (i, box)
        assert charts.nth(i).is_visible()
    # The bars: one per AP, the two above the limit of 30 in the "over" colour.
    bars = page.locator("#wifi svg.chart-bars rect")
    assert bars.count() == 4
    assert [bars.nth(i).get_attribute("fill") for i in range(4)] == ["#d9822b", "#3b6fb6", "#d9822b", "#3b6fb6"]
    widths = [bars.nth(i).bounding_box()["width"] for i in range(4)]  # type: ignore[index]
    assert widths[0] > widths[2] > widths[1] > widths[3] > 0  # 41 > 34 > 27 > 18
    # The heatmap: 7 x 24 cells (and the legend), Friday 19:00 the peak, outlined as over the limit.
    cells = page.locator("#wifi svg.chart-heatmap rect:has(title)")
    assert cells.count() == 7 * 24
    peak = cells.nth(4 * 24 + 19)
    assert peak.locator("title").text_content() == "T6 Fri 19:00: 41 clients"
    assert peak.get_attribute("stroke") == "#c23030"
    # The line has a gap where a value is missing: two runs.
    assert page.locator("#cameras svg.chart-line polyline").count() == 2
    # The table rounds for reading, the ward id is the cell's tooltip.
    first = page.locator("#cameras tbody tr").first.locator("td")
    assert [first.nth(i).inner_text() for i in range(6)] == ["Minh An", "8", "32768", "100", "61.2", "38.8"]
    assert first.first.get_attribute("title") == "minh-an"

    shot = Path(os.environ.get("WARDWATCH_SCREENSHOT") or tmp_path / "capacity.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    page.close()
    assert foreign == set(), foreign


def test_the_request_guard_sees_what_a_page_fetches(browser: Browser, tmp_path: Path) -> None:
    """The check above means something: a page that does reach out is caught."""
    path = tmp_path / "leaky.html"
    path.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<link rel="stylesheet" href="https://example.invalid/a.css"></body></html>')  # fmt: skip
    page, foreign = open_page(browser, path)
    page.close()
    assert foreign == {"http://127.0.0.1:9/x.png", "https://example.invalid/a.css"}


def test_csv_and_json_carry_the_same_numbers() -> None:
    report = capacity_report()
    doc = json.loads(render(report, "json"))
    assert list(doc) == ["period", "wifi", "cameras", "poe"]
    assert doc["period"] == {"from": "2026-11-01T00:00:00+07:00", "to": "2026-12-01T00:00:00+07:00",
                             "timezone": "Asia/Ho_Chi_Minh"}  # fmt: skip
    raw = render(report, "csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    blocks = raw.decode("utf-8-sig").split("\r\n\r\n")
    assert len(blocks) == 3
    for block, section in zip(blocks, report.sections, strict=True):
        lines = [line for line in block.split("\r\n") if line]
        assert lines[0] == f"# {section.key}: {section.title}"
        keys = lines[1].split(",")
        assert keys[:2] == ["ward", "ward_name"]
        for line, entry in zip(lines[2:], doc[section.key], strict=True):
            cells = dict(zip(keys, line.split(","), strict=True))
            assert cells["ward_name"] == WARDS[entry["ward"]]
            for key, value in entry.items():
                assert cells[key] == (value if isinstance(value, str) else json.dumps(value)), (key, cells)
                if not isinstance(value, str):
                    assert json.loads(cells[key]) == value


def test_the_table_aligns_names_with_diacritics() -> None:
    text = render(capacity_report(), "table").decode()
    lines = text.splitlines()
    assert lines[1] == "2026-11-01T00:00:00+07:00 .. 2026-12-01T00:00:00+07:00 (Asia/Ho_Chi_Minh)"
    at = lines.index("Camera: băng thông đường lên / uplink headroom")
    assert lines[at + 1] == "=" * 46  # as wide as the title looks
    rows = lines[at + 4 : at + 7]
    assert [re.split(r"\s{2,}", r.strip()) for r in rows] == [
        ["Minh An", "8", "32768", "100", "61.2", "38.8"],
        ["Cẩm Châu", "5", "20480", "50", "44.5", "5.5"],
        ["Thanh Hà", "3", "6144", "100", "12", "88"],
    ]
    assert len({len(r) for r in rows}) == 1  # aligned: the same width, diacritics counted once


@pytest.mark.services
def test_a_capacity_report_from_influxdb_opens_with_its_charts(browser: Browser, influx: InfluxService,
                                                              database: str, tmp_path: Path) -> None:  # fmt: skip
    """The real builder on the hand-computed data set of tests/test_report_capacity.py."""
    # In a thread of its own: sync Playwright keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(capacity_from_influx, influx, database).result(timeout=120)
    path = tmp_path / "capacity-influx.html"
    path.write_bytes(render(report, "html"))
    page, foreign = open_page(browser, path)
    text = page.inner_text("body")
    assert "Cẩm Phô" in text and "Minh An" in text
    assert "Asia/Ho_Chi_Minh (UTC+07:00)" in page.inner_text("header")
    charts = page.locator("svg.chart")
    assert charts.count() == sum(len(s.charts) for s in report.sections) > 0
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 20, (i, box)  # one bar: 34 px
    assert page.locator("svg.chart-heatmap").count() >= 1
    # Every row of every section is in its table.
    assert page.locator("tbody tr").count() == sum(len(s.rows) for s in report.sections)
    page.screenshot(path=str(os.environ.get("WARDWATCH_SCREENSHOT_INFLUX") or tmp_path / "capacity-influx.png"),
                    full_page=True)  # fmt: skip
    page.close()
    assert foreign == set(), foreign
