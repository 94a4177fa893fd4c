"""Nothing lost: the acceptance of docs/reliability.md, each on real processes.

Every test runs snmpsim -> wardwatch-agent -> Mosquitto -> wardwatch-collector ->
InfluxDB, breaks one piece for real (a stopped broker or database, a SIGKILL), and then
proves from InfluxDB that every batch the agent committed was stored: the seq ledger
holds every seq from 0 to the agent's last, with none missing, and the switch's
``device_status`` readings keep their original 5 s rhythm through the outage.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from tests.pipeline import (
    Collector,
    agent_process,
    ledger_count,
    ledger_seqs,
    outbox_seqs,
    outbox_state,
    status_times,
    switch_sim,
)
from tests.util import BIN, wait_for
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.uptime import DeviceUptime, device_uptime
from wardwatch.simulators.lab import InfluxService, Service, start_influxdb, start_mosquitto

pytestmark = pytest.mark.services

INTERVAL = 5.0
OUTAGE = 60.0


@dataclass
class Rig:
    tmp: Path
    broker: Service
    influx: InfluxService
    database: str
    switch: Service
    agent: Service
    agent_id: str
    ward: str
    collectors: list[Collector]

    @property
    def outbox(self) -> Path:
        return self.tmp / f"{self.agent_id}-outbox.db"

    def collector(self, name: str, **over: object) -> Collector:
        c = Collector(
            self.tmp / name,
            mqtt_port=self.broker.port,
            influx_url=self.influx.url,
            database=self.database,
            reconcile_interval="1s",
            **over,
        )
        self.collectors.append(c)
        return c

    def wait_batches(self, n: int, timeout: float = 60) -> None:
        """Until the ledger holds at least n batches of the agent."""
        wait_for(
            lambda: ledger_count(self.influx, self.database, self.agent_id)[0] >= n,
            timeout=timeout,
            interval=0.5,
            what=f"{n} batches stored",
        )

    def prove_nothing_lost(self, *, since_ms: int, timeout: float = 90, max_hole: float = 1.5 * INTERVAL) -> int:
        """Stop the agent once its outbox has drained; then every committed seq is stored or
        still in the outbox, and the switch's readings have no hole longer than ``max_hole``
        seconds. A batch leaves the outbox only when a collector says it is stored, so the
        last poll or two before the stop may still wait there (for the next start): only
        those may."""
        wait_for(lambda: outbox_state(self.outbox)[0] == 0, timeout=timeout, interval=0.5, what="the outbox to drain")
        self.agent.stop()
        left, next_seq = outbox_seqs(self.outbox)
        assert left <= set(range(next_seq - 3, next_seq)), f"a clean stop left more than the last polls: {left}"
        wait_for(
            lambda: ledger_seqs(self.influx, self.database, self.agent_id) | left == set(range(next_seq)),
            timeout=30,
            interval=0.5,
            what=f"seqs 0..{next_seq - 1} in the ledger (or still in the outbox: {sorted(left)})",
        )
        times = [t for t in status_times(self.influx, self.database, self.ward) if t >= since_ms]
        steps = [(b - a) / 1000 for a, b in pairwise(times)]
        assert steps and max(steps) < max_hole, f"a hole in the switch's readings: {steps}"
        for c in self.collectors:
            if c.try_health() is not None:
                wait_for(lambda c=c: c.counter("missing") == 0, timeout=10, interval=0.5, what="missing == 0")
        return next_seq


@pytest.fixture
def rig(tmp_path: Path, influx: InfluxService, database: str, unique: str) -> Iterator[Rig]:
    broker = start_mosquitto(tmp_path / "broker", persistence=True)
    switch = switch_sim(tmp_path, "sw-1")
    agent_id, ward = f"agent-{unique}", f"w-{unique}"
    agent = agent_process(tmp_path, agent_id=agent_id, ward=ward, mqtt_port=broker.port, switch=switch)
    r = Rig(tmp_path, broker, influx, database, switch, agent, agent_id, ward, [])
    try:
        yield r
    finally:
        for svc in (agent, *(c.service for c in r.collectors), switch, broker):
            svc.stop()


def test_broker_outage_of_60s_loses_nothing_and_keeps_timestamps(rig: Rig) -> None:
    c = rig.collector("c1")
    c.start()
    rig.agent.start()
    since = int(time.time() * 1000)
    rig.wait_batches(3)

    rig.broker.stop()  # the ward's uplink is gone
    down_ms = int(time.time() * 1000)
    time.sleep(OUTAGE)
    assert outbox_state(rig.outbox)[0] >= OUTAGE / INTERVAL, "the agent kept polling into its outbox"
    rig.broker.start()
    up_ms = int(time.time() * 1000)

    rig.prove_nothing_lost(since_ms=since)
    times = status_times(rig.influx, rig.database, rig.ward)
    during = [t for t in times if down_ms < t < up_ms]
    assert len(during) >= OUTAGE / INTERVAL - 1, f"readings taken during the outage, with their own times: {during}"
    # Backfilled, so the uplink outage is neither down nor unknown in the uptime report.
    first, last = min(t for t in times if t >= since), max(times)
    (switch,) = asyncio.run(_uptime(rig, first - first % (STEP * 1000), last - last % (STEP * 1000)))
    assert switch.down_s == 0 and switch.unknown_s == 0, switch


def test_influxdb_outage_of_60s_loses_nothing(rig: Rig, tmp_path: Path) -> None:
    own = start_influxdb(tmp_path / "influx")
    try:
        rig.influx = own
        own.create_database(rig.database)
        c = rig.collector("c1", spool={"after": "2s"})
        c.start()
        rig.agent.start()
        since = int(time.time() * 1000)
        rig.wait_batches(3)

        own.stop()
        time.sleep(OUTAGE)
        spooled = c.counter("spooled")
        assert spooled > 0, "the collector spooled while InfluxDB was away"
        assert c.health()["spool"]["points"] > 0
        own.start()

        rig.prove_nothing_lost(since_ms=since)
        wait_for(lambda: c.health()["spool"]["points"] == 0, timeout=30, interval=0.5, what="the spool drained")
    finally:
        own.stop()


def test_sigkill_of_collector_and_of_agent_loses_nothing(rig: Rig) -> None:
    c = rig.collector("c1")
    c.start()
    rig.agent.start()
    since = int(time.time() * 1000)
    rig.wait_batches(3)

    c.service.kill()  # mid-stream: what it took and had not acked comes again
    time.sleep(2 * INTERVAL)
    c.start()
    rig.wait_batches(6)

    before = outbox_state(rig.outbox)[1]
    rig.agent.kill()  # committed batches stay in the outbox; seq continues from the file
    time.sleep(INTERVAL)
    rig.agent.start()
    wait_for(lambda: outbox_state(rig.outbox)[1] >= before + 3, timeout=30, interval=0.5, what="new batches")

    # While the agent is dead nothing polls: a hole of the downtime plus its start offset.
    next_seq = rig.prove_nothing_lost(since_ms=since, max_hole=INTERVAL + 10 + 1.5 * INTERVAL)
    assert next_seq >= before + 3


def test_two_collectors_share_the_load_and_one_sigkill_loses_nothing(rig: Rig) -> None:
    group = {"mqtt": {"share_group": "collectors"}}
    c1, c2 = rig.collector("c1", **group), rig.collector("c2", **group)
    c1.start()
    c2.start()
    rig.agent.start()
    since = int(time.time() * 1000)
    rig.wait_batches(6)
    assert c1.counter("messages") > 0 and c2.counter("messages") > 0, "both take a share"

    c1.service.kill()
    taken = c2.counter("messages")
    wait_for(lambda: c2.counter("messages") >= taken + 4, timeout=40, interval=0.5, what="c2 carrying on alone")
    # The broker keeps what it had handed to c1 in c1's session; c1 comes back for it.
    c1.start()
    rig.prove_nothing_lost(since_ms=since)


@pytest.mark.timeout(600)
def test_a_5_minute_agent_outage_is_unknown_not_down(rig: Rig) -> None:
    c = rig.collector("c1", stale_after="15s")
    c.start()
    rig.agent.start()
    rig.wait_batches(3)
    start_ms = int(time.time() * 1000)
    time.sleep(2 * INTERVAL)

    rig.agent.kill()  # the ward office loses power: no polls, no outbox, only the Last Will
    killed_ms = int(time.time() * 1000)
    time.sleep(5 * 60)
    rig.agent.start()
    back_ms = int(time.time() * 1000)
    rig.wait_batches(ledger_count(rig.influx, rig.database, rig.agent_id)[0] + 4)
    end_ms = int(time.time() * 1000)

    (switch,) = asyncio.run(_uptime(rig, start_ms, end_ms))
    outage = (back_ms - killed_ms) / 1000
    assert switch.down_s == 0, switch
    # Steps with any reading count as up, so the partial steps at both ends are not unknown;
    # at most the outage plus one poll interval, the restart's random offset and a step each side.
    assert outage - 2 * STEP <= switch.unknown_s <= outage + INTERVAL + 10 + 2 * STEP, (switch, outage)
    assert switch.up_s >= (end_ms - start_ms) / 1000 - switch.unknown_s - STEP
    assert switch.uptime_pct == 100.0

    # The same numbers from the command a planner runs.
    c.service.stop()
    iso = lambda ms: datetime.fromtimestamp(ms / 1000, UTC).isoformat()  # noqa: E731
    out = subprocess.run(
        [str(BIN / "wardwatch-collector"), "report", "uptime", "-c", str(c.config), "--from", iso(start_ms),
         "--to", iso(end_ms), "--ward", rig.ward, "--step", str(STEP), "--format", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    (reported,) = json.loads(out.stdout)["devices"]  # {"period", "devices", "rollup", "maintenance"}
    assert reported["unknown_s"] == pytest.approx(switch.unknown_s, abs=STEP) and reported["down_s"] == 0

    # Why it was unknown: the Last Will, and the ledger going stale; then online again.
    rows = rig.influx.points(
        f"SELECT online, state, how FROM agent_status WHERE agent = '{rig.agent_id}'", db=rig.database, epoch="ms"
    )
    seen = [(r["state"], r["how"]) for r in rows if killed_ms - 1000 <= r["time"] <= end_ms]
    assert ("offline", "status") in seen and ("stale", "ledger") in seen and seen[-1] == ("online", "status"), seen


STEP = 10


async def _uptime(rig: Rig, start_ms: int, end_ms: int) -> list[DeviceUptime]:
    async with InfluxV1Writer(url=rig.influx.url, database=rig.database, rp=None, username=None, password=None,
                              timeout=10) as influx:  # fmt: skip
        return await device_uptime(influx, start_ms=start_ms, end_ms=end_ms, step_s=STEP, ward=rig.ward)
