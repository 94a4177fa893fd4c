"""The outbox keeps every batch until the broker acknowledged it; seq never repeats."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from wardwatch import wire
from wardwatch.agent.outbox import Outbox
from wardwatch.agent.publisher import Publisher
from wardwatch.config import MqttSection
from wardwatch.services import Service, start_mosquitto

WARD = "cam-pho"


def reading(n: int) -> wire.Reading:
    return wire.Reading(device="sw-core", kind="switch", measurement="device_status", time_ms=n, fields={"up": 1})


async def test_seq_continues_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    async with Outbox(path, agent="a1", ward=WARD) as box:
        assert [await box.put([reading(i)]) for i in range(3)] == [0, 1, 2]
        await box.delete([0, 1, 2])
        assert await box.stats() == (0, 0.0)
    async with Outbox(path, agent="a1", ward=WARD) as box:
        assert await box.put([reading(3)]) == 3  # not 0: the emptied outbox remembers
        rows = await box.pending(after=-1, limit=10)
        assert [wire.decode(p).seq for _, p in rows] == [3]


class Listener:
    """A real subscriber on the broker, collecting what arrives."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, m: self._add(m)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _add(self, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((m.topic, m.payload, m.retain))

    def seqs(self) -> list[int]:
        with self.lock:
            return [wire.decode(p).seq for t, p, _ in self.messages if t.endswith("/readings")]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Service]:
    with start_mosquitto(tmp_path / "broker") as svc:
        yield svc


async def wait_until(check, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_batches_survive_a_broker_outage_and_arrive_in_order(tmp_path: Path, broker: Service) -> None:
    listener = Listener(broker.port, f"wardwatch/v1/{WARD}/#")
    async with Outbox(tmp_path / "outbox.db", agent="a1", ward=WARD) as box:
        pub = Publisher(cfg=MqttSection(host="127.0.0.1", port=broker.port), agent="a1", ward=WARD, outbox=box)
        task = asyncio.create_task(pub.run())
        try:
            for i in range(5):
                await box.put([reading(i)])
            await wait_until(lambda: listener.seqs() == [0, 1, 2, 3, 4], 10, "first five batches")
            await wait_until(lambda: pub.published == 5, 5, "five acknowledgements")
            assert (await box.stats())[0] == 0

            listener.close()
            await asyncio.to_thread(broker.stop)
            await wait_until(lambda: not pub.connected, 10, "the publisher to notice the outage")
            for i in range(5, 10):
                await box.put([reading(i)])
            assert (await box.stats())[0] == 5  # held, not dropped, while the broker is away

            await asyncio.to_thread(broker.start)
            listener = Listener(broker.port, f"wardwatch/v1/{WARD}/+/readings")
            await wait_until(lambda: pub.published == 10, 30, "the backlog to drain after reconnect")
            await wait_until(lambda: listener.seqs() == [5, 6, 7, 8, 9], 10, "the backlog at the subscriber")
            assert (await box.stats())[0] == 0
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
