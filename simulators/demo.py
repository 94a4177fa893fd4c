"""``wardwatch-sim demo``: the whole Hội An pipeline as real processes, in the foreground.

Mosquitto, InfluxDB and one snmpsim (13 ward switches and their Wi-Fi APs) come from
wardwatch.simulators.lab; one ``wardwatch-sim cameras`` (every street camera of the city),
13 ``wardwatch-agent run`` and one ``wardwatch-collector run`` are started beside them.
Every process is stopped by PID on Ctrl-C, SIGTERM or the end of ``--duration``:
agents first, then the collector, then the services.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from wardwatch.simulators.fleet import CAMERA_PASSWORD, CAMERA_USER, WARDS, Fleet, camera_count, write_fleet
from wardwatch.simulators.lab import (
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

DATABASE = "wardwatch"
PROGRESS_EVERY_S = 15.0
WIFI_NAMES = {"cisco_wlc": "Cisco WLC:", "ruijie_ac": "Ruijie AC:", "aruba_instant": "Aruba Instant:",
              "unifi": "UniFi:", "mikrotik": "MikroTik:"}
STOP_TIMEOUT_S = 10.0
MARKER = ".wardwatch-demo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default="run/demo", help="configs, data and logs (wiped at start)")
    p.add_argument("--interval", default="10s", help="switch poll interval, e.g. 10s")
    p.add_argument("--ap-interval", default="30s", help="Wi-Fi AP and controller poll interval")
    p.add_argument("--camera-interval", default="30s", help="camera poll interval")
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
        print(f"demo: starting Mosquitto, InfluxDB, {len(WARDS)} simulated ward switches with their Wi-Fi APs "
              f"and the city's cameras in {run_dir}", flush=True)
        mqtt = start_mosquitto(run_dir / "services", max_queued_messages=0)
        services.append(mqtt)
        influx = start_influxdb(run_dir / "services")
        services.append(influx)
        influx.create_database(DATABASE)
        cameras, listing = _start_cameras(run_dir, camera_count(seed=args.seed), level)
        services.append(cameras)
        http_port = free_port("tcp")
        token = secrets.token_urlsafe(18)
        fleet = write_fleet(
            run_dir / "fleet",
            mqtt_port=mqtt.port,
            influx_url=influx.url,
            influx_database=DATABASE,
            http_port=http_port,
            http_token=token,
            interval=args.interval,
            ap_interval=args.ap_interval,
            camera_interval=args.camera_interval,
            cameras=listing["cameras"],
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
        _print_banner(fleet, influx, http_port, token, services, children, run_dir, str(listing.get("control_url")))
        return _watch(stop, influx, fleet, services, children, args.duration)
    except ServiceError as exc:
        if stop.is_set():  # Ctrl-C while starting also reaches the services; not a failure
            return 0
        print(f"demo: a service failed to start:\n{exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        _stop_all(children, services)


def _start_cameras(run_dir: Path, count: int, level: str) -> tuple[Service, dict[str, Any]]:
    """One ``wardwatch-sim cameras`` for the whole city, on ephemeral ports; ready once it has
    written its listing (id, brand, host, ONVIF port of every camera)."""
    listing_path = run_dir / "fleet" / "cameras.json"
    listing_path.parent.mkdir(parents=True, exist_ok=True)
    args = ["--log-level", level, "cameras", "--count", str(count), "--brand", "mix", "--id-prefix", "cam",
            "--user", CAMERA_USER, "--password", CAMERA_PASSWORD, "--control-port", "0", "--output", str(listing_path)]
    service = script("wardwatch-sim", args, run_dir=run_dir / "services" / "cameras", label="cameras")
    service.ready = lambda _service, _timeout: _read_listing(listing_path) is not None
    service.start()
    listing = _read_listing(listing_path)
    if listing is None:
        raise ServiceError(f"cameras: {listing_path} vanished after the camera simulator wrote it")
    return service, listing


def _read_listing(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet, or half written
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("cameras"), list) else None


def _watch(
    stop: threading.Event,
    influx: InfluxService,
    fleet: Fleet,
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
            total = len(services) + len(children)
            print(f"[{now - started:5.0f}s] {_progress(influx, fleet)}; processes up {alive}/{total}", flush=True)
        if duration and now - started >= duration:
            break
    print(f"demo: stopping ({_progress(influx, fleet)})", flush=True)
    return 1 if dead else 0


# The newest reading of every Wi-Fi radio and camera, then summed: what the city has right now.
RADIOS_NOW = "SELECT sum(c) AS clients, count(c) AS radios FROM (SELECT last(clients) AS c FROM wifi_radio " \
    "WHERE time > now() - 5m GROUP BY ward, device, ap, radio)"
CAMERAS_NOW = "SELECT sum(o) AS ok, count(o) AS cameras FROM (SELECT last(ok) AS o FROM camera_health " \
    "WHERE time > now() - 5m GROUP BY ward, device)"


def _progress(influx: InfluxService, fleet: Fleet) -> str:
    try:
        per_ward = influx.points("SELECT count(in_bps) FROM if_traffic GROUP BY ward", db=DATABASE)
        status = influx.points("SELECT count(up) FROM device_status", db=DATABASE)
        wifi_wards = influx.points("SELECT count(clients) FROM wifi_radio GROUP BY ward", db=DATABASE)
        radios = influx.points(RADIOS_NOW, db=DATABASE)
        cameras = influx.points(CAMERAS_NOW, db=DATABASE) if fleet.cameras_in_agents else []
    except ServiceError as exc:
        return f"InfluxDB query failed: {exc}"
    wards = {r["ward"] for r in per_ward if r["count"]}
    missing = [w for w, _, _ in WARDS if w not in wards]
    now = radios[0] if radios else {"clients": 0, "radios": 0}
    text = (
        f"wards with if_traffic rates {len(wards)}/{len(WARDS)}, "
        f"if_traffic rate points {sum(r['count'] for r in per_ward)}, "
        f"device_status points {status[0]['count'] if status else 0}, "
        f"wards with AP radios {sum(1 for r in wifi_wards if r['count'])}/{len(WARDS)}, "
        f"AP radios {now['radios']}/{fleet.radios()}, AP clients {now['clients'] or 0}"
    )
    if fleet.cameras_in_agents:
        ok = cameras[0] if cameras else {"ok": 0, "cameras": 0}
        text += f", cameras OK {ok['ok'] or 0}/{fleet.cameras()} ({ok['cameras']} reporting)"
    if 0 < len(missing) <= 4:
        text += f" (waiting for {', '.join(missing)})"
    return text


def _print_banner(
    fleet: Fleet,
    influx: InfluxService,
    http_port: int,
    token: str,
    services: list[Service],
    children: list[Service],
    run_dir: Path,
    camera_control: str,
) -> None:
    cli = f"influx -host {influx.host} -port {influx.port} -database {DATABASE} -execute"
    sample = fleet.ward("cam-pho").switch.port_specs()[0]
    wifi: dict[str, list[str]] = {}
    for site in fleet.wards:
        wifi.setdefault(site.aps[0].spec.vendor, []).append(f"{site.ward} ({len(site.aps[0].spec.ap_names())} APs)"
                                                            if site.aps[0].spec.controller else
                                                            f"{site.ward} ({len(site.aps)} APs)")
    brands: dict[str, int] = {}
    for cam in (c for site in fleet.wards for c in site.cameras):
        brands[cam.brand] = brands.get(cam.brand, 0) + 1
    in_agents = "polled by the agents" if fleet.cameras_in_agents else (
        "served, NOT in the agents' configs (fleet.CAMERAS_IN_AGENTS is off)")
    lines = [
        "",
        "wardwatch demo is running. Processes:",
        *(f"  {s.name:<22} pid {s.pid}" for s in services),
        *(f"  {c.name:<22} pid {c.pid}" for c in children),
        "",
        f"InfluxDB     {influx.url}  database {DATABASE}",
        f"dashboard    http://127.0.0.1:{http_port}/   log in with the token {token}",
        f"alerts       http://127.0.0.1:{http_port}/alerts, on MQTT wardwatch/v1/alerts/#, "
        f"API curl -H 'Authorization: Bearer {token}' http://127.0.0.1:{http_port}/api/v1/alerts",
        f"collector    http://127.0.0.1:{http_port}/healthz",
        f"logs         {run_dir / 'logs'}  (services: {run_dir / 'services'})",
        f"configs      {fleet.base_dir / 'agents'}, {fleet.collector_config}",
        f"Wi-Fi        {fleet.radios()} radios: "
        + "; ".join(f"{WIFI_NAMES.get(v, v)} {', '.join(w)}" for v, w in wifi.items()),
        f"cameras      {fleet.cameras()} ({', '.join(f'{n} {b}' for b, n in sorted(brands.items()))}), {in_agents};",
        f"             control {camera_control}/cameras, listing {fleet.base_dir / 'cameras.json'}",
        "",
        "Look at the data (first points after one or two poll intervals):",
        f"  {cli} 'SHOW TAG VALUES FROM if_traffic WITH KEY = ward'",
        f"  {cli} \"SELECT mean(in_bps) FROM if_traffic WHERE ward='cam-pho' AND time > now() - 5m GROUP BY if_name\"",
        f"  {cli} 'SELECT last(up) AS up, last(uptime_s) AS uptime_s FROM device_status GROUP BY ward'",
        f"  {cli} 'SELECT last(clients) AS clients, last(channel) AS channel FROM wifi_radio GROUP BY ward, ap, radio'",
        f"  {cli} 'SELECT last(consumption_w) AS watts, last(budget_w) AS budget FROM poe GROUP BY ward, pse'",
        f"cam-pho sw-core {sample.name} should read in_bps = {sample.in_bps}, out_bps = {sample.out_bps}.",
        *(
            [
                f"Break a camera: cam-pho {cam.id} is simulator camera {cam.sim_id}:",
                f"  curl -X POST {camera_control}/cameras/{cam.sim_id}/faults -d '{{\"offline\": true}}'",
                f"  {cli} \"SELECT last(reason) FROM camera_health WHERE ward='cam-pho' GROUP BY device\"",
            ]
            if fleet.cameras_in_agents and (cam := fleet.ward("cam-pho").cameras[0]).sim_id
            else []
        ),
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
