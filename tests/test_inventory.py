"""The agent's retained inventory, read from a real Mosquitto the way the alert engine reads it."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.test_outbox_publisher import Listener
from tests.util import wait_for, write_yaml
from wardwatch import wire
from wardwatch.simulators.lab import Service, script

pytestmark = pytest.mark.services
WARD = "cam-pho"


def closed_tcp_port() -> int:
    """A loopback port nothing listens on: the camera there is simply down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent_config(path: Path, agent_id: str, mqtt_port: int, devices: list[dict[str, Any]]) -> Path:
    return write_yaml(path, {
        "agent": {"id": agent_id, "ward": WARD},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "outbox": {"path": str(path.parent / "outbox.db")},
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}},
                 "cams": {"onvif": {"username": "admin", "password": "secret"}}},
        "devices": devices,
    })


def retained_inventory(port: int, agent_id: str) -> tuple[list[tuple[str, bytes, bool]], Listener]:
    """A fresh subscriber, as the alert engine on start: the broker hands it the retained message."""
    listener = Listener(port, wire.inventory_topic(WARD, agent_id))
    return listener.messages, listener


def test_agent_publishes_its_inventory_retained_and_a_new_config_replaces_it(
    tmp_path: Path, mosquitto: Service, unique: str, black_hole: int
) -> None:
    agent_id = f"agent-{unique}"
    common = {"timeout": "1s", "retries": 0, "icmp": False}
    switch = {"id": "sw-core", "kind": "switch", "host": "127.0.0.1", "port": black_hole, "auth": "v2c",
              "vendor": "cisco", "interval": "30s", "uplink": "Te1/0/24", **common}
    access = {"id": "sw-acc", "kind": "switch", "host": "127.0.0.1", "port": black_hole, "auth": "v2c",
              "interval": "30s", "feed": {"switch": "sw-core", "port": "Gi1/0/2"}, **common}
    cam = {"id": "cam-cho", "kind": "camera", "host": "127.0.0.1", "port": closed_tcp_port(), "auth": "cams",
           "vendor": "hikvision", "interval": "20s", "feed": {"switch": "sw-acc", "port": "Gi0/5"}, **common}
    ap = {"id": "ap-1", "kind": "ap", "host": "localhost", "port": black_hole, "auth": "v2c", "interval": "60s",
          **common}
    cfg = agent_config(tmp_path / "agent.yaml", agent_id, mosquitto.port, [switch, access, cam, ap])
    topic = wire.inventory_topic(WARD, agent_id)
    live = Listener(mosquitto.port, f"wardwatch/v1/{WARD}/{agent_id}/#")
    agent = script("wardwatch-agent", ["run", "-c", str(cfg)], run_dir=tmp_path / "agent")
    late: list[Listener] = []
    try:
        agent.start()
        msgs = wait_for(lambda: [(t, p) for t, p, _ in list(live.messages) if t == topic], timeout=15,
                        what="the inventory")
        with live.lock:
            order = [t.rsplit("/", 1)[1] for t, _, _ in live.messages if not t.endswith("/readings")]
        assert order[:2] == ["status", "inventory"], order  # right after online
        first = wire.decode_inventory(topic, msgs[0][1])
        assert first.schema == 1 and (first.ward, first.agent) == (WARD, agent_id)
        by_id = {d.id: d for d in first.devices}
        assert list(by_id) == ["sw-core", "sw-acc", "cam-cho", "ap-1"]  # the config's order
        assert by_id["sw-core"] == wire.InventoryDevice(id="sw-core", kind="switch", interval_s=30.0,
                                                         host="127.0.0.1", vendor="cisco", uplink="Te1/0/24")
        assert by_id["sw-acc"].feed == wire.FeedRef(switch="sw-core", port="Gi1/0/2")
        assert by_id["cam-cho"].feed == wire.FeedRef(switch="sw-acc", port="Gi0/5")
        assert (by_id["cam-cho"].kind, by_id["cam-cho"].vendor, by_id["cam-cho"].interval_s) == ("camera",
                                                                                                  "hikvision", 20.0)
        assert by_id["ap-1"].feed is None and by_id["ap-1"].host == "localhost"

        # Retained: a subscriber that comes later (the alert engine starting) gets it at once.
        messages, listener = retained_inventory(mosquitto.port, agent_id)
        late.append(listener)
        wait_for(lambda: list(messages), timeout=5, what="the retained inventory")
        t, payload, retained = messages[0]
        assert retained and wire.decode_inventory(t, payload) == first

        # The agent stops: the inventory stays (its devices are unknown, not gone).
        agent.stop()
        messages, listener = retained_inventory(mosquitto.port, agent_id)
        late.append(listener)
        wait_for(lambda: list(messages), timeout=5, what="the retained inventory after the agent stopped")
        assert wire.decode_inventory(messages[0][0], messages[0][1]).devices == first.devices

        # A changed config: the camera moves to an AP's place on sw-core, the AP goes.
        moved = {**cam, "feed": {"switch": "sw-core", "port": "Gi1/0/9"}, "interval": "15s"}
        agent_config(tmp_path / "agent.yaml", agent_id, mosquitto.port, [switch, moved])
        agent.start()
        wait_for(lambda: len([1 for t, _, _ in list(live.messages) if t == topic]) >= 2, timeout=15,
                 what="the new inventory")
        messages, listener = retained_inventory(mosquitto.port, agent_id)
        late.append(listener)
        wait_for(lambda: list(messages), timeout=5, what="the replaced retained inventory")
        second = wire.decode_inventory(messages[0][0], messages[0][1])
    finally:
        agent.stop()
        for listener in (live, *late):
            listener.close()
    assert [d.id for d in second.devices] == ["sw-core", "cam-cho"]
    cam_now = second.devices[1]
    assert cam_now.feed == wire.FeedRef(switch="sw-core", port="Gi1/0/9") and cam_now.interval_s == 15.0
    assert second.time_ms >= first.time_ms
    # The same message arrives on every connect; only its payload changed with the config.
    assert len(messages) == 1
