"""What the alert engine, the notifier, the channels, the state file and the API share.

An :class:`Alert` is one (rule, ward, device[, port or radio]) and its life: pending while
its condition has not yet held for ``for``, firing, then resolved. Suppression (a dead
switch in front of it, its agent offline, the device flapping) and silencing (a silence,
a maintenance window) never change that life: they only decide whether it is *sent*.
So a suppressed or silenced alert is still recorded, and one that was sent before it was
muted still gets its resolved notice.

A :class:`Notice` is one message to one channel: a ward's alerts that changed, grouped
within the route's ``group_wait``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final, Literal

AlertState = Literal["pending", "firing", "resolved"]
NoticeKind = Literal["firing", "resolved", "repeat", "escalation"]
# What the ``alert`` series' ``state`` field says at each transition (DESIGN.md).
HISTORY_STATES: Final = ("pending", "firing", "resolved", "suppressed", "silenced", "acknowledged")


def fingerprint(labels: dict[str, str]) -> str:
    """16 hex digits over the sorted labels, like Alertmanager's: stable across restarts."""
    text = "\x00".join(f"{k}\x01{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Behind:
    """A device behind a root alert (suppressed by it)."""

    device: str
    kind: str


@dataclass(slots=True)
class Alert:
    fingerprint: str
    rule: str
    labels: dict[str, str]  # alertname, ward, device, kind, severity, agent; if_name/radio for per-port rules
    state: AlertState
    started_ms: int  # when the condition was first met (Alertmanager's startsAt)
    updated_ms: int  # the reading time of the last change
    fired_ms: int | None = None
    ended_ms: int | None = None  # when it resolved (endsAt)
    summary: dict[str, str] = field(default_factory=dict)  # language -> rendered text
    reason: str = ""
    value: float | str | None = None
    suppressed_by: str | None = None  # "device:<id>" (a root behind which it sits), "agent:<id>", "flapping"
    silenced_by: str | None = None  # a silence id, or "maintenance"
    behind: list[Behind] = field(default_factory=list)  # for a root: what it suppresses
    acked_by: str | None = None
    acked_ms: int | None = None
    ack_comment: str = ""
    live: bool = True  # False while it is known only from backfill (late readings)
    feed: str = ""  # what feeds the device ("sw-a port 7"), from the inventory: shown in messages

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "warning")

    @property
    def ward(self) -> str:
        return self.labels["ward"]

    @property
    def device(self) -> str:
        return self.labels["device"]

    @property
    def muted(self) -> bool:
        return self.suppressed_by is not None or self.silenced_by is not None

    def sendable(self) -> bool:
        """Firing, live and neither suppressed nor silenced: it should be notified."""
        return self.state == "firing" and self.live and not self.muted


@dataclass(slots=True)
class NoticeAlert:
    """One alert inside a notice, as it was when the notice was made."""

    alert: Alert
    status: Literal["firing", "resolved"]
    ack_url: str = ""  # the signed acknowledgement link (empty for resolved)


@dataclass(slots=True)
class Notice:
    """One message for one channel: some of one ward's alerts, grouped."""

    kind: NoticeKind
    channel: str
    group_key: str  # "{route index}:{ward}", Alertmanager's groupKey
    ward: str
    ward_name: str  # the display name, with its diacritics
    alerts: list[NoticeAlert]
    external_url: str  # the collector's web address, for links
    language: str = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"

    @property
    def status(self) -> Literal["firing", "resolved"]:
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"


class DeliveryError(Exception):
    """A channel could not deliver; ``retry`` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status


@dataclass(slots=True)
class Attempt:
    """One delivery attempt, as the delivery log records it."""

    channel: str
    kind: NoticeKind
    group_key: str
    fingerprints: list[str]
    attempt: int  # 1 for the first try
    ok: bool
    time_ms: int
    error: str = ""
    status: int | None = None  # HTTP status or SMTP code, where there is one


@dataclass(slots=True)
class Sent:
    """What one channel has been sent about one alert: the pairing ledger (kept in SQLite).

    A channel that got the firing notice is owed exactly one resolved notice."""

    fingerprint: str
    channel: str
    firing_ms: int | None = None  # the first firing (or escalation) notice delivered
    last_ms: int | None = None  # the last firing or repeat delivered: the repeat timer counts from here
    resolved_ms: int | None = None  # the resolved notice delivered
    escalation: bool = False  # this channel got the alert as an escalation


@dataclass(slots=True)
class Silence:
    """Alerts whose labels all match ``matchers`` (label -> fnmatch glob) between
    ``starts_ms`` and ``ends_ms`` are recorded as silenced and not sent."""

    id: str
    matchers: dict[str, str]
    starts_ms: int
    ends_ms: int
    created_by: str
    comment: str = ""
    created_ms: int = 0

    def active(self, now_ms: int) -> bool:
        return self.starts_ms <= now_ms < self.ends_ms

    def matches(self, labels: dict[str, str]) -> bool:
        from fnmatch import fnmatchcase

        return all(fnmatchcase(labels.get(k, ""), v) for k, v in self.matchers.items())
