"""The collector's MQTT side: paho-mqtt in its own network thread, feeding an asyncio queue."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, Final

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from wardwatch import mqtt as ww_mqtt
from wardwatch import wire
from wardwatch.collector.config import CollectorMqtt
from wardwatch.collector.ledger import Counters

log = logging.getLogger(__name__)

MQTT_RECONNECT_MIN: Final = 1
MQTT_RECONNECT_MAX: Final = 30
MQTT_CLOSE_TIMEOUT: Final = 5.0
# MQTT 5 Maximum Packet Size in our CONNECT: the broker never sends us a packet larger
# than this (it drops it instead, and a shared subscription's other members get no copy
# either). Well above wire.MAX_PAYLOAD_BYTES (1 MiB), so that a payload between the two
# still reaches us and is dead-lettered as too large, with its reason; what is above it
# never costs us the memory (docs/mqtt.md).
MAX_PACKET_BYTES: Final = 16 * 1024 * 1024


class StartupError(RuntimeError):
    """The collector could not start (port in use, unreadable TLS files, ...)."""


@dataclass(slots=True)
class Received:
    """One MQTT message as handed from paho's thread to the event loop."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    retain: bool = False


class MqttSource:
    """paho-mqtt in its own network thread, feeding an asyncio queue; acks go back.

    Reconnects are paho's own (exponential, 1 s to 30 s). Every successful connect
    subscribes again, so a broker that lost the session is subscribed anew.

    Per message, paho's thread only appends to an inbox; the event loop is woken once per
    burst (one ``call_soon_threadsafe`` while a wake-up is pending, not one per message)
    and moves the inbox to the queue. Acks of a flush go out as one write of PUBACKs
    (wardwatch.mqtt.FastClient).
    """

    def __init__(
        self,
        cfg: CollectorMqtt,
        *,
        client_id: str,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Received],
        counters: Counters,
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.where = ww_mqtt.describe(cfg)
        self.topic_filter = (
            wire.shared(cfg.share_group, wire.READINGS_FILTER) if cfg.share_group else wire.READINGS_FILTER
        )
        self.connected = False
        self.subscribed = False
        self.stale_acks = 0
        self._loop = loop
        self._queue = queue
        self._counters = counters
        self._generation = 0
        self._ack_lock = threading.Lock()
        self._closing = False
        self._disconnected = threading.Event()
        self._inbox: collections.deque[Received] = collections.deque()
        self._wake_pending = False
        try:
            self._client = ww_mqtt.make_client(cfg, client_id=client_id, manual_ack=True, fast=True)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise StartupError(f"mqtt.tls: {exc}") from None
        self._client.reconnect_delay_set(min_delay=MQTT_RECONNECT_MIN, max_delay=MQTT_RECONNECT_MAX)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = int(self.cfg.session_expiry)
        props.ReceiveMaximum = self.cfg.receive_maximum
        props.MaximumPacketSize = MAX_PACKET_BYTES
        # clean_start=False: resume the session the broker kept for this client id, so
        # that what it sent us before a restart and we never acked comes again.
        self._client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=round(self.cfg.keepalive),
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        log.info("mqtt: connecting to %s as %s, subscribing to %s", self.where, self.client_id, self.topic_filter)

    def ack(self, messages: list[Received]) -> None:
        """PUBACK each message, in order, unless it came on an earlier connection; all of
        them in one write (QoS 0 messages need none)."""
        with self._ack_lock:
            generation = self._generation
            mids = []
            for msg in messages:
                if msg.generation != generation:
                    self.stale_acks += 1
                elif msg.qos == 1:
                    mids.append(msg.mid)
                elif msg.qos == 2:  # not subscribed at 2; paho's own ack, should a broker grant it
                    self._client.ack(msg.mid, msg.qos)
            assert isinstance(self._client, ww_mqtt.FastClient)
            self._client.puback_many(mids)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """QoS 1, from the event loop; False when not connected (nothing is queued then)."""
        if not self.connected:
            return False
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    async def close(self) -> None:
        """Disconnect (queued acks go out first) and stop paho's thread."""
        self._closing = True
        was_connected = self._client.is_connected()
        # Also when not connected: it ends paho's reconnect loop.
        self._client.disconnect()
        if was_connected:
            await asyncio.to_thread(self._disconnected.wait, MQTT_CLOSE_TIMEOUT)
        await asyncio.to_thread(self._client.loop_stop)
        log.info("mqtt: disconnected from %s", self.where)

    # paho's thread ------------------------------------------------------------

    def _on_connect(
        self,
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._ack_lock:
            self._generation += 1
        if reason_code.is_failure:
            self.connected = False
            log.error("mqtt: %s refused the connection: %s", self.where, reason_code)
            return
        self._disconnected.clear()
        self.connected = True
        log.info("mqtt: connected to %s (session present: %s)", self.where, flags.session_present)
        # Status is not shared: every collector sees every agent come and go.
        # So is ``stored``: every collector learns what the others stored (collector/stored.py),
        # but not its own messages back (no_local).
        client.subscribe([
            (self.topic_filter, SubscribeOptions(qos=1)),
            (wire.STATUS_FILTER, SubscribeOptions(qos=1)),
            (wire.STORED_FILTER, SubscribeOptions(qos=1, noLocal=True)),
        ])

    def _on_connect_fail(self, client: Client, userdata: Any) -> None:
        log.warning(
            "mqtt: cannot connect to %s; paho retries (backoff %d-%d s)",
            self.where,
            MQTT_RECONNECT_MIN,
            MQTT_RECONNECT_MAX,
        )

    def _on_disconnect(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self.connected
        self.connected = False
        self.subscribed = False
        self._disconnected.set()
        if self._closing:
            return
        if was_connected:
            log.warning("mqtt: disconnected from %s: %s; reconnecting", self.where, reason_code)

    def _on_subscribe(
        self,
        client: Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            self.subscribed = False
            log.error("mqtt: %s refused the subscription to %s: %s", self.where, self.topic_filter, failed[0])
        else:
            self.subscribed = True
            log.info("mqtt: subscribed to %s (granted QoS %s)", self.topic_filter, reason_codes[0].value)

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        # message._topic is the raw bytes: .topic raises on a topic that is not UTF-8.
        raw_topic: bytes = message._topic
        item = Received(
            topic=raw_topic.decode("utf-8", errors="backslashreplace"),
            payload=bytes(message.payload),
            mid=message.mid,
            qos=message.qos,
            generation=self._generation,
            retain=bool(message.retain),
        )
        self._inbox.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: we are exiting
                self._loop.call_soon_threadsafe(self._take_inbox)

    # the event loop -----------------------------------------------------------

    def _take_inbox(self) -> None:
        # Cleared before the inbox is read: a message appended after this schedules a new
        # wake-up, so none is left behind.
        self._wake_pending = False
        inbox, queue = self._inbox, self._queue
        while inbox:
            item = inbox.popleft()
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                # Left unacked: the broker redelivers it after our next reconnect.
                self._counters.dropped += 1
                log.error("queue full (%d): message on %r not taken; the broker keeps it", queue.maxsize, item.topic)
