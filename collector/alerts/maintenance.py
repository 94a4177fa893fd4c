"""Which maintenance window (``alerts.maintenance``) covers an alert now, and what is coming.

The rrules speak naive local time in the deployment's zone, anchored like the config's
(:func:`~wardwatch.collector.alerts.config.parse_rrule`). dateutil expands a rule from its
DTSTART every time it is asked, so ``FREQ=HOURLY`` anchored in 2000 costs 0.7 s a question.
Two things keep :func:`active_window` cheap enough for the engine to ask per alert per tick:

- **a cache per window** of the occurrence that covers the time asked (or the gap to the next
  one), valid until the next occurrence starts: most questions are a dict look-up;
- **a near anchor** for rules whose DTSTART may move without changing the series (one RRULE,
  no COUNT, no DTSTART of its own, FREQ up to WEEKLY): the rule is re-read from a whole number
  of periods after its anchor, one window length before the time asked, so each expansion
  covers at most a window's length plus a period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr

from wardwatch.collector.alerts.config import RRULE_ANCHOR, MaintenanceWindow, parse_rrule

_UNITS: Final = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}
_FREQ = re.compile(r"\bFREQ=([A-Z]+)")
_INTERVAL = re.compile(r"\bINTERVAL=(\d+)")
_CACHE_MAX: Final = 4096


@dataclass(slots=True)
class _Span:
    """What is known about one window's occurrences over [valid_from, valid_until)."""

    valid_from: int
    valid_until: int | None  # the next occurrence's start; None when there is none
    start_ms: int | None  # the occurrence covering this span's start, if any
    end_ms: int | None


class _Rule:
    """One window's rrule, with a way to re-anchor it near a time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.rule: rrule | rruleset = parse_rrule(text)
        upper = text.upper()
        freq = _FREQ.search(upper)
        interval = _INTERVAL.search(upper)
        self.step: timedelta | None = None
        if (
            isinstance(self.rule, rrule)
            and freq is not None
            and freq.group(1) in _UNITS
            and "COUNT=" not in upper
            and "DTSTART" not in upper
        ):
            self.step = _UNITS[freq.group(1)] * (int(interval.group(1)) if interval else 1)

    def near(self, local: datetime) -> rrule | rruleset:
        """The same series from a whole number of steps after the anchor, at or before ``local``."""
        if self.step is None or local <= RRULE_ANCHOR:
            return self.rule
        anchor = RRULE_ANCHOR + ((local - RRULE_ANCHOR) // self.step) * self.step
        rule: rrule | rruleset = rrulestr(self.text, dtstart=anchor, ignoretz=True, forceset=False)
        return rule


_rules: dict[str, _Rule] = {}
_spans: dict[tuple[str, float, str], _Span] = {}


def _rule(text: str) -> _Rule:
    found = _rules.get(text)
    if found is None:
        if len(_rules) >= _CACHE_MAX:
            _rules.clear()
        found = _rules[text] = _Rule(text)
    return found


def _local(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz).replace(tzinfo=None)


def _ms(local: datetime, tz: ZoneInfo) -> int:
    return int(local.replace(tzinfo=tz).timestamp() * 1000)


def _span(window: MaintenanceWindow, now_ms: int, tz: ZoneInfo) -> _Span:
    key = (window.rrule, window.duration, tz.key)
    span = _spans.get(key)
    if span is not None and span.valid_from <= now_ms and (span.valid_until is None or now_ms < span.valid_until):
        return span
    length_ms = int(window.duration * 1000)
    parsed = _rule(window.rrule)
    local_now = _local(now_ms, tz)
    rule = parsed.near(_local(now_ms - length_ms, tz))
    last = rule.before(local_now, inc=True)
    nxt = rule.after(local_now)
    next_ms = None if nxt is None else _ms(nxt, tz)
    last_ms = None if last is None else _ms(last, tz)
    if last_ms is not None and last_ms + length_ms > now_ms:
        span = _Span(valid_from=last_ms, valid_until=next_ms, start_ms=last_ms, end_ms=last_ms + length_ms)
    else:
        span = _Span(valid_from=now_ms, valid_until=next_ms, start_ms=None, end_ms=None)
    if len(_spans) >= _CACHE_MAX:
        _spans.clear()
    _spans[key] = span
    return span


def covering(window: MaintenanceWindow, *, now_ms: int, tz: ZoneInfo) -> tuple[int, int] | None:
    """The occurrence of ``window`` that covers ``now_ms`` as [start_ms, end_ms), or None."""
    span = _span(window, now_ms, tz)
    if span.start_ms is not None and span.end_ms is not None and now_ms < span.end_ms:
        return span.start_ms, span.end_ms
    return None


def active_window(
    windows: list[MaintenanceWindow], *, ward: str, device: str, rule: str, now: datetime, tz: ZoneInfo
) -> MaintenanceWindow | None:
    """The first window that applies to (ward, device, rule) and is open at ``now`` (aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now_ms = int(now.timestamp() * 1000)
    for window in windows:
        if window.applies_to(ward, device, rule) and covering(window, now_ms=now_ms, tz=tz) is not None:
            return window
    return None


def between(window: MaintenanceWindow, *, start_ms: int, end_ms: int, tz: ZoneInfo) -> list[tuple[int, int]]:
    """Every occurrence of ``window`` overlapping [start_ms, end_ms), as (start_ms, end_ms)."""
    length_ms = int(window.duration * 1000)
    lo = _local(start_ms - length_ms, tz)
    rule = _rule(window.rrule).near(lo)
    out = []
    for start in rule.between(lo, _local(end_ms, tz), inc=True):
        s = _ms(start, tz)
        if s + length_ms > start_ms and s < end_ms:
            out.append((s, s + length_ms))
    return out


def upcoming(windows: list[MaintenanceWindow], *, now: datetime, tz: ZoneInfo, until: datetime) -> list[dict[str, Any]]:
    """The occurrences of every window that are open at ``now`` or start before ``until``,
    in start order: ``{index, start, end, active, wards, devices, rules}`` with ISO times in ``tz``."""
    now_ms, until_ms = int(now.timestamp() * 1000), int(until.timestamp() * 1000)
    found = []
    for index, window in enumerate(windows):
        for start_ms, end_ms in between(window, start_ms=now_ms, end_ms=until_ms, tz=tz):
            found.append((start_ms, index, end_ms, window))
    found.sort(key=lambda f: (f[0], f[1]))
    return [
        {
            "index": index,
            "start": datetime.fromtimestamp(start_ms / 1000, tz).isoformat(),
            "end": datetime.fromtimestamp(end_ms / 1000, tz).isoformat(),
            "active": start_ms <= now_ms < end_ms,
            "wards": list(window.wards),
            "devices": window.devices,
            "rules": list(window.rules),
        }
        for start_ms, index, end_ms, window in found
    ]
