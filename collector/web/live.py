"""The dashboard's live state: every device's state and every ward's summary, kept from the
alert engine's own subscription (an Observer of AlertService, called on the event loop in
each agent's order), pushed to the browsers as it changes (api.py's ``/api/v1/events``).

Device state (docs/web.md):

- camera: ``ok`` when ``camera_health.ok`` is 1; ``degraded`` when it answers
  (``device_status.up`` 1) but is not ok; ``down`` when it does not answer;
- switch, AP: ``device_status.up`` 1 is ``ok``, 0 is ``down``, the reason from
  ``device_status.reason``;
- ``unknown``: its agent is offline (status offline, or no batch for ``stale_after``), or
  no reading of it for 3 poll intervals, or it never reported.

A reading older than the newest one applied to the same device is ignored here (an agent's
backlog arrives interleaved with live batches): the live state is the newest reading's.

Per reading the cost is a dict look-up and a few comparisons; a ward's summary is
recomputed once per batch that touched it, and once a second (``tick``) for the clocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from wardwatch import wire

log = logging.getLogger(__name__)

KINDS: Final = ("switch", "ap", "camera")
MAX_MANAGED_APS: Final = 2048  # APs tracked per controller (a bound against a runaway ap tag)
KIND_ORDER: Final = {k: i for i, k in enumerate(KINDS)}
STALE_INTERVALS: Final = 3
DEFAULT_INTERVAL_S: Final = 60.0
MAX_DEVICES: Final = 100_000  # a bound on devices learnt from readings alone

Listener = Callable[[str, dict[str, Any]], None]


class AlertLike(Protocol):
    @property
    def fingerprint(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def acked_by(self) -> str | None: ...
    @property
    def suppressed_by(self) -> str | None: ...


def iso_local(ms: int | None, tz: ZoneInfo) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")


@dataclass(slots=True)
class Device:
    ward: str
    id: str
    kind: str
    agent: str
    vendor: str = ""
    host: str = ""
    feed: str = ""
    interval_s: float = DEFAULT_INTERVAL_S
    listed: bool = False  # in its agent's inventory (else learnt from readings)
    # what the newest readings say
    up: int | None = None
    up_reason: str = ""
    ok: int | None = None  # camera_health.ok
    ok_reason: str = ""
    status_ms: int = 0  # time of the newest device_status applied
    health_ms: int = 0  # time of the newest camera_health applied
    last_ms: int | None = None  # the newest reading of any kind
    # A controller's (or virtual controller's) APs, from the ``ap`` tag of its wifi_radio
    # rows: name -> (time of the newest row, any radio up in it). A stand-alone AP has none.
    aps: dict[str, tuple[int, bool]] = field(default_factory=dict)
    # what the page shows
    state: str = "unknown"
    reason: str = ""
    since_ms: int = 0


@dataclass(slots=True)
class Agent:
    ward: str
    agent: str
    online: bool = False
    heard: bool = False  # any status or batch at all
    last_batch_ms: int | None = None  # wall clock of the newest batch's arrival


@dataclass(slots=True)
class Ward:
    id: str
    name: str
    devices: dict[str, Device] = field(default_factory=dict)
    # (device, ap, radio) -> (time_ms, clients); ap is "" for a stand-alone AP
    radios: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    wifi_clients: int = 0
    peak: int = 0
    peak_day: str = ""
    alerts: int = 0
    summary: dict[str, Any] = field(default_factory=dict)  # the last one pushed


class Fleet:
    """The live state; an Observer of AlertService (collector/alerts/service.py)."""

    def __init__(
        self,
        *,
        wards: dict[str, str],
        tz: ZoneInfo,
        stale_after: float,
        alerts: Callable[[], Iterable[AlertLike]] = list,
        shown: Iterable[str] | None = None,
    ) -> None:
        self.names = dict(wards)
        self.tz = tz
        self.stale_after_ms = int(stale_after * 1000)
        self.alerts_of = alerts
        self.wards: dict[str, Ward] = {}
        for w in shown if shown is not None else wards:
            self._ward(w)
        self.agents: dict[tuple[str, str], Agent] = {}
        self.listeners: list[Listener] = []
        self._dirty: set[str] = set()
        self._alert_seen: dict[str, tuple[str, bool, str, str]] = {}
        self.now_ms = 0
        self.uptime: Callable[[], dict[str, float | None]] = lambda: {"24h": None, "30d": None}
        self.tick_hooks: list[Callable[[int], None]] = []

    # Observer -----------------------------------------------------------------

    def observe_inventory(self, inv: wire.Inventory) -> None:
        ward = self._ward(inv.ward)
        self._agent(inv.ward, inv.agent)
        keep = set()
        for d in inv.devices:
            keep.add(d.id)
            dev = ward.devices.get(d.id)
            if dev is None:
                dev = Device(ward=inv.ward, id=d.id, kind=d.kind, agent=inv.agent, since_ms=inv.time_ms)
                ward.devices[d.id] = dev
            dev.kind, dev.agent, dev.listed = d.kind, inv.agent, True
            dev.vendor, dev.host, dev.interval_s = d.vendor or "", d.host, d.interval_s
            dev.feed = f"{d.feed.switch} {d.feed.port}" if d.feed is not None else ""
            self._settle(dev, self.now_ms or inv.time_ms)
        for dev_id in [i for i, d in ward.devices.items() if d.agent == inv.agent and i not in keep]:
            del ward.devices[dev_id]
        self._dirty.add(inv.ward)
        self._flush()

    def forget(self, ward_id: str, agent: str) -> None:
        ward = self.wards.get(ward_id)
        self.agents.pop((ward_id, agent), None)
        if ward is None:
            return
        for dev_id in [i for i, d in ward.devices.items() if d.agent == agent]:
            del ward.devices[dev_id]
        for key in [k for k in ward.radios if k[0] not in ward.devices]:
            del ward.radios[key]
        ward.wifi_clients = sum(c for _, c in ward.radios.values())
        self._dirty.add(ward_id)
        self._flush()

    def observe_status(self, status: wire.Status, *, now_ms: int) -> None:
        self.now_ms = max(self.now_ms, now_ms)
        agent = self._agent(status.ward, status.agent)
        agent.heard = True
        online = status.state == "online"
        if online and agent.last_batch_ms is None:
            agent.last_batch_ms = now_ms  # stale_after counts from coming online
        if agent.online != online:
            agent.online = online
            if online:
                agent.last_batch_ms = now_ms
            self._settle_agent(status.ward, status.agent, now_ms)
        self._flush()

    def observe_batch(self, batch: wire.Batch, *, now_ms: int) -> None:
        self.now_ms = max(self.now_ms, now_ms)
        agent = self._agent(batch.ward, batch.agent)
        agent.heard = True
        agent.last_batch_ms = now_ms
        was_online = agent.online
        agent.online = True
        ward = self._ward(batch.ward)
        touched: dict[str, Device] = {}
        for r in batch.readings:
            m = r.measurement
            if m == "device_status":
                dev = self._device(ward, batch.agent, r)
                if dev is None or r.time_ms < dev.status_ms:
                    continue
                dev.status_ms = r.time_ms
                up = r.fields.get("up")
                dev.up = int(up) if isinstance(up, (int, float)) else None
                reason = r.fields.get("reason")
                dev.up_reason = "" if not isinstance(reason, str) or reason == "ok" else reason
            elif m == "camera_health":
                dev = self._device(ward, batch.agent, r)
                if dev is None or r.time_ms < dev.health_ms:
                    continue
                dev.health_ms = r.time_ms
                if not dev.vendor:  # the camera's brand, as the agent tagged it (the config may not say)
                    dev.vendor = r.tags.get("vendor", "")
                ok = r.fields.get("ok")
                dev.ok = int(ok) if isinstance(ok, (int, float)) else None
                reason = r.fields.get("reason")
                dev.ok_reason = "" if not isinstance(reason, str) or reason == "ok" else reason
                if dev.up is None or r.time_ms > dev.status_ms:  # no device_status yet: camera_health says
                    online = r.fields.get("online")
                    if isinstance(online, (int, float)):
                        dev.up = int(online)
            elif m == "wifi_radio":
                clients = r.fields.get("clients")
                if not isinstance(clients, (int, float)):
                    continue
                ap = r.tags.get("ap", "")
                key = (r.device, ap, r.tags.get("radio", ""))
                old = ward.radios.get(key)
                if old is not None and r.time_ms < old[0]:
                    continue
                if ap and (ctl := ward.devices.get(r.device)) is not None:
                    self._managed_ap(ctl, ap, r)
                ward.radios[key] = (r.time_ms, int(clients))
                ward.wifi_clients += int(clients) - (old[1] if old else 0)
                self._peak(ward, now_ms)
                self._dirty.add(ward.id)
                continue
            else:
                continue
            if dev.last_ms is None or r.time_ms > dev.last_ms:
                dev.last_ms = r.time_ms
            touched[dev.id] = dev
        if not was_online:
            self._settle_agent(batch.ward, batch.agent, now_ms)
        for dev in touched.values():
            self._settle(dev, now_ms)
        self._flush()

    def tick(self, now_ms: int) -> None:
        self.now_ms = max(self.now_ms, now_ms)
        for agent in self.agents.values():
            if agent.online and agent.last_batch_ms is not None and now_ms - agent.last_batch_ms > self.stale_after_ms:
                agent.online = False
                log.debug("web: agent %s/%s silent for %d s: its devices are unknown", agent.ward, agent.agent,
                          (now_ms - agent.last_batch_ms) // 1000)
        for ward in self.wards.values():
            for dev in ward.devices.values():
                self._settle(dev, now_ms)
            self._peak(ward, now_ms)
        self._alerts_tick()
        for hook in self.tick_hooks:
            hook(now_ms)
        self._dirty.update(self.wards)  # counts only change through _settle; summaries compared below
        self._flush()

    # state ----------------------------------------------------------------------

    def _ward(self, ward_id: str) -> Ward:
        ward = self.wards.get(ward_id)
        if ward is None:
            ward = self.wards[ward_id] = Ward(id=ward_id, name=self.names.get(ward_id, ward_id))
        return ward

    def _agent(self, ward: str, agent: str) -> Agent:
        a = self.agents.get((ward, agent))
        if a is None:
            a = self.agents[(ward, agent)] = Agent(ward=ward, agent=agent)
            self._ward(ward)
        return a

    def _device(self, ward: Ward, agent: str, r: wire.Reading) -> Device | None:
        dev = ward.devices.get(r.device)
        if dev is None:
            if r.kind not in KIND_ORDER or self.device_count() >= MAX_DEVICES:
                return None
            dev = ward.devices[r.device] = Device(ward=ward.id, id=r.device, kind=r.kind, agent=agent,
                                                  since_ms=r.time_ms)
        return dev

    def device_count(self) -> int:
        return sum(len(w.devices) for w in self.wards.values())

    def _raw(self, dev: Device, now_ms: int) -> tuple[str, str]:
        agent = self.agents.get((dev.ward, dev.agent))
        if agent is None or not agent.online:
            return "unknown", "agent_offline"
        if dev.last_ms is None:
            return "unknown", "no_reading"
        if now_ms - dev.last_ms > STALE_INTERVALS * dev.interval_s * 1000:
            return "unknown", "stale"
        if dev.up is None and dev.ok is None:
            return "unknown", "no_reading"
        if dev.kind == "camera":
            if dev.up == 0:
                return "down", dev.up_reason or dev.ok_reason or "offline"
            if dev.ok == 0:
                return "degraded", dev.ok_reason or dev.up_reason
            return "ok", ""
        if dev.up == 0:
            return "down", dev.up_reason
        return "ok", dev.up_reason  # e.g. up by ICMP with SNMP failing: the reason says so

    def _settle(self, dev: Device, now_ms: int) -> None:
        state, reason = self._raw(dev, now_ms)
        if state == dev.state and reason == dev.reason:
            return
        changed_state = state != dev.state
        dev.state, dev.reason = state, reason
        if changed_state:
            dev.since_ms = (dev.last_ms or now_ms) if state != "unknown" else now_ms
        self._dirty.add(dev.ward)
        self._emit("device", self._device_event(dev))

    def _settle_agent(self, ward_id: str, agent: str, now_ms: int) -> None:
        ward = self.wards.get(ward_id)
        if ward is None:
            return
        for dev in ward.devices.values():
            if dev.agent == agent:
                self._settle(dev, now_ms)
        self._dirty.add(ward_id)

    @staticmethod
    def _managed_ap(ctl: Device, ap: str, r: wire.Reading) -> None:
        if ap not in ctl.aps and len(ctl.aps) >= MAX_MANAGED_APS:
            return
        up = r.fields.get("up", 1) != 0
        t, was_up = ctl.aps.get(ap, (0, False))
        if r.time_ms > t:
            ctl.aps[ap] = (r.time_ms, up)
        elif r.time_ms == t and up and not was_up:  # another radio of the same poll
            ctl.aps[ap] = (t, True)

    @staticmethod
    def _aps_up(dev: Device) -> int:
        """A controller's APs that are up: in one of its last two polls, with a radio up. An AP
        gone from its tables for longer is down (no longer joined)."""
        newest = max(t for t, _ in dev.aps.values())
        since = newest - 2.5 * dev.interval_s * 1000
        return sum(1 for t, up in dev.aps.values() if up and t >= since)

    def _peak(self, ward: Ward, now_ms: int) -> None:
        day = datetime.fromtimestamp(now_ms / 1000, self.tz).strftime("%Y-%m-%d") if now_ms else ""
        if day != ward.peak_day:
            ward.peak_day, ward.peak = day, ward.wifi_clients
        elif ward.wifi_clients > ward.peak:
            ward.peak = ward.wifi_clients

    def _alerts_tick(self) -> None:
        seen: dict[str, tuple[str, bool, str, str]] = {}
        per_ward: dict[str, int] = {}
        for a in self.alerts_of():
            in_ward = a.labels.get("ward", "")
            seen[a.fingerprint] = (a.state, a.acked_by is not None, in_ward, a.labels.get("device", ""))
            # A tile counts root causes: the 13 devices behind a dead switch are its one alert.
            if a.state == "firing" and a.suppressed_by is None:
                per_ward[in_ward] = per_ward.get(in_ward, 0) + 1
        old = self._alert_seen
        for fp, now in seen.items():
            if old.get(fp) != now:
                self._emit("alert", {"fingerprint": fp, "state": now[0], "acked": now[1], "ward": now[2],
                                     "device": now[3]})
        for fp, was in old.items():
            if fp not in seen:
                self._emit("alert", {"fingerprint": fp, "state": "gone", "acked": was[1], "ward": was[2],
                                     "device": was[3]})
        self._alert_seen = seen
        for ward in self.wards.values():
            ward.alerts = per_ward.get(ward.id, 0)

    def _flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for ward_id in dirty:
            ward = self.wards.get(ward_id)
            if ward is None:
                continue
            summary = self._summary(ward)
            if summary != ward.summary:
                ward.summary = summary
                self._emit("ward", summary)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(kind, data)

    # views ------------------------------------------------------------------------

    def _summary(self, ward: Ward) -> dict[str, Any]:
        counts = {k: {"up": 0, "total": 0} for k in KINDS}
        n = down = not_ok = 0
        switch_down = False
        for dev in ward.devices.values():
            c = counts[dev.kind]
            # A controller counts as the APs it answers for, each up only while it is.
            managed = dev.kind == "ap" and bool(dev.aps)
            c["total"] += len(dev.aps) if managed else 1
            n += 1
            if dev.state == "ok":
                c["up"] += self._aps_up(dev) if managed else 1
                continue
            not_ok += 1
            if dev.state == "down":
                down += 1
                switch_down = switch_down or dev.kind == "switch"
        agents = [a for a in self.agents.values() if a.ward == ward.id]
        if not agents or not any(a.online for a in agents):
            state = "unknown"
        elif switch_down or (n and down * 2 > n):
            state = "down"
        elif not_ok:
            state = "degraded"
        else:
            state = "ok"
        return {"id": ward.id, "state": state, "counts": counts, "alerts": ward.alerts,
                "wifi_clients": ward.wifi_clients, "wifi_peak_today": ward.peak}

    def _device_event(self, dev: Device) -> dict[str, Any]:
        return {"ward": dev.ward, "id": dev.id, "kind": dev.kind, "state": dev.state, "reason": dev.reason,
                "since_ms": dev.since_ms, "since": iso_local(dev.since_ms, self.tz)}

    def ward_summary(self, ward_id: str) -> dict[str, Any] | None:
        ward = self.wards.get(ward_id)
        if ward is None:
            return None
        if not ward.summary:
            ward.summary = self._summary(ward)
        return ward.summary

    def wards_json(self) -> dict[str, Any]:
        """The body of ``GET /api/v1/wards``."""
        out = []
        for ward_id in self.wards:
            s = self.ward_summary(ward_id)
            assert s is not None
            out.append({"name": self.wards[ward_id].name, **s})
        return {"wards": out, "uptime": self.uptime(), "generated": iso_local(self.now_ms or None, self.tz)}

    def devices(self, ward_id: str) -> list[Device]:
        ward = self.wards.get(ward_id)
        if ward is None:
            return []
        return sorted(ward.devices.values(), key=lambda d: (KIND_ORDER.get(d.kind, 9), d.id))

    def device_row(self, dev: Device) -> dict[str, Any]:
        return {"id": dev.id, "kind": dev.kind, "vendor": dev.vendor, "state": dev.state, "reason": dev.reason,
                "since": iso_local(dev.since_ms, self.tz), "since_ms": dev.since_ms, "feed": dev.feed,
                "agent": dev.agent, "host": dev.host, "last_ms": dev.last_ms,
                "last": iso_local(dev.last_ms, self.tz)}

    def ward_json(self, ward_id: str) -> dict[str, Any] | None:
        """The body of ``GET /api/v1/wards/{ward}`` without its alerts (api.py adds them)."""
        s = self.ward_summary(ward_id)
        if s is None:
            return None
        return {"name": self.wards[ward_id].name, **s, "devices": [self.device_row(d) for d in self.devices(ward_id)]}

    def device(self, ward_id: str, device_id: str) -> Device | None:
        ward = self.wards.get(ward_id)
        return ward.devices.get(device_id) if ward is not None else None

    def device_json(self, ward_id: str, device_id: str) -> dict[str, Any] | None:
        dev = self.device(ward_id, device_id)
        if dev is None:
            return None
        return {"ward": ward_id, "ward_name": self.wards[ward_id].name, **self.device_row(dev),
                "interval_s": dev.interval_s}
