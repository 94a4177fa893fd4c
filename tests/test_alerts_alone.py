"""``wardwatch-collector alerts -c FILE``: the alert engine alone, beside collectors in a
share group that write the readings. Real Mosquitto, InfluxDB and webhook receiver; the
agent's side is played by a paho client publishing wire messages, so that the test can
say exactly what the engine is told and when.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client, MQTTv5
from paho.mqtt.enums import CallbackAPIVersion

from tests.receivers import WebhookReceiver
from tests.util import BIN, wait_for, write_yaml
from wardwatch import wire
from wardwatch.simulators.lab import InfluxService, Service, free_port, script

pytestmark = pytest.mark.services

WARD, AGENT = "tan-an", "tan-an-1"
TOKEN = "alone-token-0123456789"


class FakeAgent:
    """Publishes what an agent would: status, inventory, batches of readings."""

    def __init__(self, port: int) -> None:
        self.client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="fake-agent",
                             protocol=MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seq = 0

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def online(self) -> None:
        now = int(time.time() * 1000)
        self.send(wire.status_topic(WARD, AGENT), wire.status_payload("online", agent=AGENT, ward=WARD, time_ms=now),
                  retain=True)
        devices = [wire.InventoryDevice(id="sw-1", kind="switch", interval_s=1.0, host="127.0.0.1"),
                   wire.InventoryDevice(id="cam-1", kind="camera", interval_s=1.0, host="127.0.0.1",
                                        feed=wire.FeedRef(switch="sw-1", port="Gi0/1"))]
        self.send(wire.inventory_topic(WARD, AGENT),
                  wire.inventory_payload(agent=AGENT, ward=WARD, time_ms=now, devices=devices), retain=True)

    def poll(self, *, cam_ok: bool) -> None:
        now = int(time.time() * 1000)
        readings = [
            wire.Reading(device="sw-1", kind="switch", measurement="device_status", time_ms=now,
                         fields={"up": 1, "reason": "ok"}),
            wire.Reading(device="cam-1", kind="camera", measurement="camera_health", time_ms=now,
                         fields={"ok": int(cam_ok), "reason": "ok" if cam_ok else "offline"}),
        ]
        batch = wire.Batch(schema=1, agent=AGENT, ward=WARD, seq=self.seq, readings=readings)
        self.seq += 1
        self.send(wire.readings_topic(WARD, AGENT), wire.encode(batch))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def config(tmp_path: Path, *, mqtt_port: int, influx: InfluxService, hook: str, rules: Path) -> tuple[Path, int]:
    http_port = free_port()
    path = write_yaml(tmp_path / "collector.yaml", {
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "influx": {"api": "v1", "url": influx.url, "database": "alone", "timeout": "2s"},
        "http": {"host": "127.0.0.1", "port": http_port, "token": TOKEN},
        "dead_letter": {"path": str(tmp_path / "dl.jsonl")},
        "wards": {WARD: "Tân An"},
        "alerts": {"rules": str(rules), "state": str(tmp_path / "alerts.db"),
                   "channels": {"ops": {"type": "webhook", "url": hook}},
                   "routes": [{"channels": ["ops"], "group_wait": "0.5s"}]},
    })
    return path, http_port


def short_rules(path: Path) -> Path:
    path.write_text("""rules:
  - name: camera_not_ok
    series: camera_health
    field: ok
    when: {equals: 0}
    for: 2s
    severity: critical
    scope: {kinds: [camera]}
    summary: {vi: "Camera {device} ({ward}) lỗi: {reason}", en: "Camera {device} ({ward}) not OK: {reason}"}
""", encoding="utf-8")
    return path


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def get(port: int, path: str) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_the_engine_alone_notifies_and_writes_history(
    tmp_path: Path, mosquitto: Service, influx: InfluxService, hook: WebhookReceiver
) -> None:
    influx.create_database("alone")
    cfg, http_port = config(tmp_path, mqtt_port=mosquitto.port, influx=influx, hook=hook.url,
                            rules=short_rules(tmp_path / "rules.yaml"))
    engine = script("wardwatch-collector", ["alerts", "-c", str(cfg)], run_dir=tmp_path / "engine")
    agent = FakeAgent(mosquitto.port)
    with engine:
        engine.start()
        wait_for(lambda: _health(http_port), timeout=15, what=lambda: f"the engine's health\n{engine.log_tail()}")
        agent.online()
        for _ in range(3):
            agent.poll(cam_ok=True)
            time.sleep(0.5)
        broke = time.time()
        deadline = broke + 15
        while time.time() < deadline and not hook.requests:
            agent.poll(cam_ok=False)
            time.sleep(0.5)
        [notice] = hook.wait_for(1, timeout=1)
        body = notice.json
        assert body["version"] == "4" and body["status"] == "firing"
        [alert] = body["alerts"]
        assert alert["labels"]["alertname"] == "camera_not_ok" and alert["labels"]["device"] == "cam-1"
        assert "Tân An" in alert["annotations"]["summary"]
        assert notice.time - broke < 2 + 1 + 0.5 + 5, "for + interval + group_wait + 5 s"
        active = get(http_port, "/api/v1/alerts")["alerts"]
        assert [a["labels"]["device"] for a in active] == ["cam-1"]
        for _ in range(4):
            agent.poll(cam_ok=True)
            time.sleep(0.5)
        done = hook.wait_for(2, timeout=10)
        assert done[1].json["status"] == "resolved"
        q = "SELECT state FROM alert WHERE alertname = 'camera_not_ok'"
        wait_for(lambda: [p["state"] for p in influx.points(q, db="alone")] == ["firing", "resolved"], timeout=10,
                 what="the alert series in InfluxDB")
        engine.terminate()
        assert engine.proc is not None and engine.proc.wait(timeout=15) == 0, engine.log_tail()
    agent.close()


def _health(port: int) -> bool:
    try:
        return bool(get(port, "/healthz")["alerts"]["mqtt_connected"])
    except OSError:
        return False


def test_a_bad_rule_file_exits_2_naming_the_key(tmp_path: Path, influx: InfluxService) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: x, series: device_status, field: up, when: {above: 1, below: 0}, "
                     "summary: s}\n")
    cfg, _ = config(tmp_path, mqtt_port=free_port(), influx=influx, hook="http://127.0.0.1:9/", rules=rules)
    for command in ("alerts", "run"):
        done = subprocess.run([str(BIN / "wardwatch-collector"), command, "-c", str(cfg)], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 2, done.stderr
        assert f"{rules}: rules[0].threshold.when: give exactly one test" in done.stderr


def test_alerts_alone_needs_the_section(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "c.yaml", {"mqtt": {"host": "127.0.0.1"}})
    done = subprocess.run([str(BIN / "wardwatch-collector"), "alerts", "-c", str(cfg)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "alerts: the section is missing" in done.stderr
