"""The collector process: MQTT readings in, InfluxDB points out, at least once.

Shape (one asyncio.TaskGroup; paho's network loop in paho's own thread)::

    paho thread                asyncio loop
    on_message --call_soon_threadsafe--> queue --> _consume: decode, validate, convert,
                                                  batch until batch_points / flush_interval,
                                                  write (retrying while InfluxDB is away),
    client.ack(mid, qos) <------------------------ then ack every message of the batch
                                                  _self_metrics: every 10 s, own counters
                                                  aiohttp: GET /healthz

Delivery rules:

- A message is acknowledged to the broker (paho ``manual_ack``) only after its points were
  written, or after it went to the dead-letter file. A crash before that leaves it
  unacknowledged, and the broker redelivers it to the same session (``session_expiry``
  keeps the session across a restart; the client id is stable). Duplicates are harmless:
  the same series and timestamp overwrite.
- Acks are sent in the order the messages arrived, as MQTT asks.
- A message id only means something on the connection it arrived on. Each message carries
  the connection's generation; an ack for a message from an earlier connection is not sent
  (the broker redelivers it if it kept the session, and it was written either way).
- Invalid messages (bad JSON, wrong schema, topic/payload mismatch, values line protocol
  cannot carry) are logged once, counted, dead-lettered and acked; nothing stops.
- InfluxDB unavailable: the batch is kept, nothing is acked, the write is retried with a
  capped exponential backoff. Meanwhile the broker stops sending once ``receive_maximum``
  messages are unacknowledged, which is the back-pressure. InfluxDB rejecting the data:
  the batch is split in halves until the messages it refuses are found; those are
  dead-lettered and acked, the rest written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from wardwatch import mqtt as ww_mqtt
from wardwatch import wire
from wardwatch.collector import lineproto
from wardwatch.collector.config import CollectorConfig, CollectorMqtt
from wardwatch.collector.influx import InfluxRejected, InfluxUnavailable, InfluxV1Writer

log = logging.getLogger(__name__)

SELF_METRICS_INTERVAL: Final = 10.0
BACKOFF_MIN: Final = 0.5
BACKOFF_MAX: Final = 30.0
MQTT_RECONNECT_MIN: Final = 1
MQTT_RECONNECT_MAX: Final = 30
MQTT_CLOSE_TIMEOUT: Final = 5.0
SELF_MEASUREMENT: Final = "collector"


class StartupError(RuntimeError):
    """The collector could not start (port in use, unreadable TLS files, ...)."""


class _GaveUp(Exception):
    """A write was abandoned because the collector is shutting down."""


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- state


@dataclass
class Counters:
    messages: int = 0
    points_written: int = 0
    invalid: int = 0
    rejected: int = 0
    write_errors: int = 0
    gaps: int = 0
    duplicates: int = 0
    dropped: int = 0
    last_write_time: float | None = None

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["last_write_time"] = _iso(self.last_write_time)
        return doc


@dataclass
class AgentSeq:
    ward: str
    last_seq: int
    last_seen: float
    gaps: int = 0
    duplicates: int = 0


class SeqTracker:
    """Per agent, the highest ``seq`` seen; counts what went missing and what came twice.

    In memory only: after a collector restart the first batch of each agent sets the
    baseline. A batch that arrives late (after a later one) counts as a duplicate, and
    the gap it left is not taken back.
    """

    def __init__(self) -> None:
        self.agents: dict[str, AgentSeq] = {}

    def observe(self, *, ward: str, agent: str, seq: int, now: float) -> tuple[int, bool]:
        """Return (messages missing before this one, whether it is a duplicate)."""
        state = self.agents.get(agent)
        if state is None:
            self.agents[agent] = AgentSeq(ward=ward, last_seq=seq, last_seen=now)
            return 0, False
        state.last_seen = now
        state.ward = ward
        if seq <= state.last_seq:
            state.duplicates += 1
            return 0, True
        missing = seq - state.last_seq - 1
        state.gaps += missing
        state.last_seq = seq
        return missing, False

    def as_json(self) -> dict[str, Any]:
        return {
            agent: {
                "ward": s.ward,
                "last_seq": s.last_seq,
                "gaps": s.gaps,
                "duplicates": s.duplicates,
                "last_seen": _iso(s.last_seen),
            }
            for agent, s in sorted(self.agents.items())
        }


class DeadLetter:
    """An append-only JSONL file, rotated to ``<path>.1`` before it would pass max_bytes.

    Blocking file I/O: call :meth:`append` through ``asyncio.to_thread``.
    """

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._size: int | None = None
        self._lock = threading.Lock()

    def append(self, *, topic: str, reason: str, payload: bytes, now: float) -> None:
        record = {
            "time": _iso(now),
            "topic": topic,
            "reason": reason,
            "size": len(payload),
            "payload_b64": base64.b64encode(payload).decode("ascii"),
        }
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._size is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._size = self.path.stat().st_size
                except FileNotFoundError:
                    self._size = 0
            if self._size > 0 and self._size + len(data) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                self._size = 0
            with self.path.open("ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._size += len(data)


@dataclass(slots=True)
class Received:
    """One MQTT message as handed from paho's thread to the event loop."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


@dataclass(slots=True)
class Pending:
    """A taken message waiting for its batch to be stored before it is acked."""

    msg: Received
    lines: list[bytes]
    ack: bool = True


# --------------------------------------------------------------------------- MQTT


class MqttSource:
    """paho-mqtt in its own network thread, feeding an asyncio queue; acks go back.

    Reconnects are paho's own (exponential, 1 s to 30 s). Every successful connect
    subscribes again, so a broker that lost the session is subscribed anew.
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
        try:
            self._client = ww_mqtt.make_client(cfg, client_id=client_id, manual_ack=True)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise StartupError(f"mqtt.tls: {exc}") from None
        self._client.reconnect_delay_set(min_delay=MQTT_RECONNECT_MIN, max_delay=MQTT_RECONNECT_MAX)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(self.cfg.session_expiry)
        props.ReceiveMaximum = self.cfg.receive_maximum
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
        """PUBACK each message, in order, unless it came on an earlier connection."""
        with self._ack_lock:
            for msg in messages:
                if msg.generation != self._generation:
                    self.stale_acks += 1
                    continue
                self._client.ack(msg.mid, msg.qos)

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
        client.subscribe(self.topic_filter, options=SubscribeOptions(qos=1))

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
        )
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are exiting
            self._loop.call_soon_threadsafe(self._enqueue, item)

    # the event loop -----------------------------------------------------------

    def _enqueue(self, item: Received) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            # Left unacked: the broker redelivers it after our next reconnect.
            self._counters.dropped += 1
            log.error("queue full (%d): message on %r not taken; the broker keeps it", self._queue.maxsize, item.topic)


# --------------------------------------------------------------------------- collector


class Collector:
    """Everything one collector process runs; :meth:`run` returns after a clean stop."""

    def __init__(self, cfg: CollectorConfig, *, client_id: str) -> None:
        try:  # it tags the collector's own series
            lineproto.escape_tag_value(client_id, "collector")
        except lineproto.LineProtocolError as exc:
            raise StartupError(f"mqtt.client_id: {exc}") from None
        self.cfg = cfg
        self.client_id = client_id
        self.counters = Counters()
        self.seq = SeqTracker()
        self.dead_letter = DeadLetter(cfg.dead_letter.path, max_bytes=cfg.dead_letter.max_bytes)
        self.influx_ok = False
        self.stop = asyncio.Event()
        # Twice the broker's in-flight window: room for a reconnect's redeliveries.
        self.queue: asyncio.Queue[Received] = asyncio.Queue(maxsize=2 * cfg.mqtt.receive_maximum)
        self._db_ready = False
        self._db_lock = asyncio.Lock()
        self._influx: InfluxV1Writer | None = None
        self._source: MqttSource | None = None

    @property
    def influx(self) -> InfluxV1Writer:
        assert self._influx is not None
        return self._influx

    @property
    def source(self) -> MqttSource:
        assert self._source is not None
        return self._source

    async def run(self) -> None:
        icfg = self.cfg.influx
        password = icfg.password.get_secret_value() if icfg.password else None
        async with InfluxV1Writer(
            url=icfg.url,
            database=icfg.database,
            rp=icfg.rp,
            username=icfg.username,
            password=password,
            timeout=icfg.timeout,
        ) as influx:
            self._influx = influx
            runner = await self._start_http()
            try:
                self._source = MqttSource(
                    self.cfg.mqtt,
                    client_id=self.client_id,
                    loop=asyncio.get_running_loop(),
                    queue=self.queue,
                    counters=self.counters,
                )
                log.info(
                    "collector %s: writing to InfluxDB %s database %s (batch %d points / %.2f s)",
                    self.client_id,
                    influx.url,
                    icfg.database,
                    icfg.batch_points,
                    icfg.flush_interval,
                )
                self.source.start()
                try:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._consume(), name="consume")
                        tg.create_task(self._self_metrics(), name="self-metrics")
                finally:
                    await self.source.close()
            finally:
                await runner.cleanup()
        log.info("collector %s: stopped", self.client_id)

    # consuming ----------------------------------------------------------------

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        icfg = self.cfg.influx
        max_messages = self.cfg.mqtt.receive_maximum
        stop_wait = asyncio.ensure_future(self.stop.wait())
        pending: list[Pending] = []
        points = 0
        deadline: float | None = None
        try:
            while not self.stop.is_set():
                item = await self._next(stop_wait, deadline)
                if item is not None:
                    if not pending:
                        deadline = loop.time() + icfg.flush_interval
                    points += await self._take(item, pending)
                if pending and (
                    points >= icfg.batch_points
                    or len(pending) >= max_messages
                    or (deadline is not None and loop.time() >= deadline)
                ):
                    await self._flush(pending)
                    pending, points, deadline = [], 0, None
        finally:
            stop_wait.cancel()
        # Stopping: take nothing more (the broker redelivers what is queued), store and
        # ack what was taken.
        if pending:
            log.info("stopping: flushing %d messages (%d points)", len(pending), points)
            await self._flush(pending)

    async def _next(self, stop_wait: asyncio.Future[Any], deadline: float | None) -> Received | None:
        """The next message; None when the flush deadline passed or we are stopping."""
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        get = asyncio.ensure_future(self.queue.get())
        try:
            await asyncio.wait({get, stop_wait}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        return None

    async def _take(self, msg: Received, pending: list[Pending]) -> int:
        """Validate and convert one message into ``pending``; return its point count."""
        self.counters.messages += 1
        try:
            batch = wire.decode_from(msg.topic, msg.payload)
            lines = lineproto.batch_lines(batch)
        except (wire.WireError, lineproto.LineProtocolError) as exc:
            self.counters.invalid += 1
            log.warning("invalid message on %r (%d bytes): %s; dead-lettered", msg.topic, len(msg.payload), exc)
            entry = Pending(msg, [])
            await self._dead_letter(entry, str(exc))
            pending.append(entry)
            return 0
        missing, duplicate = self.seq.observe(ward=batch.ward, agent=batch.agent, seq=batch.seq, now=time.time())
        if missing:
            self.counters.gaps += missing
            # In a share group each collector sees only part of an agent's batches, so a
            # gap here is expected there: count it, but do not warn about every one.
            log.log(
                logging.DEBUG if self.cfg.mqtt.share_group else logging.WARNING,
                "agent %s (ward %s): %d batches missing before seq %d",
                batch.agent,
                batch.ward,
                missing,
                batch.seq,
            )
        if duplicate:
            self.counters.duplicates += 1
            log.info("agent %s (ward %s): seq %d seen before; writing it again", batch.agent, batch.ward, batch.seq)
        pending.append(Pending(msg, lines))
        return len(lines)

    async def _dead_letter(self, entry: Pending, reason: str) -> None:
        msg = entry.msg
        try:
            await asyncio.to_thread(
                self.dead_letter.append, topic=msg.topic, reason=reason, payload=msg.payload, now=time.time()
            )
        except OSError as exc:
            # Not acked, so not lost: the broker redelivers it after a reconnect.
            entry.ack = False
            log.error(
                "cannot write dead-letter file %s: %s; message on %r left unacked",
                self.dead_letter.path,
                exc,
                msg.topic,
            )

    async def _flush(self, pending: list[Pending]) -> None:
        """Store the points of ``pending`` and then ack all of it, in arrival order."""
        try:
            await self._store([p for p in pending if p.lines])
        except _GaveUp:
            unacked = sum(1 for p in pending if p.lines)
            log.warning("stopping with %d messages unwritten; left unacked for the broker to redeliver", unacked)
            self.source.ack([p.msg for p in pending if p.ack and not p.lines])
            return
        self.source.ack([p.msg for p in pending if p.ack])

    async def _store(self, entries: list[Pending]) -> None:
        """Write entries' points; dead-letter the messages InfluxDB refuses.

        A refused batch is split in halves until each refusal is pinned to one message:
        InfluxDB 1.x writes the good points of a partial write, and writing them again is
        harmless.
        """
        if not entries:
            return
        lines = [line for e in entries for line in e.lines]
        try:
            await self._write_retrying(lines)
        except InfluxRejected as exc:
            if len(entries) == 1:
                entry = entries[0]
                self.counters.rejected += 1
                log.warning("InfluxDB refused the message on %r: %s; dead-lettered", entry.msg.topic, exc)
                await self._dead_letter(entry, f"rejected by InfluxDB: {exc}")
                return
            log.info("InfluxDB refused a batch of %d messages; splitting it to find the bad ones", len(entries))
            half = len(entries) // 2
            await self._store(entries[:half])
            await self._store(entries[half:])
            return
        self.counters.points_written += len(lines)
        self.counters.last_write_time = time.time()

    async def _write_retrying(self, lines: list[bytes]) -> None:
        """Write until it works; raise InfluxRejected, or _GaveUp when stopping."""
        delay = BACKOFF_MIN
        while True:
            try:
                await self._ensure_database()
                await self.influx.write(lines)
            except InfluxUnavailable as exc:
                self.counters.write_errors += 1
                self._influx_down()
                if exc.status == 404:  # database not found: create it next time
                    self._db_ready = False
                if self.stop.is_set():
                    log.warning("%s; not retrying: stopping", exc)
                    raise _GaveUp from None
                log.warning("%s; keeping %d points, retrying in %.1f s", exc, len(lines), delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except InfluxRejected:
                self.counters.write_errors += 1
                self._influx_up()
                raise
            self._influx_up()
            return

    async def _ensure_database(self) -> None:
        if self._db_ready:
            return
        async with self._db_lock:
            if self._db_ready:
                return
            try:
                await self.influx.ensure_database()
            except InfluxRejected as exc:
                log.warning("cannot create database %s (%s); assuming it exists", self.influx.database, exc)
            except InfluxUnavailable as exc:
                if exc.status not in (401, 403):
                    raise
                log.warning("not allowed to create database %s (%s); assuming it exists", self.influx.database, exc)
            self._db_ready = True

    def _influx_up(self) -> None:
        if not self.influx_ok:
            log.info("InfluxDB %s is writable", self.influx.url)
        self.influx_ok = True

    def _influx_down(self) -> None:
        self.influx_ok = False

    # self-metrics ---------------------------------------------------------------

    async def _self_metrics(self) -> None:
        while True:
            await self._write_self_metrics()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), SELF_METRICS_INTERVAL)
                return

    def self_metrics_line(self) -> bytes:
        c = self.counters
        fields: dict[str, lineproto.FieldValue] = {
            "messages": c.messages,
            "points_written": c.points_written,
            "invalid": c.invalid,
            "rejected": c.rejected,
            "write_errors": c.write_errors,
            "gaps": c.gaps,
            "duplicates": c.duplicates,
            "dropped": c.dropped,
            "queue_depth": self.queue.qsize(),
        }
        return lineproto.line(SELF_MEASUREMENT, {"collector": self.client_id}, fields, time.time_ns() // 1_000_000)

    async def _write_self_metrics(self) -> None:
        try:
            await self._ensure_database()
            await self.influx.write([self.self_metrics_line()])
        except InfluxUnavailable as exc:
            if self.influx_ok:
                log.warning("%s", exc)
            self._influx_down()
        except InfluxRejected as exc:
            log.warning("InfluxDB refused the collector's own metrics: %s", exc)
        else:
            self._influx_up()

    # HTTP -----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        source = self._source
        mqtt_connected = bool(source and source.connected)
        subscribed = bool(source and source.subscribed)
        ok = mqtt_connected and subscribed and self.influx_ok
        counters = self.counters.as_json()
        counters["stale_acks"] = source.stale_acks if source else 0
        return {
            "status": "ok" if ok else "degraded",
            "client_id": self.client_id,
            "mqtt_connected": mqtt_connected,
            "mqtt_subscribed": subscribed,
            "influx_ok": self.influx_ok,
            "queue_depth": self.queue.qsize(),
            "counters": counters,
            "agents": self.seq.as_json(),
        }

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response(self.health())

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        token = self.cfg.http.token
        if token is not None:
            given = request.headers.get("Authorization", "")
            expected = f"Bearer {token.get_secret_value()}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return web.json_response(
                    {"error": "missing or wrong bearer token"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="wardwatch"'},
                )
        response: web.StreamResponse = await handler(request)
        return response

    async def _start_http(self) -> web.AppRunner:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        hcfg = self.cfg.http
        site = web.TCPSite(runner, hcfg.host, hcfg.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise StartupError(f"http: cannot listen on {hcfg.host}:{hcfg.port}: {exc.strerror or exc}") from None
        log.info(
            "http: serving /healthz on http://%s:%d%s", hcfg.host, hcfg.port, " (token required)" if hcfg.token else ""
        )
        return runner


async def run(cfg: CollectorConfig, *, client_id: str) -> None:
    """Run a collector until SIGINT or SIGTERM, then stop cleanly."""
    collector = Collector(cfg, client_id=client_id)
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if not collector.stop.is_set():
            log.info("%s: stopping", sig.name)
        collector.stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await collector.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


__all__ = ["Collector", "Counters", "DeadLetter", "SeqTracker", "StartupError", "run"]
