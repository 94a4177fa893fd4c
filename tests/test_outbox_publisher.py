"""The outbox keeps every batch until a collector reports it stored; seq never repeats.

``Confirmer`` stands in for the collector's side of the ``stored`` contract on a real
broker: it subscribes to the readings and publishes the retained ``stored`` watermark
(every seq below it seen), exactly as collector/stored.py does after its writes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from wardwatch import wire
from wardwatch.agent.core.outbox import Outbox
from wardwatch.agent.core.publisher import Publisher
from wardwatch.config import MqttSection
from wardwatch.simulators.lab import Service, start_mosquitto

WARD = "cam-pho"


def reading(n: int) -> wire.Reading:
    return wire.Reading(device="sw-core", kind="switch", measurement="device_status", time_ms=n, fields={"up": 1})


async def test_seq_continues_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    async with Outbox(path, agent="a1", ward=WARD) as box:
        assert [await box.put([reading(i)]) for i in range(3)] == [0, 1, 2]
        await box.delete([0, 1, 2])
        assert (await box.stats()).depth == 0
    async with Outbox(path, agent="a1", ward=WARD) as box:
        assert await box.put([reading(3)]) == 3  # not 0: the emptied outbox remembers
        rows = await box.pending(after=-1, limit=10)
        assert [wire.decode(p).seq for _, p in rows] == [3]


async def test_full_outbox_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    many = [reading(i) for i in range(200)]
    async with Outbox(path, agent="a1", ward=WARD, max_bytes=10**9) as box:
        await box.put(many)
        one = (await box.stats()).bytes
    assert one < len(wire.encode(wire.Batch(schema=1, agent="a1", ward=WARD, seq=0, readings=many))) / 5

    async with Outbox(path, agent="a1", ward=WARD, max_bytes=int(3.5 * one)) as box:
        for _ in range(5):
            await box.put(many)
        stats = await box.stats()
        assert stats.depth == 3 and stats.bytes <= 3.5 * one
        assert (stats.dropped_batches, stats.dropped_readings) == (3, 600)
        rows = await box.pending(after=-1, limit=10)
        assert [seq for seq, _ in rows] == [3, 4, 5]  # the oldest went first
        assert len(wire.decode(rows[0][1]).readings) == 200
    async with Outbox(path, agent="a1", ward=WARD, max_bytes=int(3.5 * one)) as box:
        assert (await box.stats()).dropped_readings == 600  # the count survives a restart
        assert await box.put([reading(1)]) == 6


async def test_readings_older_than_max_age_are_dropped_and_counted(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "outbox.db", agent="a1", ward=WARD, max_age=0.2) as box:
        await box.put([reading(0)])
        await box.put([reading(1)])
        await asyncio.sleep(0.3)
        assert await box.put([reading(2)]) == 2
        stats = await box.stats()
        assert (stats.depth, stats.dropped_batches, stats.dropped_readings) == (1, 2, 2)


class Listener:
    """A real subscriber on the broker, collecting what arrives."""

    def __init__(self, port: int, topic: str, *, session: str | None = None) -> None:
        """``session``: a client id for a persistent session, which outlives a broker restart."""
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=session or "",
            clean_session=session is None,
        )
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, m: self._add(m)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(5), "the listener's subscription was not acknowledged"

    def _add(self, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((m.topic, m.payload, m.retain))

    def seqs(self) -> list[int]:
        with self.lock:
            return [wire.decode(p).seq for t, p, _ in self.messages if t.endswith("/readings")]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Confirmer(Listener):
    """Publishes ``stored`` for what it received (contiguous from ``start``), while ``on``."""

    def __init__(self, port: int, agent: str, *, start: int = 0) -> None:
        self.agent, self.mark, self.on = agent, start, True
        super().__init__(port, wire.readings_topic(WARD, agent))

    def _add(self, m: mqtt.MQTTMessage) -> None:
        super()._add(m)
        if not self.on:
            return
        seen = set(self.seqs())
        while self.mark in seen:
            self.mark += 1
        payload = wire.stored_payload(agent=self.agent, ward=WARD, watermark=self.mark, time_ms=1)
        self.client.publish(wire.stored_topic(WARD, self.agent), payload, qos=1, retain=True)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Service]:
    with start_mosquitto(tmp_path / "broker", persistence=True) as svc:
        yield svc


def first_seen(seqs: list[int]) -> list[int]:
    return list(dict.fromkeys(seqs))


async def wait_until(check, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_batches_survive_a_broker_outage_and_arrive_in_order(tmp_path: Path, broker: Service) -> None:
    listener = Listener(broker.port, f"wardwatch/v1/{WARD}/+/readings", session="outage-listener")
    confirmer = Confirmer(broker.port, "a1")
    async with Outbox(tmp_path / "outbox.db", agent="a1", ward=WARD) as box:
        pub = Publisher(cfg=MqttSection(host="127.0.0.1", port=broker.port), agent="a1", ward=WARD, outbox=box)
        task = asyncio.create_task(pub.run())
        try:
            for i in range(5):
                await box.put([reading(i)])
            await wait_until(lambda: first_seen(listener.seqs()) == [0, 1, 2, 3, 4], 10, "first five batches")
            await wait_until(lambda: pub.published == 5, 5, "five acknowledgements")
            await wait_until(lambda: pub.stored == 5, 5, "five batches reported stored")
            assert (await box.stats()).depth == 0

            await asyncio.to_thread(broker.stop)
            await wait_until(lambda: not pub.connected, 10, "the publisher to notice the outage")
            for i in range(5, 10):
                await box.put([reading(i)])
            assert (await box.stats()).depth == 5  # held, not dropped, while the broker is away

            await asyncio.to_thread(broker.start)
            await wait_until(lambda: pub.published == 10, 30, "the backlog to drain after reconnect")
            # At least once: the broker may redeliver what its persisted session had in flight.
            await wait_until(lambda: first_seen(listener.seqs()) == list(range(10)), 10, "the backlog, in order")
            await wait_until(lambda: pub.stored == 10, 10, "all ten reported stored")
            assert (await box.stats()).depth == 0
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            listener.close()
            confirmer.close()


async def test_backlog_drains_at_its_rate_while_live_batches_go_first(tmp_path: Path, broker: Service) -> None:
    listener = Listener(broker.port, f"wardwatch/v1/{WARD}/+/readings")
    async with Outbox(tmp_path / "outbox.db", agent="a1", ward=WARD) as box:
        for i in range(60):  # a backlog from before the connection
            await box.put([reading(i)])
        cfg = MqttSection(host="127.0.0.1", port=broker.port)
        pub = Publisher(cfg=cfg, agent="a1", ward=WARD, outbox=box, drain_rate=20)
        task = asyncio.create_task(pub.run())
        try:
            await wait_until(lambda: pub.connected, 10, "the connection")
            started = asyncio.get_running_loop().time()
            live = await box.put([reading(1000)])
            await wait_until(lambda: live in listener.seqs(), 5, "the live batch")
            assert len([s for s in listener.seqs() if s < live]) < 30  # it did not wait for the backlog
            await wait_until(lambda: pub.published == 61, 20, "the backlog")
            took = asyncio.get_running_loop().time() - started
            assert took >= 1.5  # 60 batches at 20/s, less the first second's burst of 20
            backlog = [s for s in listener.seqs() if s < live]
            assert backlog == list(range(60))  # in order, none missing
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            listener.close()


async def test_status_is_retained_online_then_offline_on_stop(tmp_path: Path, broker: Service) -> None:
    async with Outbox(tmp_path / "outbox.db", agent="a2", ward=WARD) as box:
        pub = Publisher(cfg=MqttSection(host="127.0.0.1", port=broker.port), agent="a2", ward=WARD, outbox=box)
        task = asyncio.create_task(pub.run())
        await wait_until(lambda: pub.connected, 10, "connection")
        late = Listener(broker.port, wire.status_topic(WARD, "a2"))  # joins after: sees the retained message
        await wait_until(lambda: late.messages, 5, "retained status")
        assert json.loads(late.messages[0][1])["state"] == "online" and late.messages[0][2]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(lambda: len(late.messages) >= 2, 5, "offline status")
        assert json.loads(late.messages[-1][1]) | {"time_ms": 0} == {
            "schema": 1, "state": "offline", "agent": "a2", "ward": WARD, "time_ms": 0}
        late.close()


async def _run(pub: Publisher) -> asyncio.Task[None]:
    task = asyncio.create_task(pub.run())
    await wait_until(lambda: pub.connected, 10, "the connection")
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _stored(port: int, agent: str, watermark: int, ranges: list[tuple[int, int]] | None = None) -> None:
    """Publish a collector's retained ``stored`` message, and wait for the broker to take it."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = wire.stored_payload(agent=agent, ward=WARD, watermark=watermark, time_ms=1, ranges=ranges)
    client.publish(wire.stored_topic(WARD, agent), payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


async def test_a_batch_leaves_the_outbox_when_stored_not_on_puback(tmp_path: Path, broker: Service) -> None:
    async with Outbox(tmp_path / "outbox.db", agent="a3", ward=WARD) as box:
        pub = Publisher(cfg=MqttSection(host="127.0.0.1", port=broker.port), agent="a3", ward=WARD, outbox=box)
        task = await _run(pub)
        try:
            for i in range(6):
                await box.put([reading(i)])
            await wait_until(lambda: pub.published == 6, 10, "six PUBACKs")
            assert (await box.stats()).depth == 6, "PUBACK deletes nothing"
            await asyncio.to_thread(_stored, broker.port, "a3", 2, [(4, 4)])
            await wait_until(lambda: pub.stored == 3, 5, "seqs 0, 1 and 4 deleted")
            assert [s for s, _ in await box.pending(after=-1, limit=10)] == [2, 3, 5]
            await asyncio.to_thread(_stored, broker.port, "a3", 99)  # above our next seq: another outbox's
            await wait_until(lambda: pub.stored_invalid == 1, 5, "the bogus watermark refused")
            assert (await box.stats()).depth == 3 and pub.watermark == 2
        finally:
            await _stop(task)


async def test_puback_without_stored_is_sent_again_then_backs_off(tmp_path: Path, broker: Service) -> None:
    listener = Listener(broker.port, wire.readings_topic(WARD, "a4"))
    async with Outbox(tmp_path / "outbox.db", agent="a4", ward=WARD) as box:
        cfg = MqttSection(host="127.0.0.1", port=broker.port)
        pub = Publisher(cfg=cfg, agent="a4", ward=WARD, outbox=box, resend_after=1.0, window=2)
        task = await _run(pub)
        try:
            for i in range(4):
                await box.put([reading(i)])
            # Nothing reports it stored: after 1 s everything goes again (a full rewind) ...
            await wait_until(lambda: listener.seqs().count(3) >= 2, 5, "seq 3 sent again")
            # ... then, while still nothing is stored, probes of `window` batches, 2 s, 4 s apart.
            await asyncio.sleep(5.0)
            assert pub.rewinds <= 3 and listener.seqs().count(3) == 2, (pub.rewinds, listener.seqs())
            assert pub.connections == 1, "all on one connection"
            _stored(broker.port, "a4", 4)
            await wait_until(lambda: pub.stored == 4, 10, "the outbox emptied once stored")
            assert pub.resent >= 4
        finally:
            await _stop(task)
            listener.close()


async def test_a_refused_batch_is_sent_again_on_the_same_connection(tmp_path: Path, broker: Service) -> None:
    """A PUBACK with a failure reason code (>= 0x80). Mosquitto 2.0.11 drops the connection
    after the one it can send (0x87, an ACL denial), which hides the bug; brokers that keep
    the connection (quota exceeded, 0x97) do not. So the first real PUBACK is read as 0x97."""
    listener = Listener(broker.port, wire.readings_topic(WARD, "a5"))
    async with Outbox(tmp_path / "outbox.db", agent="a5", ward=WARD) as box:
        pub = Publisher(cfg=MqttSection(host="127.0.0.1", port=broker.port), agent="a5", ward=WARD, outbox=box,
                        resend_after=1.0)
        real, refused = pub._on_publish, ReasonCode(PacketTypes.PUBACK, "Quota exceeded")
        pub._on_publish = lambda c, u, mid, rc, p: real(c, u, mid, refused if pub.refused == 0 else rc, p)  # type: ignore[method-assign]
        task = await _run(pub)
        try:
            await box.put([reading(0)])
            await wait_until(lambda: listener.seqs() == [0, 0], 5, "the refused batch, sent again")
            assert (pub.refused, pub.published, pub.connections) == (1, 1, 1)
            assert (await box.stats()).depth == 1, "and still kept until stored"
        finally:
            await _stop(task)
            listener.close()
