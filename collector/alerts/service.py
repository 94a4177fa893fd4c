"""The alert service: its own MQTT subscription, the engine, the notifier, the state file.

Shape (one asyncio.TaskGroup; paho's network loop in its own thread)::

    paho thread --call_soon_threadsafe--> queue --> _consume: decode, Engine.observe_*
                                                    _tick (1 s): Engine.tick, history to SQLite
                                                      and InfluxDB's ``alert`` series, state saved
                                                    Notifier.run: reconcile, group, deliver

The subscription is the engine's own, never in a share group: it must see every reading
of its wards (``alerts.wards``), in each agent's order. Two engines on the same wards would
notify twice; partition a province by ward (docs/alerts.md).

It runs inside ``wardwatch-collector run`` when the config has ``alerts:``, sharing the
collector's HTTP server, or alone (``wardwatch-collector alerts -c FILE``) with its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from wardwatch import mqtt as ww_mqtt
from wardwatch import wire
from wardwatch.collector import lineproto
from wardwatch.collector.alerts.channels import Channel, open_channel
from wardwatch.collector.alerts.config import MaintenanceWindow, MqttChannel
from wardwatch.collector.alerts.engine import Engine, Transition
from wardwatch.collector.alerts.model import Alert
from wardwatch.collector.alerts.notify import Notifier
from wardwatch.collector.alerts.rules import load_rules
from wardwatch.collector.alerts.store import AlertStore
from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.http import base_url

log = logging.getLogger(__name__)

TICK: Final = 1.0
QUEUE_MAX: Final = 100_000
HISTORY_PENDING_MAX: Final = 50_000  # ``alert`` lines kept while InfluxDB is away
SERIES: Final = "alert"

Write = Callable[[list[bytes]], Awaitable[bool]]


class Observer(Protocol):
    """Something else that needs every message of the engine's wards in order: the web
    dashboard's live state (collector/web/live.py). Called on the event loop; must be quick."""

    def observe_batch(self, batch: wire.Batch, *, now_ms: int) -> None: ...
    def observe_status(self, status: wire.Status, *, now_ms: int) -> None: ...
    def observe_inventory(self, inv: wire.Inventory) -> None: ...
    def forget(self, ward: str, agent: str) -> None: ...
    def tick(self, now_ms: int) -> None: ...


class AlertService:
    """Everything the alert engine runs; :meth:`run` returns after ``stop`` is set."""

    def __init__(self, cfg: CollectorConfig, *, client_id: str, write: Write, stop: asyncio.Event) -> None:
        assert cfg.alerts is not None
        self.cfg = cfg
        self.acfg = cfg.alerts
        self.client_id = f"{client_id}-alerts"
        self.write = write
        self.stop = stop
        self.rules = load_rules(self.acfg.rules)  # ConfigError naming the key
        self.store = AlertStore(self.acfg.state)
        self.tz = ZoneInfo(cfg.timezone)
        self._silences: list[Any] = []
        self.engine = Engine(
            self.rules,
            wards=cfg.wards,
            maintenance_windows=self.acfg.maintenance,
            silences=lambda: self._silences,
            owed=self._owed,
            tz=self.tz,
            stale_after=cfg.stale_after,
            live_lag=self.acfg.live_lag,
            language=self.acfg.language,
        )
        self.notifier: Notifier | None = None
        self.channels: dict[str, Channel] = {}
        self.queue: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(maxsize=QUEUE_MAX)
        self.connected = False
        self.invalid = 0
        self.dropped = 0
        self._history: list[bytes] = []
        self._client: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._disconnected = threading.Event()
        self._opened = False
        self.observers: list[Observer] = []

    # the backend the API reads (api.AlertsBackend) ------------------------------------

    def alerts(self) -> list[Alert]:
        return list(self.engine.alerts.values())

    def acknowledge(self, fingerprint: str, *, by: str, comment: str) -> Alert | None:
        alert = self.engine.acknowledge(fingerprint, by=by, comment=comment, now_ms=self.now_ms())
        if alert is not None:
            if self.notifier is not None:
                self.notifier.acknowledged(fingerprint)
            self._persist()
            log.info("alert %s (%s %s) acknowledged by %s", fingerprint, alert.rule, alert.device, by)
        return alert

    def maintenance(self) -> list[MaintenanceWindow]:
        return list(self.acfg.maintenance)

    def timezone(self) -> ZoneInfo:
        return self.tz

    def ward_name(self, ward: str) -> str:
        return self.engine.ward_name(ward)

    def secret(self) -> bytes:
        if self.acfg.ack_secret is not None:
            return self.acfg.ack_secret.get_secret_value().encode()
        return self.store.secret()

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def external_url(self) -> str:
        return base_url(self.cfg.http)

    def health(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for a in self.engine.alerts.values():
            states[a.state] = states.get(a.state, 0) + 1
        n = self.notifier
        return {
            "mqtt_connected": self.connected,
            "alerts": states,
            "readings": self.engine.readings,
            "invalid": self.invalid,
            "dropped": self.dropped + self.engine.dropped,
            "sent_ok": n.sent_ok if n else 0,
            "sent_failed": n.sent_failed if n else 0,
            "queued": n.queued if n else 0,
            "history_pending": len(self._history),
        }

    # running ------------------------------------------------------------------------

    def open(self) -> None:
        """Open the state file and restore; raises StoreError with the path."""
        if self._opened:
            return
        self._opened = True
        self.store.open()
        self.engine.restore(self.store.load_alerts())
        self._silences = self.store.silences()
        for name, ch in self.acfg.channels.items():
            retain = isinstance(ch, MqttChannel) and ch.retain
            self.channels[name] = open_channel(name, ch, publish=partial(self._publish, retain=retain))
        self.notifier = Notifier(
            self.acfg, channels=self.channels, store=self.store, ward_names=self.cfg.wards,
            external_url=self.external_url(), secret=self.secret(), timezone=self.cfg.timezone,
        )
        restored = len(self.engine.alerts)
        log.info("alerts: %d rules, %d channels, %d alerts restored from %s, watching wards %s",
                 len(self.rules), len(self.channels), restored, self.acfg.state, ", ".join(self.acfg.wards))

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.open)
        assert self.notifier is not None
        self._start_mqtt()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._consume(), name="alerts-consume")
                tg.create_task(self._ticks(), name="alerts-tick")
                tg.create_task(self.notifier.run(self.alerts, self.stop, tick=TICK), name="alerts-notify")
        finally:
            await self._stop_mqtt()
            self._persist()
            await self._flush_history()
            for ch in self.channels.values():
                with contextlib.suppress(Exception):
                    await ch.close()
            self.store.close()

    async def _consume(self) -> None:
        while not self.stop.is_set():
            get = asyncio.ensure_future(self.queue.get())
            stop = asyncio.ensure_future(self.stop.wait())
            try:
                await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                if not get.done():
                    get.cancel()
            if get.done() and not get.cancelled():
                topic, payload, retained = get.result()
                self.take(topic, payload, retained=retained)

    def take(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """One MQTT message into the engine (and the observers); a bad one is logged and
        counted, never fatal."""
        now = time.time()
        now_ms = int(now * 1000)
        try:
            leaf = topic.rsplit("/", 1)[-1]
            if leaf == "readings":
                batch = wire.decode_from(topic, payload)
                self.engine.observe_batch(batch, now_ms=now_ms, wall=now)
                for o in self.observers:
                    o.observe_batch(batch, now_ms=now_ms)
            elif leaf == "status":
                status = wire.decode_status(topic, payload)
                self.engine.observe_status(status, now_ms=now_ms)
                for o in self.observers:
                    o.observe_status(status, now_ms=now_ms)
            elif leaf == "inventory" and not payload:  # a cleared retained inventory: the agent is gone
                ward, agent, _ = wire.parse_agent_topic(topic)
                self.engine.topology.forget(ward, agent)
                for o in self.observers:
                    o.forget(ward, agent)
            elif leaf == "inventory":
                inv = wire.decode_inventory(topic, payload)
                self.engine.observe_inventory(inv, now_ms=now_ms)
                for o in self.observers:
                    o.observe_inventory(inv)
        except wire.WireError as exc:
            self.invalid += 1
            log.warning("alerts: invalid message on %r (%d bytes): %s; ignored", topic, len(payload), exc)
        except Exception:  # a bug of ours must not stop the engine
            self.invalid += 1
            log.exception("alerts: unexpected error on a message on %r", topic)

    async def _ticks(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), TICK)
                return
            try:
                self.tick()
            except Exception:
                log.exception("alerts: unexpected error in a tick")
            await self._flush_history()

    def tick(self) -> None:
        now = time.time()
        self._silences = self.store.silences()
        self.engine.tick(int(now * 1000), now)
        self._persist()
        for o in self.observers:
            o.tick(int(now * 1000))

    def _persist(self) -> None:
        for t in self.engine.take_transitions():
            self.store.add_history(t.alert, t.state, t.time_ms)
            self._history.append(_history_line(t))
            if t.state in ("firing", "resolved") and not t.backfill:
                a = t.alert
                log.info("alert %s: %s %s (ward %s)%s", t.state, a.rule, a.device, a.ward,
                         f" muted: {a.suppressed_by or a.silenced_by}" if a.muted else "")
        if len(self._history) > HISTORY_PENDING_MAX:
            self.dropped += len(self._history) - HISTORY_PENDING_MAX
            del self._history[:-HISTORY_PENDING_MAX]
        changed, gone = self.engine.take_dirty()
        for alert in changed:
            self.store.save_alert(alert)
        for fp in gone:
            self.store.delete_alert(fp)

    async def _flush_history(self) -> None:
        if not self._history:
            return
        lines, self._history = self._history, []
        if not await self.write(lines):
            self._history = lines + self._history  # kept (bounded) until InfluxDB answers

    def _owed(self, fp: str) -> bool:
        return self.notifier.owed(fp) if self.notifier is not None else True

    # MQTT ---------------------------------------------------------------------------

    def filters(self) -> list[str]:
        wards = ["+"] if self.acfg.wards == ["*"] else self.acfg.wards
        return [f"{wire.PREFIX}/{w}/+/{leaf}" for w in wards for leaf in ("inventory", "status", "readings")]

    def _start_mqtt(self) -> None:
        mcfg = self.cfg.mqtt
        client = ww_mqtt.make_client(mcfg, client_id=self.client_id)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = int(mcfg.session_expiry)
        client.connect_async(mcfg.host, mcfg.port, keepalive=round(mcfg.keepalive), clean_start=False,
                             properties=props)
        client.loop_start()
        self._client = client
        log.info("alerts: connecting to %s as %s", ww_mqtt.describe(mcfg), self.client_id)

    async def _stop_mqtt(self) -> None:
        client = self._client
        if client is None:
            return
        was = client.is_connected()
        client.disconnect()
        if was:
            await asyncio.to_thread(self._disconnected.wait, 5.0)
        await asyncio.to_thread(client.loop_stop)

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        client = self._client
        if client is None or not self.connected:
            return False
        return client.publish(topic, payload, qos=1, retain=retain).rc == 0

    def _on_connect(self, client: Client, _u: Any, flags: ConnectFlags, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            log.error("alerts: %s refused the connection: %s", ww_mqtt.describe(self.cfg.mqtt), rc)
            return
        self.connected = True
        self._disconnected.clear()
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.filters()])
        log.info("alerts: subscribed to %s (session present: %s)", ", ".join(self.filters()), flags.session_present)

    def _on_disconnect(self, _c: Client, _u: Any, _f: DisconnectFlags, rc: ReasonCode, _p: Any) -> None:
        if self.connected:
            log.warning("alerts: disconnected from the broker: %s", rc)
        self.connected = False
        self._disconnected.set()

    def _on_message(self, _c: Client, _u: Any, msg: MQTTMessage) -> None:
        raw: bytes = msg._topic
        item = (raw.decode("utf-8", errors="backslashreplace"), bytes(msg.payload), bool(msg.retain))
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item: tuple[str, bytes, bool]) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("alerts: queue full (%d): %d messages dropped", QUEUE_MAX, self.dropped)


def _history_line(t: Transition) -> bytes:
    a = t.alert
    tags = {k: v for k, v in a.labels.items() if k in ("alertname", "severity", "ward", "device", "kind")}
    fields: dict[str, lineproto.FieldValue] = {
        "state": t.state,
        "suppressed_count": len(a.behind),
        "summary": a.summary.get("en", "")[:250],
        "fingerprint": a.fingerprint,
    }
    if a.suppressed_by:
        fields["suppressed_by"] = a.suppressed_by[:250]
    if a.silenced_by:
        fields["silenced_by"] = a.silenced_by[:250]
    if t.backfill:
        fields["backfill"] = 1
    return lineproto.line(SERIES, tags, fields, t.time_ms)


async def run_alone(cfg: CollectorConfig, *, client_id: str) -> None:
    """``wardwatch-collector alerts``: the engine without the collector's readings path,
    with its own HTTP server (health and the alert API) and InfluxDB writer for history."""
    import signal

    from wardwatch.collector import http
    from wardwatch.collector.alerts import api
    from wardwatch.collector.alerts.store import StoreError
    from wardwatch.collector.influx import InfluxError, open_influx
    from wardwatch.collector.source import StartupError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_influx(cfg.influx) as influx:

        async def write(lines: list[bytes]) -> bool:
            try:
                await influx.write(lines)
            except InfluxError as exc:
                log.debug("alert history not written yet: %s", exc)
                return False
            return True

        service = AlertService(cfg, client_id=client_id, write=write, stop=stop)
        try:
            await asyncio.to_thread(service.open)
        except StoreError as exc:
            raise StartupError(f"alerts.state: {exc}") from None
        from wardwatch.collector import web as dashboard

        routes = [*api.routes(service), *dashboard.attach(service, influx=influx)]
        runner = await http.start_http(cfg.http, health=lambda: {"status": "ok", "alerts": service.health()},
                                       routes=routes)
        try:
            await service.run()
        finally:
            await runner.cleanup()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
