"""`report capacity` against a known data set in a real InfluxDB: every number is worked
out by hand below (docs/reports.md, Capacity, defines them).

The period is Monday 2026-11-02 in Hội An (00:00+07:00 to 24:00), 288 steps of 5 minutes;
points every 60 s (5 a step). Around it (an hour either side) the data are absurd, so a
number that leaks the period's edge shows.

Ward cam-pho:
- ap-1 (stand-alone, 2 radios). In local hour h the 2.4 GHz radio has h + 10 clients and
  the 5 GHz radio h; in hour 19 one point a step has 30 more on 2.4 GHz (a max, not a mean,
  sees it). Per-step clients = 2h + 10, and 19 + 10 + 30 + 19 = 78 in hour 19. Sorted:
  hours 0-18 (10..46, 228 steps), 20-23 (50, 52, 54, 56: steps 229-276), then 78 x 12.
  Peak 78; p95 = rank ceil(0.95 x 288) = 274 = 56. Over 30 clients a radio: 2.4 GHz in
  hours 21, 22, 23 (31, 32, 33) and 19 (59): 4 h. Utilisation 50%, 85% on 5 GHz in hour 7:
  1 h over 80%. Hours over 5.0. Extra APs: ceil(56 / (30 x 2)) - 1 = 0.
- ap-2 (one radio, 3 clients, no utilisation). Ward: per-step ap-1 + 3: peak 81, p95 59,
  Monday 19:00 mean 81.0, 00:00 13.0; no other day has data.
- cameras: cam-1 4096 kbps (2048 in the morning: the last counts), cam-2 2048, cam-3 never
  online (no bitrate): 3 cameras, 6144 kbps.
- uplink Te1/0/24 (uplink=1), 1000 Mbit/s: out (100 + 10h) Mbit/s in hour h, in 50, except
  hour 3 where one point a step is in = 900: per-step max(in, out) sorted is 100, 110, 120,
  140..330 (23 hours, 276 steps) then 900 x 12: p95 (rank 274) = 330, headroom 670. Gi1/0/1
  carries 5 Gbit/s but is not the uplink.
- PoE on sw-core: budget 120 W, draw 60 W with one 95.5 W point: peak 95.5, headroom 24.5.
  Ports Gi1/0/1-3 deliver, Gi1/0/4 delivered until noon, Gi1/0/5-8 never: 4 free.

Ward minh-an: a controller (device wlc) with ap-a (one radio, 100 clients, 90% all day):
peak = p95 = 100, 24 h over, extra ceil(100 / 30) - 1 = 3. One camera at 4000 kbps, no
uplink marked, no PoE: the what-if cannot answer.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.reports import capacity, formats
from wardwatch.collector.reports.model import Period, Report
from wardwatch.simulators.lab import InfluxService

pytestmark = pytest.mark.services

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
START_MS = int(datetime(2026, 11, 2, tzinfo=TZ).timestamp() * 1000)  # a Monday
END_MS = START_MS + 86_400_000
MIN = 60_000
PERIOD = Period(start_ms=START_MS, end_ms=END_MS, tz=TZ)
CFG = CollectorConfig(wards={"cam-pho": "Cẩm Phô", "minh-an": "Minh An"})


def _data() -> list[bytes]:
    lines: list[str] = []
    add = lines.append
    for k in range(-60, 24 * 60 + 60):  # minute k of the day, an hour either side
        t = START_MS + k * MIN
        inside = 0 <= k < 24 * 60
        h = k // 60
        step_minute = k % 5
        if not inside:  # absurd values just outside the period
            add(f"wifi_radio,ward=cam-pho,device=ap-1,kind=ap,radio=2.4GHz clients=500i,util_pct=99 {t}")
            add(f"if_traffic,ward=cam-pho,device=sw-core,kind=switch,if_name=Te1/0/24 "
                f"out_bps=9.9e8,in_bps=9.9e8,speed_mbps=100i,uplink=1i {t}")
            add(f"poe,ward=cam-pho,device=sw-core,kind=switch,pse=1 budget_w=10i,consumption_w=500 {t}")
            add(f"camera_health,ward=cam-pho,device=cam-1,kind=camera online=1i,bitrate_kbps=99999i {t}")
            continue
        spike = 30 if h == 19 and step_minute == 2 else 0
        add(f"wifi_radio,ward=cam-pho,device=ap-1,kind=ap,radio=2.4GHz clients={h + 10 + spike}i,util_pct=50 {t}")
        add(f"wifi_radio,ward=cam-pho,device=ap-1,kind=ap,radio=5GHz clients={h}i,util_pct={85 if h == 7 else 50} {t}")
        add(f"wifi_radio,ward=cam-pho,device=ap-2,kind=ap,radio=5GHz clients=3i {t}")
        add(f"wifi_radio,ward=minh-an,device=wlc,kind=ap,ap=ap-a,radio=5GHz clients=100i,util_pct=90 {t}")
        in_bps = 900e6 if h == 3 and step_minute == 4 else 50e6
        add(f"if_traffic,ward=cam-pho,device=sw-core,kind=switch,if_name=Te1/0/24 "
            f"in_bps={in_bps},out_bps={(100 + 10 * h) * 1e6},speed_mbps=1000i,oper_up=1i,uplink=1i {t}")
        add(f"if_traffic,ward=cam-pho,device=sw-core,kind=switch,if_name=Gi1/0/1 "
            f"in_bps=5e9,out_bps=5e9,speed_mbps=1000i,oper_up=1i {t}")
        add(f"poe,ward=cam-pho,device=sw-core,kind=switch,pse=1 budget_w=120i,"
            f"consumption_w={95.5 if k == 600 else 60},pse_up=1i {t}")
        for port in range(1, 9):
            delivering = 1 if port <= 3 or (port == 4 and h < 12) else 0
            add(f"poe,ward=cam-pho,device=sw-core,kind=switch,if_name=Gi1/0/{port} delivering={delivering}i {t}")
        if step_minute == 0:  # cameras every 5 minutes
            add(f"camera_health,ward=cam-pho,device=cam-1,kind=camera online=1i,"
                f"bitrate_kbps={2048 if h < 9 else 4096}i,bitrate_total_kbps={2560 if h < 9 else 4608}i {t}")
            add(f"camera_health,ward=cam-pho,device=cam-2,kind=camera online=1i,bitrate_kbps=2048i,"
                f"bitrate_total_kbps=2560i {t}")
            add(f"camera_health,ward=cam-pho,device=cam-3,kind=camera online=0i,reason=\"offline\" {t}")
            add(f"camera_health,ward=minh-an,device=cam-9,kind=camera online=1i,bitrate_kbps=4000i {t}")
    return [line.encode() for line in lines]


def report(influx: InfluxService, database: str, *, write: bool = True, wards: list[str] | None = None,
           **options: Any) -> Report:  # fmt: skip
    async def go() -> Report:
        async with InfluxV1Writer(url=influx.url, database=database) as client:
            if write:
                await client.write(_data())
            return await capacity.build(client, period=PERIOD, wards=wards or [], cfg=CFG,
                                        options={"clients_threshold": 30, "util_threshold": 80.0,
                                                 "what_if": None, **options})
    return asyncio.run(go())


def test_every_number_equals_the_hand_computed_one(influx: InfluxService, database: str) -> None:
    rep = report(influx, database)
    data = rep.data
    assert set(data) >= {"period", "wifi", "cameras", "poe"} and "what_if" not in data
    assert data["period"]["timezone"] == "Asia/Ho_Chi_Minh"

    wifi = {(r["ward"], r["ap"]): r for r in data["wifi"]}
    assert set(wifi) == {("cam-pho", "ap-1"), ("cam-pho", "ap-2"), ("minh-an", "ap-a")}
    assert wifi["cam-pho", "ap-1"] == {
        "ward": "cam-pho", "ap": "ap-1", "device": "ap-1", "radios": 2, "peak_clients": 78, "p95_clients": 56,
        "hours_over": 5.0, "hours_over_clients": 4.0, "hours_over_util": 1.0, "peak_util_pct": 85.0, "extra_aps": 0,
    }
    assert wifi["cam-pho", "ap-2"]["peak_clients"] == wifi["cam-pho", "ap-2"]["p95_clients"] == 3
    assert wifi["cam-pho", "ap-2"]["hours_over"] == 0 and wifi["cam-pho", "ap-2"]["peak_util_pct"] is None
    ap_a = wifi["minh-an", "ap-a"]
    assert (ap_a["device"], ap_a["peak_clients"], ap_a["p95_clients"], ap_a["hours_over"], ap_a["extra_aps"]) == (
        "wlc", 100, 100, 24.0, 3)

    wards = {w["ward"]: w for w in data["wifi_wards"]}
    pho = wards["cam-pho"]
    got = (pho["aps"], pho["radios"], pho["peak_clients"], pho["p95_clients"], pho["hours_over"])
    assert got == (2, 3, 81, 59, 5.0)
    profile = pho["hour_of_week"]
    assert len(profile) == 7 and all(len(day) == 24 for day in profile)
    assert profile[0][19] == 81.0 and profile[0][0] == 13.0 and profile[0][23] == 59.0
    assert max(v for v in profile[0] if v is not None) == profile[0][19]  # the peak hour: Monday 19:00 local
    assert all(v is None for day in profile[1:] for v in day)
    assert wards["minh-an"]["extra_aps"] == 3 and wards["minh-an"]["hour_of_week"][0] == [100.0] * 24

    cams = {c["ward"]: c for c in data["cameras"]}
    assert {k: cams["cam-pho"][k] for k in ("cameras", "bitrate_kbps_sum", "uplink_mbps", "uplink_p95_mbps",
                                            "headroom_mbps", "cameras_without_bitrate", "bitrate_total_kbps_sum",
                                            "uplink_ports")} == {
        "cameras": 3, "bitrate_kbps_sum": 6144, "uplink_mbps": 1000, "uplink_p95_mbps": 330.0, "headroom_mbps": 670.0,
        "cameras_without_bitrate": 1, "bitrate_total_kbps_sum": 7168, "uplink_ports": ["sw-core:Te1/0/24"]}
    assert cams["cam-pho"]["camera_share_pct"] == 0.61  # 6.144 of 1000 Mbit/s
    assert (cams["minh-an"]["cameras"], cams["minh-an"]["bitrate_kbps_sum"], cams["minh-an"]["uplink_mbps"],
            cams["minh-an"]["headroom_mbps"]) == (1, 4000, None, None)

    (poe,) = data["poe"]
    assert poe == {"ward": "cam-pho", "switch": "sw-core", "budget_w": 120.0, "draw_w": 95.5, "headroom_w": 24.5,
                   "poe_ports": 8, "ports_delivering": 4, "free_poe_ports": 4}

    # The sections a person reads carry the same rows, the rule and the charts.
    sections = {s.key: s for s in rep.sections}
    assert list(sections) == ["wifi", "wifi_wards", "cameras", "poe"]
    assert sections["wifi"].rows == data["wifi"]
    assert any("ceil(p95 clients / (clients threshold x its radios)) - 1" in n for n in sections["wifi"].notes)
    (heat,) = sections["wifi_wards"].charts
    assert heat.kind == "heatmap" and "Minh An" in heat.title  # the busiest ward by p95
    assert heat.values == wards["minh-an"]["hour_of_week"] and heat.labels[0] == "Mon"
    (bars,) = sections["cameras"].charts
    assert bars.labels == ["Cẩm Phô", "Minh An"] and bars.values == [670.0, None]
    assert rep.wards == {"cam-pho": "Cẩm Phô", "minh-an": "Minh An"}
    # Every format renders it; the JSON is the data, the CSV carries the same numbers.
    assert json.loads(formats.render(rep, "json")) == data
    csv_text = formats.render(rep, "csv").decode()
    assert "cam-pho,Cẩm Phô,3,6144,0.61,1000,330.0,670.0\r\n" in csv_text, csv_text
    assert "Cẩm Phô" in formats.render(rep, "table").decode() and "<svg" in formats.render(rep, "html").decode()

    # A lower threshold: more hours over, more APs. 2.4 GHz is over 20 from hour 11 (21 clients).
    low = report(influx, database, write=False, clients_threshold=20, wards=["cam-pho"])
    ap1 = next(r for r in low.data["wifi"] if r["ap"] == "ap-1")
    assert (ap1["hours_over_clients"], ap1["extra_aps"]) == (13.0, 1)  # hours 11-23; ceil(56 / 40) - 1
    assert {r["ward"] for r in low.data["wifi"]} == {"cam-pho"}


# (what-if, answer, binding, max cameras): cam-pho has 670 Mbit/s of uplink headroom, 24.5 W
# of PoE headroom and 4 free PoE ports.
WHAT_IF = [
    ("cameras=3,bitrate=4096", "yes", "poe_budget", 3),  # 3 x 6.5 = 19.5 W <= 24.5; 4 would be 26
    ("cameras=4,bitrate=4096", "no", "poe_budget", 3),
    ("cameras=4,bitrate=4096,poe_w=4", "yes", "poe_ports", 4),  # 4 W: 6 fit the budget, 4 the ports
    ("cameras=5,bitrate=4096,poe_w=4", "no", "poe_ports", 4),
    ("cameras=2,bitrate=300000", "yes", "uplink_headroom", 2),  # 600 of 670 Mbit/s; 3 would be 900
    ("cameras=3,bitrate=300000", "no", "uplink_headroom", 2),
]


def test_what_if_says_yes_below_each_limit_and_no_above_naming_it(influx: InfluxService, database: str) -> None:
    asyncio.run(_write(influx, database))
    for ask, answer, binding, most in WHAT_IF:
        rep = report(influx, database, write=False, wards=["cam-pho"], what_if=ask)
        got = rep.data["what_if"]
        assert (got["answer"], got["binding"], got["max_cameras"]) == (answer, binding, most), (ask, got)
        assert rep.sections[-1].key == "what_if" and rep.sections[-1].rows == got["constraints"]
        assert f"? {answer}, binding: {binding}" in rep.sections[-1].notes[0], rep.sections[-1].notes
    need = {c["constraint"]: (c["need"], c["available"]) for c in got["constraints"]}
    assert need == {"uplink_headroom": (900.0, 670.0), "poe_budget": (19.5, 24.5), "poe_ports": (3, 4)}

    # No uplink marked and no PoE readings in minh-an: no answer is made up.
    unknown = report(influx, database, write=False, wards=["minh-an"], what_if="cameras=1,bitrate=1000")
    assert unknown.data["what_if"]["answer"] == "unknown"
    assert unknown.data["what_if"]["no_data"] == ["uplink_headroom", "poe_budget", "poe_ports"]

    with pytest.raises(ValueError, match="exactly one --ward"):
        report(influx, database, write=False, what_if="cameras=1,bitrate=1000")
    for bad in ("cameras=1", "cameras=x,bitrate=1", "cameras=1,bitrate=1,colour=red", "cameras=0,bitrate=1"):
        with pytest.raises(ValueError, match="--what-if"):
            capacity.parse_what_if(bad)


async def _write(influx: InfluxService, database: str) -> None:
    async with InfluxV1Writer(url=influx.url, database=database) as client:
        await client.write(_data())
