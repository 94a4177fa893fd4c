"""``report capacity``: what a planner sizes the Wi-Fi and camera rollout with.

- **Wi-Fi**, per AP and per ward: peak and p95 concurrent clients, an hour-of-week
  profile, hours over the clients or utilisation threshold, and the extra APs the p95
  asks for (the rule is printed beside it).
- **Cameras**, per ward: the sum of the cameras' encoder bitrates against the ward
  uplink's speed and its measured p95 use; the headroom in Mbit/s.
- **PoE**, per switch: budget against the peak draw, the headroom in W, free PoE ports.
- **What if** ward X takes N more cameras at B kbps: yes or no, and which of uplink
  headroom, PoE budget and free PoE ports binds.

Every number comes from InfluxQL aggregates computed by the server (``GROUP BY time(step)``
for the per-step maxima, ``last()``/``max()`` for the rest); only the percentiles and the
hour-of-week means are taken in Python, over those per-step values. The definitions are
in docs/reports.md (Capacity) and in each section's notes.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.reports.common import Queryable, nearest_rank, time_clause, ward_clause
from wardwatch.collector.reports.model import Chart, Column, Period, Report, Section

STEP_S = 300  # the step of the per-step maxima: 5 minutes, for periods up to 10 days
MAX_STEPS = 2880  # longer periods take longer steps (multiples of 5 min), at most this many per series
PORTS_WINDOW_MS = 86_400_000  # free PoE ports: judged on the last day of the period


def step_for(period: Period) -> int:
    """The per-step maxima's step: 5 minutes, or the multiple of 5 minutes that keeps a
    series to at most MAX_STEPS steps (15 min for 30 days). InfluxDB 1.6 spends its time
    on the rows it returns: 30 days of 5-minute Wi-Fi maxima of a city were 656k rows."""
    span_s = (period.end_ms - period.start_ms) / 1000
    return max(STEP_S, math.ceil(span_s / MAX_STEPS / STEP_S) * STEP_S)
PCT = 95  # p95: nearest rank of the per-step maxima
CLIENTS_THRESHOLD = 30  # clients per radio
UTIL_THRESHOLD = 80.0  # wifi_radio util_pct
POE_W = 6.5  # a typical IP camera draws 5-7 W (802.3af class 0 allows up to 15.4 W at the PSE)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

EXTRA_APS_RULE = ("extra APs beside an AP = max(0, ceil(p95 clients / (clients threshold x its radios)) - 1); "
                  "a ward's extra APs are the sum over its APs (clients stay where they are: a quiet AP "
                  "elsewhere in the ward does not take an overloaded one's load)")
WHAT_IF_RULE = ("yes when all three hold: N x bitrate <= the uplink headroom (uplink speed - measured p95 use); "
                "N x poe_w <= the PoE headroom (budget - peak draw); N <= the free PoE ports. A camera needs a "
                "free port and the power on the same switch, so a ward of several switches takes "
                "sum(min(free ports, floor(headroom / poe_w))) over them. The binding constraint is the one that "
                "allows the fewest cameras")


@dataclass(frozen=True, slots=True)
class WhatIf:
    cameras: int
    bitrate_kbps: float
    poe_w: float = POE_W


def parse_what_if(text: str) -> WhatIf:
    """``cameras=4,bitrate=4096[,poe_w=6.5]``: N more cameras at B kbps, each drawing poe_w W."""
    values: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("cameras", "bitrate", "poe_w") or key in values:
            raise ValueError(f"--what-if {text!r}: expected cameras=N,bitrate=KBPS[,poe_w=W], "
                             "e.g. cameras=4,bitrate=4096")
        values[key] = value.strip()
    if "cameras" not in values or "bitrate" not in values:
        raise ValueError(f"--what-if {text!r}: needs cameras=N and bitrate=KBPS")
    try:
        cameras, bitrate, poe_w = int(values["cameras"]), float(values["bitrate"]), float(values.get("poe_w", POE_W))
    except ValueError:
        raise ValueError(f"--what-if {text!r}: cameras is a whole number, bitrate (kbps) and poe_w (W) "
                         "numbers") from None
    if not 1 <= cameras <= 10_000:
        raise ValueError(f"--what-if {text!r}: cameras must be 1-10000")
    if not (0 < bitrate <= 1e7 and 0 < poe_w <= 100):  # NaN fails both
        raise ValueError(f"--what-if {text!r}: bitrate must be 0-10^7 kbps and poe_w 0-100 W")
    return WhatIf(cameras=cameras, bitrate_kbps=bitrate, poe_w=poe_w)


def _quote(value: str) -> str:
    """An InfluxQL string literal (tag values come from devices: quote, never trust)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _series(results: list[dict[str, Any]]) -> list[tuple[dict[str, str], list[list[Any]]]]:
    """(tags, rows) of each series of one statement's result; rows are [time, v1, v2, ...]."""
    out = []
    for result in results:
        for s in result.get("series", []):
            out.append(({k: v for k, v in (s.get("tags") or {}).items()}, s.get("values") or []))
    return out


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


# ---- Wi-Fi ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Ap:
    ward: str
    device: str
    ap: str
    radios: set[str] = field(default_factory=set)
    steps: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # t -> clients (sum of radios)
    over_clients: set[int] = field(default_factory=set)
    over_util: set[int] = field(default_factory=set)
    peak_util: float | None = None


def _wifi(series: list[tuple[dict[str, str], list[list[Any]]]], *, step_s: int, clients_threshold: int,
          util_threshold: float, tz: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    aps: dict[tuple[str, str, str], _Ap] = {}
    for tags, rows in series:
        ward, device = tags.get("ward", ""), tags.get("device", "")
        ap_id = tags.get("ap") or device  # a controller's APs by their `ap` tag; a stand-alone AP is the device
        key = (ward, device, ap_id)
        ap = aps.get(key)
        if ap is None:
            ap = aps[key] = _Ap(ward=ward, device=device, ap=ap_id)
        ap.radios.add(tags.get("radio") or "")
        steps, over_c, over_u = ap.steps, ap.over_clients, ap.over_util
        peak_util = ap.peak_util
        for t, clients, util in rows:
            if clients is not None:
                steps[t] += clients
                if clients > clients_threshold:
                    over_c.add(t)
            if util is not None:
                if util > util_threshold:
                    over_u.add(t)
                if peak_util is None or util > peak_util:
                    peak_util = util
        ap.peak_util = peak_util

    hours = step_s / 3600
    per_ap: list[dict[str, Any]] = []
    wards: dict[str, dict[str, Any]] = {}
    for key in sorted(aps):
        ap = aps[key]
        values = list(ap.steps.values())
        p95 = nearest_rank(values, PCT)
        radios = max(1, len(ap.radios))
        extra = max(0, math.ceil(p95 / (clients_threshold * radios)) - 1) if p95 is not None else 0
        over = ap.over_clients | ap.over_util
        per_ap.append({
            "ward": ap.ward, "ap": ap.ap, "device": ap.device, "radios": radios,
            "peak_clients": max(values) if values else None, "p95_clients": p95,
            "hours_over": round(len(over) * hours, 2),
            "hours_over_clients": round(len(ap.over_clients) * hours, 2),
            "hours_over_util": round(len(ap.over_util) * hours, 2),
            "peak_util_pct": _r(ap.peak_util, 1), "extra_aps": extra,
        })
        w = wards.setdefault(ap.ward, {"aps": 0, "radios": 0, "steps": defaultdict(int), "over": set(), "extra": 0})
        w["aps"] += 1
        w["radios"] += radios
        w["extra"] += extra
        w["over"] |= over
        for t, c in ap.steps.items():
            w["steps"][t] += c

    how: dict[int, tuple[int, int]] = {}  # step time (ms) -> (weekday, local hour): one zone lookup per step
    per_ward: list[dict[str, Any]] = []
    for ward in sorted(wards):
        w = wards[ward]
        ward_steps: dict[int, int] = w["steps"]
        values = list(ward_steps.values())
        sums = [[0.0] * 24 for _ in range(7)]
        counts = [[0] * 24 for _ in range(7)]
        for t, c in ward_steps.items():
            slot = how.get(t)
            if slot is None:
                local = datetime.fromtimestamp(t / 1000, tz)
                slot = how[t] = (local.weekday(), local.hour)
            sums[slot[0]][slot[1]] += c
            counts[slot[0]][slot[1]] += 1
        profile = [[round(sums[d][h] / counts[d][h], 1) if counts[d][h] else None for h in range(24)]
                   for d in range(7)]
        per_ward.append({
            "ward": ward, "aps": w["aps"], "radios": w["radios"],
            "peak_clients": max(values) if values else None, "p95_clients": nearest_rank(values, PCT),
            "hours_over": round(len(w["over"]) * hours, 2), "extra_aps": w["extra"], "hour_of_week": profile,
        })
    return per_ap, per_ward


# ---- cameras and the uplink -----------------------------------------------------------


def _cameras(cams: list[tuple[dict[str, str], list[list[Any]]]], speeds: list[tuple[dict[str, str], list[list[Any]]]],
             use: list[tuple[dict[str, str], list[list[Any]]]]) -> list[dict[str, Any]]:  # fmt: skip
    wards: dict[str, dict[str, Any]] = {}

    def ward_row(ward: str) -> dict[str, Any]:
        return wards.setdefault(ward, {"cameras": 0, "without": 0, "kbps": 0.0, "total_kbps": 0.0,
                                       "ports": [], "speed": None, "steps": defaultdict(float)})

    for tags, rows in cams:
        w = ward_row(tags.get("ward", ""))
        w["cameras"] += 1
        _, bitrate, total, _online = rows[0]
        if bitrate is None:
            w["without"] += 1
        else:
            w["kbps"] += bitrate
            w["total_kbps"] += total if total is not None else bitrate
    for tags, rows in speeds:
        w = ward_row(tags.get("ward", ""))
        w["ports"].append(f"{tags.get('device', '')}:{tags.get('if_name', '')}")
        speed = rows[0][1]
        if speed is not None:
            w["speed"] = (w["speed"] or 0) + speed
    for tags, rows in use:
        steps = ward_row(tags.get("ward", ""))["steps"]
        for t, i, o in rows:
            steps[t] += max(i or 0.0, o or 0.0)  # the busier direction; several uplink ports add up
    out = []
    for ward in sorted(wards):
        w = wards[ward]
        p95_bps = nearest_rank(list(w["steps"].values()), PCT)
        p95 = None if p95_bps is None else p95_bps / 1e6
        speed = w["speed"]
        headroom = None if speed is None or p95 is None else speed - p95
        kbps = w["kbps"]
        out.append({
            "ward": ward, "cameras": w["cameras"], "bitrate_kbps_sum": round(kbps),
            "uplink_mbps": speed, "uplink_p95_mbps": _r(p95, 3), "headroom_mbps": _r(headroom, 3),
            "camera_mbps": round(kbps / 1000, 3),
            "camera_share_pct": round(100 * kbps / 1000 / speed, 2) if speed else None,
            "bitrate_total_kbps_sum": round(w["total_kbps"]), "cameras_without_bitrate": w["without"],
            "uplink_ports": sorted(w["ports"]),
        })
    return out


# ---- PoE ------------------------------------------------------------------------------


def _poe(pse: list[tuple[dict[str, str], list[list[Any]]]],
         ports: list[tuple[dict[str, str], list[list[Any]]]]) -> list[dict[str, Any]]:  # fmt: skip
    switches: dict[tuple[str, str], dict[str, Any]] = {}

    def switch(tags: dict[str, str]) -> dict[str, Any]:
        return switches.setdefault((tags.get("ward", ""), tags.get("device", "")),
                                   {"budget": None, "draw": None, "ports": 0, "delivering": 0})

    for tags, rows in pse:
        s = switch(tags)
        _, budget, draw = rows[0]
        if budget is not None:
            s["budget"] = (s["budget"] or 0) + budget
        if draw is not None:
            s["draw"] = (s["draw"] or 0) + draw
    for tags, rows in ports:
        s = switch(tags)
        s["ports"] += 1
        if rows[0][1]:
            s["delivering"] += 1
    out = []
    for (ward, device) in sorted(switches):
        s = switches[(ward, device)]
        budget, draw = s["budget"], s["draw"]
        out.append({
            "ward": ward, "switch": device, "budget_w": _r(budget, 1), "draw_w": _r(draw, 1),
            "headroom_w": _r(budget - draw, 1) if budget is not None and draw is not None else None,
            "poe_ports": s["ports"], "ports_delivering": s["delivering"],
            "free_poe_ports": s["ports"] - s["delivering"],
        })
    return out


# ---- what if --------------------------------------------------------------------------


def what_if(ask: WhatIf, ward: str, cameras: list[dict[str, Any]], poe: list[dict[str, Any]]) -> dict[str, Any]:
    """Can ``ward`` take ``ask.cameras`` more cameras? yes / no / unknown (no data), and why."""
    cam = next((c for c in cameras if c["ward"] == ward), None)
    headroom = cam["headroom_mbps"] if cam else None
    need_mbps = ask.cameras * ask.bitrate_kbps / 1000
    up_max = None if headroom is None else max(0, math.floor(headroom * 1000 / ask.bitrate_kbps + 1e-9))
    switches = [p for p in poe if p["ward"] == ward]
    powered = [p for p in switches if p["headroom_w"] is not None]
    budget_w = round(sum(p["headroom_w"] for p in powered), 1) if powered else None
    budget_max = (sum(max(0, math.floor(p["headroom_w"] / ask.poe_w + 1e-9)) for p in powered)
                  if powered else None)
    free = sum(p["free_poe_ports"] for p in switches) if switches else None
    # a camera takes a port and its power on the same switch
    poe_max = (sum(min(p["free_poe_ports"], max(0, math.floor(p["headroom_w"] / ask.poe_w + 1e-9))) for p in powered)
               if powered else None)
    constraints: list[dict[str, Any]] = [
        {"constraint": "uplink_headroom", "need": round(need_mbps, 3), "available": headroom, "unit": "Mbit/s",
         "max_cameras": up_max},
        {"constraint": "poe_budget", "need": round(ask.cameras * ask.poe_w, 1), "available": budget_w, "unit": "W",
         "max_cameras": budget_max},
        {"constraint": "poe_ports", "need": ask.cameras, "available": free, "unit": "ports", "max_cameras": free},
    ]
    for c in constraints:
        c["ok"] = None if c["max_cameras"] is None else ask.cameras <= c["max_cameras"]
    known = [c for c in constraints if c["max_cameras"] is not None]
    binding = min(known, key=lambda c: c["max_cameras"]) if known else None
    limit = min([c["max_cameras"] for c in known] + ([poe_max] if poe_max is not None else []), default=None)
    if limit is not None and ask.cameras > limit:
        answer = "no"
    elif len(known) < len(constraints):
        answer = "unknown"
        binding = next(c for c in constraints if c["max_cameras"] is None)
    else:
        answer = "yes"
    missing = [c["constraint"] for c in constraints if c["max_cameras"] is None]
    return {
        "ward": ward, "cameras": ask.cameras, "bitrate_kbps": ask.bitrate_kbps, "poe_w": ask.poe_w,
        "answer": answer, "binding": binding["constraint"] if binding else None,
        "max_cameras": None if missing else limit, "no_data": missing, "constraints": constraints,
        "rule": WHAT_IF_RULE,
    }


# ---- the report -----------------------------------------------------------------------


async def build(influx: Queryable, *, period: Period, wards: list[str], cfg: CollectorConfig,
                options: dict[str, Any]) -> Report:  # fmt: skip
    clients_threshold = int(options.get("clients_threshold") or CLIENTS_THRESHOLD)
    util_threshold = float(options.get("util_threshold") or UTIL_THRESHOLD)
    step_s = int(options.get("step_s") or step_for(period))
    if clients_threshold < 1 or not 0 < util_threshold <= 100 or step_s < 1:
        raise ValueError("--clients-threshold must be >= 1 and --util-threshold 0-100 (%)")
    ask = parse_what_if(str(options["what_if"])) if options.get("what_if") else None
    if ask is not None and len(wards) != 1:
        raise ValueError("--what-if asks about one ward: give exactly one --ward")
    where = time_clause(period) + ward_clause(wards)
    step = f"time({step_s}s)"
    # Free PoE ports are a question about now: the last day of the period (every port's
    # points over 30 days were most of the rest of the report's time).
    last_day = Period(start_ms=max(period.start_ms, period.end_ms - PORTS_WINDOW_MS), end_ms=period.end_ms,
                      tz=period.tz)
    ports_where = time_clause(last_day) + ward_clause(wards)

    async def rows(q: str) -> list[tuple[dict[str, str], list[list[Any]]]]:
        return _series(await influx.query(q, epoch="ms"))

    # The uplink ports first: the few series with an `uplink` field (a field condition over
    # every port's points would read them all); then only theirs.
    uplinks = await rows(f"SELECT max(uplink) FROM if_traffic WHERE {where} GROUP BY ward, device, if_name")
    port_filter = " OR ".join(
        f"(ward = {_quote(t.get('ward', ''))} AND device = {_quote(t.get('device', ''))} "
        f"AND if_name = {_quote(t.get('if_name', ''))})" for t, _ in uplinks)
    up_where = f"{where} AND uplink = 1 AND ({port_filter})"
    queries = [
        f"SELECT max(clients), max(util_pct) FROM wifi_radio WHERE {where} "
        f"GROUP BY {step}, ward, device, ap, radio fill(none)",
        f"SELECT last(bitrate_kbps), last(bitrate_total_kbps), last(online) FROM camera_health WHERE {where} "
        "GROUP BY ward, device",
        f"SELECT last(budget_w), max(consumption_w) FROM poe WHERE {where} AND pse != '' GROUP BY ward, device, pse",
        f"SELECT max(delivering) FROM poe WHERE {ports_where} AND if_name != '' GROUP BY ward, device, if_name",
    ]
    if uplinks:
        queries += [
            f"SELECT last(speed_mbps) FROM if_traffic WHERE {up_where} GROUP BY ward, device, if_name",
            f"SELECT max(in_bps), max(out_bps) FROM if_traffic WHERE {up_where} "
            f"GROUP BY {step}, ward, device, if_name fill(none)",
        ]
    got = await asyncio.gather(*(rows(q) for q in queries))
    radios, cams, pse, ports = got[:4]
    speeds, use = (got[4], got[5]) if uplinks else ([], [])

    wifi, wifi_wards = _wifi(radios, step_s=step_s, clients_threshold=clients_threshold,
                             util_threshold=util_threshold, tz=period.tz)
    cameras = _cameras(cams, speeds, use)
    poe = _poe(pse, ports)
    names: dict[str, str] = dict(getattr(cfg, "wards", None) or {})
    data: dict[str, Any] = {
        "period": period.as_json(), "step_s": step_s, "percentile": PCT,
        "thresholds": {"clients_per_radio": clients_threshold, "util_pct": util_threshold},
        "wifi": wifi, "wifi_wards": wifi_wards, "cameras": cameras, "poe": poe,
    }
    answer = what_if(ask, wards[0], cameras, poe) if ask is not None else None
    if answer is not None:
        data["what_if"] = answer
    sections = _sections(data, names, step_s=step_s, clients_threshold=clients_threshold,
                         util_threshold=util_threshold)
    return Report(kind="capacity", title="Dung lượng / Capacity: Wi-Fi, cameras against the uplink, PoE", period=period,
                  sections=sections, data=data, wards={w: names.get(w, w) for w in _all_wards(data)},
                  notes=[f"p{PCT} is the nearest-rank percentile of the per-step maxima ({step_s // 60} min steps); "
                         f"hours are local ({period.tz.key})"])


def _all_wards(data: dict[str, Any]) -> list[str]:
    return sorted({row["ward"] for key in ("wifi", "cameras", "poe") for row in data[key]})


def _sections(data: dict[str, Any], names: dict[str, str], *, step_s: int, clients_threshold: int,
              util_threshold: float) -> list[Section]:  # fmt: skip
    minutes = step_s // 60 if step_s % 60 == 0 else step_s / 60
    wifi_notes = [
        f"clients of an AP at a step = the sum over its radios of each radio's max(clients) in that {minutes}-min step",
        f"peak = the highest step; p{PCT} = the nearest-rank {PCT}th percentile of the steps",
        f"hours over = the steps in which a radio had more than {clients_threshold} clients or more than "
        f"{util_threshold:g}% channel utilisation, x {minutes} min",
        EXTRA_APS_RULE,
    ]
    sections = [
        Section(key="wifi", title="Wi-Fi theo AP / Wi-Fi per AP", columns=[
            Column("ward", "Phường, xã / Ward"),
            Column("ap", "AP"),
            Column("device", "Thiết bị SNMP / SNMP device"),
            Column("radios", "Radio / Radios"),
            Column("peak_clients", "Người dùng cao nhất / Peak clients"),
            Column("p95_clients", f"Người dùng p{PCT} / p{PCT} clients"),
            Column("peak_util_pct", "Tải kênh cao nhất / Peak utilisation", "%"),
            Column("hours_over", "Giờ quá tải / Hours over", "h"),
            Column("hours_over_clients", "Giờ quá tải (người dùng) / Hours over (clients)", "h"),
            Column("hours_over_util", "Giờ quá tải (tải kênh) / Hours over (utilisation)", "h"),
            Column("extra_aps", "AP cần thêm / Extra APs"),
        ], rows=data["wifi"], notes=wifi_notes),
    ]
    ward_rows = [{k: v for k, v in w.items() if k != "hour_of_week"} for w in data["wifi_wards"]]
    charts = []
    busiest = max(data["wifi_wards"], key=lambda w: (w["p95_clients"] or 0, w["ward"]), default=None)
    if busiest is not None:
        name = names.get(busiest["ward"], busiest["ward"])
        charts.append(Chart(kind="heatmap", title=f"Clients by hour of week: {name} (the busiest ward by p{PCT}); "
                            f"mean of the {minutes}-min maxima",
                            labels=list(WEEKDAYS), values=busiest["hour_of_week"], unit="clients"))
    sections.append(Section(key="wifi_wards", title="Wi-Fi theo phường / Wi-Fi per ward", columns=[
        Column("ward", "Phường, xã / Ward"), Column("aps", "Số AP / APs"), Column("radios", "Radio / Radios"),
        Column("peak_clients", "Người dùng cao nhất / Peak clients"),
        Column("p95_clients", f"Người dùng p{PCT} / p{PCT} clients"),
        Column("hours_over", "Giờ quá tải / Hours over", "h"),
        Column("extra_aps", "AP cần thêm / Extra APs"),
    ], rows=ward_rows, charts=charts, notes=[
        "a ward's clients at a step = the sum over its APs; hours over = steps in which any of its radios was over",
        "the hour-of-week profile (JSON: hour_of_week, 7 rows Monday first x 24 local hours) is the mean of the "
        "ward's per-step clients in each hour of the week",
    ]))
    cams = data["cameras"]
    sections.append(Section(key="cameras", title="Camera so với đường lên của phường / Cameras against the ward uplink",
                            columns=[
        Column("ward", "Phường, xã / Ward"),
        Column("cameras", "Camera / Cameras"),
        Column("bitrate_kbps_sum", "Tổng bitrate camera / Camera bitrates", "kbit/s"),
        Column("camera_share_pct", "Camera trên đường lên / Cameras / uplink", "%"),
        Column("uplink_mbps", "Đường lên / Uplink", "Mbit/s"),
        Column("uplink_p95_mbps", f"Sử dụng p{PCT} đường lên / Uplink p{PCT} use", "Mbit/s"),
        Column("headroom_mbps", "Dư địa / Headroom", "Mbit/s"),
    ], rows=cams, charts=[Chart(kind="bars", title="Uplink headroom per ward", unit="Mbit/s",
                               labels=[names.get(c["ward"], c["ward"]) for c in cams],
                               values=[c["headroom_mbps"] for c in cams])] if cams else [], notes=[
        "camera bitrates = the sum of each camera's last encoder bitrate limit in the period (ONVIF main "
        "profile, camera_health bitrate_kbps)",
        "uplink = the port marked uplink: on the ward's switch (if_traffic uplink=1), its last speed_mbps",
        f"uplink p{PCT} use = the p{PCT} of the per-step max(in_bps, out_bps), in Mbit/s; headroom = uplink - "
        f"p{PCT} use. The cameras already streaming over the uplink are inside the measured use: the headroom is "
        "what is left for new traffic",
    ]))
    poe = data["poe"]
    sections.append(Section(key="poe", title="PoE theo switch / PoE per switch", columns=[
        Column("ward", "Phường, xã / Ward"),
        Column("switch", "Switch"),
        Column("budget_w", "Công suất PoE / Budget", "W"),
        Column("draw_w", "Tiêu thụ cao nhất / Peak draw", "W"), Column("headroom_w", "Dư địa / Headroom", "W"),
        Column("poe_ports", "Cổng PoE / PoE ports"), Column("ports_delivering", "Đang cấp điện / Delivering"),
        Column("free_poe_ports", "Cổng PoE trống / Free PoE ports"),
    ], rows=poe, charts=[Chart(kind="bars", title="PoE headroom per switch", unit="W",
                               labels=[f"{names.get(p['ward'], p['ward'])} {p['switch']}" for p in poe],
                               values=[p["headroom_w"] for p in poe])] if poe else [], notes=[
        "budget = the last budget_w of the switch's power sources; draw = the peak consumption_w in the period "
        "(a PSE over its budget cuts ports, so the worst moment counts, not a percentile)",
        "free PoE ports = ports with a PoE reading that delivered power at no time in the last day of the period",
    ]))
    ask = data.get("what_if")
    if ask is not None:
        ward = names.get(ask["ward"], ask["ward"])
        headline = (f"Can {ward} take {ask['cameras']} more cameras at {ask['bitrate_kbps']:g} kbit/s "
                    f"({ask['poe_w']:g} W each)? {ask['answer']}"
                    + (f", binding: {ask['binding']}" if ask["binding"] else "")
                    + (f" (at most {ask['max_cameras']})" if ask["max_cameras"] is not None else ""))
        notes = [headline, ask["rule"]]
        if ask["no_data"]:
            notes.append("no data in the period for: " + ", ".join(ask["no_data"]))
        sections.append(Section(key="what_if", title="Giả định / What if", columns=[
            Column("constraint", "Ràng buộc / Constraint"),
            Column("need", "Cần / Needed"),
            Column("available", "Sẵn có / Available"),
            Column("unit", "Đơn vị / Unit"),
            Column("max_cameras", "Số camera cho phép / Cameras it allows"),
            Column("ok", "Đủ / Fits"),
        ], rows=ask["constraints"], notes=notes))
    return sections
