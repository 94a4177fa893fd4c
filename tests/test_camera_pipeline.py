"""Cameras end to end on real services: ``wardwatch-sim cameras`` and snmpsim (a PoE switch)
-> ``wardwatch-agent run`` -> Mosquitto -> ``wardwatch-collector`` -> InfluxDB.

One agent polls a dozen simulated cameras every few seconds, each with its own fault set at
runtime through the simulator's control endpoint, so the tests share one pipeline and run
side by side. Everything asserted is read back from InfluxDB (or, for live events, from the
MQTT events topic), as an operator's dashboard or alert would read it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

from tests.pipeline import Collector
from tests.util import wait_for, write_yaml
from wardwatch import wire
from wardwatch.simulators.lab import InfluxService, Service, SnmpsimAgent, free_port, script, start_snmpsim
from wardwatch.simulators.snmprec import PETH_PORT, SwitchSpec, render

pytestmark = pytest.mark.services

INTERVAL = 3.0
TIMEOUT = 1.8  # per request; 1.2 s was too short for a healthy camera on a loaded 2-core CI box
WARD = "cam-pho"
# Camera id -> its role in the tests. Faults are set at runtime, after a first good poll.
CAMERAS = ("ok", "auth", "xml", "nosnap", "r401", "r404", "rto", "off", "slow", "skew37", "skew400", "frozen",
           "reboot", "poe")
POE_SWITCH = SwitchSpec(name="sw-poe", ports=24, seed=7, poe=True)
POE_PORT = next(p for p in POE_SWITCH.port_specs() if p.role == "camera" and p.oper_up)
POE_OID = f"{PETH_PORT}.6.1.{POE_PORT.index}"  # pethPsePortDetectionStatus: 3 delivering, 2 searching


@dataclass
class Rig:
    influx: InfluxService
    database: str
    agent_id: str
    control_url: str
    cameras: dict[str, dict[str, Any]]  # role -> the simulator's listing entry
    switch: Service
    mosquitto: Service
    agent: Service
    knobs_set: dict[str, float] = field(default_factory=dict)

    def knobs(self, role: str, **changes: Any) -> None:
        """Set fault knobs on one camera through the simulator's control endpoint."""
        req = urllib.request.Request(f"{self.control_url}/cameras/{self.cameras[role]['id']}/faults",
                                     data=json.dumps(changes).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200

    def points(self, q: str) -> list[dict[str, Any]]:
        return self.influx.points(q, db=self.database, epoch="ms")

    def health(self, role: str, since_ms: int = 0) -> list[dict[str, Any]]:
        return self.points(f"SELECT * FROM camera_health WHERE device = '{role}' AND time > {since_ms}ms")

    def wait_reason(self, role: str, reason: str, since_ms: int, timeout: float = 6 * INTERVAL) -> dict[str, Any]:
        """The first camera_health row after ``since_ms`` with this reason."""
        def found() -> dict[str, Any] | None:
            return next((r for r in self.health(role, since_ms) if r["reason"] == reason), None)
        def seen() -> str:
            rows = [(r["reason"], r.get("error")) for r in self.health(role, since_ms)]
            return f"{role}: reason {reason}; rows since: {rows}\n{self.agent.log_tail()}"
        row: dict[str, Any] = wait_for(found, timeout=timeout, interval=0.5, what=seen)
        return row


def now_ms() -> int:
    return int(time.time() * 1000)


def _camera_sim(run_dir: Path) -> tuple[Service, dict[str, Any]]:
    listing = run_dir / "cameras.json"
    sim = script("wardwatch-sim", ["cameras", "--count", str(len(CAMERAS)), "--brand", "mix", "--control-port", "0",
                                   "--output", str(listing)], run_dir=run_dir / "camsim")
    sim.start()
    wait_for(lambda: listing.exists() and listing.stat().st_size > 0, timeout=20, interval=0.1,
             what=lambda: f"camera simulator listing\n{sim.log_tail()}")
    doc: dict[str, Any] = wait_for(lambda: _json(listing), timeout=5, interval=0.1, what="a complete listing")
    return sim, doc


def _json(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc
    except ValueError:
        return None


def _poe_switch(run_dir: Path) -> Service:
    """snmpsim serving a PoE switch whose camera port's PoE state can be changed by SNMP SET
    (snmpsim's writecache variation module): a switch that stops powering a port, for real."""
    text = render(POE_SWITCH)
    line = f"{POE_OID}|2|3\n"
    assert line in text
    data = run_dir / "poe-data"
    data.mkdir(parents=True)
    (data / "public.snmprec").write_text(text.replace(line, f"{POE_OID}|2:writecache|value=3\n"))
    return start_snmpsim(run_dir / "sim-poe", agents=[SnmpsimAgent(data_dir=data, port=free_port("udp"))])


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, mosquitto: Service, influx: InfluxService) -> Iterator[Rig]:
    run_dir = tmp_path_factory.mktemp("campipe")
    database = f"t_{uuid.uuid4().hex[:12]}"
    influx.create_database(database)
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    sim, listing = _camera_sim(run_dir)
    switch = _poe_switch(run_dir)
    cams = dict(zip(CAMERAS, listing["cameras"], strict=True))
    first = listing["cameras"][0]
    devices: list[dict[str, Any]] = [
        {"id": "sw-poe", "kind": "switch", "host": "127.0.0.1", "port": switch.port, "auth": "v2c",
         "interval": f"{INTERVAL}s", "timeout": "1s", "retries": 0, "icmp": False},
    ]
    for role, cam in cams.items():
        dev: dict[str, Any] = {"id": role, "kind": "camera", "host": cam["host"], "port": cam["onvif_port"],
                               "auth": "cam", "interval": f"{INTERVAL}s", "timeout": f"{TIMEOUT}s",
                               "retries": 0, "icmp": False}
        if role == "poe":
            dev["feed"] = {"switch": "sw-poe", "port": POE_PORT.name}
        devices.append(dev)
    cfg = write_yaml(run_dir / "agent.yaml", {
        "agent": {"id": agent_id, "ward": WARD},
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "keepalive": "5s"},
        "outbox": {"path": str(run_dir / "outbox.db")},
        "self_interval": "5s",
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}},
                 "cam": {"onvif": {"username": first["username"], "password": first["password"]}}},
        "devices": devices,
    })
    collector = Collector(run_dir, mqtt_port=mosquitto.port, influx_url=influx.url, database=database)
    agent = script("wardwatch-agent", ["run", "-c", str(cfg)], run_dir=run_dir / "agent")
    collector.start()
    agent.start()
    rig = Rig(influx, database, agent_id, listing["control_url"], cams, switch, mosquitto, agent)
    try:
        # Every camera healthy once (its first good poll), before any fault is set.
        def all_ok() -> bool:
            rows = rig.points("SELECT last(ok) AS ok FROM camera_health WHERE ok = 1 GROUP BY device")
            return {r["device"] for r in rows} >= set(CAMERAS)
        wait_for(all_ok, timeout=30, interval=0.5, what=lambda: f"every camera ok once\n{agent.log_tail()}")
        yield rig
    finally:
        for svc in (agent, collector.service, sim, switch):
            svc.stop()


# Knob -> (camera, reason, camera_health fields expected with it)
FAULTS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("auth", {"auth_fail": True}, "auth", {"online": 1, "auth_ok": 0, "error": "auth"}),
    ("xml", {"bad_xml": True}, "bad_xml", {"online": 1, "error": "bad_xml"}),
    ("nosnap", {"no_snapshot_uri": True}, "no_snapshot_uri", {"snapshot_ok": 0, "rtsp_ok": 1}),
    ("r401", {"rtsp": "401"}, "rtsp_401", {"rtsp_ok": 0, "rtsp_status": 401, "snapshot_ok": 1}),
    ("r404", {"rtsp": "404"}, "rtsp_404", {"rtsp_ok": 0, "rtsp_status": 404, "snapshot_ok": 1}),
    ("rto", {"rtsp": "timeout"}, "rtsp_timeout", {"rtsp_ok": 0, "snapshot_ok": 1}),
    ("off", {"offline": True}, "offline", {"online": 0, "error": "refused"}),
    ("slow", {"slow": 2 * TIMEOUT}, "offline", {"online": 0, "error": "timeout"}),
    ("skew400", {"clock_skew": 400}, "clock_skew_auth",
     {"online": 1, "auth_ok": 1, "clock_skew_auth": 1, "time_offset_applied": 1, "rtsp_ok": 1}),
    ("frozen", {"frozen": True}, "frozen", {"frozen": 1, "snapshot_ok": 1, "rtsp_ok": 1}),
]


def test_each_fault_knob_gives_its_reason_and_fields_in_influxdb(rig: Rig) -> None:
    since = now_ms()
    for role, knobs, _, _ in FAULTS:
        rig.knobs(role, **knobs)
    rig.knobs("skew37", clock_skew=37)
    for role, _, reason, fields in FAULTS:
        row = rig.wait_reason(role, reason, since)
        assert row["ok"] == 0
        assert {k: row.get(k) for k in fields} == fields, (role, row)
        if role == "frozen":
            assert row["same_snapshots"] >= 3  # frozen_after: 3
        status = rig.points(f"SELECT up, reason FROM device_status WHERE device = '{role}' AND time = {row['time']}ms")
        assert status and status[0]["up"] == (1 if fields.get("online", 1) else 0), (role, status)
    # 37 s ahead is inside the camera's auth window: the camera is OK, and its clock is 37 +- 1 s off.
    skew = wait_for(lambda: [r for r in rig.health("skew37", since) if abs(r["clock_skew_s"] - 37) <= 5],
                    timeout=4 * INTERVAL, what="skew37 reporting its skew")
    assert skew[-1]["clock_skew_s"] == pytest.approx(37, abs=1)
    assert (skew[-1]["ok"], skew[-1]["reason"]) == (1, "ok")
    skewed = rig.wait_reason("skew400", "clock_skew_auth", since)
    assert skewed["clock_skew_s"] == pytest.approx(400, abs=1)
    # The healthy camera beside them stayed OK throughout.
    assert {r["reason"] for r in rig.health("ok", since)} == {"ok"}


def _subscribed(rig: Rig, role: str, since_ms: int = 0) -> list[dict[str, Any]]:
    return rig.points(f"SELECT * FROM camera_event WHERE device = '{role}' AND subscribed = 1 AND time > {since_ms}ms")


def test_reboot_recreates_the_event_subscription_and_events_count_again(rig: Rig) -> None:
    wait_for(lambda: _subscribed(rig, "reboot"), timeout=5 * INTERVAL, what="reboot camera subscribed")
    rig.knobs("reboot", reboot=1.0)
    rebooted = now_ms()
    resub = wait_for(lambda: [r for r in _subscribed(rig, "reboot", rebooted) if r["resubscriptions"] >= 1],
                     timeout=8 * INTERVAL, interval=0.5,
                     what=lambda: f"resubscription after reboot\n{rig.agent.log_tail()}")
    assert resub[0]["subscriptions"] >= 2
    emitted = now_ms()
    rig.knobs("reboot", emit_event="tamper")
    counted = wait_for(
        lambda: rig.points(f"SELECT sum(tamper) AS n FROM camera_event WHERE device = 'reboot' AND time > {emitted}ms"),
        timeout=4 * INTERVAL, interval=0.5, what="tamper counted after the reboot")
    assert counted[0]["n"] == 1


@dataclass
class Events:
    got: list[MQTTMessage] = field(default_factory=list)
    subscribed: threading.Event = field(default_factory=threading.Event)


def test_tamper_event_reaches_the_events_topic_and_the_camera_event_count(rig: Rig) -> None:
    wait_for(lambda: _subscribed(rig, "ok"), timeout=5 * INTERVAL, what="ok camera subscribed")
    box = Events()
    client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"evt-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda _c, _u, msg: box.got.append(msg)
    client.on_subscribe = lambda *_a: box.subscribed.set()
    topic = wire.events_topic(WARD, rig.agent_id)
    client.connect("127.0.0.1", rig.mosquitto.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        assert box.subscribed.wait(5)
        emitted = now_ms()
        rig.knobs("ok", emit_event="tamper")
        wait_for(lambda: box.got, timeout=4 * INTERVAL, interval=0.2, what="an event on the events topic")
        msg = box.got[0]
        event = wire.decode_event(msg.topic, msg.payload)
        assert (event.schema, event.agent, event.ward, event.device, event.cls) == (1, rig.agent_id, WARD, "ok",
                                                                                     "tamper")
        assert "Tamper" in event.topic or "GlobalSceneChange" in event.topic
        assert emitted - 1000 <= event.time_ms <= now_ms()
        assert msg.qos == 1 and not msg.retain
        counted = wait_for(
            lambda: rig.points(f"SELECT sum(tamper) AS n FROM camera_event WHERE device = 'ok' AND time > {emitted}ms"),
            timeout=4 * INTERVAL, interval=0.5, what="tamper counted in camera_event")
        assert counted[0]["n"] == 1
        assert len(box.got) == 1  # one event, one message
    finally:
        client.loop_stop()
        client.disconnect()


def test_camera_behind_a_port_whose_poe_stops_is_poe_lost(rig: Rig) -> None:
    since = now_ms()
    proc = subprocess.run(["snmpset", "-v2c", "-cpublic", f"127.0.0.1:{rig.switch.port}", POE_OID, "i", "2"],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    # The port stops powering the camera, so the camera goes dark.
    rig.knobs("poe", offline=True)
    poe = wait_for(lambda: rig.points(f"SELECT delivering FROM poe WHERE device = 'sw-poe' AND "
                                      f"if_name = '{POE_PORT.name}' AND time > {since}ms AND delivering = 0"),
                   timeout=4 * INTERVAL, what="sw-poe reporting the port not delivering")
    assert poe
    row = rig.wait_reason("poe", "poe_lost", since)
    assert (row["ok"], row["online"], row["feed_poe_delivering"], row["feed_oper_up"]) == (0, 0, 0, 1)
