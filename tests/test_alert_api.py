"""The alerts' JSON API and the signed acknowledgement page, over a real aiohttp server on a
loopback port, with a small fake of the alert service (pure logic) over a real state file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from wardwatch.collector.alerts import links
from wardwatch.collector.alerts.api import routes
from wardwatch.collector.alerts.config import MaintenanceWindow
from wardwatch.collector.alerts.model import Alert, Attempt, Behind, fingerprint
from wardwatch.collector.alerts.store import AlertStore

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = int(datetime(2026, 5, 3, 3, 0, tzinfo=TZ).timestamp() * 1000)  # a Sunday, 03:00 in Hội An
WARDS = {"cam-pho": "Cẩm Phô", "minh-an": "Minh An"}


class FakeBackend:
    """The alert service as the API sees it: its alerts in memory, acknowledgements saved."""

    def __init__(self, store: AlertStore, alerts: list[Alert], windows: list[MaintenanceWindow]) -> None:
        self.store = store
        self._alerts = {a.fingerprint: a for a in alerts}
        self._windows = windows
        self.now = NOW

    def alerts(self) -> list[Alert]:
        return list(self._alerts.values())

    def acknowledge(self, fingerprint: str, *, by: str, comment: str) -> Alert | None:
        alert = self._alerts.get(fingerprint)
        if alert is None:
            return None
        alert.acked_by, alert.acked_ms, alert.ack_comment = by, self.now, comment
        self.store.save_alert(alert)
        self.store.add_history(alert, "acknowledged", self.now)
        return alert

    def maintenance(self) -> list[MaintenanceWindow]:
        return self._windows

    def timezone(self) -> ZoneInfo:
        return TZ

    def ward_name(self, ward: str) -> str:
        return WARDS.get(ward, ward)

    def secret(self) -> bytes:
        return self.store.secret()

    def now_ms(self) -> int:
        return self.now


def make_alert(device: str, *, state: str = "firing", ward: str = "cam-pho", **kw: Any) -> Alert:
    labels = {"alertname": "device_down", "ward": ward, "device": device, "kind": "switch", "severity": "critical"}
    return Alert(
        fingerprint=fingerprint(labels),
        rule="device_down",
        labels=labels,
        state=state,  # type: ignore[arg-type]
        started_ms=NOW - 600_000,
        updated_ms=NOW - 60_000,
        fired_ms=NOW - 540_000 if state != "pending" else None,
        **kw,
    )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], FakeBackend]]:
    store = AlertStore(tmp_path / "alerts.db")
    store.open()
    root = make_alert(
        "sw-core",
        summary={"vi": "Bộ chuyển mạch <sw-core> ở Cẩm Phô không phản hồi", "en": "Switch <sw-core> is down"},
        reason="no answer & no ping",
        behind=[Behind("cam-01", "camera"), Behind("ap-02", "ap")],
    )
    child = make_alert("cam-01", suppressed_by="device:sw-core")
    pending = make_alert("sw-2", state="pending", ward="minh-an", silenced_by="maintenance")
    gone = make_alert("sw-3", state="resolved", ended_ms=NOW - 1000)
    window = MaintenanceWindow(wards=["minh-an"], rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", duration="2h")
    later = MaintenanceWindow(wards=["cam-pho"], devices="cam-*", rrule="FREQ=DAILY;BYHOUR=22", duration="1h")
    backend = FakeBackend(store, [root, child, pending, gone], [window, later])
    app = web.Application()
    app.add_routes(routes(backend))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client, backend
    await client.close()
    store.close()


Setup = tuple[TestClient[web.Request, web.Application], FakeBackend]


async def test_active_alerts_are_listed_with_names_times_and_muting(setup: Setup) -> None:
    client, _ = setup
    resp = await client.get("/api/v1/alerts")
    assert resp.status == 200
    alerts = (await resp.json())["alerts"]
    assert [(a["device"], a["state"]) for a in alerts] == [
        ("sw-core", "firing"),
        ("cam-01", "firing"),
        ("sw-2", "pending"),
    ]
    root = alerts[0]
    assert root["ward_name"] == "Cẩm Phô"
    assert root["started_at"] == "2026-05-02T19:50:00.000Z"
    assert root["started_local"] == "2026-05-03T02:50:00+07:00"
    assert root["behind"] == [{"device": "cam-01", "kind": "camera"}, {"device": "ap-02", "kind": "ap"}]
    assert root["suppressed_count"] == 2 and root["muted"] is False and root["acked_by"] is None
    assert alerts[1]["muted_reasons"] == [{"reason": "suppressed", "by": "device:sw-core"}]
    assert alerts[2]["muted_reasons"] == [{"reason": "silenced", "by": "maintenance"}]
    assert alerts[2]["ward_name"] == "Minh An" and alerts[2]["fired_at"] is None
    only = (await (await client.get("/api/v1/alerts", params={"ward": "minh-an"})).json())["alerts"]
    assert [a["device"] for a in only] == ["sw-2"]


async def test_acknowledge_through_the_api(setup: Setup) -> None:
    client, backend = setup
    fp = next(a.fingerprint for a in backend.alerts() if a.device == "sw-core")
    resp = await client.post(f"/api/v1/alerts/{fp}/ack", json={"by": "Nguyễn Văn A", "comment": "đang đến"})
    assert resp.status == 200
    body = await resp.json()
    assert body["acked_by"] == "Nguyễn Văn A" and body["ack_comment"] == "đang đến"
    assert body["acked_local"] == "2026-05-03T03:00:00+07:00"
    listed = (await (await client.get("/api/v1/alerts")).json())["alerts"]
    assert next(a for a in listed if a["fingerprint"] == fp)["acked"] is True
    history = (await (await client.get("/api/v1/alerts/history")).json())["history"]
    assert history[0]["state"] == "acknowledged" and history[0]["ward_name"] == "Cẩm Phô"
    assert history[0]["time_local"] == "2026-05-03T03:00:00+07:00"

    resp = await client.post("/api/v1/alerts/0000000000000000/ack", json={"by": "A"})
    assert resp.status == 404 and "0000000000000000" in (await resp.json())["error"]
    for bad, says in [({}, "by: required"), ({"by": "  "}, "by: say who"), ({"by": "A", "x": 1}, "x: unknown key")]:
        resp = await client.post(f"/api/v1/alerts/{fp}/ack", json=bad)
        assert resp.status == 400 and says in (await resp.json())["error"]
    resp = await client.post(f"/api/v1/alerts/{fp}/ack", data=b"not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"] == "the body must be JSON"


async def test_history_filters_and_bad_times(setup: Setup) -> None:
    client, backend = setup
    alerts = {a.device: a for a in backend.alerts()}
    backend.store.add_history(alerts["sw-core"], "firing", NOW - 540_000)
    backend.store.add_history(alerts["sw-2"], "pending", NOW - 300_000)
    backend.store.add_history(alerts["sw-3"], "resolved", NOW - 1000)
    got = (await (await client.get("/api/v1/alerts/history", params={"ward": "cam-pho"})).json())["history"]
    assert [(h["device"], h["state"]) for h in got] == [("sw-3", "resolved"), ("sw-core", "firing")]
    since = "2026-05-03T02:54:00"  # naive: local time in Hội An
    got = (await (await client.get("/api/v1/alerts/history", params={"since": since})).json())["history"]
    assert [h["device"] for h in got] == ["sw-3", "sw-2"]
    until = "2026-05-02T19:56:00Z"
    got = await (await client.get("/api/v1/alerts/history", params={"until": until, "limit": "1"})).json()
    assert [h["device"] for h in got["history"]] == ["sw-2"]
    for params, says in [
        ({"since": "yesterday"}, "since: 'yesterday' is not an ISO 8601 time"),
        ({"limit": "0"}, "limit: must be between 1 and 5000"),
        ({"limit": "x"}, "not a whole"),
    ]:
        resp = await client.get("/api/v1/alerts/history", params=params)
        assert resp.status == 400 and says in (await resp.json())["error"]


async def test_silences_are_created_listed_and_expired(setup: Setup) -> None:
    client, backend = setup
    resp = await client.post(
        "/api/v1/silences",
        json={
            "matchers": {"ward": "cam-pho", "device": "cam-*"},
            "duration": "2h",
            "created_by": "Lê Thị B",
            "comment": "thay cáp / recabling",
        },
    )
    assert resp.status == 201
    made = await resp.json()
    assert made["state"] == "active" and made["matchers"] == {"ward": "cam-pho", "device": "cam-*"}
    assert made["starts_local"] == "2026-05-03T03:00:00+07:00" and made["ends_local"] == "2026-05-03T05:00:00+07:00"
    assert resp.headers["Location"] == f"/api/v1/silences/{made['id']}"
    later = await client.post(
        "/api/v1/silences",
        json={
            "matchers": {"alertname": "poe_lost"},
            "starts_at": "2026-05-04T01:00:00+07:00",
            "ends_at": "2026-05-04T02:00:00",
            "created_by": "ops",
        },
    )
    assert later.status == 201 and (await later.json())["state"] == "pending"
    listed = (await (await client.get("/api/v1/silences")).json())["silences"]
    assert {s["id"] for s in listed} == {made["id"], (await later.json())["id"]}
    assert [s.id for s in backend.store.silences() if s.active(NOW)] == [made["id"]]

    backend.now += 60_000
    resp = await client.delete(f"/api/v1/silences/{made['id']}")
    assert resp.status == 200 and (await resp.json())["state"] == "expired"
    assert not any(s.active(backend.now) for s in backend.store.silences())
    again = await client.delete(f"/api/v1/silences/{made['id']}")
    assert again.status == 200 and (await again.json())["ends_local"] == "2026-05-03T03:01:00+07:00"
    resp = await client.delete("/api/v1/silences/no-such-id")
    assert resp.status == 404 and "no-such-id" in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"matchers": {}, "duration": "1h", "created_by": "a"}, "matchers: "),
        ({"matchers": {"colour": "red"}, "duration": "1h", "created_by": "a"}, "unknown label 'colour'"),
        ({"matchers": {"ward": "*", "device": "**"}, "duration": "1h", "created_by": "a"}, "must narrow"),
        ({"matchers": {"ward": "cam-pho"}, "duration": "91d", "created_by": "a"}, "duration: "),
        ({"matchers": {"ward": "cam-pho"}, "duration": "soon", "created_by": "a"}, "is not a duration"),
        ({"matchers": {"ward": "cam-pho"}, "created_by": "a"}, "give either duration or ends_at"),
        (
            {"matchers": {"ward": "cam-pho"}, "duration": "1h", "ends_at": "2026-05-04T00:00:00", "created_by": "a"},
            "give either duration or ends_at",
        ),
        ({"matchers": {"ward": "cam-pho"}, "ends_at": "2026-05-03T02:00:00", "created_by": "a"}, "already be over"),
        ({"matchers": {"ward": "cam-pho"}, "ends_at": "2026-09-01T00:00:00", "created_by": "a"}, "at most 90 days"),
        ({"matchers": {"ward": "cam-pho"}, "duration": "1h"}, "created_by: required"),
        ({"matchers": {"ward": "cam-pho"}, "duration": "1h", "created_by": "a", "id": "mine"}, "id: unknown key"),
    ],
)
async def test_a_bad_silence_is_refused_with_a_clear_message(setup: Setup, body: dict[str, Any], says: str) -> None:
    client, backend = setup
    resp = await client.post("/api/v1/silences", json=body)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert says in error, error
    assert backend.store.silences() == []


async def test_the_ack_link_shows_on_get_and_acknowledges_on_post(setup: Setup) -> None:
    client, backend = setup
    root = next(a for a in backend.alerts() if a.device == "sw-core")
    token = links.sign(backend.secret(), root.fingerprint, expires_ms=NOW + 3_600_000)
    for _ in range(3):  # a chat app's preview, then the technician, then again
        page = await client.get(f"/ack/{token}")
        assert page.status == 200 and page.content_type == "text/html"
        text = await page.text()
        assert root.acked_by is None and backend.store.load_alerts() == []  # GET changed nothing
    assert "Cẩm Phô" in text and "Xác nhận" in text and "Acknowledge" in text
    assert "Bộ chuyển mạch &lt;sw-core&gt; ở Cẩm Phô không phản hồi" in text and "<sw-core>" not in text
    assert "no answer &amp; no ping" in text and 'name="by"' in text
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"

    empty = await client.post(f"/ack/{token}", data={"by": "  "})
    assert empty.status == 400 and root.acked_by is None
    done = await client.post(f"/ack/{token}", data={"by": "Trần <Văn> C", "comment": "đã xử lý"})
    assert done.status == 200
    text = await done.text()
    assert "Đã xác nhận" in text and "Trần &lt;Văn&gt; C" in text
    assert root.acked_by == "Trần <Văn> C" and root.ack_comment == "đã xử lý"
    assert [a.acked_by for a in backend.store.load_alerts()] == ["Trần <Văn> C"]
    shown = await (await client.get(f"/ack/{token}")).text()
    assert "Trần &lt;Văn&gt; C" in shown and 'name="by"' not in shown  # acknowledged: no form again


async def test_a_forged_or_expired_ack_link_is_refused(setup: Setup) -> None:
    client, backend = setup
    root = next(a for a in backend.alerts() if a.device == "sw-core")
    good = links.sign(backend.secret(), root.fingerprint, expires_ms=NOW + 1000)
    forged = links.sign(b"not the key" * 3, root.fingerprint, expires_ms=NOW + 3_600_000)
    for token in (forged, good[:-3] + "AAA", "garbage", good.replace(root.fingerprint, "0" * 16)):
        for method in ("GET", "POST"):
            resp = await client.request(method, f"/ack/{token}", data={"by": "x"} if method == "POST" else None)
            assert resp.status == 403, (method, token)
            assert resp.content_type == "text/plain" and "This link is invalid or has expired" in await resp.text()
    backend.now = NOW + 1000
    resp = await client.post(f"/ack/{good}", data={"by": "late"})
    assert resp.status == 403 and root.acked_by is None
    gone = next(a for a in backend.alerts() if a.device == "sw-3")
    backend.now = NOW
    unknown = links.sign(backend.secret(), "feedfeedfeedfeed", expires_ms=NOW + 1000)
    assert (await client.get(f"/ack/{unknown}")).status == 404
    assert gone.state == "resolved"


async def test_maintenance_lists_windows_upcoming_and_the_one_open_now(setup: Setup) -> None:
    client, _ = setup
    resp = await client.get("/api/v1/maintenance")
    assert resp.status == 200
    body = await resp.json()
    assert body["timezone"] == "Asia/Ho_Chi_Minh" and body["now"] == "2026-05-03T03:00:00+07:00"
    assert body["active"] == [0]
    sunday, daily = body["windows"]
    assert sunday["active"] is True and sunday["active_until"] == "2026-05-03T04:00:00+07:00"
    assert sunday["ward_names"] == ["Minh An"] and daily["active"] is False and daily["devices"] == "cam-*"
    first = body["upcoming"][0]
    assert first["index"] == 0 and first["active"] is True and first["start"] == "2026-05-03T02:00:00+07:00"
    assert sum(1 for o in body["upcoming"] if o["index"] == 1) == 7  # 22:00 each of the next 7 days
    assert body["upcoming"][1] == {
        "index": 1,
        "start": "2026-05-03T22:00:00+07:00",
        "end": "2026-05-03T23:00:00+07:00",
        "active": False,
        "wards": ["cam-pho"],
        "devices": "cam-*",
        "rules": [],
    }


async def test_the_delivery_log_newest_first_by_channel(setup: Setup) -> None:
    client, backend = setup
    for i, (channel, ok) in enumerate([("ops", False), ("ops", True), ("mail", True)]):
        backend.store.log_attempt(
            Attempt(
                channel=channel,
                kind="firing",
                group_key="0:cam-pho",
                fingerprints=["f"],
                attempt=1 + (i == 1),
                ok=ok,
                time_ms=NOW + i * 1000,
                error="" if ok else "HTTP 500",
                status=200 if ok else 500,
            )
        )
    got = (await (await client.get("/api/v1/alerts/deliveries")).json())["deliveries"]
    assert [(d["channel"], d["ok"]) for d in got] == [("mail", True), ("ops", True), ("ops", False)]
    assert got[2]["error"] == "HTTP 500" and got[2]["status"] == 500 and got[2]["time_local"].endswith("+07:00")
    ops = await (await client.get("/api/v1/alerts/deliveries", params={"channel": "ops", "limit": "1"})).json()
    assert [(d["channel"], d["attempt"]) for d in ops["deliveries"]] == [("ops", 2)]
    assert (await client.get("/api/v1/alerts/deliveries", params={"limit": "99999"})).status == 400
