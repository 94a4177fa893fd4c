"""Moves batches from the outbox to the broker, and deletes them once acknowledged.

- QoS 1; a batch leaves the outbox only on a successful PUBACK.
- A bounded in-flight window: paho wraps its 16-bit message id past 65,535
  unacknowledged messages and silently overwrites them, so we never get near it.
- The reconnect loop is ours: each connection is a fresh paho client, so nothing stale
  survives in paho's own queues, and every unacknowledged batch is sent again from the
  outbox (the collector treats repeats as harmless: same series and time overwrite).
- ``status`` is retained: ``online`` once connected, ``offline`` by the Last Will or on
  a clean stop.
- MQTT 5 persistent session (``clean_start=False``, session expiry one day) with the
  stable client id ``wardwatch-agent-{id}``.
- Two lanes after a reconnect: batches committed since the connection (live) go at once;
  the backlog from before it drains in seq order at ``drain_rate`` batches per second,
  so a week of backlog does not starve live readings. The collector sees the live seqs
  before the older ones and counts that as reordering, not loss.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from wardwatch import wire
from wardwatch.agent.core.outbox import Outbox
from wardwatch.aio import first_of
from wardwatch.config import MqttSection
from wardwatch.mqtt import describe, make_client

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
BACKOFF_MIN, BACKOFF_MAX = 1.0, 60.0
SESSION_EXPIRY = 86400


class Publisher:
    def __init__(
        self,
        *,
        cfg: MqttSection,
        agent: str,
        ward: str,
        outbox: Outbox,
        window: int = 100,
        drain_rate: float = 50.0,
    ) -> None:
        self.cfg = cfg
        self.agent = agent
        self.ward = ward
        self.outbox = outbox
        self.window = window
        self.drain_rate = drain_rate
        self.connected = False
        self.published = 0  # batches acknowledged by the broker, since start
        self.refused = 0  # PUBACKs with a failure reason code (e.g. not authorised)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> seq
        self._acked: list[int] = []
        self._client: Client | None = None  # the connected client, for best-effort events
        self.events_sent = 0  # events handed to the broker connection (QoS 1)
        self.events_dropped = 0  # events not sent: not connected (they are not stored)

    # paho thread -> event loop --------------------------------------------------------

    def _on_connect(self, _c: Client, _u: Any, _f: ConnectFlags, rc: ReasonCode, _p: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected, rc)

    def _on_disconnect(self, _c: Client, _u: Any, _f: DisconnectFlags, rc: ReasonCode, _p: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._lost, str(rc))

    def _on_publish(self, _c: Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._puback, mid, rc)

    # event loop side ---------------------------------------------------------------

    def _connected(self, rc: ReasonCode) -> None:
        # Only the first CONNACK of a connection attempt answers _connect(); paho's own
        # reconnect may deliver another before we close a lost client, and is ignored.
        if not self._connack.done():
            self._connack.set_result(rc)

    def _lost(self, reason: str) -> None:
        if self.connected:
            log.warning("agent %s: disconnected from %s: %s", self.agent, describe(self.cfg), reason)
        self.connected = False
        self._wake.set()

    def _puback(self, mid: int, rc: ReasonCode) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return
        if rc.is_failure:
            self.refused += 1
            log.error("agent %s: broker refused batch seq=%d: %s; it stays in the outbox", self.agent, seq, rc)
        else:
            self._acked.append(seq)
        self._wake.set()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        backoff = BACKOFF_MIN
        while True:
            client = await self._connect()
            if client is None:
                delay = backoff * random.uniform(0.5, 1.0)
                log.info("agent %s: retrying %s in %.1fs", self.agent, describe(self.cfg), delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_MIN
            try:
                await self._drain(client)
            finally:
                await self._close(client, clean=True)

    async def _connect(self) -> Client | None:
        client = make_client(self.cfg, client_id=f"wardwatch-agent-{self.agent}")
        client.will_set(wire.status_topic(self.ward, self.agent), self._status("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(self.window)  # paho's own default is 20
        self._connack: asyncio.Future[ReasonCode] = self._loop.create_future()  # type: ignore[union-attr]
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY
        try:
            await asyncio.to_thread(
                client.connect,
                self.cfg.host,
                self.cfg.port,
                int(self.cfg.keepalive),
                clean_start=False,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            log.warning("agent %s: cannot connect to %s: %s", self.agent, describe(self.cfg), exc)
            return None
        client.loop_start()
        try:
            rc = await asyncio.wait_for(self._connack, CONNECT_TIMEOUT)
        except TimeoutError:
            log.warning("agent %s: no CONNACK from %s in %.0fs", self.agent, describe(self.cfg), CONNECT_TIMEOUT)
            await self._close(client, clean=False)
            return None
        if rc.is_failure:
            log.error("agent %s: %s refused the connection: %s", self.agent, describe(self.cfg), rc)
            await self._close(client, clean=False)
            return None
        self.connected = True
        self._inflight.clear()
        log.info("agent %s: connected to %s", self.agent, describe(self.cfg))
        client.publish(wire.status_topic(self.ward, self.agent), self._status("online"), qos=1, retain=True)
        self._client = client
        return client

    async def _drain(self, client: Client) -> None:
        topic = wire.readings_topic(self.ward, self.agent)
        live_from = self.outbox.next_seq  # older seqs are the backlog
        last_live, last_old = live_from - 1, -1
        backlog = True
        # A full bucket to start with: a short outage's backlog goes at once, in order.
        tokens, refilled = max(1.0, self.drain_rate), asyncio.get_running_loop().time()
        while self.connected:
            self._wake.clear()
            self.outbox.added.clear()
            if self._acked:
                done, self._acked = self._acked, []
                await self.outbox.delete(done)
                self.published += len(done)
            room = self.window - len(self._inflight)
            rows: list[tuple[int, bytes]] = []
            if room > 0:
                rows = await self.outbox.pending(after=last_live, limit=room)
                if rows:
                    last_live = rows[-1][0]
            wait: float | None = None
            if backlog and room > len(rows):
                now = asyncio.get_running_loop().time()
                tokens = min(max(1.0, self.drain_rate), tokens + (now - refilled) * self.drain_rate)
                refilled = now
                n = min(room - len(rows), int(tokens))
                if n > 0:
                    old = await self.outbox.pending(after=last_old, limit=n, below=live_from)
                    tokens -= len(old)
                    backlog = len(old) == n
                    if old:
                        last_old = old[-1][0]
                        rows = old + rows
                if backlog:
                    wait = max(0.01, (1.0 - tokens) / self.drain_rate)
            for seq, payload in rows:
                info = client.publish(topic, payload, qos=1)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._lost(f"publish failed: {info.rc}")
                    return
                self._inflight[info.mid] = seq
            if not self._acked and not self._wake.is_set() and not self.outbox.added.is_set():
                await first_of(self._wake.wait(), self.outbox.added.wait(), within=wait)

    def publish_event(self, payload: bytes) -> bool:
        """Best-effort live event on the ``events`` topic: QoS 1 when connected, else dropped
        and counted. Not stored: the durable record is the ``camera_event`` reading."""
        client = self._client
        if client is None or not self.connected:
            self.events_dropped += 1
            return False
        info = client.publish(wire.events_topic(self.ward, self.agent), payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.events_dropped += 1
            return False
        self.events_sent += 1
        return True

    async def _close(self, client: Client, *, clean: bool) -> None:
        if self._client is client:
            self._client = None
        if clean and self.connected:
            info = client.publish(wire.status_topic(self.ward, self.agent), self._status("offline"), qos=1, retain=True)
            await asyncio.to_thread(info.wait_for_publish, 2.0)
        self.connected = False
        await asyncio.to_thread(client.disconnect)
        await asyncio.to_thread(client.loop_stop)

    def _status(self, state: str) -> bytes:
        return wire.status_payload(state, agent=self.agent, ward=self.ward, time_ms=int(time.time() * 1000))
