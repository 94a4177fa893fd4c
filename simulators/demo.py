"""``wardwatch-sim demo``: the whole of Hội An as real processes, in the foreground.

Mosquitto, InfluxDB and one snmpsim (every switch, AP and controller of the 13 wards, an
endpoint per ward) come from wardwatch.simulators.lab; one ``wardwatch-sim cameras`` (every
street camera of the city), 13 ``wardwatch-agent run`` and one ``wardwatch-collector run``
(dashboard and alerts) are started beside them. Each agent reaches the broker through its
ward's uplink, a relay in this process that the scenario can cut; the collector's alert
notices go to MQTT and to a webhook receiver here that logs them. The scenario
(simulators/scenario.py) plays its faults. Every process is stopped by PID on Ctrl-C,
SIGTERM or the end of ``--duration``: agents first, then the collector, then the services.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from wardwatch.config import ConfigError, _parse_duration
from wardwatch.simulators.fleet import (
    CAMERA_PASSWORD,
    CAMERA_USER,
    WARDS,
    Fleet,
    camera_count,
    write_fleet,
)
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
from wardwatch.simulators.scenario import (
    SHIPPED,
    Runner,
    Scenario,
    UplinkRelay,
    load_scenario,
    quiet_devices,
    touched_devices,
)

DATABASE = "wardwatch"
PROGRESS_EVERY_S = 15.0
STOP_TIMEOUT_S = 10.0
MARKER = ".wardwatch-demo"
# --fast: the Wi-Fi day in 5 minutes, shorter polls, the alert rules' timers a quarter.
FAST_SPEED = 288.0
FAST_RULES = 4.0
# snmpsim serves ~3,000 rows a second on one core, and one round of the city's SNMP devices
# is ~28,000 rows: the switches every 60 s (30 s with --fast) leave it most of a core free.
# --fast polls the devices its scenario touches every 10 s.
FAST_INTERVALS = {"interval": "30s", "ap_interval": "15s", "camera_interval": "20s"}
NORMAL_INTERVALS = {"interval": "60s", "ap_interval": "60s", "camera_interval": "60s"}
FAST_TOUCHED = "10s"
# The agents start spread over this long: polls of the same interval keep their phase, and 13
# agents started at once would ask snmpsim for every device of the city in the same 10 s
# every minute (timeouts from its queue).
AGENTS_OVER_S = 24.0
RULE_TIMES = ("for", "clear_for", "keep_firing_for", "window", "stable_for")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default="run/demo", help="configs, data and logs (wiped at start)")
    p.add_argument("--fast", action="store_true",
                   help="compress time: the Wi-Fi day in 5 minutes, polls every 15-30 s (the scenario's "
                   "devices 10 s), the scenario divided by its `fast`, the alert rules' timers by 4")
    p.add_argument("--scenario", default=str(SHIPPED),
                   help="scenario file (YAML) of scheduled faults; 'none' for none (default: the shipped one)")
    p.add_argument("--interval", help="switch poll interval (default 60s, --fast 30s)")
    p.add_argument("--ap-interval", help="Wi-Fi AP and controller poll interval (default 60s, --fast 15s)")
    p.add_argument("--camera-interval", help="camera poll interval (default 60s, --fast 20s)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after SECONDS; 0 = until Ctrl-C")
    p.add_argument("--seed", type=int, default=0, help="varies the switches' port rates")


def _prepare_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        if not (run_dir / MARKER).exists():
            raise SystemExit(f"demo: {run_dir} exists and is not a demo run dir; pick another --run-dir")
        shutil.rmtree(run_dir)
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / MARKER).write_text("written by wardwatch-sim demo; the demo wipes this dir at start\n")


def _step(n: int, total: int, text: str) -> float:
    print(f"demo: [{n}/{total}] {text}", flush=True)
    return time.monotonic()


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir).resolve()
    try:
        scenario = None if args.scenario == "none" else load_scenario(Path(args.scenario))
    except ConfigError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    if scenario is not None and args.fast:
        scenario = scenario.scaled(scenario.fast)
    intervals = dict(FAST_INTERVALS if args.fast else NORMAL_INTERVALS)
    for key in intervals:
        if getattr(args, key):
            intervals[key] = getattr(args, key)
    _prepare_run_dir(run_dir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    level = args.log_level

    services: list[Service] = []
    children: list[Service] = []
    relay: UplinkRelay | None = None
    hook: WebhookLog | None = None
    runner: Runner | None = None
    steps = 7
    try:
        _step(1, steps, "Mosquitto and InfluxDB")
        mqtt = start_mosquitto(run_dir / "services", max_queued_messages=0, persistence=True)
        services.append(mqtt)
        influx = start_influxdb(run_dir / "services")
        services.append(influx)
        influx.create_database(DATABASE)
        _step(2, steps, f"the camera simulator: {camera_count(seed=args.seed)} cameras")
        cameras, listing = _start_cameras(run_dir, camera_count(seed=args.seed), level)
        services.append(cameras)
        http_port = free_port("tcp")
        token = secrets.token_urlsafe(18)
        relay = UplinkRelay(mqtt.host, mqtt.port, [w for w, _, _ in WARDS])
        relay.start()
        hook = WebhookLog(run_dir / "alerts-webhook.jsonl")
        hook.start()
        rules = _fast_rules(run_dir / "fleet" / "rules-fast.yaml") if args.fast else None
        fleet = write_fleet(
            run_dir / "fleet",
            mqtt_port=mqtt.port,
            mqtt_ports=relay.ports,
            influx_url=influx.url,
            influx_database=DATABASE,
            http_port=http_port,
            http_token=token,
            cameras=listing["cameras"],
            seed=args.seed,
            speed=FAST_SPEED if args.fast else 1.0,
            no_icmp=quiet_devices(scenario, seed=args.seed) if scenario else (),
            device_intervals={d: FAST_TOUCHED for d in touched_devices(scenario, seed=args.seed)}
            if scenario and args.fast else None,
            webhook_url=hook.url,
            rules=rules,
            interval=intervals["interval"],
            ap_interval=intervals["ap_interval"],
            camera_interval=intervals["camera_interval"],
        )
        _step(3, steps, f"snmpsim: {fleet.switches()} switches, {fleet.snmp_devices() - fleet.switches()} Wi-Fi "
              f"controllers and APs on {len(fleet.wards)} endpoints (indexing takes a while)")
        agents = [SnmpsimAgent(data_dir=w.data_dir, port=w.snmp_port, host=w.snmp_host) for w in fleet.wards]
        services.append(start_snmpsim(run_dir / "services", agents=agents))

        logs, log_level = run_dir / "logs", ["--log-level", level]
        _step(4, steps, "the collector, with the dashboard and the alert engine")
        collector = script("wardwatch-collector", ["run", "-c", str(fleet.collector_config), *log_level],
                           run_dir=logs, label="collector")
        children.append(collector)
        collector.start()
        _wait_http(http_port, stop, 30.0)
        _step(5, steps, f"{len(fleet.wards)} agents, one per ward, {AGENTS_OVER_S:g} s apart in all")
        for n, w in enumerate(fleet.wards):
            if n and stop.wait(AGENTS_OVER_S / (len(fleet.wards) - 1)):
                raise ServiceError("stopped while starting the agents")
            agent = script("wardwatch-agent", ["run", "-c", str(w.agent_config), *log_level], run_dir=logs,
                           label=f"agent {w.ward}")
            children.append(agent)
            agent.start()
            if n % 4 == 3:
                print(f"demo:       {n + 1}/{len(fleet.wards)} agents started", flush=True)
        t0 = time.monotonic()
        _write_processes(run_dir / "processes.txt", services, children)
        _step(6, steps, "the scenario: " + (f"{len(scenario.faults)} faults from {args.scenario}"
                                            f"{' (--fast)' if args.fast else ''}" if scenario else "none"))
        if scenario is not None:
            runner = Runner(scenario, fleet, str(listing.get("control_url")), relay, mqtt, t0=t0)
            runner.start()
        _step(7, steps, "waiting for the first readings of every ward")
        _print_banner(fleet, influx, http_port, token, run_dir, scenario, args.fast, hook)
        return _watch(stop, influx, fleet, services, children, args.duration, runner, t0)
    except ServiceError as exc:
        if stop.is_set():  # Ctrl-C while starting also reaches the services; not a failure
            return 0
        print(f"demo: a service failed to start:\n{exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if runner is not None:
            runner.stop()
        _stop_all(children, services)
        if relay is not None:
            relay.stop()
        if hook is not None:
            hook.stop()


def _fast_rules(path: Path) -> Path:
    """The shipped alert rules with every timer divided by FAST_RULES (at least 10 s)."""
    doc = yaml.safe_load(files("wardwatch.collector.alerts").joinpath("rules.yaml").read_text(encoding="utf-8"))
    for rule in doc["rules"]:
        for key in RULE_TIMES:
            if key in rule:
                seconds = float(_parse_duration(rule[key]))
                rule[key] = f"{max(10.0, seconds / FAST_RULES) if seconds else 0:g}s"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200)
    path.write_text(f"# the shipped rules with their timers / {FAST_RULES:g}: wardwatch-sim demo --fast\n{body}",
                    encoding="utf-8")
    return path


def _wait_http(port: int, stop: threading.Event, timeout: float) -> None:
    """Until the collector's /healthz answers (any status): its HTTP server is up."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            stop.wait(0.3)


def _start_cameras(run_dir: Path, count: int, level: str) -> tuple[Service, dict[str, Any]]:
    """One ``wardwatch-sim cameras`` for the whole city, on ephemeral ports; ready once it has
    written its listing (id, brand, host, ONVIF port of every camera)."""
    listing_path = run_dir / "fleet" / "cameras.json"
    listing_path.parent.mkdir(parents=True, exist_ok=True)
    args = ["--log-level", level, "cameras", "--count", str(count), "--brand", "mix", "--id-prefix", "cam",
            "--user", CAMERA_USER, "--password", CAMERA_PASSWORD, "--control-port", "0", "--output", str(listing_path)]
    service = script("wardwatch-sim", args, run_dir=run_dir / "services" / "cameras", label="cameras")
    service.ready = lambda _service, _timeout: _read_listing(listing_path) is not None
    service.ready_timeout = 60.0
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


def _write_processes(path: Path, services: list[Service], children: list[Service]) -> None:
    path.write_text("".join(f"{p.pid} {p.name}\n" for p in [*services, *children]))


class WebhookLog:
    """The alerts' webhook channel lands here: one JSON line per notice in ``path``, and one
    line on stdout per alert in it (status, summary)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        log = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 10_000_000))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                log.take(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def take(self, body: bytes) -> None:
        try:
            doc = json.loads(body)
        except ValueError:
            return
        with self.lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        for alert in doc.get("alerts", []) if isinstance(doc, dict) else []:
            summary = alert.get("annotations", {}).get("summary") or alert.get("labels", {}).get("alertname")
            print(f"alert {alert.get('status', '?')}: {summary}", flush=True)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _watch(
    stop: threading.Event,
    influx: InfluxService,
    fleet: Fleet,
    services: list[Service],
    children: list[Service],
    duration: float,
    runner: Runner | None,
    started: float,
) -> int:
    next_progress = started + PROGRESS_EVERY_S
    dead: set[str] = set()
    while not stop.wait(0.5):
        now = time.monotonic()
        for proc in [*services, *children]:
            if runner is not None and proc.name == "mosquitto" and runner.broker_down():
                continue  # the scenario's broker restart
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


# The newest reading of every Wi-Fi radio and camera of the last 2 minutes, then summed:
# what the city has right now.
RECENT = "time > now() - 2m"
SWITCHES_NOW = f"SELECT sum(u) AS up, count(u) AS switches FROM (SELECT last(up) AS u FROM device_status " \
    f"WHERE {RECENT} AND kind = 'switch' GROUP BY ward, device)"
WARDS_NOW = f"SELECT count(in_bps) FROM if_traffic WHERE {RECENT} GROUP BY ward"
RADIOS_NOW = f"SELECT sum(c) AS clients, count(c) AS radios FROM (SELECT last(clients) AS c FROM wifi_radio " \
    f"WHERE {RECENT} GROUP BY ward, device, ap, radio)"
CAMERAS_NOW = f"SELECT sum(o) AS ok, count(o) AS cameras FROM (SELECT last(ok) AS o FROM camera_health " \
    f"WHERE {RECENT} GROUP BY ward, device)"


def _progress(influx: InfluxService, fleet: Fleet) -> str:
    try:
        per_ward = influx.points(WARDS_NOW, db=DATABASE)
        switches = influx.points(SWITCHES_NOW, db=DATABASE)
        radios = influx.points(RADIOS_NOW, db=DATABASE)
        cameras = influx.points(CAMERAS_NOW, db=DATABASE) if fleet.cameras_in_agents else []
    except ServiceError as exc:
        return f"InfluxDB query failed: {exc}"
    wards = {r["ward"] for r in per_ward if r["count"]}
    missing = [w for w, _, _ in WARDS if w not in wards]
    now = radios[0] if radios else {"clients": 0, "radios": 0}
    text = (
        f"wards with switch rates {len(wards)}/{len(WARDS)}, "
        f"switches up {switches[0]['up'] if switches else 0}/{fleet.switches()}, "
        f"AP radios {now['radios']}/{fleet.radios()}, Wi-Fi clients {now['clients'] or 0}"
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
    run_dir: Path,
    scenario: Scenario | None,
    fast: bool,
    hook: WebhookLog,
) -> None:
    url = f"http://127.0.0.1:{http_port}/"
    lines = [
        "",
        "wardwatch demo is running: Hội An, 13 wards, "
        f"{fleet.switches()} switches, {fleet.aps()} Wi-Fi APs, {fleet.cameras()} cameras"
        + (" (--fast: a day of Wi-Fi in 5 minutes)" if fast else ""),
        "",
        f"  dashboard  {url}",
        f"  token      {token}",
        "",
        f"  alerts     on the dashboard, on MQTT wardwatch/v1/alerts/#, and in {hook.path}",
        f"  data       InfluxDB {influx.url}, database {DATABASE}; logs in {run_dir / 'logs'}",
        *([f"  scenario   {len(scenario.faults)} faults, the first after {min(f.at for f in scenario.faults):g} s "
           "(each begins and ends on a line here)"] if scenario and scenario.faults else []),
        "",
        "The wards fill in within a minute or two. Ctrl-C stops everything.",
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
