"""Moves batches from the outbox to the broker, and deletes them once a collector has
stored them.

- QoS 1. PUBACK frees the batch's place in the in-flight window, nothing more: a batch
  leaves the outbox only when a collector's retained ``stored`` message (on
  ``wire.stored_topic``, which the publisher subscribes to) covers it: below its
  ``watermark``, or in one of its ``ranges``. The highest watermark seen is kept; one
  above the outbox's next seq (a reset outbox under an old agent id) is ignored.
- A batch PUBACKed (or refused, reason code >= 0x80) but not reported stored within
  ``resend_after`` is published again: the outbox is rewound and everything still in it
  drains again, in seq order, at ``drain_rate``. The first rewind after progress sends
  everything; while no collector reports anything stored, each later rewind waits twice
  as long (at most ``RESEND_MAX``) and sends only a probe of ``window`` batches, so a
  collector away for a weekend does not turn into a storm of resends. The first
  ``stored`` message that deletes anything ends the probe: the rest drains at once.
  Duplicates are harmless (same series and time overwrite in InfluxDB).
- A bounded in-flight window: paho wraps its 16-bit message id past 65,535
  unacknowledged messages and silently overwrites them, so we never get near it.
- The reconnect loop is ours: each connection is a fresh paho client, so nothing stale
  survives in paho's own queues, and every batch still in the outbox is sent again
  (the collector treats repeats as harmless: same series and time overwrite).
- ``status`` is retained: ``online`` once connected, ``offline`` by the Last Will or on
  a clean stop.
- ``inventory`` (the agent's devices, built from its config) is retained, QoS 1, published
  on every connect right after ``online``; it stays on the broker when the agent stops,
  so the alert engine knows which devices an offline agent leaves unknown.
- MQTT 5 persistent session (``clean_start=False``, session expiry one day) with the
  stable client id ``wardwatch-agent-{id}``.
- Two lanes after a reconnect: batches committed since the connection (live) go at once;
  the backlog from before it drains in seq order at ``drain_rate`` batches per second,
  so a week of backlog does not starve live readings. The collector sees the live seqs
  before the older ones and counts that as reordering, not loss.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import random
import time
from collections import OrderedDict
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from wardwatch import wire
from wardwatch.agent.core.config import AgentMqtt
from wardwatch.agent.core.outbox import Outbox
from wardwatch.aio import first_of
from wardwatch.config import MqttSection
from wardwatch.mqtt import describe, make_client

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
BACKOFF_MIN, BACKOFF_MAX = 1.0, 60.0
SESSION_EXPIRY = 86400
RESEND_AFTER = 60.0  # the default of mqtt.resend_after
RESEND_MAX = 3600.0  # the longest wait between two resends while nothing gets stored
MAX_TRACKED = 100_000  # PUBACKed batches whose age we track; past it, the next rewind covers them


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
        resend_after: float | None = None,
        inventory: bytes | None = None,
    ) -> None:
        self.cfg = cfg
        self.inventory = inventory  # a wire.inventory_payload, published retained on every connect
        self.agent = agent
        self.ward = ward
        self.outbox = outbox
        self.window = window
        self.drain_rate = drain_rate
        if resend_after is None:
            resend_after = cfg.resend_after if isinstance(cfg, AgentMqtt) else RESEND_AFTER
        self.resend_after = resend_after
        self.connected = False
        self.published = 0  # batches acknowledged by the broker, since start
        self.refused = 0  # PUBACKs with a failure reason code (e.g. not authorised); each is sent again
        self.stored = 0  # batches deleted from the outbox because a collector reported them stored
        self.resent = 0  # batches published again because no collector reported them stored in time
        self.rewinds = 0  # times the outbox was rewound for that
        self.stored_invalid = 0  # ``stored`` messages refused (bad payload, or above our next seq)
        self.watermark = 0  # the highest ``stored`` watermark applied
        self.connections = 0  # successful connections, since start
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> seq
        self._acked: list[int] = []  # PUBACKed (or refused) since the drain loop last looked
        # PUBACKed or refused, not yet reported stored: seq -> loop time, oldest first.
        self._unconfirmed: OrderedDict[int, float] = OrderedDict()
        self._overflow_at: float | None = None  # when a PUBACK found _unconfirmed full
        self._stored_msgs: list[wire.Stored] = []
        self._misses = 0  # rewinds since a stored message last deleted anything
        self._probe_left: int | None = None  # batches a probe rewind may still send
        self._rewind = False
        self._resent_below = 0  # seqs below this were published before (by this process)
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

    def _on_message(self, _c: Client, _u: Any, msg: MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stored_msg, msg.topic, bytes(msg.payload))

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
            log.error(
                "agent %s: broker refused batch seq=%d: %s; it stays in the outbox and is sent again in %.0f s",
                self.agent, seq, rc, self._resend_wait(),
            )
        else:
            self.published += 1
        self._acked.append(seq)
        self._wake.set()

    def _stored_msg(self, topic: str, payload: bytes) -> None:
        try:
            msg = wire.decode_stored(topic, payload)
        except wire.WireError as exc:
            self.stored_invalid += 1
            log.warning("agent %s: ignoring a stored message on %r: %s", self.agent, topic, exc)
            return
        if msg.watermark > self.outbox.next_seq:
            self.stored_invalid += 1
            log.warning(
                "agent %s: stored watermark %d (from %s) is above this outbox's next seq %d: an outbox reset "
                "under the same agent id? ignored", self.agent, msg.watermark, msg.collector or "?",
                self.outbox.next_seq,
            )
            return
        self._stored_msgs.append(msg)
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
        client.on_message = self._on_message
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
        self.connections += 1
        self._inflight.clear()
        # Everything still in the outbox is sent again on this connection (_drain).
        self._unconfirmed.clear()
        self._overflow_at = None
        self._rewind = False
        log.info("agent %s: connected to %s", self.agent, describe(self.cfg))
        client.subscribe(wire.stored_topic(self.ward, self.agent), qos=1)
        client.publish(wire.status_topic(self.ward, self.agent), self._status("online"), qos=1, retain=True)
        if self.inventory is not None:
            client.publish(wire.inventory_topic(self.ward, self.agent), self.inventory, qos=1, retain=True)
        self._client = client
        return client

    async def _drain(self, client: Client) -> None:
        topic = wire.readings_topic(self.ward, self.agent)
        loop = asyncio.get_running_loop()
        live_from = self.outbox.next_seq  # older seqs are the backlog
        last_live, last_old = live_from - 1, -1
        backlog = True
        self._probe_left = self.window if self._misses else None  # nothing stored lately: probe first
        # A full bucket to start with: a short outage's backlog goes at once, in order.
        tokens, refilled = max(1.0, self.drain_rate), loop.time()
        while self.connected:
            self._wake.clear()
            self.outbox.added.clear()
            if self._acked:
                await self._track(self._acked, loop.time())
            if self._stored_msgs:
                if await self._apply_stored() and self._probe_left is not None:
                    self._probe_left = None  # a collector is storing again: the rest drains now
                    backlog = True
            if self._resend_due(loop.time()):
                await self._forget_gone()
            if self._rewind or self._resend_due(loop.time()):
                # Everything still in the outbox becomes the backlog again, in seq order.
                self._rewind = False
                self._probe_left = self.window if self._misses else None
                self._misses += 1
                self.rewinds += 1
                self._unconfirmed.clear()
                self._overflow_at = None
                live_from, last_old, backlog = last_live + 1, -1, True
                log.info(
                    "agent %s: batches acknowledged by the broker but not reported stored for %.0f s; sending %s "
                    "again", self.agent, self._resend_wait(),
                    "the outbox" if self._probe_left is None else f"the oldest {self._probe_left} as a probe",
                )
            room = self.window - len(self._inflight)
            rows: list[tuple[int, bytes]] = []
            if room > 0:
                rows = await self.outbox.pending(after=last_live, limit=room)
                if rows:
                    last_live = rows[-1][0]
            wait: float | None = None
            if backlog and room > len(rows):
                now = loop.time()
                tokens = min(max(1.0, self.drain_rate), tokens + (now - refilled) * self.drain_rate)
                refilled = now
                n = min(room - len(rows), int(tokens))
                if self._probe_left is not None:
                    n = min(n, self._probe_left)
                if n > 0:
                    old = await self.outbox.pending(after=last_old, limit=n, below=live_from)
                    tokens -= len(old)
                    backlog = len(old) == n
                    if old:
                        last_old = old[-1][0]
                        rows = old + rows
                        if last_old < self._resent_below:
                            self.resent += sum(1 for seq, _ in old if seq < self._resent_below)
                    if self._probe_left is not None:
                        self._probe_left -= len(old)
                        if self._probe_left <= 0:
                            backlog = False  # the probe is out: wait for a stored message or the next rewind
                if backlog:
                    wait = max(0.01, (1.0 - tokens) / self.drain_rate)
            for seq, payload in rows:
                info = client.publish(topic, payload, qos=1)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._lost(f"publish failed: {info.rc}")
                    return
                self._inflight[info.mid] = seq
                self._resent_below = max(self._resent_below, seq + 1)
            due = self._next_resend()
            if due is not None:
                until = max(0.05, due - loop.time())
                wait = until if wait is None else min(wait, until)
            if not self._acked and not self._stored_msgs and not self._wake.is_set() and not self.outbox.added.is_set():
                await first_of(self._wake.wait(), self.outbox.added.wait(), within=wait)

    async def _track(self, seqs: list[int], now: float) -> None:
        """PUBACKed or refused batches: their place in the window is free; they wait for ``stored``."""
        self._acked = []
        for seq in seqs:
            if seq < self.watermark:
                continue  # reported stored before its PUBACK came
            if len(self._unconfirmed) >= MAX_TRACKED:
                if self._overflow_at is None:
                    self._overflow_at = now
                continue
            self._unconfirmed.pop(seq, None)
            self._unconfirmed[seq] = now

    async def _apply_stored(self) -> bool:
        """Delete what the collectors' ``stored`` messages cover; True if anything went."""
        msgs, self._stored_msgs = self._stored_msgs, []
        below = max(self.watermark, *(m.watermark for m in msgs))
        top = self.outbox.next_seq
        ranges = [(a, min(b, top - 1)) for m in msgs for a, b in m.ranges if b >= below and a < top]
        deleted = await self.outbox.confirm(below, ranges)
        raised = below > self.watermark
        self.watermark = below
        if self._unconfirmed:
            spans = sorted(ranges)
            starts = [a for a, _ in spans]
            ends = list(itertools.accumulate((b for _, b in spans), max))

            def covered(seq: int) -> bool:
                i = bisect.bisect_right(starts, seq) - 1
                return seq < below or (i >= 0 and ends[i] >= seq)

            for seq in [s for s in self._unconfirmed if covered(s)]:
                del self._unconfirmed[seq]
        self.stored += deleted
        if deleted or raised:
            self._misses = 0
            return True
        return False

    async def _forget_gone(self) -> None:
        """Before a rewind: stop waiting for batches no longer in the outbox (a ``stored``
        range deleted them before their PUBACK came)."""
        if not self._unconfirmed:
            return
        present = await self.outbox.present(min(self._unconfirmed), max(self._unconfirmed))
        for seq in [s for s in self._unconfirmed if s not in present]:
            del self._unconfirmed[seq]

    def _resend_wait(self) -> float:
        """How long a PUBACKed batch waits for ``stored`` before it is sent again."""
        return min(max(self.resend_after, RESEND_MAX), self.resend_after * 2.0 ** min(self._misses, 16))

    def _next_resend(self) -> float | None:
        """Loop time at which the oldest unconfirmed batch is due to be sent again."""
        oldest = next(iter(self._unconfirmed.values()), None)
        if self._overflow_at is not None:
            oldest = self._overflow_at if oldest is None else min(oldest, self._overflow_at)
        return None if oldest is None else oldest + self._resend_wait()

    def _resend_due(self, now: float) -> bool:
        due = self._next_resend()
        return due is not None and now >= due

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
