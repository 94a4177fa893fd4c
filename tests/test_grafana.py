"""The Grafana dashboards (dashboards/*.json): each is importable as it is, and every one of
their queries (panels and template variables, with Grafana's macros and the variables
filled in) runs against a real InfluxDB 1.6 holding demo-fleet data and returns rows.

The data: three hours of the demo fleet from simulators/demo_series.py (``if_traffic``,
``poe``, ``wifi_radio``, ``camera_health``, as bench/report_capacity.py loads it), plus the
series it leaves out, written here with the tags and fields their writers use:
``device_status`` (agent/snmp/device.py, agent/core/icmp.py, agent/camera/poll.py),
``camera_health``'s ``reason``, ``wifi_ssid`` and ``lldp_link`` (agent/snmp/profiles),
``agent`` (agent/core/app.py), ``collector`` (collector/app.py self_metrics_line),
``agent_status`` (collector/presence.py), ``wardwatch_batch`` (collector/seqlog.py) and
``alert`` (collector/alerts/service.py). A camera and a switch are broken in the last half
hour, and an AP is over capacity in the last hour, so that the "not OK", "down" and "hours
over" panels have rows too.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.reports import capacity
from wardwatch.collector.reports.model import Period
from wardwatch.simulators.demo_series import Ward, fleet, hour_lines
from wardwatch.simulators.lab import InfluxService, ServiceError, start_influxdb

pytestmark = pytest.mark.services

DASHBOARDS = Path(__file__).parent.parent / "dashboards"
FILES = sorted(DASHBOARDS.glob("*.json"))
DB = "grafana"
HOURS = 3
# What Grafana puts in place of its macros for "the last 24 hours".
MACROS = {
    "$__timeFilter": "time > now() - 24h",
    "$timeFilter": "time > now() - 24h",
    "$__interval_ms": "60000",
    "$__interval": "1m",
    "$interval": "1m",
    "$__range_s": "86400",
    "$__range": "24h",
}
# The demo's broken devices, the last half hour.
BROKEN_CAMERA = ("cam-pho", "cam-02")
DOWN_SWITCH = "tan-hiep"
CROWDED_AP = ("minh-an", "ap-02")  # the last hour over capacity
SSIDS = ("HoiAn-Free-WiFi", "HoiAn-Staff")


# ---- data --------------------------------------------------------------------------------


def _vendor(kind: str, i: int) -> str:
    return {"switch": ("cisco", "hpe"), "ap": ("ubiquiti", "aruba"), "camera": ("hikvision", "dahua")}[kind][i % 2]


def extra_lines(wards: list[Ward], start_s: int, end_s: int) -> list[str]:
    """The series simulators/demo_series.py leaves out, one point a minute (the collector's
    and the agents' self-metrics, the ledger, agent presence and alerts as they come)."""
    out: list[str] = []
    add = out.append
    broken_from = end_s - 1800
    for w_i, w in enumerate(wards):
        agent = f"agent-{w.ward}"
        devices = [("sw-core", "switch")] + [(a, "ap") for a in w.aps] + [(c, "camera") for c in w.cameras]
        add(f"agent_status,ward={w.ward},agent={agent} online=1i,state=\"online\",how=\"status\" {start_s}")
        for m, t in enumerate(range(start_s, end_s, 60)):
            for d_i, (dev, kind) in enumerate(devices):
                tags = f"device_status,ward={w.ward},device={dev},kind={kind},vendor={_vendor(kind, w_i + d_i)}"
                down = dev == "sw-core" and w.ward == DOWN_SWITCH and t >= broken_from
                if down:
                    add(f'{tags} up=0i,poll_ms=2000.0,reason="timeout",icmp_up=0i,loss_pct=100.0 {t}')
                else:
                    rtt = 0.8 + d_i * 0.3 + (m % 7) / 10
                    add(f'{tags} up=1i,uptime_s={86400 + t - start_s}.0,poll_ms={40 + d_i}.5,reason="ok",'
                        f"icmp_up=1i,rtt_ms={rtt:.2f},loss_pct={20.0 if m % 30 == 0 else 0.0} {t}")
            for cam in w.cameras:
                # The generator's series (no vendor tag): the same points get these fields too.
                tags = f"camera_health,ward={w.ward},device={cam},kind=camera"
                if (w.ward, cam) == BROKEN_CAMERA and t >= broken_from:
                    # Written after the generator's OK point of the same time: these fields win.
                    add(f'{tags} ok=0i,online=0i,reason="offline",rtsp_ok=0i,snapshot_ok=0i {t}')
                else:
                    add(f'{tags} reason="ok",feed_oper_up=1i,feed_poe_delivering=1i {t}')
            if w.ward == CROWDED_AP[0] and t >= end_s - 3600:  # an event in the square: over both thresholds
                add(f"wifi_radio,ward={w.ward},device={CROWDED_AP[1]},kind=ap,radio=5GHz clients={44 + m % 5}i,"
                    f"util_pct={88 + m % 5}.0 {t}")
            for a_i, ap in enumerate(w.aps):
                for s_i, ssid in enumerate(SSIDS):
                    add(f'wifi_ssid,ward={w.ward},device={ap},kind=ap,ssid={ssid} '
                        f"clients={(12 + a_i * 3 + m % 5) // (1 + 3 * s_i)}i {t}")
            if m % 5 == 0:  # LLDP tables are polled less often
                add(f'lldp_link,ward={w.ward},device=sw-core,kind=switch,if_name={w.uplink} '
                    f'remote_sysname="dist-{w_i % 3}",remote_port="Te1/0/{w_i + 1}",'
                    f'remote_chassis="00:1b:54:00:00:{w_i:02x}",neighbors=1i {t}')
            depth = 40 if w.ward == DOWN_SWITCH and t >= broken_from else m % 3
            add(f"agent,ward={w.ward},device={agent},kind=agent outbox_depth={depth}i,outbox_oldest_s={depth * 2.5},"
                f"outbox_mb=0.{depth:03d},dropped=0i,write_failed=0i,polls_ok={m * len(devices)}i,"
                f"polls_failed={m // 30}i,poll_errors=0i,bad_values=0i,overruns=0i,published={m}i,refused=0i,"
                f"stored={m}i,resent=0i,watermark={m}i,events_sent=0i,events_dropped=0i,mqtt_connected=1i,"
                f"rss_mb={38.5 + w_i / 10:.1f} {t}")
            if not (w_i == 0 and m == 17):  # one batch missing from the ledger
                add(f'wardwatch_batch,agent={agent},ward={w.ward} seq={m + 1}i,readings={len(devices) * 9}i,'
                    f'collector="wardwatch-collector-{m % 2}",pending_from={m + 1}i,dropped=0i {t}')
        if w.ward == DOWN_SWITCH:
            add(f'agent_status,ward={w.ward},agent={agent} online=0i,state="stale",how="ledger" {broken_from + 90}')
    for c in range(2):
        for m, t in enumerate(range(start_s, end_s, 10 * 6)):
            add(f"collector,collector=wardwatch-collector-{c} messages={m * 7}i,statuses=13i,"
                f"points_written={m * 550}i,invalid={m // 40}i,rejected=0i,write_errors=0i,missing={int(m > 17)}i,"
                f"duplicates=0i,reordered=0i,dropped=0i,queue_depth={m % 4}i,spooled=0i,spool_points=0i,"
                f"stored_sent={m * 7}i {t}")
    alerts = [  # (time, tags, state, suppressed_count, summary, extra fields)
        (broken_from + 60, f"alertname=camera_not_ok,severity=warning,ward={BROKEN_CAMERA[0]},"
         f"device={BROKEN_CAMERA[1]},kind=camera", "firing", 0, "Camera cam-02 not OK: offline", ""),
        (broken_from + 60, f"alertname=device_down,severity=critical,ward={DOWN_SWITCH},device=sw-core,kind=switch",
         "firing", 3, "sw-core down (timeout)", ""),
        (broken_from + 61, f"alertname=device_down,severity=critical,ward={DOWN_SWITCH},device=cam-01,kind=camera",
         "suppressed", 0, "cam-01 down", ',suppressed_by="device_down/tan-hiep/sw-core"'),
        (start_s + 600, "alertname=clock_skew,severity=warning,ward=minh-an,device=cam-03,kind=camera",
         "firing", 0, "cam-03 clock 12 s ahead", ""),
        (start_s + 1800, "alertname=clock_skew,severity=warning,ward=minh-an,device=cam-03,kind=camera",
         "resolved", 0, "cam-03 clock 12 s ahead", ""),
        (start_s + 900, "alertname=ap_clients_high,severity=info,ward=cam-pho,device=ap-01,kind=ap",
         "silenced", 0, "ap-01: 41 clients", ',silenced_by="planned event"'),
    ]
    for t, tags, state, count, summary, extra in alerts:
        add(f'alert,{tags} state="{state}",suppressed_count={count}i,summary="{summary}",'
            f'fingerprint="{zlib.crc32(tags.encode()):08x}"{extra} {t}')
    return out


def write(influx: InfluxService, body: bytes) -> None:
    req = urllib.request.Request(f"{influx.url}/write?db={DB}&precision=s", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=120) as resp:
        assert resp.status == 204


@dataclass(frozen=True)
class Span:
    start_s: int
    end_s: int


SPAN: list[Span] = []  # the data's [start, end), set by the fixture


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxService]:
    """One InfluxDB for the module, with three hours of the demo fleet up to now."""
    with start_influxdb(tmp_path_factory.mktemp("grafana")) as svc:
        svc.create_database(DB)
        wards = fleet()
        end_s = int(time.time()) // 3600 * 3600  # whole hours: report capacity's 5-minute steps fit
        start_s = end_s - HOURS * 3600
        SPAN[:] = [Span(start_s, end_s)]
        for h in range(HOURS):
            write(svc, hour_lines(wards, start_s + h * 3600))
        lines = extra_lines(wards, start_s, end_s)
        for i in range(0, len(lines), 20000):
            write(svc, "\n".join(lines[i:i + 20000]).encode())
        yield svc


# ---- the dashboards ----------------------------------------------------------------------------

VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def load(path: Path) -> dict[str, Any]:
    dash: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dash


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dash["panels"]:
        yield panel
        yield from panel.get("panels", [])


def fill(text: str, values: dict[str, str]) -> str:
    """Grafana's interpolation: ``$name``, ``${name}``, ``${name:fmt}`` and ``[[name]]``;
    a name that is neither a macro nor a variable of the dashboard fails."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        assert name in values, f"unknown variable ${name} in {text!r}"
        return values[name]
    return VAR.sub(one, text)


def first_value(influx: InfluxService, q: str) -> str:
    rows = influx.points(q, db=DB)
    assert rows, f"variable query returned nothing: {q}"
    return str(rows[0]["value"])


def queries(influx: InfluxService, dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, InfluxQL) for the dashboard's variable queries and every panel target, each
    variable set as Grafana would: All (its allValue) where it has one, else the first value
    its query returns, a custom variable its current value."""
    values = {name.lstrip("$"): value for name, value in MACROS.items()}
    out: list[tuple[str, str]] = []
    for var in dash["templating"]["list"]:
        name, kind = var["name"], var["type"]
        if kind == "datasource":
            continue
        if kind == "query":
            q = fill(var["query"], values)
            out.append((f"variable {name}", q))
            values[name] = var["allValue"] if var.get("includeAll") else first_value(influx, q)
        else:
            values[name] = str(var["current"]["value"])
    for panel in panels(dash):
        for target in panel.get("targets", []):
            out.append((f"{panel['title']} {target['refId']}", fill(target["query"], values)))
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_dashboard_is_importable(path: Path) -> None:
    dash = load(path)
    (ds_input,) = [i for i in dash["__inputs"] if i["type"] == "datasource"]
    assert ds_input["pluginId"] == "influxdb"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds_var = variables["datasource"]
    assert ds_var["type"] == "datasource" and ds_var["query"] == "influxdb"
    assert ds_var["current"]["value"] == f"${{{ds_input['name']}}}"  # import fills in the chosen data source
    ref = {"type": "influxdb", "uid": "${datasource}"}
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == ref, var["name"]
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    for panel in panels(dash):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == ref, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == ref, panel["title"]
            assert target["rawQuery"] is True and target["query"].strip(), panel["title"]
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
    # No data source is named by its uid anywhere: only the variable and the import input.
    uids = re.findall(r'"uid":\s*"([^"]*)"', path.read_text(encoding="utf-8"))
    assert set(uids) - {dash["uid"]} <= {"${datasource}"}, set(uids)


def test_dashboard_uids_and_titles_are_unique() -> None:
    dashes = [load(p) for p in FILES]
    assert len(dashes) >= 7
    for key in ("uid", "title"):
        values = [d[key] for d in dashes]
        assert len(values) == len(set(values)), values
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", d["uid"]) for d in dashes)


def test_every_query_returns_the_demo_fleets_data(influx: InfluxService) -> None:
    empty: list[str] = []
    failed: list[str] = []
    count = 0
    for path in FILES:
        for what, q in queries(influx, load(path)):
            count += 1
            try:
                rows = influx.points(q, db=DB)
            except ServiceError as exc:  # collect every failing query, not only the first
                failed.append(f"{path.name}: {what}: {exc}")
                continue
            if not rows:
                empty.append(f"{path.name}: {what}: {q}")
    assert not failed, "\n".join(failed)
    assert not empty, "no rows:\n" + "\n".join(empty)
    assert count >= 100


def _by(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(r.get(k) or "" for k in keys): r for r in rows}


def test_the_planners_view_has_report_capacitys_numbers(influx: InfluxService) -> None:
    """The planner's panels over the report's period give the report's numbers: peaks,
    hours over, camera bitrates, uplink speed, PoE budget and draw exactly; the p95s within
    one rank (InfluxQL's percentile() rounds the rank, nearest_rank takes its ceiling)."""
    span = SPAN[0]
    period = Period(start_ms=span.start_s * 1000, end_ms=span.end_s * 1000, tz=ZoneInfo("Asia/Ho_Chi_Minh"))

    async def report() -> dict[str, Any]:
        async with InfluxV1Writer(url=influx.url, database=DB, timeout=60) as client:
            rep = await capacity.build(client, period=period, wards=[], cfg=CollectorConfig(),
                                       options={"clients_threshold": 30, "util_threshold": 80.0, "what_if": None})
        return rep.data

    data = asyncio.run(report())
    dash = load(DASHBOARDS / "planner.json")
    values = {name.lstrip("$"): value for name, value in MACROS.items()}
    values.update(timeFilter=f"time >= {period.start_ms}ms AND time < {period.end_ms}ms", ward=".*",
                  step_s=str(capacity.step_for(period)), clients_threshold="30", util_threshold="80")
    assert {v["name"]: v["current"]["value"] for v in dash["templating"]["list"] if v["type"] == "custom"} == {
        "step_s": values["step_s"], "clients_threshold": "30", "util_threshold": "80"}  # the report's defaults
    targets = {p["title"].split(" / ")[0]: [fill(t["query"], values) for t in p["targets"]] for p in panels(dash)
               if p.get("targets")}

    def rows(title: str, i: int) -> list[dict[str, Any]]:
        return influx.points(targets[title][i], db=DB)

    # The report rounds hours to 2 decimals (0.42); the panels give InfluxQL's 0.41666...
    def near(a: float, b: float, rel: float = 0.06) -> bool:
        # InfluxQL's percentile() rounds the rank where the report rounds it up: one rank
        # apart, which on a ward's few dozen clients can be 2 or 3 clients
        return abs(a - b) <= max(rel * max(abs(a), abs(b)), 3.0)

    wards = _by(rows("Wi-Fi per ward", 0), "ward")
    over = _by(rows("Wi-Fi per ward", 1), "ward")
    assert len(wards) == len(data["wifi_wards"]) == 13
    for w in data["wifi_wards"]:
        got = wards[(w["ward"],)]
        assert got["peak_clients"] == w["peak_clients"], w["ward"]
        assert near(got["p95_clients"], w["p95_clients"]), (got, w)
        assert over.get((w["ward"],), {}).get("hours_over", 0) == pytest.approx(w["hours_over"], abs=0.005), w["ward"]
    assert any(w["hours_over"] > 0 for w in data["wifi_wards"])  # the crowded AP
    aps = _by(rows("Wi-Fi per AP", 0), "ward", "device", "ap")
    ap_over = _by(rows("Wi-Fi per AP", 1), "ward", "device", "ap")
    for a in data["wifi"]:
        key = (a["ward"], a["device"], "" if a["ap"] == a["device"] else a["ap"])
        assert aps[key]["peak_clients"] == a["peak_clients"], key
        assert near(aps[key]["p95_clients"], a["p95_clients"]), (aps[key], a)
        assert ap_over.get(key, {}).get("hours_over", 0) == pytest.approx(a["hours_over"], abs=0.005), key

    cams = _by(rows("Cameras and uplink headroom", 0), "ward")
    speed = _by(rows("Cameras and uplink headroom", 1), "ward")
    use = _by(rows("Cameras and uplink headroom", 2), "ward")
    for c in data["cameras"]:
        w = (c["ward"],)
        assert cams[w]["cameras"] == c["cameras"] and cams[w]["bitrate_kbps_sum"] == c["bitrate_kbps_sum"], c
        assert speed[w]["uplink_mbps"] == c["uplink_mbps"], c
        assert near(use[w]["uplink_p95_mbps"], c["uplink_p95_mbps"]), (use[w], c)

    budget = _by(rows("PoE budget and draw", 0), "ward", "device")
    ports = _by(rows("PoE budget and draw", 1), "ward", "device")
    for s in data["poe"]:
        k = (s["ward"], s["switch"])
        assert (budget[k]["budget_w"], budget[k]["draw_w"], budget[k]["headroom_w"]) == (
            s["budget_w"], s["draw_w"], s["headroom_w"]), s
        assert (ports[k]["poe_ports"], ports[k]["ports_delivering"]) == (s["poe_ports"], s["ports_delivering"]), s
