"""Delivery proven end to end: the only collector away longer than the broker keeps its
session. The broker discards what it queued for the collector, and acknowledged to the
agent; the agent still has it, because it deletes a batch only when a collector's
``stored`` watermark passes it, and sends it again (docs/reliability.md)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.pipeline import agent_process, outbox_state, status_times, switch_sim
from tests.test_reliability import INTERVAL, Rig
from wardwatch.simulators.lab import InfluxService, start_mosquitto

pytestmark = pytest.mark.services

AWAY = 75.0  # seconds the collector is gone: five times its broker session
SESSION = "15s"
RESEND_AFTER = "10s"
MAX_GAP = 12.0


def make_rig(tmp_path: Path, influx: InfluxService, database: str, unique: str) -> Rig:
    """A broker, a switch and an agent (not started) that resends after ``RESEND_AFTER``."""
    broker = start_mosquitto(tmp_path / "broker", persistence=True)
    switch = switch_sim(tmp_path, "sw-1")
    agent_id, ward = f"agent-{unique}", f"w-{unique}"
    agent = agent_process(tmp_path, agent_id=agent_id, ward=ward, mqtt_port=broker.port, switch=switch)
    cfg = tmp_path / f"{agent_id}.yaml"
    doc = yaml.safe_load(cfg.read_text())
    doc["mqtt"]["resend_after"] = RESEND_AFTER
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return Rig(tmp_path, broker, influx, database, switch, agent, agent_id, ward, [])


@pytest.fixture
def rig(tmp_path: Path, influx: InfluxService, database: str, unique: str) -> Iterator[Rig]:
    r = make_rig(tmp_path, influx, database, unique)
    try:
        yield r
    finally:
        for svc in (r.agent, *(c.service for c in r.collectors), r.switch, r.broker):
            svc.stop()


def away_window_is_whole(rig: Rig, *, since_ms: int, gone_ms: int, back_ms: int) -> None:
    """Every committed batch stored, no gap over MAX_GAP s, >= 95 % of the window's polls."""
    rig.prove_nothing_lost(since_ms=since_ms, timeout=120, max_hole=MAX_GAP)
    during = [t for t in status_times(rig.influx, rig.database, rig.ward) if gone_ms <= t < back_ms]
    assert len(during) >= math.floor(0.95 * (back_ms - gone_ms) / 1000 / INTERVAL), during


@pytest.mark.timeout(400)
def test_the_only_collector_away_longer_than_its_session_loses_nothing(rig: Rig) -> None:
    c = rig.collector("c1", mqtt={"session_expiry": SESSION})
    c.start()
    rig.agent.start()
    since = int(time.time() * 1000)
    rig.wait_batches(3)

    c.service.kill()  # its session, and what the broker queued in it, expire after 15 s
    gone = int(time.time() * 1000)
    time.sleep(AWAY)
    depth = outbox_state(rig.outbox)[0]
    assert depth >= AWAY / INTERVAL, f"acknowledged by the broker, yet kept: {depth} batches"
    c.start()
    away_window_is_whole(rig, since_ms=since, gone_ms=gone, back_ms=int(time.time() * 1000))
