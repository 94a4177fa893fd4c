"""Collector CPU per point, one collector against two in a share group, and the ratio
against InfluxDB's own ingest, on the same machine, in the same run.

    .venv/bin/python bench/collector_ingest.py [--points 260000] [--runs 3] [--profile DIR]

Per run, the points are switch polls as wardwatch batches (1 device_status + 25 if_traffic
readings each, from 13 agents with their seq numbers):

1. **CPU per point, sink not the bottleneck.** The collector subscribes once (its session
   stays at the broker) and stops; the batches are published at QoS 1 into its session;
   the collector starts again and drains the backlog into Debian's victoria-metrics
   (InfluxDB line protocol on /write). Its CPU (/proc, all threads) from its first
   /healthz answer until its ``points_written`` counts every point, over the points; the
   points are then counted in VictoriaMetrics too.
2. **Two collectors in a share group**, the same drain: the broker queues each member's
   share while both are away, then both drain at once. Throughput over (1)'s.
3. **Against InfluxDB 1.6.** Baseline: the same points as line protocol POSTed straight to
   InfluxDB's /write in batches of 5,000. Ours: published live at QoS 1 while the collector
   runs, written to InfluxDB; both end when InfluxDB counts every point. Ratio: ours / baseline.

``--profile DIR``: py-spy (the bench extra) records the collector during (1) of each run,
and its summary is printed. Bounded: a fixed number of points, 300 s per phase.
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
from collector_rig import (
    READINGS_PER_BATCH,
    CollectorProc,
    cpu_seconds,
    forget_session,
    make_batches,
    start_profile,
    stop_profile,
    summarize,
    wait_written,
)
from paho.mqtt.enums import CallbackAPIVersion

from wardwatch import wire
from wardwatch.collector import lineproto
from wardwatch.simulators.lab import InfluxService, Service, start_influxdb, start_mosquitto, start_victoria

DEADLINE = 300.0


def publish_all(port: int, batches: list[wire.Batch]) -> None:
    """Every batch at QoS 1, waiting for every PUBACK (a bounded in-flight window)."""
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        infos = [pub.publish(wire.readings_topic(b.ward, b.agent), wire.encode(b), qos=1) for b in batches]
        for info in infos:
            info.wait_for_publish(timeout=60)
    finally:
        pub.loop_stop()
        pub.disconnect()


def influx_count(influx: InfluxService, db: str) -> int:
    total = 0
    for q in ("SELECT count(up) FROM device_status", "SELECT count(in_bps) FROM if_traffic"):
        rows = influx.points(q, db=db)
        total += int(rows[0]["count"]) if rows else 0
    return total


def influx_wait(influx: InfluxService, db: str, expected: int, started: float) -> float:
    while True:
        if influx_count(influx, db) >= expected:
            return time.monotonic() - started
        if time.monotonic() - started > DEADLINE:
            raise SystemExit(f"bench: only {influx_count(influx, db)} of {expected} points after {DEADLINE:g}s")
        time.sleep(0.2)


def influx_direct(influx: InfluxService, db: str, batches: list[wire.Batch]) -> float:
    lines = [line for b in batches for line in lineproto.batch_lines(b)]
    started = time.monotonic()
    for i in range(0, len(lines), 5000):
        body = b"\n".join(lines[i:i + 5000])
        req = urllib.request.Request(f"{influx.url}/write?db={db}&precision=ms", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 204
    return influx_wait(influx, db, len(lines), started)


def vm_direct(vm: Service, batches: list[wire.Batch]) -> float:
    """The same points as line protocol straight to VictoriaMetrics' /write, 5,000 a POST:
    seconds until its last answer. It also creates the series, which the drains then reuse
    (a new series costs VictoriaMetrics far more than a sample)."""
    lines = [line for b in batches for line in lineproto.batch_lines(b)]
    started = time.monotonic()
    for i in range(0, len(lines), 5000):
        body = b"\n".join(lines[i:i + 5000])
        req = urllib.request.Request(f"http://127.0.0.1:{vm.port}/write?db=bench&precision=ms", data=body,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 204
    return time.monotonic() - started


def drain(run_dir: Path, broker: Service, vm: Service, batches: list[wire.Batch], *, label: str, members: int,
          profile: Path | None = None) -> tuple[float, float, list[int], dict[str, float]]:
    """``members`` collectors (a share group when 2+) drain a backlog of ``batches`` into
    VictoriaMetrics: (seconds, CPU seconds of all of them, points each wrote, CPU seconds
    of the broker and of VictoriaMetrics meanwhile)."""
    group = label if members > 1 else None
    procs = [CollectorProc(run_dir, f"{label}-{i}", broker_port=broker.port, influx_url=f"http://127.0.0.1:{vm.port}",
                           database="bench", share_group=group) for i in range(members)]
    for c in procs:  # subscribe once, so that the broker keeps each session while it is away
        c.start()
    for c in procs:
        c.stop()
    publish_all(broker.port, batches)
    expected = len(batches) * READINGS_PER_BATCH
    try:
        for c in procs:
            c.start(until_subscribed=False)
        cpu0 = [cpu_seconds(c.pid) for c in procs]
        others0 = {"broker": cpu_seconds(broker.pid), "victoria": cpu_seconds(vm.pid)}
        spy = start_profile(procs[0].pid, profile) if profile else None
        elapsed = wait_written(procs, expected, deadline_s=DEADLINE)
        cpu = sum(cpu_seconds(c.pid) - c0 for c, c0 in zip(procs, cpu0, strict=True))
        others = {"broker": cpu_seconds(broker.pid) - others0["broker"],
                  "victoria": cpu_seconds(vm.pid) - others0["victoria"]}
        stop_profile(spy)
        each = [c.written() for c in procs]
        return elapsed, cpu, each, others
    finally:
        for c in procs:
            c.stop()
            forget_session(broker.port, c.label)


def live_influx(run_dir: Path, broker: Service, influx: InfluxService, db: str,
                batches: list[wire.Batch]) -> tuple[float, float]:
    c = CollectorProc(run_dir, f"live-{db}", broker_port=broker.port, influx_url=influx.url, database=db)
    c.start()
    try:
        cpu0 = cpu_seconds(c.pid)
        started = time.monotonic()
        publish_all(broker.port, batches)
        elapsed = influx_wait(influx, db, len(batches) * READINGS_PER_BATCH, started)
        return elapsed, cpu_seconds(c.pid) - cpu0
    finally:
        c.stop()


def stages(batches: list[wire.Batch], reps: int = 7) -> dict[str, float]:
    """CPU per point of the collector's pure stages, in this process (best of ``reps``):
    decoding and checking a payload, and its line protocol."""
    from wardwatch.collector import seqlog

    msgs = [(wire.readings_topic(b.ward, b.agent), wire.encode(b)) for b in batches]
    decoded = [wire.decode_from(t, p) for t, p in msgs]
    n = len(batches) * READINGS_PER_BATCH
    work = {
        "decode + check": lambda: [wire.decode_from(t, p) for t, p in msgs],
        "line protocol": lambda: [lineproto.batch_lines(b) for b in decoded],
        "seq ledger line": lambda: [seqlog.record_line(b, "bench") for b in decoded],
    }
    best = dict.fromkeys(work, float("inf"))
    for _ in range(reps):
        for name, f in work.items():
            t0 = time.process_time()
            f()
            best[name] = min(best[name], time.process_time() - t0)
    return {name: t / n * 1e6 for name, t in best.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=260_000, help="points per drain (default 260,000)")
    ap.add_argument("--influx-points", type=int, default=60_000, help="points per InfluxDB phase (default 60,000)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", type=Path, metavar="DIR", help="py-spy raw stacks of each run's drain here")
    ap.add_argument("--skip-influx", action="store_true", help="only the VictoriaMetrics phases")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="run in DIR (logs, configs) and keep it")
    args = ap.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    parts = stages(make_batches(52_000, t0_ms=int(time.time() * 1000)))
    print("in-process stages, us CPU per point: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()), flush=True)
    rows: dict[str, list[float]] = {k: [] for k in ("vm", "us1", "rate1", "rate2", "us2", "base", "ours", "us_influx")}
    with tempfile.TemporaryDirectory(prefix="ww-bench-") as tmp:
        run_dir = args.keep or Path(tmp)
        with start_mosquitto(run_dir) as broker, start_influxdb(run_dir) as influx:
            vm = start_victoria(run_dir)
            try:
                for run in range(args.runs):
                    now_ms = int(time.time() * 1000) - 3_600_000 + run * 600_000
                    t_vm = vm_direct(vm, make_batches(args.points, t0_ms=now_ms - 7_200_000))
                    batches = make_batches(args.points, t0_ms=now_ms)
                    n = len(batches) * READINGS_PER_BATCH
                    rows["vm"].append(n / t_vm)
                    prof = args.profile / f"drain-{run + 1}.txt" if args.profile else None
                    t1, cpu1, _, o1 = drain(run_dir, broker, vm, batches, label=f"one{run}", members=1, profile=prof)
                    batches2 = make_batches(args.points, t0_ms=now_ms - 3_600_000)
                    t2, cpu2, each, o2 = drain(run_dir, broker, vm, batches2, label=f"two{run}", members=2)
                    rows["us1"].append(cpu1 / n * 1e6)
                    rows["rate1"].append(n / t1)
                    rows["rate2"].append(n / t2)
                    rows["us2"].append(cpu2 / n * 1e6)
                    print(f"run {run + 1}: {n} points into VictoriaMetrics: direct {n / t_vm:,.0f}/s; "
                          f"one collector {n / t1:,.0f}/s "
                          f"({cpu1 / n * 1e6:.1f} us CPU per point); two in a share group {n / t2:,.0f}/s "
                          f"({t1 / t2:.2f}x; {cpu2 / n * 1e6:.1f} us per point; split {each})\n"
                          f"       CPU meanwhile (cores busy): one: collector {cpu1 / t1:.2f}, broker "
                          f"{o1['broker'] / t1:.2f}, victoria {o1['victoria'] / t1:.2f}; two: collectors "
                          f"{cpu2 / t2:.2f}, broker {o2['broker'] / t2:.2f}, victoria {o2['victoria'] / t2:.2f}",
                          flush=True)
                    if prof:
                        print(summarize(prof))
                    if not args.skip_influx:
                        ib = make_batches(args.influx_points, t0_ms=now_ms - 40_000_000)
                        ni = len(ib) * READINGS_PER_BATCH
                        influx.create_database(f"base{run}")
                        influx.create_database(f"ours{run}")
                        t_base = influx_direct(influx, f"base{run}", ib)
                        t_ours, cpu_i = live_influx(run_dir, broker, influx, f"ours{run}", ib)
                        rows["base"].append(ni / t_base)
                        rows["ours"].append(ni / t_ours)
                        rows["us_influx"].append(cpu_i / ni * 1e6)
                        print(f"       {ni} points into InfluxDB 1.6: direct {ni / t_base:,.0f}/s, through MQTT + "
                              f"collector {ni / t_ours:,.0f}/s (ratio {t_base / t_ours:.2f}; collector "
                              f"{cpu_i / ni * 1e6:.1f} us CPU per point)", flush=True)
                expected = 3 * args.runs * (args.points // READINGS_PER_BATCH) * (READINGS_PER_BATCH - 1)
                stored = vm.count("if_traffic_in_bps")
                print(f"VictoriaMetrics holds {stored} if_traffic points of the {expected} sent")
            finally:
                vm.stop()
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print(f"\nmedian of {args.runs}: VictoriaMetrics direct {med['vm']:,.0f} points/s; "
          f"one collector {med['us1']:.1f} us CPU per point "
          f"({1e6 / med['us1']:,.0f} points per CPU-second), {med['rate1']:,.0f} points/s; two in a share group "
          f"{med['rate2']:,.0f} points/s = {med['rate2'] / med['rate1']:.2f}x ({med['us2']:.1f} us per point)")
    if "base" in med:
        print(f"InfluxDB 1.6: direct {med['base']:,.0f} points/s, "
              f"through MQTT + collector {med['ours']:,.0f} points/s, "
              f"ratio {med['ours'] / med['base']:.2f}; collector {med['us_influx']:.1f} us CPU per point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
