"""Device uptime over a period, with unknown time kept apart from downtime.

The period is cut into steps. In each step a device is *up* if any ``device_status``
reading there says ``up=1``, *down* if readings exist and all say ``up=0``, and *unknown*
if there is no reading at all: its agent was offline or stale (``agent_status`` says
which), or the collector had not stored the readings yet. Readings an agent backfills
from its outbox after an uplink outage land in their original steps, so a later report
shows them as up or down, not unknown.

Each device's step is its own poll interval, learned from the data: the median spacing
of its ``device_status`` readings in the period, computed by InfluxDB (``elapsed()``
inside a ``median()``), so one row per device comes back however long the period is.
A device polled every 5 minutes is then cut into 5-minute steps, one reading each, and
a missed poll is one unknown step, not five. Because the steps are as long as the
interval, a reading that lands a little late or early (poll time varies) can leave its
own step empty and a step nearby with two: such an empty step takes its state from
that spare reading instead of counting as unknown. A fixed ``step_s`` (the
command's ``--step``) overrides all this: every device is cut into that step, and a
step is unknown only when it has no reading at all.

``uptime_pct`` is up / (up + down): unknown time is excluded, and reported beside it.

Maintenance windows (``alerts.maintenance``, expanded to epoch-ms intervals by the caller)
take a step out of up and down: a step whose start (its start inside the period, for a
step the period starts inside) lies in a window that applies to the device counts as
*maintenance*, whatever its readings said, and is reported apart.

An *outage* is a run of down steps. Only an up step ends it: unknown and maintenance
steps inside a run neither end it nor add to its length (nobody saw the device come
back), so an outage's length is its down seconds. An outage running at the period's
start or end is counted with the part inside the period.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from wardwatch import wire
from wardwatch.collector.seqlog import Queryable, series_of

# The step of a device with fewer than two readings in the period: nothing to learn from.
FALLBACK_STEP_S: Final = 60

DeviceKey = tuple[str, str]  # (ward, device)
State = Literal["up", "down", "unknown", "maintenance"]
# (ward, device) -> the maintenance windows that apply to it, as [start_ms, end_ms) intervals
Windows = Callable[[str, str], Sequence[tuple[int, int]]]


@dataclass(frozen=True, slots=True)
class Step:
    t_ms: int  # where the step starts (InfluxDB's GROUP BY time bucket)
    span_s: float  # how much of it lies inside the period
    state: State


@dataclass(frozen=True)
class DeviceSteps:
    """One device's period cut into steps, each with its state."""

    ward: str
    device: str
    kind: str
    step_s: int
    steps: list[Step]


@dataclass(frozen=True)
class DeviceUptime:
    ward: str
    device: str
    up_s: float
    down_s: float
    unknown_s: float
    step_s: int = FALLBACK_STEP_S  # the step the period was cut into for this device
    kind: str = ""  # the ``kind`` tag of its device_status readings: switch, ap, camera
    maintenance_s: float = 0.0  # steps in a maintenance window: neither up nor down
    outages: tuple[float, ...] = field(default=())  # each outage's down seconds, in time order

    @property
    def uptime_pct(self) -> float | None:
        known = self.up_s + self.down_s
        return None if known == 0 else round(100 * self.up_s / known, 3)

    @property
    def longest_outage_s(self) -> float:
        return max(self.outages, default=0.0)

    @property
    def mttr_s(self) -> float | None:
        """Mean time to restore: the mean outage length; None without an outage."""
        return sum(self.outages) / len(self.outages) if self.outages else None

    def as_json(self) -> dict[str, Any]:
        return {
            "ward": self.ward,
            "device": self.device,
            "up_s": self.up_s,
            "down_s": self.down_s,
            "unknown_s": self.unknown_s,
            "uptime_pct": self.uptime_pct,
            "step_s": self.step_s,
        }


def summarise(ds: DeviceSteps) -> DeviceUptime:
    """Up, down, unknown and maintenance seconds and the outages of one device's steps."""
    total: dict[State, float] = {"up": 0.0, "down": 0.0, "unknown": 0.0, "maintenance": 0.0}
    outages: list[float] = []
    run = 0.0
    for step in ds.steps:
        total[step.state] += step.span_s
        if step.state == "down":
            run += step.span_s
        elif step.state == "up" and run:
            outages.append(run)
            run = 0.0
    if run:
        outages.append(run)
    return DeviceUptime(
        ds.ward, ds.device, total["up"], total["down"], total["unknown"], ds.step_s, kind=ds.kind,
        maintenance_s=total["maintenance"], outages=tuple(outages),
    )  # fmt: skip


def _any_of(tag: str, values: Sequence[str]) -> str:
    for v in values:
        if not wire.NAME_RE.match(v):
            raise ValueError(f"{tag} {v!r} is not a valid name")
    return " AND (" + " OR ".join(f"{tag} = '{v}'" for v in values) + ")" if values else ""


def _where(start_ms: int, end_ms: int, ward: str | None, wards: Sequence[str] = (),
           kinds: Sequence[str] = ()) -> str:  # fmt: skip
    where = f"time >= {start_ms}ms AND time < {end_ms}ms"
    if ward is not None:
        where += _any_of("ward", [ward])
    return where + _any_of("ward", wards) + _any_of("kind", kinds)


def query(start_ms: int, end_ms: int, step_s: int, ward: str | None = None, *, wards: Sequence[str] = (),
          kinds: Sequence[str] = ()) -> str:  # fmt: skip
    """The InfluxQL behind :func:`device_uptime`: per step the highest ``up`` and the number
    of readings; -1 in both marks a step with no reading."""
    return (
        f"SELECT max(up), count(up) FROM device_status WHERE {_where(start_ms, end_ms, ward, wards, kinds)} "
        f"GROUP BY time({step_s}s), ward, device, kind fill(-1)"
    )


def interval_query(start_ms: int, end_ms: int, ward: str | None = None, *, wards: Sequence[str] = (),
                   kinds: Sequence[str] = ()) -> str:  # fmt: skip
    """The InfluxQL behind :func:`poll_intervals`: the median spacing (ms) of each device's
    readings, computed by the server."""
    where = _where(start_ms, end_ms, ward, wards, kinds)
    return (
        f"SELECT median(elapsed) FROM (SELECT elapsed(up, 1ms) FROM device_status WHERE {where} "
        f"GROUP BY ward, device) GROUP BY ward, device"
    )


async def poll_intervals(
    influx: Queryable, *, start_ms: int, end_ms: int, ward: str | None = None, wards: Sequence[str] = (),
    kinds: Sequence[str] = (),
) -> dict[DeviceKey, float]:  # fmt: skip
    """Each device's poll interval in seconds, as the median spacing of its ``device_status``
    readings in the period. A device with fewer than two readings there is absent."""
    results = await influx.query(interval_query(start_ms, end_ms, ward, wards=wards, kinds=kinds), epoch="ms")
    out: dict[DeviceKey, float] = {}
    for series in series_of(results):
        tags = series.get("tags", {})
        for _t, median_ms in series.get("values", []):
            if median_ms is not None and median_ms > 0:
                out[(tags.get("ward", ""), tags.get("device", ""))] = float(median_ms) / 1000
    return out


def step_for(interval_s: float | None) -> int:
    """The step for a device polled every ``interval_s`` seconds: the interval to the
    nearest whole second (InfluxDB groups by whole durations; the agent keeps a fixed rate,
    so its spacings scatter around the interval by milliseconds)."""
    if interval_s is None:
        return FALLBACK_STEP_S
    return max(1, round(interval_s))


async def device_uptime(
    influx: Queryable, *, start_ms: int, end_ms: int, step_s: int | None = None, ward: str | None = None,
    wards: Sequence[str] = (), kinds: Sequence[str] = (), maintenance: Windows | None = None,
) -> list[DeviceUptime]:  # fmt: skip
    """Up, down, unknown and maintenance seconds, and the outages, of every device with a
    reading in the period (:func:`device_steps`, :func:`summarise`)."""
    found = await device_steps(influx, start_ms=start_ms, end_ms=end_ms, step_s=step_s, ward=ward, wards=wards,
                               kinds=kinds, maintenance=maintenance)  # fmt: skip
    return [summarise(ds) for ds in found]


async def device_steps(
    influx: Queryable, *, start_ms: int, end_ms: int, step_s: int | None = None, ward: str | None = None,
    wards: Sequence[str] = (), kinds: Sequence[str] = (), maintenance: Windows | None = None,
) -> list[DeviceSteps]:  # fmt: skip
    """Every device with a reading in the period, cut into steps, each up, down, unknown or
    maintenance; sorted by ward and device.

    ``step_s`` None (the default): each device in steps of its own poll interval
    (:func:`poll_intervals`), with one query per distinct step. A number: every device
    in steps of that many seconds, in one query. ``ward``/``wards`` and ``kinds`` filter
    on those tags; ``maintenance`` gives each device's windows.
    """
    if (step_s is not None and step_s < 1) or end_ms <= start_ms:
        raise ValueError("need step_s >= 1 and end after start")
    span = _Span(start_ms, end_ms, ward, tuple(wards), tuple(kinds), maintenance)
    if step_s is not None:
        return sorted(await _at_step(influx, span, step_s, borrow=False), key=_order)
    intervals = await poll_intervals(influx, start_ms=start_ms, end_ms=end_ms, ward=ward, wards=wards, kinds=kinds)
    steps = {key: step_for(interval) for key, interval in intervals.items()}
    # A device with a single reading has no spacing to learn from: it gets FALLBACK_STEP_S,
    # from that step's query if it runs anyway, else from one more query.
    out: dict[DeviceKey, DeviceSteps] = {}
    single: set[DeviceKey] = set()
    learned = sorted(set(steps.values()))
    for step in learned:
        for row in await _at_step(influx, span, step, borrow=True):
            key = (row.ward, row.device)
            if key not in steps:
                single.add(key)
            if steps.get(key, FALLBACK_STEP_S) == step:
                out[key] = row
    if (single or not learned) and FALLBACK_STEP_S not in learned:
        for row in await _at_step(influx, span, FALLBACK_STEP_S, borrow=True):
            if (row.ward, row.device) not in steps:
                out[(row.ward, row.device)] = row
    return sorted(out.values(), key=_order)


@dataclass(frozen=True)
class _Span:
    start_ms: int
    end_ms: int
    ward: str | None
    wards: tuple[str, ...]
    kinds: tuple[str, ...]
    maintenance: Windows | None


def _order(d: DeviceSteps) -> DeviceKey:
    return (d.ward, d.device)


async def _at_step(influx: Queryable, span: _Span, step_s: int, *, borrow: bool) -> list[DeviceSteps]:
    """Every device with a reading in the period, cut into steps of ``step_s``; with
    ``borrow``, empty steps filled from spare readings (:func:`_borrow`)."""
    # One step more on each side: the steps the period's first and last steps may borrow
    # from, and the readings before the start of a step the period starts inside.
    start_ms, end_ms = span.start_ms, span.end_ms
    margin = step_s * 1000
    q = query(start_ms - margin, end_ms + margin, step_s, span.ward, wards=span.wards, kinds=span.kinds)
    results = await influx.query(q, epoch="ms")
    out = []
    for series in series_of(results):
        tags = series.get("tags", {})
        ward, device = tags.get("ward", ""), tags.get("device", "")
        raw: list[tuple[int, float, float | None, int]] = []  # (start, seconds in the period, max(up), count)
        for t, value, count in series["values"]:
            # Steps may stick out of the period, or lie outside it: count only the overlap.
            inside = max(0, min(int(t) + margin, end_ms) - max(int(t), start_ms)) / 1000
            n = 0 if value is None or value < 0 or count is None or count < 1 else int(count)
            raw.append((int(t), inside, value if n else None, n))
        if not any(n and inside for _t, inside, _value, n in raw):
            continue  # readings only outside the period
        spans = [(inside, value, n) for _t, inside, value, n in raw]
        if borrow:
            spans = _borrow(spans)
        windows = span.maintenance(ward, device) if span.maintenance else ()
        steps = []
        for (t, _inside, _v, _n), (inside, value, _n2) in zip(raw, spans, strict=True):
            if not inside:
                continue
            begin = max(t, start_ms)
            state: State
            if any(ws <= begin < we for ws, we in windows):
                state = "maintenance"
            elif value is None:
                state = "unknown"
            elif value >= 1:
                state = "up"
            else:
                state = "down"
            steps.append(Step(t, inside, state))
        out.append(DeviceSteps(ward, device, tags.get("kind", ""), step_s, steps))
    return out


def _borrow(steps: list[tuple[float, float | None, int]]) -> list[tuple[float, float | None, int]]:
    """Fill each empty step with a spare reading of the nearest step with two or more, found
    by walking left, then right, across steps of exactly one reading: a run of polls that
    each landed just across their step's boundary shifts one reading from the empty step at
    one end of the run to the double step at the other. A walk ends at the first step
    that has not exactly one reading: polls really missing leave empty steps unfilled."""
    spare = [max(0, n - 1) for _span, _value, n in steps]
    filled = list(steps)
    for i, (span, _value, n) in enumerate(steps):
        if n:
            continue
        for direction in (-1, 1):
            j = i + direction
            while 0 <= j < len(steps) and steps[j][2] == 1:
                j += direction
            if 0 <= j < len(steps) and spare[j] > 0:
                spare[j] -= 1
                filled[i] = (span, steps[j][1], 0)
                break
    return filled
