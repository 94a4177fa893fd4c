"""The dashboard's JSON API, login and CSRF over a real HTTP server on loopback: the real
AlertService (its engine, state file and the dashboard's Fleet as its observer) fed wire
messages as MQTT would deliver them, and a real InfluxDB 1.6 holding two hours of the demo
fleet (simulators/demo_series.py) plus ``device_status`` for the series and the uptime."""

from __future__ import annotations

import asyncio
import hmac
import re
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from yarl import URL

from wardwatch import wire
from wardwatch.collector import http
from wardwatch.collector.alerts import api as alerts_api
from wardwatch.collector.alerts.service import AlertService
from wardwatch.collector.config import CollectorConfig, HttpSection
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.web import api as web_api
from wardwatch.collector.web import attach
from wardwatch.collector.web import auth as web_auth
from wardwatch.simulators.demo_series import fleet, hour_lines
from wardwatch.simulators.fleet import WARDS
from wardwatch.simulators.lab import InfluxService, free_port, start_influxdb

pytestmark = pytest.mark.services

TOKEN = "s3cret-token-for-the-web-tests"
DB = "webapi"
WARD = "minh-an"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _write(influx: InfluxService, body: bytes) -> None:
    req = urllib.request.Request(f"{influx.url}/write?db={DB}&precision=s", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 204


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxService]:
    with start_influxdb(tmp_path_factory.mktemp("webapi")) as svc:
        svc.create_database(DB)
        now_s = int(time.time())
        start = now_s // 3600 * 3600 - 3600
        wards = fleet()
        for hour in (start, start + 3600):
            _write(svc, hour_lines(wards, hour))
        lines = []
        for minute in range(0, (now_s - start) // 60):
            t = start + minute * 60
            up = 0 if 30 <= minute < 40 else 1  # ten minutes down: 24 h uptime below 100 %
            for w in wards:
                lines.append(f"device_status,ward={w.ward},device=sw-core,kind=switch up={up}i,rtt_ms=1.2,"
                             f"loss_pct=0,reason=\"ok\" {t}")
                lines.append(f"device_status,ward={w.ward},device=cam-01,kind=camera up=1i,rtt_ms=2.5,"
                             f"loss_pct=0,reason=\"ok\" {t}")
                reason = "snapshot_failed" if 50 <= minute < 55 else "ok"
                ok = 0 if reason != "ok" else 1
                lines.append(f"camera_health,ward={w.ward},device=cam-02,kind=camera ok={ok}i,online=1i,"
                             f"reason=\"{reason}\",clock_skew_s=0.4,bitrate_kbps=2048i {t}")
        _write(svc, "\n".join(lines).encode())
        yield svc


def _inventory(ward: str) -> bytes:
    w = next(x for x in fleet() if x.ward == ward)
    devices = [wire.InventoryDevice(id="sw-core", kind="switch", interval_s=60, host="10.1.0.1", vendor="cisco")]
    devices += [wire.InventoryDevice(id=ap, kind="ap", interval_s=60, host=f"10.1.1.{i + 1}",
                                     feed=wire.FeedRef(switch="sw-core", port=w.ports[i][0]))
                for i, ap in enumerate(w.aps)]
    devices += [wire.InventoryDevice(id=cam, kind="camera", interval_s=60, host=f"10.1.2.{i + 1}")
                for i, cam in enumerate(w.cameras)]
    return wire.inventory_payload(agent="ag-1", ward=ward, time_ms=int(time.time() * 1000), devices=devices)


def _batch(ward: str, seq: int, *, switch_up: int = 1) -> bytes:
    w = next(x for x in fleet() if x.ward == ward)
    t = int(time.time() * 1000)
    rs = [wire.Reading(device="sw-core", kind="switch", measurement="device_status", time_ms=t,
                       fields={"up": switch_up, "reason": "ok" if switch_up else "timeout", "rtt_ms": 1.0})]
    for ap in w.aps:
        rs.append(wire.Reading(device=ap, kind="ap", measurement="device_status", time_ms=t, fields={"up": 1}))
        rs.append(wire.Reading(device=ap, kind="ap", measurement="wifi_radio", time_ms=t, fields={"clients": 7},
                               tags={"radio": "5GHz"}))
    for cam in w.cameras:
        rs.append(wire.Reading(device=cam, kind="camera", measurement="device_status", time_ms=t, fields={"up": 1}))
        rs.append(wire.Reading(device=cam, kind="camera", measurement="camera_health", time_ms=t,
                               fields={"ok": 1, "online": 1, "reason": "ok"}))
    return wire.encode(wire.Batch(schema=1, agent="ag-1", ward=ward, seq=seq, readings=rs))


class Site:
    def __init__(self, service: AlertService, base: str, session: aiohttp.ClientSession) -> None:
        self.service, self.base, self.session = service, base, session

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.session.get(self.base + path, allow_redirects=False, **kw) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body, resp

    async def post(self, path: str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.session.post(self.base + path, allow_redirects=False, **kw) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body, resp


@pytest.fixture
async def site(influx: InfluxService, tmp_path: Path) -> AsyncIterator[Site]:
    port = free_port()
    cfg = CollectorConfig.model_validate({
        "wards": {w: n.removeprefix("Phường ").removeprefix("Xã ") for w, n, _ in WARDS},
        "influx": {"url": influx.url, "database": DB},
        "http": {"host": "127.0.0.1", "port": port, "token": TOKEN},
        "alerts": {"state": str(tmp_path / "alerts.db")},
    })
    async with InfluxV1Writer(url=influx.url, database=DB, timeout=10) as writer:

        async def write(lines: list[bytes]) -> bool:
            return True

        service = AlertService(cfg, client_id="web-test", write=write, stop=asyncio.Event())
        service.open()
        routes = [*alerts_api.routes(service), *attach(service, influx=writer)]
        runner = await http.start_http(cfg.http, health=lambda: {"status": "ok"}, routes=routes)
        now = int(time.time() * 1000)
        service.take(wire.inventory_topic(WARD, "ag-1"), _inventory(WARD))
        service.take(wire.status_topic(WARD, "ag-1"),
                     wire.status_payload("online", agent="ag-1", ward=WARD, time_ms=now))
        service.take(wire.readings_topic(WARD, "ag-1"), _batch(WARD, 1))
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        try:
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                yield Site(service, f"http://127.0.0.1:{port}", session)
        finally:
            await runner.cleanup()
            service.store.close()


async def _login(site: Site) -> str:
    status, _, resp = await site.post("/login", data={"token": TOKEN, "next": "/ward/minh-an"})
    assert status == 303 and resp.headers["Location"] == "/ward/minh-an"
    cookie = resp.headers["Set-Cookie"]
    assert "ww_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    # the CSRF token: what the pages put in <meta name="csrf-token">
    from wardwatch.collector.web.auth import Auth

    auth = Auth(site.service.cfg.http)
    value = cookie.split("ww_session=", 1)[1].split(";", 1)[0].strip('"')
    sid = auth.session(value)
    assert sid is not None
    return auth.csrf(sid)


async def test_without_the_token_the_api_is_401_and_pages_go_to_login(site: Site) -> None:
    for path in ("/api/v1/wards", f"/api/v1/wards/{WARD}", f"/api/v1/devices/{WARD}/sw-core",
                 f"/api/v1/devices/{WARD}/sw-core/series", "/api/v1/events", "/api/v1/alerts"):
        status, body, _ = await site.get(path)
        assert status == 401, path
        assert "error" in body
    status, _, _ = await site.get("/api/v1/wards", headers={"Authorization": "Bearer wrong-token-123456"})
    assert status == 401
    status, _, resp = await site.get("/reports/uptime.json?month=2026-11")  # a link on a page: log in first
    assert status == 303 and resp.headers["Location"].startswith("/login?next=/reports/uptime.json")
    status, _, resp = await site.get("/ward/minh-an?x=1")
    assert status == 303 and URL(resp.headers["Location"]).path == "/login"
    assert URL(resp.headers["Location"]).query["next"] == "/ward/minh-an?x=1"
    status, body, _ = await site.get("/healthz")
    assert status == 200 and body == {"status": "ok"}
    status, text, _ = await site.get("/login")
    assert status == 200 and 'name="token"' in text


async def test_security_headers_on_pages_and_api(site: Site) -> None:
    """CSP with no inline script and no framing on every page; no-store on the API and the
    pages; static files cacheable. The pages' HTML has no inline script or handler either,
    so the CSP costs them nothing."""
    for path in ("/", f"/ward/{WARD}", f"/device/{WARD}/sw-core", "/alerts", "/reports", "/login",
                 "/api/v1/wards", "/api/v1/alerts", "/nothing-here"):
        status, body, resp = await site.get(path, headers=BEARER)
        assert status in (200, 404), path
        csp = resp.headers.get("Content-Security-Policy", f"none on {path}")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
        assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "no-store", path
        if isinstance(body, str) and "<html" in body:
            scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", body)
            assert scripts == [], (path, scripts)
            assert not re.search(r"<[^>]+\son[a-z]+\s*=", body), path
    status, _, resp = await site.get("/static/app.js", headers=BEARER)
    assert status == 200 and resp.headers.get("Cache-Control") != "no-store"


async def test_every_endpoint_with_the_bearer_token(site: Site) -> None:
    status, doc, resp = await site.get("/api/v1/wards", headers=BEARER)
    assert status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert len(doc["wards"]) == 13
    names = {w["id"]: w["name"] for w in doc["wards"]}
    assert names["son-phong"] == "Sơn Phong" and names["cua-dai"] == "Cửa Đại"
    minh_an = next(w for w in doc["wards"] if w["id"] == WARD)
    w = next(x for x in fleet() if x.ward == WARD)
    assert minh_an["state"] == "ok"
    assert minh_an["counts"] == {"switch": {"up": 1, "total": 1}, "ap": {"up": len(w.aps), "total": len(w.aps)},
                                 "camera": {"up": len(w.cameras), "total": len(w.cameras)}}
    assert minh_an["wifi_clients"] == 7 * len(w.aps) == minh_an["wifi_peak_today"]
    assert next(x for x in doc["wards"] if x["id"] == "cam-pho")["state"] == "unknown"  # no agent
    assert set(doc["uptime"]) == {"24h", "30d"}
    assert datetime.fromisoformat(doc["generated"]).utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]

    status, ward, _ = await site.get(f"/api/v1/wards/{WARD}", headers=BEARER)
    assert status == 200 and ward["name"] == "Minh An" and ward["alerts"] == []
    assert [d["id"] for d in ward["devices"]][:2] == ["sw-core", "ap-01"]
    dev = ward["devices"][1]
    assert set(dev) >= {"id", "kind", "vendor", "state", "reason", "since", "since_ms", "feed", "agent"}
    assert dev["feed"].startswith("sw-core ") and dev["state"] == "ok"
    assert (await site.get("/api/v1/wards/nowhere", headers=BEARER))[0] == 404

    status, device, _ = await site.get(f"/api/v1/devices/{WARD}/sw-core", headers=BEARER)
    assert status == 200
    assert device["ward_name"] == "Minh An" and device["kind"] == "switch" and device["vendor"] == "cisco"
    assert device["host"] == "10.1.0.1" and device["since"].endswith("+07:00")
    assert (await site.get(f"/api/v1/devices/{WARD}/nope", headers=BEARER))[0] == 404


async def test_series_from_influxdb(site: Site) -> None:
    status, s, _ = await site.get(f"/api/v1/devices/{WARD}/sw-core/series?range=24h", headers=BEARER)
    assert status == 200, s
    assert s["range"] == "24h" and s["step_s"] == 180 and s["kind"] == "switch"
    assert len(s["ports"]) > 4
    assert {k.split(":")[0] for k in s["series"]} == {"rtt_ms", "loss_pct", "in_bps", "out_bps"}
    assert sum(k.startswith("in_bps:") for k in s["series"]) == 4
    for series in s["series"].values():
        assert len(series["points"]) <= 500
    rtt = [v for _, v in s["series"]["rtt_ms"]["points"] if v is not None]
    assert rtt and rtt[-1] == pytest.approx(1.2)
    busiest = s["ports"][0]
    assert [v for _, v in s["series"][f"in_bps:{busiest}"]["points"] if v]
    status, one, _ = await site.get(f"/api/v1/devices/{WARD}/sw-core/series?range=7d&port={s['ports'][-1]}",
                                    headers=BEARER)
    assert status == 200 and one["step_s"] == 1800
    assert [k for k in one["series"] if k.startswith("in_bps")] == [f"in_bps:{s['ports'][-1]}"]

    status, ap, _ = await site.get(f"/api/v1/devices/{WARD}/ap-01/series?range=30d", headers=BEARER)
    assert status == 200 and ap["step_s"] == 7200
    assert {"clients", "clients:2.4GHz", "clients:5GHz", "util_pct:5GHz"} <= set(ap["series"])
    assert any(v for _, v in ap["series"]["clients"]["points"])
    assert ap["series"]["util_pct:5GHz"]["unit"] == "%"

    status, cam, _ = await site.get(f"/api/v1/devices/{WARD}/cam-02/series", headers=BEARER)
    assert status == 200
    assert {"clock_skew_s", "bitrate_kbps"} <= set(cam["series"])
    states = [(st, why) for _, st, why in cam["timeline"]]
    assert ("degraded", "snapshot_failed") in states and ("ok", "") in states
    assert (await site.get(f"/api/v1/devices/{WARD}/cam-02/series?range=1y", headers=BEARER))[0] == 400


async def test_city_uptime_from_influxdb(site: Site) -> None:
    up = web_api.CityUptime(InfluxV1Writer(url=site.service.cfg.influx.url, database=DB), wards=None)
    async with up.influx:  # type: ignore[attr-defined]
        await up.refresh(int(time.time() * 1000))
    pct = up.get()["24h"]
    assert pct is not None and 80 < pct < 100  # ten minutes of the switches down, the cameras up
    assert up.get()["30d"] == pct


async def test_login_cookie_and_csrf_on_ack_and_silence(site: Site) -> None:
    # an alert to act on: the switch stops answering (device_down, pending for its 1 min)
    site.service.take(wire.readings_topic(WARD, "ag-1"), _batch(WARD, 2, switch_up=0))
    site.service.tick()
    fp = next(a.fingerprint for a in site.service.alerts() if a.labels.get("device") == "sw-core")
    status, _, _ = await site.post("/login", data={"token": "wrong-token-abcdefgh", "next": "/"})
    assert status == 401
    csrf = await _login(site)
    status, ward, _ = await site.get(f"/api/v1/wards/{WARD}")  # the cookie alone reads
    assert status == 200 and ward["state"] == "down" and ward["alerts"][0]["fingerprint"] == fp
    body = {"by": "Lan", "comment": "đang xử lý"}
    status, err, _ = await site.post(f"/api/v1/alerts/{fp}/ack", json=body)
    assert status == 403 and "CSRF" in err["error"]
    status, _, _ = await site.post(f"/api/v1/alerts/{fp}/ack", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert status == 403
    status, acked, _ = await site.post(f"/api/v1/alerts/{fp}/ack", json=body, headers={"X-CSRF-Token": csrf})
    assert status == 200 and acked["acked_by"] == "Lan"
    silence = {"matchers": {"ward": WARD, "device": "cam-*"}, "duration": "2h", "created_by": "Lan"}
    status, _, _ = await site.post("/api/v1/silences", json=silence)
    assert status == 403
    status, made, _ = await site.post("/api/v1/silences", json=silence, headers={"X-CSRF-Token": csrf})
    assert status == 201 and made["state"] == "active"
    # bearer requests need no CSRF token: no ambient authority
    async with aiohttp.ClientSession() as bare:
        async with bare.delete(f"{site.base}/api/v1/silences/{made['id']}", headers=BEARER) as resp:
            assert resp.status == 200
    # logout needs the CSRF token too, and ends the session
    assert (await site.post("/logout"))[0] == 403
    status, _, resp = await site.post("/logout", headers={"X-CSRF-Token": csrf})
    assert status == 303 and resp.headers["Location"] == "/login"
    assert (await site.get("/api/v1/wards"))[0] == 401


async def test_failed_logins_are_limited_and_compared_in_constant_time(site: Site,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for _ in range(9):
        status, _, _ = await site.post("/login", data={"token": "not-the-token-at-all", "next": "/"})
        assert status == 401
    assert (b"not-the-token-at-all", TOKEN.encode()) in calls
    # The tenth try within the minute: the right token, but too late.
    status, _, resp = await site.post("/login", data={"token": TOKEN, "next": "/"})
    assert status == 429 and int(resp.headers["Retry-After"]) > 0
    assert "ww_session" not in resp.headers.get("Set-Cookie", "")
    calls.clear()
    assert (await site.get("/api/v1/wards", headers=BEARER))[0] == 200  # the bearer is not limited
    assert (f"Bearer {TOKEN}".encode(), f"Bearer {TOKEN}".encode()) in calls


def test_the_login_limit_lifts_when_the_window_passes() -> None:
    a = web_auth.Auth(HttpSection(token=SecretStr(TOKEN)))
    for i in range(web_auth.FAILS_PER_WINDOW):
        assert a.limited("10.0.0.9", now=100.0 + i) == 0
        a.failed("10.0.0.9", now=100.0 + i)
    assert a.limited("10.0.0.9", now=110.0) == pytest.approx(web_auth.FAIL_WINDOW_S - 10)
    assert a.limited("10.0.0.8", now=110.0) == 0  # per client address
    assert a.limited("10.0.0.9", now=100.0 + web_auth.FAIL_WINDOW_S + 0.5) == 0  # the oldest failure left


async def test_reports_for_a_month(site: Site) -> None:
    month = datetime.now(site.service.tz).strftime("%Y-%m")
    status, text, resp = await site.get(f"/reports/uptime.csv?month={month}&ward={WARD}", headers=BEARER)
    assert status == 200 and resp.content_type == "text/csv" and "sw-core" in text
    assert f"uptime-{month}-{WARD}.csv" in resp.headers["Content-Disposition"]
    status, doc, _ = await site.get(f"/reports/coverage.json?month={month}", headers=BEARER)
    assert status == 200 and "period" in doc
    status, html, resp = await site.get(f"/reports/capacity.html?month={month}", headers=BEARER)
    assert status == 200 and resp.content_type == "text/html" and "<html" in html
    assert (await site.get("/reports/uptime.csv?month=2026-13", headers=BEARER))[0] == 400
    assert (await site.get("/reports/uptime.csv?month=2999-01", headers=BEARER))[0] == 400
    assert (await site.get("/reports/nothing.csv", headers=BEARER))[0] == 404
