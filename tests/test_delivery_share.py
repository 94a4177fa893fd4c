"""Delivery proven end to end: a share-group member SIGKILLed and never restarted. What
the broker had queued for it expires with its session; the survivor stores what the agent
sends again, and learns from the dead member's last ``stored`` message what it had stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_delivery_outage import AWAY, SESSION, away_window_is_whole, make_rig
from tests.test_reliability import Rig
from tests.util import wait_for
from wardwatch.simulators.lab import InfluxService

pytestmark = pytest.mark.services


@pytest.fixture
def rig(tmp_path: Path, influx: InfluxService, database: str, unique: str) -> Iterator[Rig]:
    r = make_rig(tmp_path, influx, database, unique)
    try:
        yield r
    finally:
        for svc in (r.agent, *(c.service for c in r.collectors), r.switch, r.broker):
            svc.stop()


@pytest.mark.timeout(400)
def test_a_share_group_member_killed_for_good_loses_nothing(rig: Rig) -> None:
    group = {"mqtt": {"share_group": "collectors", "session_expiry": SESSION}}
    c1, c2 = rig.collector("c1", **group), rig.collector("c2", **group)
    c1.start()
    c2.start()
    rig.agent.start()
    since = int(time.time() * 1000)
    rig.wait_batches(6)
    assert c1.counter("messages") > 0 and c2.counter("messages") > 0, "both take a share"

    c1.service.kill()  # never restarted
    gone = int(time.time() * 1000)
    wait_for(lambda: time.time() * 1000 - gone >= AWAY * 1000, timeout=AWAY + 5, interval=1, what="the window")
    away_window_is_whole(rig, since_ms=since, gone_ms=gone, back_ms=int(time.time() * 1000))
    assert c2.counter("stored_sent") > 0
