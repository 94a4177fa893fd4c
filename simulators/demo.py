"""``wardwatch-sim demo``: the whole Hội An pipeline as real processes, in the foreground.

Mosquitto, InfluxDB and one snmpsim (13 ward switches) come from wardwatch.services;
13 ``wardwatch-agent run`` and one ``wardwatch-collector run`` are started beside them.
Every process is stopped by PID on Ctrl-C, SIGTERM or the end of ``--duration``:
agents first, then the collector, then the services.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from wardwatch.services import (
    InfluxService,
    Service,
    ServiceError,
    SnmpsimAgent,
    free_port,
    script,
    start_influxdb,
    start_mosquitto,
    start_snmpsim,
)
from wardwatch.simulators.fleet import WARDS, Fleet, write_fleet

DATABASE = "wardwatch"
PROGRESS_EVERY_S = 15.0
STOP_TIMEOUT_S = 10.0
MARKER = ".wardwatch-demo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default="run/demo", help="configs, data and logs (wiped at start)")
    p.add_argument("--interval", default="10s", help="agent poll interval, e.g. 10s")
    p.add_argument("--duration", type=float, default=0.0, help="stop after SECONDS; 0 = until Ctrl-C")
    p.add_argument("--seed", type=int, default=0, help="varies the switches' port roles and rates")


def _prepare_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        if not (run_dir / MARKER).exists():
            raise SystemExit(f"demo: {run_dir} exists and is not a demo run dir; pick another --run-dir")
        shutil.rmtree(run_dir)
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / MARKER).write_text("written by wardwatch-sim demo; the demo wipes this dir at start\n")


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir).resolve()
    _prepare_run_dir(run_dir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    level = args.log_level

    services: list[Service] = []
    children: list[Service] = []
    try:
        print(f"demo: starting Mosquitto, InfluxDB and {len(WARDS)} simulated switches in {run_dir}", flush=True)
        mqtt = start_mosquitto(run_dir / "services", max_queued_messages=0)
        services.append(mqtt)
        influx = start_influxdb(run_dir / "services")
        services.append(influx)
        influx.create_database(DATABASE)
        http_port = free_port("tcp")
        fleet = write_fleet(
            run_dir / "fleet",
            mqtt_port=mqtt.port,
            influx_url=influx.url,
            influx_database=DATABASE,
            http_port=http_port,
            interval=args.interval,
            seed=args.seed,
        )
        agents = [SnmpsimAgent(data_dir=w.data_dir, port=w.snmp_port, host=w.snmp_host) for w in fleet.wards]
        services.append(start_snmpsim(run_dir / "services", agents=agents))

        logs, log_level = run_dir / "logs", ["--log-level", level]
        children.append(
            script(
                "wardwatch-collector",
                ["run", "-c", str(fleet.collector_config), *log_level],
                run_dir=logs,
                label="collector",
            )
        )
        children += [
            script(
                "wardwatch-agent", ["run", "-c", str(w.agent_config), *log_level], run_dir=logs, label=f"agent {w.ward}"
            )
            for w in fleet.wards
        ]
        for child in children:
            child.start()
        _print_banner(fleet, influx, http_port, services, children, run_dir)
        return _watch(stop, influx, services, children, args.duration)
    except ServiceError as exc:
        if stop.is_set():  # Ctrl-C while starting also reaches the services; not a failure
            return 0
        print(f"demo: a service failed to start:\n{exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        _stop_all(children, services)


def _watch(
    stop: threading.Event,
    influx: InfluxService,
    services: list[Service],
    children: list[Service],
    duration: float,
) -> int:
    started = time.monotonic()
    next_progress = started + PROGRESS_EVERY_S
    dead: set[str] = set()
    while not stop.wait(0.5):
        now = time.monotonic()
        for proc in [*services, *children]:
            if proc.name not in dead and not proc.running():
                dead.add(proc.name)
                tail = "\n".join("    " + line for line in proc.log_tail(15).splitlines())
                print(f"!! {proc.name} (pid {proc.pid}) exited unexpectedly; last log lines:\n{tail}", flush=True)
        if now >= next_progress:
            next_progress += PROGRESS_EVERY_S
            alive = sum(p.running() for p in [*services, *children])
            print(
                f"[{now - started:5.0f}s] {_progress(influx)}; processes up {alive}/{len(services) + len(children)}",
                flush=True,
            )
        if duration and now - started >= duration:
            break
    print(f"demo: stopping ({_progress(influx)})", flush=True)
    return 1 if dead else 0


def _progress(influx: InfluxService) -> str:
    try:
        per_ward = influx.points("SELECT count(in_bps) FROM if_traffic GROUP BY ward", db=DATABASE)
        status = influx.points("SELECT count(up) FROM device_status", db=DATABASE)
    except ServiceError as exc:
        return f"InfluxDB query failed: {exc}"
    wards = {r["ward"] for r in per_ward if r["count"]}
    missing = [w for w, _, _ in WARDS if w not in wards]
    text = (
        f"wards with if_traffic rates {len(wards)}/{len(WARDS)}, "
        f"if_traffic rate points {sum(r['count'] for r in per_ward)}, "
        f"device_status points {status[0]['count'] if status else 0}"
    )
    if 0 < len(missing) <= 4:
        text += f" (waiting for {', '.join(missing)})"
    return text


def _print_banner(
    fleet: Fleet,
    influx: InfluxService,
    http_port: int,
    services: list[Service],
    children: list[Service],
    run_dir: Path,
) -> None:
    cli = f"influx -host {influx.host} -port {influx.port} -database {DATABASE} -execute"
    sample = fleet.ward("cam-pho").switch.port_specs()[0]
    lines = [
        "",
        "wardwatch demo is running. Processes:",
        *(f"  {s.name:<22} pid {s.pid}" for s in services),
        *(f"  {c.name:<22} pid {c.pid}" for c in children),
        "",
        f"InfluxDB     {influx.url}  database {DATABASE}",
        f"collector    http://127.0.0.1:{http_port}/healthz",
        f"logs         {run_dir / 'logs'}  (services: {run_dir / 'services'})",
        f"configs      {fleet.base_dir / 'agents'}, {fleet.collector_config}",
        "",
        "Look at the data (first points after one or two poll intervals):",
        f"  {cli} 'SHOW TAG VALUES FROM if_traffic WITH KEY = ward'",
        f"  {cli} \"SELECT mean(in_bps) FROM if_traffic WHERE ward='cam-pho' AND time > now() - 5m GROUP BY if_name\"",
        f"  {cli} 'SELECT last(up) AS up, last(uptime_s) AS uptime_s FROM device_status GROUP BY ward'",
        f"cam-pho sw-core {sample.name} should read in_bps = {sample.in_bps}, out_bps = {sample.out_bps}.",
        "",
        f"Progress every {PROGRESS_EVERY_S:g} s. Ctrl-C stops everything.",
    ]
    print("\n".join(lines), flush=True)


def _stop_all(children: list[Service], services: list[Service]) -> None:
    if not children and not services:
        return
    for child in children:  # agents first, so their last readings can still reach the collector
        if child.name != "collector":
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        if child.name != "collector":
            child.wait_or_kill(deadline)
    for child in children:
        if child.name == "collector":
            child.terminate()
            child.wait_or_kill(time.monotonic() + STOP_TIMEOUT_S)
    for service in reversed(services):
        service.stop()
    print(f"demo: stopped {len(children) + len(services)} processes (pid {os.getpid()} exiting)", flush=True)
