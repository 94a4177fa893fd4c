"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium through Playwright
for Python; never `playwright install`), on real processes: the alert rig of
tests/alert_rig.py (Mosquitto, InfluxDB, the camera simulator, snmpsim, one wardwatch-agent
per ward, wardwatch-collector with alerts: and http.token), all 13 wards of Hội An.

What a technician does, in order: log in; see the 13 wards with their Vietnamese names; open
a ward, then a device, and see a chart drawn with data; watch a camera break (through the
simulator's control endpoint) turn its tile and its device page within 5 s of the collector
seeing it, with no reload; acknowledge its alert; switch to English. And what an intruder
gets: 401 without the token, 403 for a state change without the CSRF token.

InfluxDB gets 24 h of history for the devices first (written straight as line protocol, as
the agents would have written it), so that the charts and the city uptime have something
to show. Set WARDWATCH_SCREENSHOTS=DIR to keep the 1280x800 screenshots (docs/web-*.png).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request
from playwright.sync_api import Error as PlaywrightError

from tests.alert_rig import FOR, GROUP_WAIT, INTERVAL, WARD_NAMES, AlertRig, labels_of, now_ms
from tests.browser import chromium
from tests.util import wait_for
from wardwatch.collector.lineproto import line
from wardwatch.simulators.lab import InfluxService

pytestmark = pytest.mark.services

VIEWPORT: Final = {"width": 1280, "height": 800}
# The busy ward has a switch feeding its APs and cameras; every other ward a camera or two.
BUSY: Final = "cam-pho"
BROKEN: Final = "minh-an"  # the ward whose camera the test breaks
SITES: Final[dict[str, dict[str, Any]]] = {
    BUSY: {"cameras": 3, "switch": True, "aps": 2},
    BROKEN: {"cameras": 2},
    **{w: {"cameras": 1} for w in WARD_NAMES if w not in (BUSY, BROKEN)},
}
LIVE_WITHIN: Final = 5.0  # seconds from the collector's state to the page's (the bound)
HISTORY_STEP_MS: Final = 90_000  # two readings in each of the 24 h chart's 180 s steps
HISTORY_MS: Final = 24 * 3_600_000


class WebRig(AlertRig):
    """The alert rig with every ward of ``wards:`` watched (so the dashboard shows all 13)."""

    def alerts_section(self) -> dict[str, Any]:
        section = super().alerts_section()
        section["wards"] = ["*"]
        return section

    @property
    def base(self) -> str:
        assert self.collector is not None
        return f"http://127.0.0.1:{self.collector.http_port}"

    @property
    def token(self) -> str:
        assert self.collector is not None
        return self.collector.token


def _history(rig: AlertRig, end_ms: int, start_ms: int | None = None) -> bytes:
    """24 h up to ``end_ms`` (or from ``start_ms``) of what the agents would have written for
    every device of the rig, every 90 s:
    round trips, a camera's skew and bitrate, an AP's clients following the day, the
    switch's port rates. One camera of the busy ward was down for an hour this morning."""
    out: list[bytes] = []
    first = end_ms - HISTORY_MS if start_ms is None else start_ms
    start = first - first % HISTORY_STEP_MS + (HISTORY_STEP_MS if start_ms is not None else 0)  # one 90 s grid
    outage = (now_ms() - 4 * 3_600_000, now_ms() - 3 * 3_600_000)
    for site in rig.sites.values():
        agent = site.agent_id
        for t in range(start, end_ms, HISTORY_STEP_MS):
            m = t / 60_000  # minutes: the curves go on across the two writes
            day = 0.5 + 0.5 * math.sin(2 * math.pi * ((t / 1000 + 7 * 3600) % 86400) / 86400 - math.pi / 2)
            for i, dev in enumerate(site.devices):
                kind = "switch" if dev == site.switch else "ap" if dev in site.aps else "camera"
                tags = {"ward": site.ward, "device": dev, "kind": kind, "agent": agent}
                down = kind == "camera" and site.ward == BUSY and dev == "cam-02" and outage[0] <= t < outage[1]
                rtt = 1.5 + 3 * day + (i % 3) * 0.4 + 0.5 * math.sin(m / 25 + i)
                loss = 6.7 if int(m) % 173 == 0 else 0.0
                out.append(line("device_status", tags, {"up": 0 if down else 1, "rtt_ms": round(rtt, 3),
                                                        "loss_pct": loss}, t))  # fmt: skip
                if kind == "camera":
                    out.append(line("camera_health", tags, {
                        "ok": 0 if down else 1, "online": 0 if down else 1, "reason": "offline" if down else "ok",
                        "clock_skew_s": round(0.7 + 0.4 * day + 0.15 * math.sin(m / 40 + i), 3),
                        "bitrate_kbps": round(3900 + 600 * day + 120 * math.sin(m / 15 + i)),  # int, as agents write
                    }, t))  # fmt: skip
                elif kind == "ap":
                    for r, radio in enumerate(("wlan0", "wlan1")):
                        clients = round((8 + 22 * day) * (1 if r else 0.6) + 2 * math.sin(m / 9 + i))
                        fields = {"clients": clients, "util_pct": round(12 + 45 * day + 3 * r, 2)}
                        out.append(line("wifi_radio", {**tags, "radio": radio}, fields, t))
                else:
                    for p in range(1, 5):
                        rate = (6e6 + 30e6 * day) / p * (1 + 0.1 * math.sin(m / 7 + p))
                        fields = {"oper_up": 1, "in_bps": float(round(rate * 0.2)), "out_bps": float(round(rate))}
                        out.append(line("if_traffic", {**tags, "if_name": f"Gi1/0/{p}"}, fields, t))
    return b"\n".join(out) + b"\n"


def _write(influx: InfluxService, db: str, body: bytes) -> None:
    req = urllib.request.Request(f"{influx.url}/write?db={db}&precision=ms", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204


def rig_dead_letters(r: AlertRig) -> list[str]:
    assert r.collector is not None
    return [d.get("reason", "") for d in r.collector.dead_letters()]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, influx: InfluxService) -> Iterator[WebRig]:
    r = WebRig(tmp_path_factory.mktemp("web"), influx, cameras=sum(int(s["cameras"]) for s in SITES.values()))
    try:
        r.start_services()
        for ward, kw in SITES.items():
            r.add_site(ward, **kw)
        # A day of history up to now, so that the collector's first look at the city's
        # uptime sees it; the minutes until the agents write are filled in once they do.
        written = now_ms()
        _write(influx, r.database, _history(r, written))
        r.start_collector()
        r.start_sites()
        _write(influx, r.database, _history(r, now_ms() - int(INTERVAL * 1000), start_ms=written))
        assert rig_dead_letters(r) == [], "InfluxDB refused the agents' points beside the history's"
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


class Guarded:
    """A browser context that may reach the collector and nothing else."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.base = base
        self.foreign: set[str] = set()
        self.context: BrowserContext = browser.new_context(viewport=VIEWPORT, locale="vi-VN",  # type: ignore[arg-type]
                                                           timezone_id="Europe/London")
        self.context.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        if not request.url.startswith(self.base) and not request.url.startswith(("data:", "about:")):
            self.foreign.add(request.url)

    def page(self) -> Page:
        return self.context.new_page()


def login(rig: WebRig, g: Guarded) -> Page:
    page = g.page()
    page.goto(f"{rig.base}/", wait_until="load")
    assert "/login" in page.url, page.url
    page.fill("#token", rig.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{rig.base}/")
    return page


def api(rig: WebRig, path: str, *, token: str | None = None, method: str = "GET", body: Any = None,
        headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    h = {"Accept": "application/json", **(headers or {})}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(f"{rig.base}{path}", data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text.decode(errors="replace")


def series_pixels(page: Page, selector: str, colour: str = "#1f77b4") -> int:
    """How many pixels of the chart's canvas carry its first series' stroke colour."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    count: int = page.eval_on_selector(selector, """(fig, [r, g, b]) => {
        const c = fig.querySelector('canvas');
        if (!c) return 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
            const near = Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40;
            if (d[i + 3] > 200 && near) n++;
        }
        return n;
    }""", [r, g, b])  # fmt: skip
    return count


def charts_drawn(page: Page, chart: str) -> None:
    """Wait for the device page's charts; say what the page said if they do not come."""
    try:
        page.wait_for_selector(f'[data-chart="{chart}"] canvas', timeout=15_000)
    except PlaywrightError as exc:
        status = page.locator("#charts-status").inner_text()
        raise AssertionError(f"no {chart} chart on {page.url}: {status!r}; "
                             f"charts: {page.locator('#charts').inner_text()[:500]!r}") from exc


def shoot(page: Page, name: str) -> None:
    out = os.environ.get("WARDWATCH_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(out) / f"web-{name}.png"))


def wait_wards_live(rig: WebRig) -> None:
    """Every ward's agent heard and every device reported: no tile is still unknown."""

    def ready() -> bool:
        status, doc = api(rig, "/api/v1/wards", token=rig.token)
        return status == 200 and all(w["state"] == "ok" for w in doc["wards"]) and len(doc["wards"]) == 13

    wait_for(ready, timeout=60, interval=0.5, what=lambda: f"13 wards ok: {api(rig, '/api/v1/wards', token=rig.token)}")


# The tests ----------------------------------------------------------------------------


def test_without_the_token_the_api_says_401_and_a_page_sends_to_login(rig: WebRig) -> None:
    status, body = api(rig, "/api/v1/wards")
    assert status == 401, body
    status, _ = api(rig, "/api/v1/wards", token="wrong-" + rig.token)
    assert status == 401
    status, _ = api(rig, "/api/v1/alerts/x/ack", method="POST", body={"by": "x"})
    assert status == 401
    req = urllib.request.Request(f"{rig.base}/ward/{BUSY}")
    opener = urllib.request.build_opener(_NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(req, timeout=5)
    assert err.value.code in (302, 303), err.value.code
    assert err.value.headers["Location"].startswith("/login?next=/ward/"), err.value.headers["Location"]
    # the static files need no token: the login page is styled
    status, _ = api(rig, "/healthz")
    assert status == 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_the_city_on_one_screen_live_in_both_languages(rig: WebRig, browser: Browser) -> None:
    wait_wards_live(rig)
    assert rig_dead_letters(rig) == [], "InfluxDB refused the agents' points beside the history's"
    g = Guarded(browser, rig.base)
    try:
        # 1. log in
        page = login(rig, g)
        assert page.locator("html").get_attribute("lang") == "vi"

        # 2. thirteen tiles, with their Vietnamese names, each state in words beside its colour
        page.wait_for_selector("#live.live-live", timeout=10_000)
        tiles = page.locator(".tile")
        assert tiles.count() == 13
        names = [n.strip() for n in page.locator(".tile .tile-name").all_inner_texts()]
        assert sorted(names) == sorted(WARD_NAMES.values())
        assert "Cửa Đại" in names and "Sơn Phong" in names
        page.wait_for_function("() => document.querySelectorAll('.tile.st-ok').length === 13", timeout=15_000)
        assert page.locator(f'.tile[data-ward="{BUSY}"] [data-f="state-text"]').inner_text() == "Bình thường"
        busy = page.locator(f'.tile[data-ward="{BUSY}"]')
        assert "3/3" in busy.locator('[data-f="count-camera"]').inner_text()
        assert "2/2" in busy.locator('[data-f="count-ap"]').inner_text()
        assert "1/1" in busy.locator('[data-f="count-switch"]').inner_text()
        wait_for(lambda: page.locator("#uptime-24h").inner_text() not in ("\u2013", ""), timeout=70, interval=0.5,
                 what="the city's 24 h uptime")

        # 3. a ward, then a device, and a chart drawn with data
        busy.click()
        page.wait_for_url(f"{rig.base}/ward/{BUSY}")
        assert page.locator(".ward-name").inner_text() == "Cẩm Phô"
        rows = page.locator("#devices tbody tr")
        assert rows.count() == 6  # a switch, two APs, three cameras
        cam_row = page.locator('#devices tbody tr[data-device="cam-01"]')
        assert cam_row.locator("td").nth(5).inner_text().startswith(f"sw-{BUSY}")  # fed by its switch port
        since = cam_row.locator('[data-f="since"]').inner_text()
        _, doc = api(rig, f"/api/v1/wards/{BUSY}", token=rig.token)
        iso = next(d for d in doc["devices"] if d["id"] == "cam-01")["since"]  # ...+07:00
        # in Hội An's time, though this browser is in London's
        assert since == datetime.fromisoformat(iso).strftime("%H:%M:%S %d/%m/%Y"), (since, iso)
        shoot(page, "ward")
        page.click('#devices a[href$="/ap-01"]')
        page.wait_for_url(f"{rig.base}/device/{BUSY}/ap-01")
        charts_drawn(page, "clients")
        assert series_pixels(page, '[data-chart="clients"]') > 200
        assert page.locator('[data-chart="util"] canvas').count() == 1
        page.goto(f"{rig.base}/device/{BUSY}/sw-{BUSY}", wait_until="load")
        charts_drawn(page, "port_rates")
        assert series_pixels(page, '[data-chart="port_rates"]') > 200
        page.goto(f"{rig.base}/device/{BUSY}/cam-02", wait_until="load")
        charts_drawn(page, "bitrate")
        assert series_pixels(page, '[data-chart="bitrate"]') > 200
        assert series_pixels(page, '[data-chart="rtt"]') > 200
        assert page.locator('[data-chart="clock_skew"] canvas').count() == 1
        # this morning's outage in the timeline, with its reason in words
        assert page.locator(".timeline .seg.st-down").count() >= 1
        assert "Không trả lời (ONVIF)" in page.locator(".timeline .changes").inner_text()
        page.click('.range-btn[data-range="7d"]')
        page.wait_for_function("() => !document.getElementById('charts-status') || "
                               "document.getElementById('charts-status').hidden", timeout=15_000)
        assert "range=7d" in page.url
        page.click('.range-btn[data-range="24h"]')
        page.wait_for_selector('[data-chart="bitrate"] canvas', timeout=15_000)
        page.wait_for_timeout(300)
        shoot(page, "device")

        # 4. a camera breaks: the tile and the device page change without a reload
        overview = page
        overview.goto(f"{rig.base}/", wait_until="load")
        overview.wait_for_selector("#live.live-live", timeout=10_000)
        device = g.page()
        device.goto(f"{rig.base}/device/{BROKEN}/cam-01", wait_until="load")
        device.wait_for_selector("#live.live-live", timeout=10_000)
        for p, sel in ((overview, f'.tile[data-ward="{BROKEN}"]'), (device, "#device-head")):
            p.evaluate("""(sel) => {
                window.__sameLoad = true;
                const node = document.querySelector(sel);
                new MutationObserver(() => {
                    if (!window.__changed && !node.classList.contains('st-ok')) window.__changed = Date.now();
                }).observe(node, {attributes: true, attributeFilter: ['class']});
            }""", sel)
        seen: dict[str, int] = {}

        def watch() -> None:  # when the collector's live state says so
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "ms" not in seen:
                status, doc = api(rig, f"/api/v1/wards/{BROKEN}", token=rig.token)
                if status == 200:
                    cam = next(d for d in doc["devices"] if d["id"] == "cam-01")
                    if cam["state"] != "ok":
                        seen["ms"] = now_ms()
                        seen["state"] = cam["state"]
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        rig.sites[BROKEN].break_camera("cam-01")
        watcher.join()
        assert "ms" in seen, "the collector never saw the camera break"
        for p in (overview, device):
            p.wait_for_function("() => window.__changed", timeout=(LIVE_WITHIN + 1) * 1000)
            changed: int = p.evaluate("() => window.__changed")
            assert p.evaluate("() => window.__sameLoad") is True  # no reload
            assert changed - seen["ms"] < LIVE_WITHIN * 1000, (changed - seen["ms"], p.url)
            print(f"{p.url}: shown {changed - seen['ms']} ms after the collector's state (polled every 50 ms)")
        assert "st-degraded" in (overview.locator(f'.tile[data-ward="{BROKEN}"]').get_attribute("class") or "")
        assert "1/2" in overview.locator(f'.tile[data-ward="{BROKEN}"] [data-f="count-camera"]').inner_text()
        head = device.locator("#device-head")
        assert head.locator('[data-f="state-text"]').inner_text() in ("Mất kết nối", "Suy giảm")
        assert head.locator('[data-f="reason"]').inner_text() != ""

        # 5. its alert fires; acknowledge it on the alerts page
        def firing() -> dict[str, Any] | None:
            for a in rig.active_alerts():
                lab = labels_of(a)
                if lab.get("ward") == BROKEN and lab.get("device") == "cam-01" and a.get("state") == "firing":
                    return a
            return None

        alert = wait_for(firing, timeout=FOR + 3 * INTERVAL + GROUP_WAIT + 10, interval=0.3, what="camera alert")
        fp = alert["fingerprint"]
        device.close()
        page = overview
        page.goto(f"{rig.base}/alerts", wait_until="load")
        row = page.locator(f'#active tr[data-fingerprint="{fp}"]')
        row.wait_for(timeout=10_000)
        assert "Minh An" in row.inner_text()
        row.locator(".btn-ack").click()
        assert "tên" in page.locator("#alerts-msg").inner_text()  # asks for a name first
        page.fill("#ack-name", "Nguyễn Văn Thành")
        row.locator(".btn-ack").click()
        page.locator(f'#active tr[data-fingerprint="{fp}"] .acked').wait_for(timeout=10_000)
        assert "Nguyễn Văn Thành" in page.locator(f'#active tr[data-fingerprint="{fp}"] [data-f="ack"]').inner_text()
        acked = next(a for a in rig.active_alerts() if a["fingerprint"] == fp)
        assert acked["acked_by"] == "Nguyễn Văn Thành"

        # 7. a state change with the session cookie but without the CSRF token: 403
        resp = page.request.post(f"{rig.base}/api/v1/alerts/{fp}/ack", data=json.dumps({"by": "x"}),
                                 headers={"Content-Type": "application/json"})
        assert resp.status == 403, resp.status
        resp = page.request.post(f"{rig.base}/api/v1/silences", headers={"Content-Type": "application/json",
                                 "X-CSRF-Token": "not-the-token"},
                                 data=json.dumps({"matchers": {"ward": BROKEN}, "duration": "1h", "created_by": "x"}))
        assert resp.status == 403, resp.status

        # 6. English, and it stays English on the next page
        page.click('.lang-btn[data-lang="en"]')
        page.wait_for_function("() => document.documentElement.lang === 'en'", timeout=10_000)
        assert page.locator("h1").first.inner_text() == "Alerts"
        page.goto(f"{rig.base}/", wait_until="load")
        assert page.locator('nav a[href="/"]').inner_text() == "City overview"
        assert page.locator(".tile .tile-name").count() == 13  # the names stay Vietnamese
        assert "Cửa Đại" in page.locator(".tile .tile-name").all_inner_texts()
        page.click('.lang-btn[data-lang="vi"]')
        page.wait_for_function("() => document.documentElement.lang === 'vi'", timeout=10_000)
        assert page.locator('nav a[href="/"]').inner_text() == "Toàn thành phố"
        page.wait_for_selector("#live.live-live", timeout=10_000)
        shoot(page, "overview")  # with Minh An's camera still broken

        assert not g.foreign, f"the dashboard fetched from elsewhere: {sorted(g.foreign)}"
    finally:
        g.context.close()
        rig.sites[BROKEN].fix_camera("cam-01")


def test_the_page_says_stale_while_the_stream_is_down_and_recovers(rig: WebRig, browser: Browser) -> None:
    """The collector restarts: the banner shows while it is away, and goes once the page
    has reconnected by itself (same page load)."""
    g = Guarded(browser, rig.base)
    try:
        page = login(rig, g)
        page.wait_for_selector("#live.live-live", timeout=10_000)
        page.evaluate("() => { window.__sameLoad = true; }")
        assert page.locator("#stale").is_hidden()
        assert rig.collector is not None
        rig.collector.terminate()
        page.wait_for_selector("#stale", state="visible", timeout=10_000)
        assert "Mất kết nối" in page.locator("#stale").inner_text()
        rig.collector.start()
        rig.wait_alerts_api()
        page.wait_for_selector("#stale", state="hidden", timeout=20_000)
        assert page.evaluate("() => window.__sameLoad") is True
        assert page.locator("#live-text").inner_text() == "Trực tiếp"
    finally:
        g.context.close()


def test_the_reports_page_links_each_report_in_three_formats(rig: WebRig, browser: Browser) -> None:
    g = Guarded(browser, rig.base)
    try:
        page = login(rig, g)
        page.goto(f"{rig.base}/reports?month=2026-11", wait_until="load")
        hrefs = page.eval_on_selector_all("#report-links a.fmt", "as => as.map(a => a.getAttribute('href'))")
        assert sorted(hrefs) == sorted(f"/reports/{k}.{f}?month=2026-11" for k in ("uptime", "coverage", "capacity")
                                       for f in ("html", "csv", "json"))  # fmt: skip
        resp = page.request.get(f"{rig.base}/reports/uptime.json?month=2026-11")
        assert resp.status == 200, resp.text()[:300]
    finally:
        g.context.close()
