"""The alert engine: readings, status and inventory in; the life of every alert out.

Pure logic with no I/O: the service (service.py) feeds it MQTT messages in each agent's
seq order and calls :meth:`Engine.tick` every second; it reads :attr:`Engine.alerts`, and
drains :meth:`Engine.take_transitions` into the history (SQLite and InfluxDB's ``alert``
series) and :meth:`Engine.take_dirty` into the state file.

Time: every transition is stamped with the time of the reading that caused it (the agent's
poll time), so backfilled readings land in history when they happened. Timers (``for``,
``clear_for``, ``keep_firing_for``, ``stable_for``) also run on the wall clock between
readings, but only for a device whose last reading is fresh (at most 1.5 intervals + 5 s
old): a device nobody hears from is unknown, and its alerts neither fire nor resolve.

Live edge: a reading older than ``alerts.live_lag`` when it arrives is backfill. An alert
last moved by backfill is not ``live`` and is not notified; the next live reading that
still meets the condition makes it live, and then it is. A reading older than one already
seen for the same alert (the agent sends its backlog interleaved with live batches) only
writes history, through a second cursor, and never moves the live state.

Topology (topology.py): an alert of a ``root`` rule (``device_down``) pending or firing on
a switch suppresses every alert of the devices behind it; the devices of an offline agent
are suppressed by its ``agent_offline``; a flapping device's watched alerts by ``flapping``.
A child's alert does not fire until every device in front of it has been heard from after
the child's trouble began, so a child polled before its parent still yields one notice.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from wardwatch import wire
from wardwatch.collector import reasons
from wardwatch.collector.alerts import maintenance
from wardwatch.collector.alerts.config import MaintenanceWindow
from wardwatch.collector.alerts.model import Alert, Behind, Silence, fingerprint
from wardwatch.collector.alerts.rules import AgentOfflineRule, FlappingRule, Rule, ThresholdRule, Value
from wardwatch.collector.alerts.topology import Topology

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: Final = 60.0
FRESH_SLACK_S: Final = 5.0
HOLD_FACTOR: Final = 2.0  # a child waits at most this many of its parent's intervals for the parent
MAX_ALERTS: Final = 100_000  # a bound on tracked alerts (a runaway per-port rule)
MAX_TRANSITIONS: Final = 100_000


@dataclass(slots=True)
class Transition:
    """One line of history: the alert as it was, the state it entered, when."""

    alert: Alert
    state: str  # model.HISTORY_STATES
    time_ms: int
    backfill: bool = False


@dataclass(slots=True)
class _Track:
    """What the engine remembers about one alert key besides the Alert itself."""

    rule: ThresholdRule
    labels: dict[str, str]
    active: bool = False  # the condition, at the last reading
    since_ms: int | None = None  # the condition met continuously since (a pending alert's start)
    clear_since_ms: int | None = None
    last_active_ms: int | None = None
    seen_ms: int = 0  # the newest reading time applied
    interval_s: float = DEFAULT_INTERVAL_S
    fields: dict[str, Value] = field(default_factory=dict)
    # the backfill cursor: late readings write history through it, never the live state
    bf_seen_ms: int = 0
    bf_since_ms: int | None = None
    bf_fired: bool = False
    # a reading before this (the parent's first poll back) was taken behind it: not live
    confirm_from_ms: int = 0


@dataclass(slots=True)
class _Agent:
    ward: str
    agent: str
    online: bool = True
    last_batch: float | None = None  # wall clock, seconds
    offline_since_ms: int | None = None


@dataclass(slots=True)
class _Flaps:
    changes: deque[int] = field(default_factory=deque)  # times (ms) of watched state changes
    last_ms: int = 0
    states: dict[str, bool] = field(default_factory=dict)  # fingerprint -> last raw condition


class Engine:
    def __init__(
        self,
        rules: list[Rule],
        *,
        wards: dict[str, str] | None = None,
        maintenance_windows: list[MaintenanceWindow] | None = None,
        silences: Callable[[], Iterable[Silence]] = list,
        owed: Callable[[str], bool] = lambda fp: False,
        tz: ZoneInfo | None = None,
        stale_after: float = 90.0,
        live_lag: float = 120.0,
        language: str = "vi",
        topology: Topology | None = None,
    ) -> None:
        self.rules = rules
        self.threshold = [r for r in rules if isinstance(r, ThresholdRule)]
        self.by_series: dict[str, list[ThresholdRule]] = {}
        for r in self.threshold:
            self.by_series.setdefault(r.series, []).append(r)
        self.offline_rule = next((r for r in rules if isinstance(r, AgentOfflineRule)), None)
        self.flap_rule = next((r for r in rules if isinstance(r, FlappingRule)), None)
        self.flap_watch = frozenset(self.flap_rule.watch) if self.flap_rule else frozenset()
        self.roots = frozenset(r.name for r in self.threshold if r.root)
        self.ward_names = dict(wards or {})
        self.windows = list(maintenance_windows or [])
        self.silences = silences
        self.owed = owed
        self.tz = tz or ZoneInfo("Asia/Ho_Chi_Minh")
        self.stale_after = stale_after
        self.live_lag_ms = int(live_lag * 1000)
        self.language = language
        self.topology = topology or Topology()
        self.alerts: dict[str, Alert] = {}
        self._tracks: dict[str, _Track] = {}
        self._agents: dict[tuple[str, str], _Agent] = {}
        self._flaps: dict[tuple[str, str], _Flaps] = {}
        self._seen: dict[tuple[str, str], int] = {}  # (ward, device) -> newest reading time (ms)
        self._transitions: list[Transition] = []
        self._dirty: set[str] = set()
        self._gone: set[str] = set()
        self.dropped = 0  # alerts or transitions not kept because a bound was reached
        self.readings = 0

    # inputs -------------------------------------------------------------------

    def restore(self, alerts: Iterable[Alert]) -> None:
        """The alerts of the state file, at start: firing ones stay firing until a reading
        clears them, so a restart mid-outage sends nothing twice."""
        for alert in alerts:
            self.alerts[alert.fingerprint] = alert

    def observe_inventory(self, inv: wire.Inventory, *, now_ms: int | None = None) -> None:
        """The agent's devices. An alert of a device its agent no longer polls resolves:
        nobody will ever say it recovered, and its resolved notice is owed."""
        self.topology.update(inv)
        kept = {d.id for d in inv.devices}
        t = now_ms if now_ms is not None else inv.time_ms
        for fp, alert in list(self.alerts.items()):
            labels = alert.labels
            if (labels.get("ward") == inv.ward and labels.get("agent") == inv.agent and labels.get("kind") != "agent"
                    and alert.device not in kept and alert.state != "resolved"):
                if alert.state == "pending":
                    self._drop(fp)
                    continue
                alert.state, alert.ended_ms, alert.updated_ms = "resolved", t, t
                alert.reason = "removed"
                self._record(alert, "resolved", t)

    def observe_status(self, status: wire.Status, *, now_ms: int) -> None:
        agent = self._agent(status.ward, status.agent)
        if status.state == "online":
            self._agent_back(agent, now_ms)
        else:
            self._agent_gone(agent, now_ms)

    def observe_batch(self, batch: wire.Batch, *, now_ms: int, wall: float) -> None:
        agent = self._agent(batch.ward, batch.agent)
        agent.last_batch = wall
        if not agent.online:
            self._agent_back(agent, now_ms)
        for r in batch.readings:
            self.readings += 1
            if r.measurement == "lldp_link":
                remote = r.fields.get("remote_sysname")
                port = r.tags.get("if_name")
                if isinstance(remote, str) and remote and port:
                    self.topology.observe_lldp(batch.ward, r.device, port, remote)
                continue
            key = (batch.ward, r.device)
            if r.time_ms > self._seen.get(key, 0):
                self._seen[key] = r.time_ms
            for rule in self.by_series.get(r.measurement, ()):
                self._observe(rule, batch, r, now_ms)

    def tick(self, now_ms: int, wall: float) -> None:
        """Timers, agents gone quiet, suppression, silences and maintenance, forgetting."""
        for agent in self._agents.values():
            if agent.online and agent.last_batch is not None and wall - agent.last_batch > self.stale_after:
                self._agent_gone(agent, now_ms)
        for fp, track in list(self._tracks.items()):
            alert = self.alerts.get(fp)
            if alert is not None and alert.state != "resolved" and self._fresh(track, now_ms):
                self._advance(track, alert, now_ms, live=alert.live)
        self._offline_alerts(now_ms)
        self._flap_timers(now_ms)
        self._mute(now_ms)
        self._forget(now_ms)

    def acknowledge(self, fp: str, *, by: str, comment: str, now_ms: int) -> Alert | None:
        alert = self.alerts.get(fp)
        if alert is None or alert.state == "resolved":
            return None
        alert.acked_by, alert.acked_ms, alert.ack_comment = by[:128], now_ms, comment[:1000]
        self._record(alert, "acknowledged", now_ms)
        return alert

    # outputs ------------------------------------------------------------------

    def take_transitions(self) -> list[Transition]:
        out, self._transitions = self._transitions, []
        return out

    def take_dirty(self) -> tuple[list[Alert], list[str]]:
        """Alerts changed since the last call, and fingerprints forgotten."""
        changed = [self.alerts[fp] for fp in self._dirty if fp in self.alerts]
        gone = list(self._gone)
        self._dirty.clear()
        self._gone.clear()
        return changed, gone

    def ward_name(self, ward: str) -> str:
        return self.ward_names.get(ward, ward)

    # threshold rules ------------------------------------------------------------

    def _observe(self, rule: ThresholdRule, batch: wire.Batch, r: wire.Reading, now_ms: int) -> None:
        if not rule.scope.matches(kind=r.kind, ward=batch.ward, device=r.device):
            return
        for tag, want in rule.tags.items():
            if r.tags.get(tag) != want:
                return
        instance = {tag: r.tags[tag] for tag in rule.per if r.tags.get(tag)}
        if rule.per and not instance:
            return
        fields = r.fields
        active = rule.active(fields)
        if active is None:
            return  # the reading does not carry the field: it says nothing about this rule
        labels = {"alertname": rule.name, "ward": batch.ward, "device": r.device, "kind": r.kind,
                  "severity": rule.severity, "agent": batch.agent}
        labels.update(instance)
        fp = fingerprint(labels)
        track = self._tracks.get(fp)
        if track is None:
            if len(self._tracks) >= MAX_ALERTS:
                self.dropped += 1
                return
            track = self._tracks[fp] = _Track(rule=rule, labels=labels)
        node = self.topology.device(batch.ward, r.device)
        if node is not None and node.interval_s:
            track.interval_s = node.interval_s
        t = r.time_ms
        if t <= track.seen_ms:
            if t < track.seen_ms:
                self._backfill(track, fp, active, t)
            return
        live = now_ms - t <= self.live_lag_ms and t >= track.confirm_from_ms
        cleared = rule.cleared(fields)
        track.seen_ms, track.fields = t, dict(fields)
        if not live:
            track.bf_seen_ms = t  # the live cursor is ahead of the backfill one
        self._flap_observe(batch.ward, r.device, rule, fp, active, t)
        if active:
            track.active, track.last_active_ms, track.clear_since_ms = True, t, None
            if track.since_ms is None:
                track.since_ms = t
        else:
            track.active, track.since_ms = False, None
            if cleared:
                track.clear_since_ms = track.clear_since_ms if track.clear_since_ms is not None else t
            else:
                track.clear_since_ms = None  # between when and clear: hysteresis holds
        alert = self.alerts.get(fp)
        if alert is not None and alert.state == "resolved":
            if not track.active:
                return
            if self.owed(fp):
                return  # its resolved notice goes out first; the new episode starts after
            self._drop(fp)
            alert = None
        if alert is None:
            if not track.active:
                return
            assert track.since_ms is not None
            alert = Alert(fingerprint=fp, rule=rule.name, labels=dict(labels), state="pending",
                          started_ms=track.since_ms, updated_ms=t, live=live)
            self.alerts[fp] = alert
        alert.live = live
        alert.value = fields.get(rule.field)
        reason = fields.get("reason")
        alert.reason = reason if isinstance(reason, str) else ""
        if alert.state == "pending" and not track.active:
            self._drop(fp)  # never fired: it leaves no history
            return
        self._render(alert, track)
        self._advance(track, alert, t, live=live)
        self._dirty.add(fp)

    def _advance(self, track: _Track, alert: Alert, t: int, *, live: bool) -> None:
        """Apply the timers at time ``t``, given the last reading's condition."""
        rule = track.rule
        if alert.state == "pending":
            if track.active and track.since_ms is not None and t - track.since_ms >= rule.for_ * 1000:
                if self._held(alert, t):
                    return
                alert.state, alert.fired_ms, alert.updated_ms = "firing", t, t
                alert.behind = self._behind(alert)
                self._record(alert, "firing", t, backfill=not live)
                # Muted from the start: the history says so too (1 ms on, not to overwrite
                # the firing point of the same series in InfluxDB).
                if alert.suppressed_by is not None:
                    self._record(alert, "suppressed", t + 1, backfill=not live)
                if alert.silenced_by is not None:
                    self._record(alert, "silenced", t + 2, backfill=not live)
        elif alert.state == "firing" and not track.active and track.clear_since_ms is not None:
            last_active = track.last_active_ms if track.last_active_ms is not None else 0
            if t - track.clear_since_ms >= rule.clear_for * 1000 and t - last_active >= rule.keep_firing_for * 1000:
                alert.state, alert.ended_ms, alert.updated_ms = "resolved", t, t
                self._record(alert, "resolved", t, backfill=not live)
                self._dirty.add(alert.fingerprint)

    def _backfill(self, track: _Track, fp: str, active: bool, t: int) -> None:
        """A reading older than one already applied: history only, through its own cursor."""
        if t <= track.bf_seen_ms:
            return
        track.bf_seen_ms = t
        rule = track.rule
        if active:
            if track.bf_since_ms is None:
                track.bf_since_ms = t
            if not track.bf_fired and t - track.bf_since_ms >= rule.for_ * 1000:
                track.bf_fired = True
                ghost = Alert(fingerprint=fp, rule=rule.name, labels=dict(track.labels), state="firing",
                              started_ms=track.bf_since_ms, updated_ms=t, fired_ms=t, live=False)
                self._render(ghost, track)
                self._record(ghost, "firing", t, backfill=True)
        else:
            if track.bf_fired:
                ghost = Alert(fingerprint=fp, rule=rule.name, labels=dict(track.labels), state="resolved",
                              started_ms=track.bf_since_ms or t, updated_ms=t, ended_ms=t, live=False)
                self._render(ghost, track)
                self._record(ghost, "resolved", t, backfill=True)
            track.bf_since_ms, track.bf_fired = None, False

    def _fresh(self, track: _Track, now_ms: int) -> bool:
        return now_ms - track.seen_ms <= (track.interval_s * 1.5 + FRESH_SLACK_S) * 1000

    def _held(self, alert: Alert, t: int) -> bool:
        """A child waits until every device in front of it was heard from after its trouble
        began (bounded: a parent silent for HOLD_FACTOR intervals does not hold it)."""
        ward, device = alert.ward, alert.device
        for node in self.topology.ancestors(ward, device):
            seen = self._seen.get((ward, node.id), 0)
            if seen >= alert.started_ms:
                continue
            interval = node.interval_s or DEFAULT_INTERVAL_S
            if t - alert.started_ms < HOLD_FACTOR * interval * 1000:
                return True
        return False

    def _behind(self, alert: Alert) -> list[Behind]:
        if alert.rule in self.roots:
            return [Behind(n.id, n.kind) for n in self.topology.behind(alert.ward, alert.device)]
        return []

    def _drop(self, fp: str) -> None:
        self.alerts.pop(fp, None)
        self._gone.add(fp)
        self._dirty.discard(fp)

    # agents ---------------------------------------------------------------------

    def _agent(self, ward: str, agent_id: str) -> _Agent:
        agent = self._agents.get((ward, agent_id))
        if agent is None:
            agent = self._agents[(ward, agent_id)] = _Agent(ward, agent_id)
        return agent

    def _agent_gone(self, agent: _Agent, now_ms: int) -> None:
        if agent.online:
            agent.online, agent.offline_since_ms = False, now_ms
            log.info("agent %s (ward %s) offline: its devices are unknown", agent.agent, agent.ward)

    def _agent_back(self, agent: _Agent, now_ms: int) -> None:
        if not agent.online:
            agent.online, agent.offline_since_ms = True, None
            log.info("agent %s (ward %s) back online", agent.agent, agent.ward)
            self._offline_alerts(now_ms)

    def _offline_labels(self, agent: _Agent) -> dict[str, str]:
        assert self.offline_rule is not None
        return {"alertname": self.offline_rule.name, "ward": agent.ward, "device": agent.agent, "kind": "agent",
                "severity": self.offline_rule.severity, "agent": agent.agent}

    def _offline_alerts(self, now_ms: int) -> None:
        rule = self.offline_rule
        if rule is None:
            return
        for agent in self._agents.values():
            labels = self._offline_labels(agent)
            fp = fingerprint(labels)
            alert = self.alerts.get(fp)
            if not agent.online:
                assert agent.offline_since_ms is not None
                if alert is None or (alert.state == "resolved" and not self.owed(fp)):
                    alert = Alert(fingerprint=fp, rule=rule.name, labels=labels, state="pending",
                                  started_ms=agent.offline_since_ms, updated_ms=now_ms)
                    self.alerts[fp] = alert
                if alert.state == "pending" and now_ms - alert.started_ms >= rule.for_ * 1000:
                    alert.state, alert.fired_ms, alert.updated_ms = "firing", now_ms, now_ms
                    self._record(alert, "firing", now_ms)
                if alert.state != "resolved":
                    alert.behind = [Behind(n.id, n.kind) for n in self.topology.devices_of(agent.ward, agent.agent)]
                    self._render_fixed(alert, rule, {"agent": agent.agent})
                    self._dirty.add(fp)
            elif alert is not None and alert.state == "pending":
                self._drop(fp)
            elif alert is not None and alert.state == "firing":
                alert.state, alert.ended_ms, alert.updated_ms = "resolved", now_ms, now_ms
                self._record(alert, "resolved", now_ms)
                self._dirty.add(fp)

    # flapping ---------------------------------------------------------------------

    def _flap_observe(self, ward: str, device: str, rule: ThresholdRule, fp: str, active: bool, t: int) -> None:
        if rule.name not in self.flap_watch or self.flap_rule is None:
            return
        flaps = self._flaps.get((ward, device))
        if flaps is None:
            flaps = self._flaps[(ward, device)] = _Flaps()
        before = flaps.states.get(fp)
        flaps.states[fp] = active
        if before is None or before == active:
            return
        flaps.changes.append(t)
        flaps.last_ms = t
        window = self.flap_rule.window * 1000
        while flaps.changes and t - flaps.changes[0] > window:
            flaps.changes.popleft()
        if len(flaps.changes) > self.flap_rule.changes:
            self._flapping(self._tracks[fp].labels, t, len(flaps.changes))

    def _flap_labels(self, ward: str, device: str, kind: str, agent: str) -> dict[str, str]:
        assert self.flap_rule is not None
        return {"alertname": self.flap_rule.name, "ward": ward, "device": device, "kind": kind,
                "severity": self.flap_rule.severity, "agent": agent}

    def _flapping(self, of: dict[str, str], t: int, changes: int) -> None:
        assert self.flap_rule is not None
        labels = self._flap_labels(of["ward"], of["device"], of["kind"], of["agent"])
        fp = fingerprint(labels)
        alert = self.alerts.get(fp)
        if alert is None or alert.state == "resolved":
            if alert is not None and self.owed(fp):
                return
            alert = Alert(fingerprint=fp, rule=self.flap_rule.name, labels=labels, state="firing",
                          started_ms=t, updated_ms=t, fired_ms=t, live=True)
            self.alerts[fp] = alert
            self._record(alert, "firing", t)
        alert.value = changes
        self._render_fixed(alert, self.flap_rule, {"changes": str(changes)})
        self._dirty.add(fp)

    def _flap_timers(self, now_ms: int) -> None:
        rule = self.flap_rule
        if rule is None:
            return
        for fp, alert in list(self.alerts.items()):
            if alert.rule != rule.name or alert.state != "firing":
                continue
            flaps = self._flaps.get((alert.ward, alert.device))
            last = flaps.last_ms if flaps else 0
            if now_ms - last >= rule.stable_for * 1000:
                alert.state, alert.ended_ms, alert.updated_ms = "resolved", now_ms, now_ms
                self._record(alert, "resolved", now_ms)
                self._dirty.add(fp)

    # muting ---------------------------------------------------------------------

    def _mute(self, now_ms: int) -> None:
        """Suppression (topology, agents, flapping) and silencing (silences, maintenance)."""
        silences = [s for s in self.silences() if s.active(now_ms)]
        now = datetime.fromtimestamp(now_ms / 1000, self.tz)
        down = {(a.ward, a.device): a for a in self.alerts.values()
                if a.rule in self.roots and a.state in ("pending", "firing")}
        offline = {(a.ward, a.agent) for a in self._agents.values() if not a.online}
        flapping = {(a.ward, a.device) for a in self.alerts.values()
                    if self.flap_rule is not None and a.rule == self.flap_rule.name and a.state == "firing"}
        for fp, alert in self.alerts.items():
            if alert.state == "resolved":
                continue
            suppressed = self._suppressor(alert, down, offline, flapping)
            silenced = next((s.id for s in silences if s.matches(alert.labels)), None)
            if silenced is None and self.windows:
                window = maintenance.active_window(self.windows, ward=alert.ward, device=alert.device,
                                                   rule=alert.rule, now=now, tz=self.tz)
                silenced = "maintenance" if window is not None else None
            if suppressed != alert.suppressed_by:
                track = self._tracks.get(fp)
                if suppressed is None and track is not None:
                    # What it last said was said behind a dead parent or an absent agent: it is
                    # notified only once a reading taken after the parent was seen again
                    # confirms it (within one poll).
                    alert.live = False
                    was = alert.suppressed_by or ""
                    if was.startswith("device:"):
                        track.confirm_from_ms = self._seen.get((alert.ward, was.removeprefix("device:")), 0)
                alert.suppressed_by = suppressed
                self._dirty.add(fp)
                if suppressed is not None and alert.state == "firing":
                    self._record(alert, "suppressed", now_ms)
            if silenced != alert.silenced_by:
                alert.silenced_by = silenced
                self._dirty.add(fp)
                if silenced is not None and alert.state == "firing":
                    self._record(alert, "silenced", now_ms)
            if alert.rule in self.roots and alert.state == "firing":
                behind = self._behind(alert)
                if behind != alert.behind:
                    alert.behind = behind
                    self._dirty.add(fp)

    def _suppressor(self, alert: Alert, down: dict[tuple[str, str], Alert], offline: set[tuple[str, str]],
                    flapping: set[tuple[str, str]]) -> str | None:
        ward, device = alert.ward, alert.device
        if alert.rule == (self.offline_rule.name if self.offline_rule else None):
            return None
        agent = alert.labels.get("agent", "")
        if (ward, agent) in offline:
            return f"agent:{agent}"
        for node in self.topology.ancestors(ward, device):
            if (ward, node.id) in down:
                return f"device:{node.id}"
        if alert.rule in self.flap_watch and (ward, device) in flapping:
            return "flapping"
        return None

    def _forget(self, now_ms: int) -> None:
        for fp, alert in list(self.alerts.items()):
            if alert.state == "resolved" and not self.owed(fp):
                self._drop(fp)
                track = self._tracks.get(fp)
                if track is not None and track.active and track.since_ms is not None:
                    # the condition came back while the resolved notice was owed: a new episode
                    self.alerts[fp] = Alert(fingerprint=fp, rule=alert.rule, labels=dict(alert.labels),
                                            state="pending", started_ms=track.since_ms, updated_ms=track.seen_ms)
                    self._render(self.alerts[fp], track)
                    self._gone.discard(fp)
                    self._dirty.add(fp)
        stale = now_ms - 7 * 86400 * 1000
        for fp in [fp for fp, t in self._tracks.items() if t.seen_ms < stale and fp not in self.alerts]:
            del self._tracks[fp]

    # text -------------------------------------------------------------------------

    def _render(self, alert: Alert, track: _Track) -> None:
        values: dict[str, str] = {k: _fmt(v) for k, v in track.fields.items()}
        value = track.fields.get(track.rule.field)
        values["value"] = _fmt(value) if value is not None else ""
        values.update(self._context(alert))
        alert.feed = self.topology.feed_text(alert.ward, alert.device)
        alert.summary = {lang: _format(getattr(track.rule.summary, lang), {**values, **_said(alert, lang)})
                         for lang in ("vi", "en")}

    def _render_fixed(self, alert: Alert, rule: Rule, extra: dict[str, str]) -> None:
        values = {**self._context(alert), **extra}
        alert.summary = {lang: _format(getattr(rule.summary, lang), {**values, **_said(alert, lang)})
                         for lang in ("vi", "en")}

    def _context(self, alert: Alert) -> dict[str, str]:
        labels = alert.labels
        return {
            **{k: v for k, v in labels.items() if k != "ward"},
            "ward": self.ward_name(labels["ward"]),
            "ward_id": labels["ward"],
            "ap": labels.get("ap", labels["device"]),  # a stand-alone AP is its own
            "feed": self.topology.feed_text(labels["ward"], labels["device"]) or "?",
            "reason": alert.reason or "?",
        }

    def _record(self, alert: Alert, state: str, t: int, *, backfill: bool = False) -> None:
        if len(self._transitions) >= MAX_TRANSITIONS:
            self.dropped += 1
            return
        snapshot = replace(alert, labels=dict(alert.labels), summary=dict(alert.summary), behind=list(alert.behind))
        self._transitions.append(Transition(snapshot, state, t, backfill))
        self._dirty.add(alert.fingerprint)


def _said(alert: Alert, language: str) -> dict[str, str]:
    """The reason in words, in the summary's language."""
    said = reasons.words(alert.reason, language) if alert.reason else None
    return {"reason": said or alert.reason or "?"}


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.3g}"
    return str(value)


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _format(template: str, values: dict[str, str]) -> str:
    try:
        return template.format_map(_Missing(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template
