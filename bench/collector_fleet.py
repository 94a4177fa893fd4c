"""The whole pipeline at fleet sizes: reading to queryable, nothing lost, and who uses the CPU.

    .venv/bin/python bench/collector_fleet.py [--devices 546,1000,4000,8000,16000] [--duration 60] [--interval 30]

A synthetic agent publisher (this file with ``--publish``, a process of its own) speaks
our wire format: one agent per ward of 42 devices (Hội An's size per ward: 4 switches,
13 APs, 25 cameras), each device polled every ``--interval`` seconds at its own phase,
one batch per poll with the agent's ``seq`` and ``pending_from`` (its lowest seq the broker
has not acknowledged yet), at QoS 1 through one paho connection with 1,000 in flight. A
switch poll is 1 device_status + 28 if_traffic + 24 poe readings, an AP's 1 + 2 wifi_radio +
3 wifi_ssid, a camera's 1 device_status + camera_health + camera_event. Every reading's
time is its publish time.

→ Mosquitto → one wardwatch-collector (flush_interval 1 s, its default) → InfluxDB 1.6.

Per fleet size, for ``--duration`` seconds:
- **reading to queryable**: a prober asks InfluxDB every 50 ms for the device_status points
  of the first 13 wards (546 devices, at every size) newer than it has seen; a point's
  latency is when it was first seen minus its time (so up to 50 ms + a query too long,
  never shorter); p50 and p99 over all of them;
- **nothing lost**: after the publisher stops, every point published is counted in
  InfluxDB, and the seq ledger's ``missing`` (collector /healthz, reconcile every 2 s) is 0;
- **CPU**: each process's share of the box (cores busy / cores): publisher, broker,
  collector, InfluxDB.
The largest size is the largest whose points all land with missing 0 and p99 under 10 s.
Bounded: fixed sizes and durations; each size ends within ``duration`` + 120 s.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from collector_rig import CollectorProc, cpu_seconds

from wardwatch import wire
from wardwatch.simulators.lab import InfluxService, Service, start_influxdb, start_mosquitto

DEVICES_PER_AGENT = 42
SWITCHES, APS = 4, 13  # of every 42; the rest cameras
P99_LIMIT_S = 10.0
# The prober reads the first 13 wards' device_status only (546 devices: the city), at every
# fleet size, so that its own query costs the same whatever the fleet.
PROBED_WARDS = "^ward-([0-9]|1[0-2])$"


# --------------------------------------------------------------------------- the publisher process


def device_readings(kind: str, device: str, t: int) -> list[dict[str, Any]]:
    status = {"device": device, "kind": kind, "measurement": "device_status", "time_ms": t,
              "fields": {"up": 1, "uptime_s": 86400.5, "poll_ms": 41.2, "reason": "ok"}}
    if kind == "switch":
        return [status,
                *({"device": device, "kind": kind, "measurement": "if_traffic", "time_ms": t,
                   "fields": {"in_bps": 123456.7 + i, "out_bps": 23456.1, "in_err_ps": 0.0, "out_err_ps": 0.0,
                              "oper_up": 1, "speed_mbps": 1000.0, "util_pct": 1.3},
                   "tags": {"if_name": f"Gi1/0/{i + 1}"}} for i in range(28)),
                *({"device": device, "kind": kind, "measurement": "poe", "time_ms": t,
                   "fields": {"power_w": 6.5, "status": 3}, "tags": {"if_name": f"Gi1/0/{i + 1}"}}
                  for i in range(24))]
    if kind == "ap":
        return [status,
                *({"device": device, "kind": kind, "measurement": "wifi_radio", "time_ms": t,
                   "fields": {"clients": 12, "channel": 6, "util_pct": 35.5}, "tags": {"radio": r}}
                  for r in ("2.4GHz", "5GHz")),
                *({"device": device, "kind": kind, "measurement": "wifi_ssid", "time_ms": t,
                   "fields": {"clients": 5}, "tags": {"ssid": s}} for s in ("city", "guest", "staff"))]
    return [status,
            {"device": device, "kind": kind, "measurement": "camera_health", "time_ms": t,
             "fields": {"online": 1, "clock_skew_s": 0.4, "snapshot_ms": 120.0}},
            {"device": device, "kind": kind, "measurement": "camera_event", "time_ms": t,
             "fields": {"tamper": 0, "video_loss": 0, "motion": 2}}]


def publisher(port: int, devices: int, interval: float, duration: float, out: Path) -> int:
    """Publish for ``duration`` s; write what was published (points, batches per agent) to ``out``."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    agents = (devices + DEVICES_PER_AGENT - 1) // DEVICES_PER_AGENT
    fleet = []
    for d in range(devices):
        a, i = divmod(d, DEVICES_PER_AGENT)
        kind = "switch" if i < SWITCHES else "ap" if i < SWITCHES + APS else "camera"
        fleet.append((a, kind, f"{kind[:3]}-{i}"))
    names = [(f"ward-{a}", f"agent-{a}") for a in range(agents)]
    seq = [0] * agents
    unacked: list[dict[int, None]] = [{} for _ in range(agents)]  # seqs in flight, in order
    by_mid: dict[int, tuple[int, int]] = {}
    lock = threading.Lock()
    encoder = __import__("msgspec").json.Encoder()

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)

    early: set[int] = set()  # PUBACKs that came before publish() returned their mid

    def on_publish(c: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
        # paho calls this holding its own locks: never publish while holding ``lock``.
        with lock:
            a, s = by_mid.pop(mid, (-1, -1))
            if a >= 0:
                unacked[a].pop(s, None)
            else:
                early.add(mid)

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    rng = random.Random(1)
    start = time.time()
    due = [(start + rng.random() * interval, d) for d in range(devices)]
    heapq.heapify(due)
    points = 0
    infos = []
    end = start + duration
    while due and due[0][0] < end:
        when, d = heapq.heappop(due)
        delay = when - time.time()
        if delay > 0:
            time.sleep(delay)
        a, kind, device = fleet[d]
        ward, agent = names[a]
        t = int(time.time() * 1000)
        readings = device_readings(kind, device, t)
        with lock:
            s = seq[a]
            seq[a] += 1
            unacked[a][s] = None
            pending_from = next(iter(unacked[a]))
        payload = encoder.encode({"schema": 1, "agent": agent, "ward": ward, "seq": s, "readings": readings,
                                  "pending_from": pending_from, "dropped": 0})
        info = client.publish(wire.readings_topic(ward, agent), payload, qos=1)
        with lock:
            if info.mid in early:
                early.discard(info.mid)
                unacked[a].pop(s, None)
            else:
                by_mid[info.mid] = (a, s)
        infos.append(info)
        points += len(readings)
        heapq.heappush(due, (when + interval, d))
    # A last batch per agent whose pending_from is past every seq acked, so that the ledger's
    # floor reaches the end: it carries one device_status reading.
    for info in infos:
        info.wait_for_publish(timeout=60)
    for a, (ward, agent) in enumerate(names):
        t = int(time.time() * 1000)
        payload = encoder.encode({"schema": 1, "agent": agent, "ward": ward, "seq": seq[a],
                                  "readings": device_readings("camera", "end", t)[:1], "pending_from": seq[a],
                                  "dropped": 0})
        client.publish(wire.readings_topic(ward, agent), payload, qos=1).wait_for_publish(timeout=60)
        seq[a] += 1
        points += 1
    client.loop_stop()
    client.disconnect()
    out.write_text(json.dumps({"points": points, "batches": sum(seq), "agents": agents,
                               "seconds": time.time() - start}))
    return 0


# --------------------------------------------------------------------------- the prober


class Prober(threading.Thread):
    """Every 50 ms: the device_status points newer than the newest seen; their latencies."""

    def __init__(self, influx: InfluxService, db: str, since_ms: int) -> None:
        super().__init__(daemon=True)
        self.influx, self.db, self.seen_ms = influx, db, since_ms
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                rows = self.influx.points(f"SELECT up FROM device_status WHERE time > {self.seen_ms}ms "
                                          f"AND ward =~ /{PROBED_WARDS}/", db=self.db, epoch="ms")
            except Exception:  # a slow query under load: ask again
                continue
            now_ms = time.time() * 1000
            for r in rows:
                self.latencies.append((now_ms - r["time"]) / 1000)
                self.seen_ms = max(self.seen_ms, r["time"])


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


def count_points(influx: InfluxService, db: str) -> int:
    total = 0
    for m, f in (("device_status", "up"), ("if_traffic", "in_bps"), ("poe", "power_w"), ("wifi_radio", "channel"),
                 ("wifi_ssid", "clients"), ("camera_health", "online"), ("camera_event", "motion")):
        rows = influx.points(f"SELECT count({f}) FROM {m}", db=db)
        total += int(rows[0]["count"]) if rows else 0
    return total


def one_size(run_dir: Path, broker: Service, influx: InfluxService, devices: int, args: argparse.Namespace
             ) -> dict[str, Any]:
    db = f"fleet{devices}"
    influx.create_database(db)
    col = CollectorProc(run_dir, f"fleet-{devices}", broker_port=broker.port, influx_url=influx.url, database=db,
                        top={"reconcile_interval": "2s"})
    col.start()
    out = run_dir / f"published-{devices}.json"
    procs = {"broker": broker.pid, "collector": col.pid, "influxdb": influx.pid}
    cpu0 = {k: cpu_seconds(p) for k, p in procs.items()}
    prober = Prober(influx, db, int(time.time() * 1000))
    prober.start()
    t0 = time.monotonic()
    pub = subprocess.Popen([sys.executable, __file__, "--publish", str(broker.port), str(devices),
                            str(args.interval), str(args.duration), str(out)])
    try:
        pub_cpu = 0.0
        while pub.poll() is None:
            pub_cpu = max(pub_cpu, cpu_seconds(pub.pid))
            time.sleep(0.2)
            if time.monotonic() - t0 > args.duration + 120:
                pub.kill()
                raise SystemExit("bench: the publisher did not finish in time")
        wall = time.monotonic() - t0
        cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in procs.items()}
        cpu["publisher"] = pub_cpu
        if pub.returncode != 0:
            raise SystemExit(f"bench: the publisher failed ({pub.returncode})")
        published = json.loads(out.read_text())
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline:
            stored = count_points(influx, db)
            if stored >= published["points"]:
                break
            time.sleep(0.5)
        time.sleep(0.3)
        prober.stop.set()
        prober.join(5)
        ledger: dict[str, Any] = {}
        while time.monotonic() < deadline + 30:  # the ledger settles after a reconcile or two
            h = col.health() or {}
            ledger = h.get("ledger", {})
            settled = [a for a in ledger.values() if a["in_flight"] == 0]
            if len(ledger) == published["agents"] and len(settled) == len(ledger):
                break
            time.sleep(0.5)
        health = col.health() or {}
    finally:
        if pub.poll() is None:
            pub.kill()
        col.stop()
    n_cores = os.cpu_count() or 1
    return {
        "devices": devices, "agents": published["agents"], "points": published["points"], "stored": stored,
        "batches": published["batches"], "points_per_s": published["points"] / published["seconds"],
        "missing": sum(a["missing"] for a in ledger.values()),
        "in_flight": sum(a["in_flight"] for a in ledger.values()),
        "ledger_agents": len(ledger), "invalid": health.get("counters", {}).get("invalid"),
        "p50": pct(prober.latencies, 50), "p99": pct(prober.latencies, 99), "samples": len(prober.latencies),
        "share": {k: v / wall / n_cores for k, v in cpu.items()},
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        port, devices, interval, duration, out = sys.argv[2:7]
        return publisher(int(port), int(devices), float(interval), float(duration), Path(out))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", default="546,1000,4000,8000,16000", help="fleet sizes, comma-separated")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of publishing per size (default 60)")
    ap.add_argument("--interval", type=float, default=30.0, help="every device's poll interval (default 30)")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="run in DIR and keep it")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="ww-fleet-") as tmp:
        run_dir = args.keep or Path(tmp)
        run_dir.mkdir(parents=True, exist_ok=True)
        with start_mosquitto(run_dir) as broker, start_influxdb(run_dir) as influx:
            for devices in (int(x) for x in args.devices.split(",")):
                r = one_size(run_dir, broker, influx, devices, args)
                results.append(r)
                s = r["share"]
                print(f"{devices} devices ({r['agents']} agents): {r['points_per_s']:,.0f} points/s, "
                      f"{r['stored']}/{r['points']} points stored, ledger missing {r['missing']} "
                      f"(in flight {r['in_flight']}, {r['ledger_agents']} agents), invalid {r['invalid']}; "
                      f"reading to queryable p50 {r['p50']:.2f} s p99 {r['p99']:.2f} s ({r['samples']} points); "
                      f"CPU share of the box: publisher {s['publisher']:.1%}, broker {s['broker']:.1%}, "
                      f"collector {s['collector']:.1%}, InfluxDB {s['influxdb']:.1%}", flush=True)
    ok = [r for r in results if r["stored"] >= r["points"] and r["missing"] == 0 and r["p99"] < P99_LIMIT_S]
    if ok:
        best = max(ok, key=lambda r: r["devices"])
        print(f"\nlargest fleet sustained here: {best['devices']} devices, {best['points_per_s']:,.0f} points/s, "
              f"nothing lost; p50 {best['p50']:.2f} s, p99 {best['p99']:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
