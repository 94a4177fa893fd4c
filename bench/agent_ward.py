"""A ward office's whole fleet in one agent: CPU and RSS against issue 13's goals.

The fleet (issue 13): 10 switches x 48 ports (PoE, LLDP, health), 40 APs (a Cisco WLC and
a Ruijie AC with 10 APs each, 10 UniFi and 10 MikroTik standalone), 60 cameras (every
brand the simulator has), all at ``--interval`` (60 s), with ICMP, the outbox and MQTT.
Simulators run in processes of their own (one snmpsim for every SNMP device, each under
its own community; ``wardwatch-sim cameras``), beside Mosquitto; their CPU is not the
agent's. This process stands in for the collector: it reads every batch the agent
publishes and sends the retained ``stored`` watermark back, so the outbox is deleted as
in a deployment (and nothing is resent for want of it).

The agent is ``wardwatch-agent run``, its own process. After ``--warmup`` seconds (first
polls, profile matches, cameras' clients and subscriptions), its CPU (user+sys from
/proc/PID/stat) is read at every ``--interval``: the figure is the median of those
per-interval shares of one core. RSS (VmRSS) is sampled every second over the same window:
the figure is its peak. Readings are counted per kind, so a figure comes with the polls
that made it.

    .venv/bin/python bench/agent_ward.py [--duration 720] [--warmup 120] [--interval 60]
                                         [--only snmp|camera] [--profile py-spy.txt]

``--only`` leaves out the other family (what each costs on its own). ``--profile FILE``
runs py-spy (the bench extra; ``make bench`` installs it) on the agent for the measured
window, 50 samples a second without pausing it, writes the collapsed stacks to FILE and
prints the functions with the most samples.

Bounded: ``--duration`` at most 1 h; every wait has a deadline; everything listens on
127.0.0.1; processes are stopped by PID.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from camera_poll import BIN, PASSWORD, USER, cpu_s, first_line, rss_mb, stop

from wardwatch import wire
from wardwatch.simulators.aps import ApSpec, render_ap, write_many
from wardwatch.simulators.lab import SnmpsimAgent, free_port, start_mosquitto, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

SWITCHES, CAMERAS = 10, 60
CONTROLLERS = (("cisco_wlc", 10), ("ruijie_ac", 10))  # (vendor, APs behind it)
STANDALONE = (("unifi", 10), ("mikrotik", 10))
GOAL_CORE_PCT, GOAL_RSS_MB = 3.0, 80.0


def recordings() -> dict[str, str]:
    """community -> snmprec: the ward's switches and APs."""
    out = {f"sw-{i:02d}": render(SwitchSpec(name=f"sw-{i:02d}", ports=48, seed=i, poe=True, lldp=True, health=True))
           for i in range(1, SWITCHES + 1)}
    for vendor, aps in CONTROLLERS:
        out[f"wlc-{vendor}"] = render_ap(ApSpec(vendor=vendor, name=f"wlc-{vendor}", seed=1, aps=aps))
    for vendor, count in STANDALONE:
        for i in range(1, count + 1):
            out[f"ap-{vendor}-{i:02d}"] = render_ap(ApSpec(vendor=vendor, name=f"ap-{vendor}-{i:02d}", seed=i))
    return out


class Collector:
    """Reads the agent's batches (readings per kind) and answers with the ``stored`` watermark."""

    def __init__(self, port: int, agent: str, ward: str) -> None:
        import paho.mqtt.client as mqtt

        self.agent, self.ward = agent, ward
        self.lock = threading.Lock()
        self.seqs: set[int] = set()
        self.watermark = 0
        self.readings: list[tuple[float, str, str]] = []  # (time, kind, measurement)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-ward-{os.getpid()}")

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            batch = wire.decode_from(msg.topic, msg.payload)
            with self.lock:
                self.seqs.add(batch.seq)
                self.watermark = max(self.watermark, batch.pending_from or 0)
                while self.watermark in self.seqs:
                    self.seqs.discard(self.watermark)
                    self.watermark += 1
                self.readings += [(r.time_ms / 1000, r.kind, r.measurement) for r in batch.readings]

        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(wire.readings_topic(ward, agent), qos=1)
        self.client.loop_start()

    def send_stored(self) -> None:
        with self.lock:
            watermark = self.watermark
            above = sorted(s for s in self.seqs if s > watermark)
        ranges: list[tuple[int, int]] = []
        for s in above:
            if ranges and ranges[-1][1] == s - 1:
                ranges[-1] = (ranges[-1][0], s)
            else:
                ranges.append((s, s))
        payload = wire.stored_payload(agent=self.agent, ward=self.ward, watermark=watermark,
                                      time_ms=int(time.time() * 1000), ranges=ranges[:wire.MAX_STORED_RANGES])
        self.client.publish(wire.stored_topic(self.ward, self.agent), payload, qos=1, retain=True)

    def polls(self, t0: float, t1: float) -> Counter[str]:
        """device_status readings per kind stamped inside [t0, t1)."""
        with self.lock:
            return Counter(k for t, k, m in self.readings if m == "device_status" and t0 <= t < t1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def agent_config(work: Path, *, mqtt_port: int, snmp_port: int, cams: list[dict[str, Any]], interval: float,
                 only: str | None) -> dict[str, Any]:
    every = f"{interval:g}s"
    auth: dict[str, Any] = {"cam": {"onvif": {"username": USER, "password": PASSWORD}}}
    devices: list[dict[str, Any]] = []
    if only != "camera":
        for community in recordings():
            auth[community] = {"snmp": {"version": "2c", "community": community}}
            kind = "switch" if community.startswith("sw-") else "ap"
            # snmpsim is slow (services.md) and answers every device from one process
            devices.append({"id": community, "kind": kind, "host": "127.0.0.1", "port": snmp_port,
                            "auth": community, "interval": every, "timeout": "5s", "retries": 1,
                            "max_repetitions": 25})
    if only != "snmp":
        devices += [{"id": c["id"], "kind": "camera", "host": c["host"], "port": c["onvif_port"], "auth": "cam",
                     "interval": every} for c in cams]
    return {"agent": {"id": "ward-bench", "ward": "bench"}, "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
            "outbox": {"path": str(work / "outbox.db")}, "auth": auth, "devices": devices}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = work / "snmp-data"
    write_many(data, recordings())
    mosq = start_mosquitto(work)
    snmpsim = start_snmpsim(work / "snmpsim", agents=[SnmpsimAgent(data_dir=data, port=free_port("udp"))])
    sim = agent = spy = None
    collector = None
    try:
        cams: list[dict[str, Any]] = []
        if args.only != "snmp":
            sim = subprocess.Popen([str(BIN / "wardwatch-sim"), "cameras", "--count", str(CAMERAS), "--brand", "mix",
                                    "--control-port", "0", "--user", USER, "--password", PASSWORD],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            cams = json.loads(first_line(sim, 120))["cameras"]
        cfg = agent_config(work, mqtt_port=mosq.port, snmp_port=snmpsim.port, cams=cams, interval=args.interval,
                           only=args.only)
        (work / "agent.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        collector = Collector(mosq.port, cfg["agent"]["id"], cfg["agent"]["ward"])
        with open(work / "agent.log", "w") as log:
            agent = subprocess.Popen([str(BIN / "wardwatch-agent"), "--log-level", "WARNING", "run", "-c",
                                      str(work / "agent.yaml")], stdout=log, stderr=log)
        start = time.time()
        end = start + args.duration
        while time.time() < start + args.warmup:
            time.sleep(min(5.0, max(0.0, start + args.warmup - time.time())))
            collector.send_stored()
        spy_bin = BIN / "py-spy" if (BIN / "py-spy").exists() else shutil.which("py-spy")
        if args.profile and spy_bin:
            spy = subprocess.Popen([str(spy_bin), "record", "--rate", "50", "--pid", str(agent.pid), "--format", "raw",
                                    "--output", args.profile, "--duration", str(int(args.duration - args.warmup)),
                                    "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        marks = [(t0, cpu_s(agent.pid))]
        peak = 0.0
        next_mark = t0 + args.interval
        while time.time() < end:
            time.sleep(1)
            if agent.poll() is not None:
                raise RuntimeError(f"the agent died: rc {agent.returncode}; see {work / 'agent.log'}")
            peak = max(peak, rss_mb(agent.pid)[0])
            if time.time() >= next_mark:
                marks.append((time.time(), cpu_s(agent.pid)))
                next_mark += args.interval
                collector.send_stored()
        t1 = marks[-1][0]
        shares = [100 * (c1 - c0) / (u1 - u0) for (u0, c0), (u1, c1) in itertools.pairwise(marks)]
        rss_end, hwm = rss_mb(agent.pid)
        time.sleep(3)  # readings of the last polls on their way
        polls = collector.polls(t0, t1)
        errors = [line for line in (work / "agent.log").read_text().splitlines() if "ERROR" in line]
        return {"window_s": t1 - t0, "core_pct": statistics.median(shares), "core_pct_all": shares,
                "rss_peak_mb": peak, "rss_end_mb": rss_end, "vm_hwm_mb": hwm, "polls": dict(polls),
                "devices": len(cfg["devices"]), "errors": errors[:5],
                "load": os.getloadavg()[0]}
    finally:
        if spy is not None:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        if collector is not None:
            collector.close()
        for p in (agent, sim):
            if p is not None:
                stop(p)
        snmpsim.stop()
        mosq.stop()


def summarize(path: str, top: int = 25) -> None:
    """py-spy's collapsed stacks -> the functions with the most samples, self and inclusive."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.split(" (", 1)[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    print(f"py-spy: {total} samples of the agent's threads (idle threads left out)")
    for title, table in (("self", own), ("inclusive", inclusive)):
        print(f"  top by {title}:")
        for frame, n in table.most_common(top):
            print(f"    {100 * n / max(total, 1):5.1f}%  {frame}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=720.0, help="seconds in all, warm-up included (default 720)")
    ap.add_argument("--warmup", type=float, default=120.0, help="seconds not measured (default 120)")
    ap.add_argument("--interval", type=float, default=60.0, help="every device's poll interval (default 60)")
    ap.add_argument("--only", choices=("snmp", "camera"), help="poll only this family")
    ap.add_argument("--profile", metavar="FILE", help="py-spy raw (collapsed) stacks of the window to FILE")
    args = ap.parse_args()
    if not (10 <= args.interval <= 600 and args.warmup + 2 * args.interval <= args.duration <= 3600):
        ap.error("--interval 10..600, --warmup + 2 intervals <= --duration <= 3600")
    with tempfile.TemporaryDirectory(prefix="ww-bench-ward-") as tmp:
        r = run(args, Path(tmp))
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, default=str),
          file=sys.stderr)
    fleet = f"{SWITCHES} switches x 48 ports, 40 APs, {CAMERAS} cameras" if args.only is None else f"only {args.only}"
    print(f"{fleet}: {r['devices']} devices every {args.interval:g}s; window {r['window_s']:.0f}s after "
          f"{args.warmup:g}s warm-up; load average at the end {r['load']:.2f}")
    print(f"  polls in the window: {r['polls']}")
    print(f"  CPU: median {r['core_pct']:.2f}% of one core per {args.interval:g}s "
          f"(each: {', '.join(f'{s:.2f}' for s in r['core_pct_all'])}); goal <= {GOAL_CORE_PCT:g}%: "
          f"{'met' if r['core_pct'] <= GOAL_CORE_PCT else 'MISSED'}")
    print(f"  RSS: peak {r['rss_peak_mb']:.1f} MB after warm-up (end {r['rss_end_mb']:.1f}, "
          f"VmHWM {r['vm_hwm_mb']:.1f}); goal <= {GOAL_RSS_MB:g} MB: "
          f"{'met' if r['rss_peak_mb'] <= GOAL_RSS_MB else 'MISSED'}")
    if r["errors"]:
        print(f"  agent ERROR lines (first 5): {r['errors']}")
    if args.profile and Path(args.profile).exists():
        summarize(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
