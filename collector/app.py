"""The collector process: MQTT readings in, InfluxDB points out, at least once.

Shape (one asyncio.TaskGroup; paho's network loop in paho's own thread)::

    paho thread                asyncio loop
    on_message -> inbox --call_soon_threadsafe--> queue --> _consume: decode, validate, convert,
      (one wake-up per burst)                     batch until batch_points / flush_interval,
                                                  write (retrying while InfluxDB is away),
    PUBACKs, one write <-------------------------- then ack every message of the batch
                                                  (one flush in flight while the next
                                                  batch is taken)
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
- InfluxDB unavailable (5xx, timeout, refused): the write is retried with a capped
  backoff for ``spool.after`` seconds, then the points go to the local spool
  (collector/spool.py) and the messages are acked. While InfluxDB stays away, later
  batches go straight to the spool. ``Store.drain_spool`` (collector/store.py) writes it back, oldest
  first, when InfluxDB answers. If the spool is full or its disk fails, nothing is
  acked and the broker stops sending once ``receive_maximum`` messages are
  unacknowledged, which is the back-pressure. InfluxDB rejecting the data (4xx):
  the batch is split in halves until the messages it refuses are found; those are
  dead-lettered and acked, the rest written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from aiohttp import web

from wardwatch import redact, wire
from wardwatch.collector import lineproto, presence, seqlog
from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.http import start_http
from wardwatch.collector.influx import InfluxRejected, InfluxUnavailable, open_influx
from wardwatch.collector.ledger import Counters, DeadLetter, SeqTracker, iso
from wardwatch.collector.source import MqttSource, Received, StartupError
from wardwatch.collector.spool import Spool, SpoolError
from wardwatch.collector.store import GaveUp, Store
from wardwatch.collector.stored import StoredMarks

if TYPE_CHECKING:
    from wardwatch.collector.alerts.service import AlertService

log = logging.getLogger(__name__)

SELF_METRICS_INTERVAL: Final = 10.0
SELF_MEASUREMENT: Final = "collector"


class BatchKey(NamedTuple):
    ward: str
    agent: str
    seq: int
    pending_from: int | None


@dataclass(slots=True)
class Pending:
    """A taken message waiting for its batch to be stored before it is acked."""

    msg: Received
    lines: list[bytes]
    ack: bool = True
    batch: BatchKey | None = None  # a readings batch: claimed in ``stored`` once written


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
        self.marks = StoredMarks(client_id)
        self.dead_letter = DeadLetter(cfg.dead_letter.path, max_bytes=cfg.dead_letter.max_bytes)
        self.spool = Spool(cfg.spool.path, max_bytes=cfg.spool.max_mb * 2**20)
        self.ledger: dict[str, seqlog.AgentLedger] = {}
        self.checkpoints: dict[str, seqlog.Checkpoint] = {}  # what reconcile has settled, per agent
        self.ledger_time: float | None = None
        self._stale: set[str] = set()  # agents marked stale from the ledger
        self.stop = asyncio.Event()
        # Twice the broker's in-flight window: room for a reconnect's redeliveries.
        self.queue: asyncio.Queue[Received] = asyncio.Queue(maxsize=2 * cfg.mqtt.receive_maximum)
        self._store: Store | None = None
        self._source: MqttSource | None = None
        self.alerts: AlertService | None = None
        if cfg.alerts is not None:  # the alert engine runs here (docs/alerts.md)
            from wardwatch.collector.alerts.service import AlertService

            self.alerts = AlertService(cfg, client_id=client_id, write=self._alert_write, stop=self.stop)

    @property
    def store(self) -> Store:
        assert self._store is not None
        return self._store

    @property
    def source(self) -> MqttSource:
        assert self._source is not None
        return self._source

    async def run(self) -> None:
        icfg = self.cfg.influx
        async with open_influx(icfg) as influx:
            self._store = Store(
                influx=influx,
                spool=self.spool,
                dead_letter=self.dead_letter,
                counters=self.counters,
                stop=self.stop,
                spool_after=self.cfg.spool.after,
            )
            try:
                await asyncio.to_thread(self.spool.open)
            except SpoolError as exc:
                raise StartupError(str(exc)) from None
            if self.spool.points:
                log.info("spool %s holds %d points from before; writing them back", self.spool.path, self.spool.points)
            if self.alerts is not None:
                from wardwatch.collector.alerts.store import StoreError

                try:
                    await asyncio.to_thread(self.alerts.open)
                except StoreError as exc:
                    raise StartupError(f"alerts.state: {exc}") from None
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
                        tg.create_task(self.store.drain_spool(), name="drain-spool")
                        tg.create_task(self._reconcile(), name="reconcile")
                        if self.alerts is not None:
                            tg.create_task(self.alerts.run(), name="alerts")
                finally:
                    await self.source.close()
            finally:
                await runner.cleanup()
                await asyncio.to_thread(self.spool.close)
                await asyncio.to_thread(self.dead_letter.close)
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
        # One flush (write, then acks) runs while the next batch is taken: decoding overlaps
        # the write. At most one is in flight, and the next starts only after it finished,
        # so acks still go out in arrival order.
        flushing: asyncio.Task[None] | None = None
        done = False
        try:
            while not self.stop.is_set():
                item = await self._next(stop_wait, deadline, flushing)
                if flushing is not None and flushing.done():
                    flushing.result()  # a write that failed unexpectedly fails us now, as it did inline
                    flushing = None
                if item is not None:
                    if not pending:
                        deadline = loop.time() + icfg.flush_interval
                    points += await self._take(item, pending)
                if pending and (
                    points >= icfg.batch_points
                    or len(pending) >= max_messages
                    or (deadline is not None and loop.time() >= deadline)
                ):
                    if flushing is not None:
                        await flushing
                    flushing = asyncio.create_task(self._flush(pending), name="flush")
                    pending, points, deadline = [], 0, None
            done = True
        finally:
            stop_wait.cancel()
            if not done and flushing is not None and not flushing.done():
                flushing.cancel()  # we are cancelled or failed: so is the write (nothing acked)
        if flushing is not None:
            await flushing
        # Stopping: take nothing more (the broker redelivers what is queued), store and
        # ack what was taken.
        if pending:
            log.info("stopping: flushing %d messages (%d points)", len(pending), points)
            await self._flush(pending)

    async def _next(
        self, stop_wait: asyncio.Future[Any], deadline: float | None, flushing: asyncio.Task[None] | None = None
    ) -> Received | None:
        """The next message; None when the flush deadline passed, the flush in flight
        finished, or we are stopping."""
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        get = asyncio.ensure_future(self.queue.get())
        try:
            waits: set[asyncio.Future[Any]] = {get, stop_wait}
            if flushing is not None and not flushing.done():
                waits.add(flushing)
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        return None

    async def _take(self, msg: Received, pending: list[Pending]) -> int:
        """Validate and convert one message into ``pending``; return its point count."""
        if msg.topic.endswith("/status"):
            self.counters.statuses += 1
            return await self._take_status(msg, pending)
        if msg.topic.endswith("/stored"):
            return await self._take_stored(msg, pending)
        self.counters.messages += 1
        try:
            batch = wire.decode_from(msg.topic, msg.payload)
            lines = lineproto.batch_lines(batch)
        except (wire.WireError, lineproto.LineProtocolError) as exc:
            return await self._invalid(msg, pending, exc)
        except Exception as exc:  # a bug of ours must not stop the pipeline either
            log.exception("unexpected error decoding a message on %r", msg.topic)
            return await self._invalid(msg, pending, RuntimeError(f"could not be decoded: {exc!r}"))
        lines.append(seqlog.record_line(batch, self.client_id))
        seen = self.seq.observe(ward=batch.ward, agent=batch.agent, seq=batch.seq, now=time.time())
        if seen == "duplicate":
            self.counters.duplicates += 1
            log.info("agent %s (ward %s): seq %d seen before; writing it again", batch.agent, batch.ward, batch.seq)
        elif seen == "reordered":
            self.counters.reordered += 1
        pending.append(Pending(msg, lines, batch=BatchKey(batch.ward, batch.agent, batch.seq, batch.pending_from)))
        return len(lines)

    async def _take_status(self, msg: Received, pending: list[Pending]) -> int:
        try:
            status = wire.decode_status(msg.topic, msg.payload)
            line = presence.status_line(status, received_ms=int(time.time() * 1000), retained=msg.retain)
        except (wire.WireError, lineproto.LineProtocolError) as exc:
            return await self._invalid(msg, pending, exc)
        log.info("agent %s (ward %s): %s%s", status.agent, status.ward, status.state, " (retained)" * msg.retain)
        if status.state == "online":
            self._stale.discard(status.agent)
        pending.append(Pending(msg, [line]))
        return 1

    async def _take_stored(self, msg: Received, pending: list[Pending]) -> int:
        """Another collector's ``stored`` message: learn its claims (collector/stored.py)."""
        try:
            self.marks.learn(wire.decode_stored(msg.topic, msg.payload))
        except wire.WireError as exc:
            return await self._invalid(msg, pending, exc)
        pending.append(Pending(msg, []))
        return 0

    async def _invalid(self, msg: Received, pending: list[Pending], exc: Exception) -> int:
        self.counters.invalid += 1
        log.warning("invalid message on %r (%d bytes): %s; dead-lettered", msg.topic, len(msg.payload), exc)
        entry = Pending(msg, [])
        await self._dead_letter(entry, str(exc))
        pending.append(entry)
        return 0

    async def _sync_dead_letters(self, pending: list[Pending]) -> None:
        if not self.dead_letter.dirty:  # nothing appended since the last sync
            return
        try:
            await asyncio.to_thread(self.dead_letter.sync)
        except OSError as exc:
            log.error("cannot sync dead-letter file %s: %s; its messages left unacked", self.dead_letter.path, exc)
            for p in pending:
                if not p.lines:
                    p.ack = False

    async def _dead_letter(self, entry: Pending, reason: str) -> None:
        msg = entry.msg
        try:
            await asyncio.to_thread(
                self.dead_letter.append, topic=msg.topic, reason=redact.redact(reason), payload=msg.payload,
                now=time.time()
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
            await self._write_entries([p for p in pending if p.lines])
            await self._sync_dead_letters(pending)
        except GaveUp:
            unacked = sum(1 for p in pending if p.lines)
            log.warning("stopping with %d messages unwritten; left unacked for the broker to redeliver", unacked)
            await self._sync_dead_letters(pending)
            self.source.ack([p.msg for p in pending if p.ack and not p.lines])
            return
        self.source.ack([p.msg for p in pending if p.ack])
        self._publish_stored()

    def _publish_stored(self) -> None:
        """Tell each agent whose batches we just stored how far it is stored (retained)."""
        for topic, payload in self.marks.take_dirty():
            if self.source.publish(topic, payload, retain=True):
                self.counters.stored_sent += 1
            else:  # not connected: the agent sends again, and we claim it then
                log.debug("stored watermark on %r not sent: not connected", topic)

    async def _write_entries(self, entries: list[Pending]) -> None:
        """Write entries' points; dead-letter the messages InfluxDB refuses.

        A refused batch is split in halves until each refusal is pinned to one message:
        InfluxDB 1.x writes the good points of a partial write, and writing them again is
        harmless.
        """
        if not entries:
            return
        lines = [line for e in entries for line in e.lines]
        try:
            await self.store.write(lines)
            for e in entries:  # durable now, in InfluxDB or the spool: ours to claim
                if e.batch is not None:
                    b = e.batch
                    self.marks.stored(ward=b.ward, agent=b.agent, seq=b.seq, pending_from=b.pending_from)
        except InfluxRejected as exc:
            if len(entries) == 1:
                entry = entries[0]
                self.counters.rejected += 1
                log.warning("InfluxDB refused the message on %r: %s; dead-lettered", entry.msg.topic, exc)
                await self._dead_letter(entry, f"rejected by InfluxDB: {exc}")
                return
            log.info("InfluxDB refused a batch of %d messages; splitting it to find the bad ones", len(entries))
            half = len(entries) // 2
            await self._write_entries(entries[:half])
            await self._write_entries(entries[half:])
            return

    async def _reconcile(self) -> None:
        """Every ``reconcile_interval``, count what is missing from the shared seq ledger."""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.cfg.reconcile_interval)
                return
            try:
                ledger = await seqlog.reconcile(
                    self.store.influx, self.checkpoints, now_ms=int(time.time() * 1000),
                    window_s=self.cfg.reconcile_window,
                )
            except (InfluxUnavailable, InfluxRejected) as exc:
                log.debug("seq ledger not read: %s", exc)
                continue
            except Exception:  # an answer we cannot read (a store whose /query is not InfluxQL)
                log.exception("seq ledger not read: unexpected answer; the pipeline goes on")
                continue
            for agent, now in ledger.items():
                before = self.ledger.get(agent)
                if now.missing > (before.missing if before else 0):
                    log.warning(
                        "agent %s: %d batches missing in all (seq %d..%d stored, floor %d, agent dropped %d)",
                        agent,
                        now.missing,
                        now.first,
                        now.last,
                        now.floor,
                        now.dropped,
                    )
            self.ledger, self.ledger_time = ledger, time.time()
            self.counters.missing = sum(a.missing for a in ledger.values())
            try:
                stale = await presence.stale_lines(
                    self.store.influx, stale_after=self.cfg.stale_after, already=self._stale
                )
                if stale:
                    await self.store.influx.write(stale)
                    log.warning(
                        "%d agents silent for over %.0f s: their devices are unknown", len(stale), self.cfg.stale_after
                    )
            except (InfluxUnavailable, InfluxRejected) as exc:
                log.debug("stale agents not marked: %s", exc)
            except Exception:
                log.exception("stale agents not marked: unexpected answer; the pipeline goes on")

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
            "statuses": c.statuses,
            "points_written": c.points_written,
            "invalid": c.invalid,
            "rejected": c.rejected,
            "write_errors": c.write_errors,
            "missing": c.missing,
            "duplicates": c.duplicates,
            "reordered": c.reordered,
            "dropped": c.dropped,
            "queue_depth": self.queue.qsize(),
            "spooled": c.spooled,
            "spool_points": self.spool.points,
            "stored_sent": c.stored_sent,
        }
        return lineproto.line(SELF_MEASUREMENT, {"collector": self.client_id}, fields, time.time_ns() // 1_000_000)

    async def _write_self_metrics(self) -> None:
        await self.store.try_write([self.self_metrics_line()], "the collector's own metrics")

    # HTTP -----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        source = self._source
        mqtt_connected = bool(source and source.connected)
        subscribed = bool(source and source.subscribed)
        influx_ok = self._store is not None and self._store.ok
        ok = mqtt_connected and subscribed and influx_ok
        counters = self.counters.as_json()
        counters["stale_acks"] = source.stale_acks if source else 0
        counters["holes_given_up"] = self.seq.given_up  # past the tracker's cap: counted missing here
        return {
            "status": "ok" if ok else "degraded",
            "client_id": self.client_id,
            "mqtt_connected": mqtt_connected,
            "mqtt_subscribed": subscribed,
            "influx_ok": influx_ok,
            "queue_depth": self.queue.qsize(),
            "spool": {"points": self.spool.points, "bytes": self.spool.bytes, "path": str(self.spool.path)},
            "counters": counters,
            "agents": self.seq.as_json(),
            "ledger": {agent: a.as_json() for agent, a in sorted(self.ledger.items())},
            "ledger_time": iso(self.ledger_time),
            **({"alerts": self.alerts.health()} if self.alerts is not None else {}),
        }

    async def _start_http(self) -> web.AppRunner:
        routes: list[web.RouteDef] = []
        if self.alerts is not None:
            from wardwatch.collector import web as dashboard
            from wardwatch.collector.alerts import api

            routes = [*api.routes(self.alerts), *dashboard.attach(self.alerts, influx=self.store.influx)]
        return await start_http(self.cfg.http, health=self.health, routes=routes)

    async def _alert_write(self, lines: list[bytes]) -> bool:
        return await self.store.try_write(lines, "alert history")


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
