"""A wardwatch-agent + wardwatch-collector pair on the session's Mosquitto and InfluxDB,
for SNMP tests that read their results back from InfluxDB."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.util import write_yaml
from wardwatch.simulators.lab import InfluxService, Service, free_port, script

WARD = "cam-pho"


@contextmanager
def pipeline(tmp_path: Path, *, mosquitto: Service, influx: InfluxService, database: str, agent_id: str,
             auth: dict[str, Any], devices: list[dict[str, Any]]) -> Iterator[tuple[Service, Service]]:
    """Start a collector and an agent polling ``devices``; stop both on exit."""
    agent_cfg = write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": agent_id, "ward": WARD},
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "self_interval": "5s",
        "auth": auth,
        "devices": devices,
    })
    collector_cfg = write_yaml(tmp_path / "collector.yaml", {
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
        "influx": {"api": "v1", "url": influx.url, "database": database, "flush_interval": "0.2s"},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "dead_letter": {"path": str(tmp_path / "dead-letter.jsonl")},
    })
    collector = script("wardwatch-collector", ["run", "-c", str(collector_cfg)], run_dir=tmp_path / "collector")
    agent = script("wardwatch-agent", ["run", "-c", str(agent_cfg)], run_dir=tmp_path / "agent")
    collector.start()
    agent.start()
    try:
        yield agent, collector
    finally:
        agent.stop()
        collector.stop()
