"""The pieces of end-to-end delivery, each on its own: the collectors' ``stored`` watermark
(never past a seq that is not stored, also across a share group), a clean stop with InfluxDB
away mid-spool, and a seq-ledger reconcile whose cost does not grow with history."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.pipeline import Collector
from tests.util import wait_for
from wardwatch import wire
from wardwatch.collector import seqlog
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.ledger import Counters, DeadLetter
from wardwatch.collector.spool import Spool
from wardwatch.collector.store import Store
from wardwatch.collector.stored import MAX_RANGES, StoredMarks
from wardwatch.simulators.lab import InfluxService, Service, start_influxdb


def stored_msg(agent: str, watermark: int, ranges: list[tuple[int, int]]) -> wire.Stored:
    topic = wire.stored_topic("w", agent)
    return wire.decode_stored(topic, wire.stored_payload(agent=agent, ward="w", watermark=watermark, time_ms=1,
                                                         ranges=ranges))


def test_the_watermark_never_passes_a_seq_that_is_not_stored() -> None:
    c1, c2 = StoredMarks("c1"), StoredMarks("c2")
    for seq in (0, 1, 3, 5):  # c1's share; 2 and 4 went to c2, which has not stored them yet
        c1.stored(ward="w", agent="a", seq=seq, pending_from=0)
    a = c1.agents["a"]
    assert (a.mark, a.ranges()) == (2, [(3, 3), (5, 5)])
    c2.stored(ward="w", agent="a", seq=4, pending_from=0)
    c2.learn(stored_msg("a", a.mark, a.ranges()))  # from c1's retained message
    assert (c2.agents["a"].mark, c2.agents["a"].ranges()) == (2, [(3, 5)]), "2 is still nobody's"
    c2.stored(ward="w", agent="a", seq=2, pending_from=0)
    assert (c2.agents["a"].mark, c2.agents["a"].ranges()) == (6, [])
    # Below the agent's pending_from it holds nothing: the mark may start there.
    c1.stored(ward="w", agent="b", seq=41, pending_from=40)
    assert (c1.agents["b"].mark, c1.agents["b"].ranges()) == (40, [(41, 41)])
    # Past the cap the highest ranges are forgotten (the agent sends them again), never merged.
    for seq in range(100, 100 + 2 * (MAX_RANGES + 10), 2):
        c1.stored(ward="w", agent="c", seq=seq, pending_from=0)
    c = c1.agents["c"]
    assert c.mark == 0 and len(c.starts) == MAX_RANGES and c.overflow == 10
    assert not c.covers(101) and c.covers(100)
    topic, payload = next(t for t in c1.take_dirty() if t[0].endswith("/c/stored"))
    doc = wire.decode_stored(topic, payload)
    assert doc.watermark == 0 and len(doc.ranges) == wire.MAX_STORED_RANGES


def test_a_stored_message_claiming_backwards_ranges_is_refused() -> None:
    bad = json.dumps({"schema": 1, "agent": "a", "ward": "w", "watermark": 5, "time_ms": 1, "ranges": [[3, 4]]})
    with pytest.raises(wire.WireError, match="above the watermark"):
        wire.decode_stored(wire.stored_topic("w", "a"), bad.encode())


class StoredListener:
    """A subscriber to one agent's retained ``stored`` topic: the agent's view."""

    def __init__(self, port: int, topic: str) -> None:
        self.docs: list[wire.Stored] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = lambda _c, _u, m: self._add(m.topic, m.payload)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _add(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.docs.append(wire.decode_stored(topic, payload))

    def last(self) -> tuple[int, list[tuple[int, int]]] | None:
        with self.lock:
            return (self.docs[-1].watermark, [tuple(r) for r in self.docs[-1].ranges]) if self.docs else None  # type: ignore[misc]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.services
def test_a_collector_publishes_stored_after_writing_and_never_past_a_hole(
    tmp_path: Path, mosquitto: Service, influx: InfluxService, database: str, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    c = Collector(tmp_path, mqtt_port=mosquitto.port, influx_url=influx.url, database=database)
    c.start()
    seen = StoredListener(mosquitto.port, wire.stored_topic(ward, agent))
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    now = int(time.time() * 1000)

    def send(seq: int) -> None:
        r = wire.Reading(device="sw", kind="switch", measurement="device_status", time_ms=now + seq, fields={"up": 1})
        b = wire.Batch(schema=1, agent=agent, ward=ward, seq=seq, readings=[r], pending_from=0)
        pub.publish(wire.readings_topic(ward, agent), wire.encode(b), qos=1).wait_for_publish(5)

    try:
        for seq in (0, 1, 3):
            send(seq)
        wait_for(lambda: seen.last() == (2, [(3, 3)]), timeout=10, what=lambda: f"watermark 2 and 3: {seen.docs}")
        rows = influx.points(f"SELECT count(seq) FROM wardwatch_batch WHERE agent = '{agent}'", db=database)
        assert rows[0]["count"] == 3, "claimed only once written"
        send(2)
        wait_for(lambda: seen.last() == (4, []), timeout=10, what=lambda: f"watermark 4: {seen.docs}")
        send(1)  # a duplicate is stored again and claimed again: harmless
        wait_for(lambda: c.counter("duplicates") == 1, timeout=10)
        assert seen.last() == (4, [])
    finally:
        pub.loop_stop()
        pub.disconnect()
        seen.close()
        c.service.stop()


@pytest.mark.services
async def test_influxdb_gone_while_stopping_mid_spool_is_a_clean_stop(tmp_path: Path) -> None:
    """drain_spool, writing a refused chunk line by line, meets a stop and a dead InfluxDB:
    before the fix GaveUp escaped it and the collector exited non-zero."""
    own = start_influxdb(tmp_path / "influx")
    try:
        own.create_database("gaveup")
        spool = Spool(tmp_path / "spool.db", max_bytes=2**30)
        spool.open()
        # A type conflict refuses the chunk; then it is written line by line.
        spool.add([b'm f="text" 1'] + [f"m,i={i} f=1i {i + 2}".encode() for i in range(20_000)])
        counters, stop = Counters(), asyncio.Event()
        async with InfluxV1Writer(url=own.url, database="gaveup", timeout=2) as writer:
            await writer.write([b"m f=1i 0"])
            store = Store(influx=writer, spool=spool, dead_letter=DeadLetter(tmp_path / "dl.jsonl", max_bytes=2**20),
                          counters=counters, stop=stop, spool_after=1.0)
            task = asyncio.create_task(store.drain_spool())
            await asyncio.to_thread(wait_for, lambda: counters.points_written >= 20, timeout=30, interval=0.02)
            assert counters.rejected == 1 and counters.points_written >= 20
            stop.set()
            await asyncio.to_thread(own.stop)
            await asyncio.wait_for(task, 30)  # returns: no GaveUp
        assert spool.points == 20_001, "the chunk stays for the next start"
        spool.close()
    finally:
        own.stop()


class Recorder:
    """A real InfluxDB, with every query it was asked written down."""

    def __init__(self, influx: InfluxV1Writer) -> None:
        self.influx, self.queries = influx, []  # type: list[str]

    async def query(self, q: str, *, epoch: str | None = None) -> list[dict[str, Any]]:
        self.queries.append(q)
        return await self.influx.query(q, epoch=epoch)


@pytest.mark.services
async def test_reconcile_reads_only_what_came_since_its_checkpoint(
    influx: InfluxService, database: str, unique: str
) -> None:
    agent, day = f"a-{unique}", 86_400_000
    now = int(time.time() * 1000)
    old = now - 300 * day

    def lines(seqs: range, at: int, skip: set[int]) -> list[bytes]:
        out = []
        for seq in seqs:
            if seq not in skip:
                t = at + (seq - seqs.start) * 1000
                r = wire.Reading(device="sw", kind="switch", measurement="device_status", time_ms=t,
                                 fields={"up": 1})
                out.append(seqlog.record_line(wire.Batch(schema=1, agent=agent, ward="w", seq=seq, readings=[r],
                                                         pending_from=seq), "t"))
        return out

    async with InfluxV1Writer(url=influx.url, database=database) as writer:
        await writer.write(lines(range(0, 1000), old, {500}))  # day 0: 300 days ago, one hole
        await writer.write(lines(range(1000, 1040), now - 200_000, {1010}))  # today, one hole
        rec, checkpoints = Recorder(writer), {}  # type: Recorder, dict[str, seqlog.Checkpoint]
        first = (await seqlog.reconcile(rec, checkpoints, now_ms=now, window_s=86400))[agent]
        assert (first.first, first.last, first.floor, first.missing) == (1000, 1039, 1039, 1)
        await writer.write(lines(range(1040, 1060), now - 160_000, {1050}))
        rec.queries.clear()
        second = (await seqlog.reconcile(rec, checkpoints, now_ms=now + 30_000, window_s=86400))[agent]
        assert (second.first, second.last, second.floor, second.missing, second.received) == (1000, 1059, 1059, 2, 58)
    # Every query on the points is bounded: after the checkpoint, by the newest settled point
    # (less the slack), far from day 0; only the tag index is read unbounded.
    bounded = [q for q in rec.queries if not q.startswith("SHOW TAG VALUES")]
    assert bounded and all("time >= " in q for q in bounded)
    since = min(int(q.split("time >= ")[1].split("ms")[0]) for q in bounded)
    assert since >= now - 200_000 + 38 * 1000 - 1000 - seqlog.SLACK_MS, rec.queries  # the ledger keeps seconds
    assert all("seq >= 1039" in q for q in bounded), rec.queries
