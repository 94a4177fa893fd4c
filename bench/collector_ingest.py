"""Collector ingest against InfluxDB's own ingest, on the same machine, in the same run.

Baseline: the same points as line protocol, POSTed straight to InfluxDB's /write in
batches of 5,000 (what InfluxDB can take at all). Ours: the points as wardwatch batches
(one batch per device poll, 25 interface readings + 1 status) published at QoS 1 to
Mosquitto, then the collector validates, converts, writes and acks. Both runs end when
InfluxDB reports every point; the ratio is ours / baseline throughput.

    .venv/bin/python bench/collector_ingest.py [--points 100000] [--runs 3]

Bounded: a fixed number of points per run and a 300 s deadline per run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from wardwatch import wire
from wardwatch.collector import lineproto
from wardwatch.simulators.lab import InfluxService, Service, free_port, script, start_influxdb, start_mosquitto

READINGS_PER_BATCH = 26
DEADLINE = 300.0


def make_batches(points: int, *, t0_ms: int) -> list[wire.Batch]:
    """Polls of 24-port switches across 13 wards, each reading a distinct series/time."""
    batches = []
    n_batches = points // READINGS_PER_BATCH
    for b in range(n_batches):
        ward = f"ward-{b % 13}"
        time_ms = t0_ms + b * 10
        readings = [wire.Reading(device=f"sw-{b % 50}", kind="switch", measurement="device_status", time_ms=time_ms,
                                 fields={"up": 1, "uptime_s": 12345.6, "poll_ms": 40.1, "reason": "ok"})]
        readings += [
            wire.Reading(device=f"sw-{b % 50}", kind="switch", measurement="if_traffic", time_ms=time_ms,
                         fields={"in_bps": 1e6 + i, "out_bps": 2e5 + i, "in_err_ps": 0.0, "out_err_ps": 0.0,
                                 "oper_up": 1, "speed_mbps": 1000.0, "util_pct": 0.1},
                         tags={"if_name": f"Gi1/0/{i + 1}"})
            for i in range(READINGS_PER_BATCH - 1)
        ]
        batches.append(wire.Batch(schema=1, agent=f"bench-{ward}", ward=ward, seq=b // 13, readings=readings))
    return batches


def count(influx: InfluxService, db: str) -> int:
    total = 0
    for measurement in ("device_status", "if_traffic"):
        rows = influx.points(f"SELECT count(up) FROM {measurement}" if measurement == "device_status"
                             else f"SELECT count(in_bps) FROM {measurement}", db=db)
        total += int(rows[0]["count"]) if rows else 0
    return total


def wait_all(influx: InfluxService, db: str, expected: int, started: float) -> float:
    while True:
        if count(influx, db) >= expected:
            return time.monotonic() - started
        if time.monotonic() - started > DEADLINE:
            raise SystemExit(f"bench: only {count(influx, db)} of {expected} points after {DEADLINE:g}s")
        time.sleep(0.2)


def baseline(influx: InfluxService, db: str, batches: list[wire.Batch]) -> float:
    lines = [line for b in batches for line in lineproto.batch_lines(b)]
    started = time.monotonic()
    for i in range(0, len(lines), 5000):
        body = b"\n".join(lines[i:i + 5000])
        req = urllib.request.Request(f"{influx.url}/write?db={db}&precision=ms", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 204
    return wait_all(influx, db, len(lines), started)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def ours(
    influx: InfluxService, broker: Service, db: str, batches: list[wire.Batch], run_dir: Path
) -> tuple[float, float]:
    cfg = run_dir / f"collector-{db}.yaml"
    cfg.write_text(yaml.safe_dump({
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "influx": {"api": "v1", "url": influx.url, "database": db},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "dead_letter": {"path": str(run_dir / f"dead-{db}.jsonl")},
    }))
    collector = script("wardwatch-collector", ["run", "-c", str(cfg), "--log-level", "WARNING"],
                       run_dir=run_dir, label=f"collector-{db}")
    collector.start()
    time.sleep(1.0)  # let it subscribe before the first publish (a fixed wait only in the bench, not in tests)
    try:
        pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.max_inflight_messages_set(1000)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        payloads = [(wire.readings_topic(b.ward, b.agent), wire.encode(b)) for b in batches]
        cpu0 = cpu_seconds(collector.pid)
        started = time.monotonic()
        infos = [pub.publish(topic, payload, qos=1) for topic, payload in payloads]
        for info in infos:
            info.wait_for_publish(timeout=60)
        elapsed = wait_all(influx, db, len(batches) * READINGS_PER_BATCH, started)
        cpu = cpu_seconds(collector.pid) - cpu0
        pub.loop_stop()
        pub.disconnect()
        return elapsed, cpu
    finally:
        collector.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ww-bench-") as tmp:
        run_dir = Path(tmp)
        with start_influxdb(run_dir) as influx, start_mosquitto(run_dir) as broker:
            base_rates, our_rates, cpu_per_kpt = [], [], []
            for run in range(args.runs):
                batches = make_batches(args.points, t0_ms=1_700_000_000_000 + run * 10_000_000)
                n = len(batches) * READINGS_PER_BATCH
                influx.create_database(f"base{run}")
                influx.create_database(f"ours{run}")
                t_base = baseline(influx, f"base{run}", batches)
                t_ours, cpu = ours(influx, broker, f"ours{run}", batches, run_dir)
                base_rates.append(n / t_base)
                our_rates.append(n / t_ours)
                cpu_per_kpt.append(cpu / n * 1000)
                print(f"run {run + 1}: {n} points  influx direct {n / t_base:,.0f}/s  "
                      f"via collector {n / t_ours:,.0f}/s  collector CPU {cpu:.2f}s", flush=True)
    b, o = statistics.median(base_rates), statistics.median(our_rates)
    print(f"\nmedian of {args.runs}: InfluxDB direct {b:,.0f} points/s, through MQTT + collector {o:,.0f} points/s, "
          f"ratio {o / b:.2f}; collector CPU {statistics.median(cpu_per_kpt) * 1000:.0f} us per point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
