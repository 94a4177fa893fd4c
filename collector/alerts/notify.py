"""The notifier: what each channel is owed about each alert, grouped per ward, sent, and
remembered in the pairing ledger.

It is driven by state, not by events. Every tick the engine hands over its current alerts
(pending, firing, and resolved ones not yet forgotten) and :meth:`Notifier.reconcile` works
out, from them and the persisted :class:`~wardwatch.collector.alerts.model.Sent` ledger,
what every channel of every matching route is owed:

- **firing**: the alert is sendable (firing, live, not muted) and this channel has no
  firing notice of this cycle yet;
- **resolved**: this channel got a firing notice and the alert has resolved, or is gone
  from the engine altogether. Exactly once, muted or not: every firing notice is paired;
- **repeat**: still sendable, not acknowledged, and the route's ``repeat`` has passed since
  the last firing or repeat this channel got;
- **escalation**: still sendable, not acknowledged, and ``escalate.after`` has passed since
  the route's first firing notice was delivered: a firing notice to the escalation
  channels, once. They are owed the resolved notice too.

What is owed is queued into groups, one per (route, ward) with the key ``"{route}:{ward}"``
(Alertmanager's groupKey). A group is due ``group_wait`` after the first item was queued
into it while it was empty; :meth:`Notifier.flush_due` then decides again what each item
is owed (an alert resolved before its firing notice went out needs none) and sends one
notice per (group, channel, kind). Deliveries run as tasks, so a slow or failing channel
never holds another back. The ledger is updated and persisted only on success, so a
notice that failed is owed again, and a restarted notifier picks up exactly where the
ledger says it was: no duplicate firing, and the resolved notice still paired.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Final, Protocol

from wardwatch.collector.alerts import links
from wardwatch.collector.alerts.config import AlertsSection, Route
from wardwatch.collector.alerts.deliver import deliver as deliver_notice
from wardwatch.collector.alerts.model import (
    Alert,
    Attempt,
    DeliveryError,
    Notice,
    NoticeAlert,
    NoticeKind,
    Sent,
)
from wardwatch.collector.alerts.store import StoreError

log = logging.getLogger(__name__)

MAX_QUEUED: Final = 10_000  # items (alert, channel) waiting in groups; beyond, dropped and counted
ACK_LINK_TTL_MS: Final = 7 * 86400 * 1000  # how long an acknowledgement link in a message works
DRAIN_TIMEOUT: Final = 5.0  # on stop, how long in-flight deliveries may still take
RETRY_WAIT: Final = 10.0  # after a failed delivery, the group waits this long before trying that channel again
RETRY_WAIT_MAX: Final = 300.0  # ... doubling per failure in a row, up to this
FULL_LOG_EVERY: Final = 60.0  # a full queue is logged at most this often (drops are counted every time)
# The order in which one group's notices to one channel go out.
_KIND_ORDER: Final[tuple[NoticeKind, ...]] = ("firing", "escalation", "repeat", "resolved")


class ChannelLike(Protocol):
    """What the notifier needs of a channel: its name (``deliver`` does the sending)."""

    @property
    def name(self) -> str: ...

    def send(self, notice: Notice) -> Awaitable[object]: ...


class LedgerStore(Protocol):
    """The part of the alert store the notifier uses: the pairing ledger and the delivery log."""

    def sent(self) -> Mapping[tuple[str, str], Sent]: ...

    def save_sent(self, sent: Sent) -> None: ...

    def log_attempt(self, attempt: Attempt) -> None: ...


@dataclass(slots=True)
class _Group:
    key: str  # "{route index}:{ward}"
    route: int
    ward: str
    due: float  # clock seconds
    items: dict[tuple[str, str], None] = field(default_factory=dict)  # (fingerprint, channel), in order queued


def _open(sent: Sent | None) -> bool:
    """This channel got a firing notice of the current cycle and not yet its resolved one."""
    return sent is not None and sent.firing_ms is not None and sent.resolved_ms is None


def _snapshot(alert: Alert) -> Alert:
    """The alert as it is now: the engine goes on changing its own object."""
    return dataclasses.replace(alert, labels=dict(alert.labels), summary=dict(alert.summary), behind=list(alert.behind))


class Notifier:
    """Groups, pairs, repeats and escalates notices for the engine's alerts (module docstring)."""

    def __init__(
        self,
        cfg: AlertsSection,
        *,
        channels: Mapping[str, ChannelLike],
        store: LedgerStore,
        ward_names: Mapping[str, str],
        external_url: str,
        secret: bytes,
        clock: Callable[[], float] = time.time,
        deliver: Callable[..., Awaitable[bool]] = deliver_notice,
        timezone: str = "Asia/Ho_Chi_Minh",
        max_queued: int = MAX_QUEUED,
        retry_wait: float = RETRY_WAIT,
    ) -> None:
        self._routes: list[Route] = cfg.effective_routes()
        self._language = cfg.language
        self._channels = dict(channels)
        self._store = store
        self._ward_names = dict(ward_names)
        self._external_url = external_url.rstrip("/")
        self._secret = secret
        self._clock = clock
        self._deliver = deliver
        self._timezone = timezone
        self._max_queued = max_queued
        self._retry_wait = retry_wait
        # fingerprint -> channel -> Sent: the pairing ledger, as persisted
        self._ledger: dict[str, dict[str, Sent]] = {}
        for (fp, channel), sent in store.sent().items():
            self._ledger.setdefault(fp, {})[channel] = sent
        self._groups: dict[str, _Group] = {}
        self._queue: dict[str, dict[str, str]] = {}  # fingerprint -> channel -> group key
        self._queued = 0
        self._alerts: dict[str, Alert] = {}  # the last alerts handed to reconcile
        self._gone: dict[str, Alert] = {}  # gone from the engine while a channel is owed its resolved notice
        self._acked: set[str] = set()
        self._inflight: set[tuple[str, str]] = set()  # (group key, channel) being delivered
        self._hold: dict[tuple[str, str], tuple[float, int]] = {}  # (group key, channel) -> (not before, failures)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop: asyncio.Event | None = None
        self._unrouted: set[str] = set()  # alertnames logged as matching no route
        self._unknown: set[str] = set()  # channel names or fingerprints logged once
        self._full_logged = -FULL_LOG_EVERY  # when "queue full" was last logged
        self.sent_ok = 0  # notices delivered
        self.sent_failed = 0  # notices that failed (after deliver's retries); owed again
        self.dropped = 0  # items refused because the queue was full

    # -- what the engine asks ----------------------------------------------------------

    @property
    def queued(self) -> int:
        """Items (alert, channel) waiting in groups."""
        return self._queued

    def owed(self, fingerprint: str) -> bool:
        """Whether some channel is still owed something for this alert: a resolved notice for
        a firing one it got, or a queued notice. The engine forgets a resolved alert only
        once this is False."""
        if fingerprint in self._queue:
            return True
        return any(_open(s) for s in self._ledger.get(fingerprint, {}).values())

    def acknowledged(self, fingerprint: str) -> None:
        """Someone acknowledged this alert: no more repeats or escalation for it."""
        self._acked.add(fingerprint)

    # -- deciding ------------------------------------------------------------------------

    def reconcile(self, alerts: Iterable[Alert]) -> None:
        """Queue what is owed for ``alerts`` (all the engine's current ones) and for the
        alerts that were sent firing and are gone. No I/O."""
        now = self._clock()
        current = {a.fingerprint: a for a in alerts}
        for fp, alert in self._alerts.items():
            if fp not in current and self.owed(fp) and fp not in self._gone:
                ended = alert.ended_ms if alert.ended_ms is not None else int(now * 1000)
                self._gone[fp] = dataclasses.replace(_snapshot(alert), state="resolved", ended_ms=ended)
        self._alerts = current
        for fp in [fp for fp in self._gone if fp in current]:
            del self._gone[fp]
        refused = 0
        for alert in current.values():
            if alert.state == "resolved":
                self._acked.discard(alert.fingerprint)
            refused += self._offer(alert, now)
        for alert in self._gone.values():
            refused += self._offer(alert, now)
        self._orphans()
        self._prune()
        if refused:
            self.dropped += refused
            if now - self._full_logged < FULL_LOG_EVERY:
                return
            self._full_logged = now
            log.warning(
                "notifier queue full (%d items): %d owed notices dropped this round, %d in all",
                self._max_queued, refused, self.dropped,
            )

    def _routes_for(self, alert: Alert) -> list[int]:
        """The first route whose ``match`` all match, plus later ones while ``continue`` is set."""
        out: list[int] = []
        for i, route in enumerate(self._routes):
            if all(fnmatchcase(alert.labels.get(k, ""), glob) for k, glob in route.match.items()):
                out.append(i)
                if not route.continue_:
                    break
        return out

    def _offer(self, alert: Alert, now: float) -> int:
        """Queue what each channel of the alert's routes is owed; the number refused (queue full)."""
        routes = self._routes_for(alert)
        if not routes:
            name = alert.labels.get("alertname", alert.rule)
            if name not in self._unrouted and alert.sendable():
                self._unrouted.add(name)
                log.info("alert %s (%s, %s) matches no route: not sent", name, alert.ward, alert.device)
            return 0
        refused = 0
        taken: set[str] = set()  # a channel in two matching routes is served by the first
        for i in routes:
            route = self._routes[i]
            for channel in [*route.channels, *(route.escalate.channels if route.escalate else [])]:
                if channel in taken:
                    continue
                taken.add(channel)
                if channel not in self._channels:
                    if channel not in self._unknown:
                        self._unknown.add(channel)
                        log.warning("route %d names channel %s, which is not open: not sent there", i, channel)
                    continue
                if channel in self._queue.get(alert.fingerprint, {}):
                    continue
                if self._kind(alert, channel, i, now) is None:
                    continue
                if self._queued >= self._max_queued:
                    refused += 1
                    continue
                self._enqueue(alert, channel, i, now)
        return refused

    def _enqueue(self, alert: Alert, channel: str, route: int, now: float) -> None:
        key = f"{route}:{alert.ward}"
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key, route, alert.ward, now + self._routes[route].group_wait)
        group.items[(alert.fingerprint, channel)] = None
        self._queue.setdefault(alert.fingerprint, {})[channel] = key
        self._queued += 1

    def _unqueue(self, fingerprint: str, channel: str) -> None:
        channels = self._queue.get(fingerprint)
        if channels is None or channel not in channels:
            return
        key = channels.pop(channel)
        if not channels:
            del self._queue[fingerprint]
        self._queued -= 1
        group = self._groups.get(key)
        if group is not None:
            group.items.pop((fingerprint, channel), None)

    def _is_acked(self, alert: Alert) -> bool:
        return alert.fingerprint in self._acked or alert.acked_by is not None

    def _kind(self, alert: Alert, channel: str, route_index: int, now: float) -> NoticeKind | None:
        """What ``channel`` is owed about ``alert`` now, through route ``route_index``."""
        route = self._routes[route_index]
        sent = self._ledger.get(alert.fingerprint, {}).get(channel)
        ordinary = channel in route.channels
        if not _open(sent):
            if not alert.sendable():
                return None  # never sent firing (in this cycle): nothing, not even a resolved
            if ordinary:
                return "firing"
            return "escalation" if self._escalation_due(alert, route, now) else None
        assert sent is not None  # _open
        if alert.state == "resolved":
            return "resolved"  # muted or not: the firing notice is paired
        if not alert.sendable() or self._is_acked(alert):
            return None  # muted after it fired (or acknowledged): quiet until it resolves
        if ordinary and sent.last_ms is not None and now * 1000 - sent.last_ms >= route.repeat * 1000:
            return "repeat"
        return None

    def _escalation_due(self, alert: Alert, route: Route, now: float) -> bool:
        if route.escalate is None or not alert.sendable() or self._is_acked(alert):
            return False
        ledger = self._ledger.get(alert.fingerprint, {})
        first: list[int] = []
        for channel in route.channels:
            sent = ledger.get(channel)
            if sent is not None and sent.firing_ms is not None and sent.resolved_ms is None:
                first.append(sent.firing_ms)
        return bool(first) and now * 1000 - min(first) >= route.escalate.after * 1000

    def _orphans(self) -> None:
        """Ledger entries owed a resolved notice for alerts neither the engine nor this notifier
        knows (the engine forgot one across a restart): nothing to route or render. Logged once."""
        for fp, channels in self._ledger.items():
            if fp in self._alerts or fp in self._gone or fp in self._unknown:
                continue
            if any(_open(s) for s in channels.values()):
                self._unknown.add(fp)
                log.warning(
                    "alert %s was sent firing to %s but is unknown now: its resolved notice cannot be made",
                    fp, ", ".join(sorted(c for c, s in channels.items() if _open(s))),
                )

    def _prune(self) -> None:
        """Forget, in memory, what no longer matters: closed ledger entries and gone alerts no
        channel is owed anything for (the store keeps its own copy)."""
        for fp in [fp for fp in self._gone if not self.owed(fp)]:
            del self._gone[fp]
        for fp in [fp for fp in self._ledger if fp not in self._alerts and fp not in self._gone]:
            if not self.owed(fp):
                del self._ledger[fp]

    # -- sending -------------------------------------------------------------------------

    def _current(self, fingerprint: str) -> Alert | None:
        return self._alerts.get(fingerprint) or self._gone.get(fingerprint)

    async def flush_due(self, *, wait: bool = True) -> None:
        """Send every group whose ``group_wait`` has passed: one notice per (group, channel,
        kind), each channel's deliveries in their own task. With ``wait`` (the default) this
        returns when they are all done; :meth:`run` does not wait, so that a channel that is
        retrying holds back nothing else."""
        now = self._clock()
        started: list[asyncio.Task[None]] = []
        made: dict[str, tuple[Alert, str]] = {}  # fingerprint -> (snapshot, ack link): once per flush, not per channel
        for group in list(self._groups.values()):
            if group.due > now:
                continue
            per_channel: dict[str, dict[NoticeKind, list[Alert]]] = {}
            for fp, channel in list(group.items):
                slot = (group.key, channel)
                if slot in self._inflight or self._hold.get(slot, (0.0, 0))[0] > now:
                    continue
                alert = self._current(fp)
                kind = self._kind(alert, channel, group.route, now) if alert is not None else None
                if kind is None or alert is None:
                    self._unqueue(fp, channel)  # no longer owed: resolved before it was sent, muted, acked
                    continue
                per_channel.setdefault(channel, {}).setdefault(kind, []).append(alert)
            for channel, kinds in per_channel.items():
                notices = [self._notice(group, channel, k, kinds[k], now, made) for k in _KIND_ORDER if k in kinds]
                self._inflight.add((group.key, channel))
                task = asyncio.create_task(
                    self._send(group.key, channel, notices), name=f"notify {group.key} {channel}"
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started.append(task)
            if not group.items:
                del self._groups[group.key]
        if wait and started:
            await asyncio.gather(*started)

    def _notice(
        self, group: _Group, channel: str, kind: NoticeKind, alerts: list[Alert], now: float,
        made: dict[str, tuple[Alert, str]],
    ) -> Notice:
        expires = int(now * 1000) + ACK_LINK_TTL_MS
        items: list[NoticeAlert] = []
        for alert in sorted(alerts, key=lambda a: (a.started_ms, a.labels.get("device", ""), a.fingerprint)):
            if alert.fingerprint not in made:
                token = links.sign(self._secret, alert.fingerprint, expires_ms=expires)
                made[alert.fingerprint] = (_snapshot(alert), f"{self._external_url}/ack/{token}")
            snapshot, ack_url = made[alert.fingerprint]
            if kind == "resolved":
                items.append(NoticeAlert(snapshot, "resolved"))
            else:
                items.append(NoticeAlert(snapshot, "firing", ack_url))
        return Notice(
            kind=kind,
            channel=channel,
            group_key=group.key,
            ward=group.ward,
            ward_name=self._ward_names.get(group.ward, group.ward),
            alerts=items,
            external_url=self._external_url,
            language=self._language,
            timezone=self._timezone,
        )

    async def _send(self, group_key: str, channel_name: str, notices: list[Notice]) -> None:
        """Deliver one group's notices to one channel, in order; record each success in the ledger."""
        channel = self._channels[channel_name]
        slot = (group_key, channel_name)
        try:
            for notice in notices:
                try:
                    ok = await self._deliver(
                        channel, notice, record=self._log_attempt, stop=self._stop, clock=self._clock
                    )
                except DeliveryError as exc:
                    log.warning("channel %s: %s notice for %s failed: %s", channel_name, notice.kind, group_key, exc)
                    ok = False
                except Exception:  # a channel's bug is its own (STYLE 7): it fails, the others go on
                    log.exception("channel %s: %s notice for %s raised", channel_name, notice.kind, group_key)
                    ok = False
                if ok:
                    self.sent_ok += 1
                    self._hold.pop(slot, None)
                    self._record(notice)
                    log.info(
                        "sent %s notice to %s for %s: %d alerts",
                        notice.kind, channel_name, group_key, len(notice.alerts),
                    )
                else:
                    self.sent_failed += 1
                    failures = self._hold.get(slot, (0.0, 0))[1] + 1
                    wait = min(self._retry_wait * 2 ** (failures - 1), RETRY_WAIT_MAX)
                    self._hold[slot] = (self._clock() + wait, failures)
                    log.warning(
                        "channel %s: %s notice for %s not delivered (%d in a row); owed again in %.0f s",
                        channel_name, notice.kind, group_key, failures, wait,
                    )
        finally:
            self._inflight.discard(slot)
            group = self._groups.get(group_key)
            if group is not None and not group.items:
                del self._groups[group_key]

    def _log_attempt(self, attempt: Attempt) -> None:
        try:
            self._store.log_attempt(attempt)
        except StoreError as exc:  # the delivery log is a record, not a reason to stop delivering
            log.error("channel %s: delivery attempt not logged: %s", attempt.channel, exc)

    def _record(self, notice: Notice) -> None:
        """A notice was delivered: update and persist the ledger, take its items off the queue."""
        now_ms = int(self._clock() * 1000)
        for item in notice.alerts:
            fp = item.alert.fingerprint
            channels = self._ledger.setdefault(fp, {})
            sent = channels.get(notice.channel)
            if notice.kind in ("firing", "escalation"):
                escalation = notice.kind == "escalation"
                sent = Sent(fp, notice.channel, firing_ms=now_ms, last_ms=now_ms, escalation=escalation)
            elif sent is None:  # cannot happen: a repeat or resolved follows a firing in the ledger
                continue
            elif notice.kind == "repeat":
                sent = dataclasses.replace(sent, last_ms=now_ms)
            else:
                sent = dataclasses.replace(sent, resolved_ms=now_ms)
            channels[notice.channel] = sent
            try:
                self._store.save_sent(sent)
            except StoreError as exc:  # delivered all the same: the ledger in memory knows
                log.error("channel %s: %s notice for %s delivered, not persisted: %s", notice.channel,
                          notice.kind, fp, exc)
            if self._queue.get(fp, {}).get(notice.channel) == notice.group_key:
                self._unqueue(fp, notice.channel)

    # -- the loop ------------------------------------------------------------------------

    async def run(self, alerts: Callable[[], Iterable[Alert]], stop: asyncio.Event, *, tick: float = 1.0) -> None:
        """Every ``tick``: reconcile with ``alerts()`` and send what is due. On ``stop``, let
        in-flight deliveries finish (at most :data:`DRAIN_TIMEOUT` seconds) and return."""
        self._stop = stop
        try:
            while not stop.is_set():
                self.reconcile(alerts())
                await self.flush_due(wait=False)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick)
        except asyncio.CancelledError:
            for task in self._tasks:
                task.cancel()
            raise
        await self.drain(DRAIN_TIMEOUT)

    async def drain(self, within: float) -> None:
        """Wait up to ``within`` seconds for in-flight deliveries, then cancel what is left
        (its items stay owed: the ledger says they were not sent)."""
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=within)
        for task in pending:
            log.warning("notifier stopping: %s still delivering after %.0f s, cancelled", task.get_name(), within)
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
