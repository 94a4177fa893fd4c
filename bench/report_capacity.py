"""`report capacity` over 30 days of the full demo fleet at a 60 s interval, against one bare
InfluxQL aggregate over the same data, in the same run.

The data: a generator writes 30 days straight into a fresh InfluxDB (line protocol, POSTed
to /write with precision=s in batches of one hour of the whole city, two at a time). The
fleet is simulators/fleet.py's: 13 wards, each a core switch of 24 or 48 ports (its real
port names and roles, the last port the uplink with ``uplink=1``), the ward's APs with 2
radios each and its 3-5 cameras. Per minute: ``if_traffic`` for every port, ``poe`` per
port and per PSE, ``wifi_radio`` per radio, ``camera_health`` per camera: the four
measurements the report reads, with the fields the agent writes. (``device_status`` and the
rest are left out: the report never reads them, and they would only lengthen the load.)

Then: the report (collector/reports/capacity.py ``build``, every query and all the Python
after them) for the 30 days, ``--runs`` times, and the baseline, ``SELECT max(clients) FROM
wifi_radio WHERE time > now() - 30d GROUP BY time(1h)``, as often. Medians; ratio = report /
baseline.

    .venv/bin/python bench/report_capacity.py [--days 30] [--runs 3]

Bounded: --days at most 31 (about 1,150 points a minute), a 1,800 s deadline on the load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.reports import capacity
from wardwatch.collector.reports.model import Period
from wardwatch.simulators.demo_series import INTERVAL_S, Ward, fleet, hour_lines
from wardwatch.simulators.fleet import WARDS
from wardwatch.simulators.lab import InfluxService, start_influxdb

DEADLINE_S = 1800.0
DB = "bench"


def post(url: str, body: bytes) -> None:
    """One batch; a 5xx (InfluxDB's cache full while it snapshots to disk) is tried again,
    at most 30 times, waiting 1 s more each time."""
    for attempt in range(30):
        req = urllib.request.Request(f"{url}/write?db={DB}&precision=s", data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                if resp.status == 204:
                    return
                raise SystemExit(f"bench: /write answered {resp.status}")
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise SystemExit(f"bench: /write answered {exc.code}: {exc.read()[:300]!r}") from None
            print(f"  /write {exc.code} ({exc.read()[:120]!r}), again in {attempt + 1}s", flush=True)
            time.sleep(attempt + 1)
    raise SystemExit("bench: /write kept failing")


def load(influx: InfluxService, wards: list[Ward], *, start_s: int, hours: int) -> tuple[int, float]:
    """Write the hours; -> (points, seconds). Generation overlaps the writes (2 in flight)."""
    started = time.monotonic()
    points = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = []
        for h in range(hours):
            body = hour_lines(wards, start_s + h * 3600)
            points += body.count(b"\n") + 1
            pending.append(pool.submit(post, influx.url, body))
            if len(pending) >= 3:
                pending.pop(0).result()
            if time.monotonic() - started > DEADLINE_S:
                raise SystemExit(f"bench: the load passed {DEADLINE_S:g}s at hour {h} of {hours}")
            if h % 24 == 23:
                print(f"  day {(h + 1) // 24}: {points:,} points, {time.monotonic() - started:.0f}s", flush=True)
        for f in pending:
            f.result()
    return points, time.monotonic() - started


async def time_report(influx: InfluxService, period: Period, runs: int) -> tuple[list[float], list[float], dict]:
    report_s, base_s = [], []
    data: dict = {}
    cfg = CollectorConfig(wards={w: n for w, n, _ in WARDS})
    options = {"clients_threshold": 30, "util_threshold": 80.0, "what_if": None}
    async with InfluxV1Writer(url=influx.url, database=DB, timeout=600) as client:
        for _ in range(runs):
            t0 = time.monotonic()
            await client.query("SELECT max(clients) FROM wifi_radio WHERE time > now() - 30d GROUP BY time(1h)",
                               epoch="ms")
            base_s.append(time.monotonic() - t0)
            t0 = time.monotonic()
            rep = await capacity.build(client, period=period, wards=[], cfg=cfg, options=options)
            report_s.append(time.monotonic() - t0)
            data = rep.data
    return report_s, base_s, data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not 1 <= args.days <= 31 or not 1 <= args.runs <= 10:
        ap.error("--days 1-31, --runs 1-10")
    wards = fleet()
    end_s = int(time.time()) // 3600 * 3600
    start_s = end_s - args.days * 86400
    series = sum(2 * len(w.ports) + 1 + 2 * len(w.aps) + len(w.cameras) for w in wards)
    print(f"fleet: {len(wards)} wards, {sum(len(w.ports) for w in wards)} switch ports, "
          f"{sum(len(w.aps) for w in wards)} APs ({2 * sum(len(w.aps) for w in wards)} radios), "
          f"{sum(len(w.cameras) for w in wards)} cameras; {series} series at {INTERVAL_S}s")
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        with start_influxdb(Path(tmp)) as influx:
            influx.create_database(DB)
            points, seconds = load(influx, wards, start_s=start_s, hours=args.days * 24)
            print(f"load: {points:,} points in {seconds:.1f}s ({points / seconds:,.0f} points/s)", flush=True)
            period = Period(start_ms=start_s * 1000, end_ms=end_s * 1000, tz=ZoneInfo("Asia/Ho_Chi_Minh"))
            report_s, base_s, data = asyncio.run(time_report(influx, period, args.runs))
    med_r, med_b = statistics.median(report_s), statistics.median(base_s)
    print(f"report capacity, {args.days} days: runs {', '.join(f'{s:.2f}' for s in report_s)} s, median {med_r:.2f} s")
    print(f"baseline (one max(clients) GROUP BY time(1h)): runs {', '.join(f'{s:.2f}' for s in base_s)} s, "
          f"median {med_b:.2f} s")
    print(f"ratio {med_r / med_b:.1f}; rows: wifi {len(data['wifi'])}, cameras {len(data['cameras'])}, "
          f"poe {len(data['poe'])}; target < 10 s: {'met' if med_r < 10 else 'MISSED'}")
    return 0 if med_r < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
