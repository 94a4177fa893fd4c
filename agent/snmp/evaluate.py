"""Walked rows + a resolved profile -> readings. Pure: no I/O, no SNMP types needed.

Values may be pysnmp objects or plain Python (ints, bytes, str), so unit tests feed it
dicts. A value that cannot be read (text where a number belongs, say) is skipped and
reported in ``problems``; it never stops the rest of the poll.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wardwatch.agent.core.text import MAX_FIELD, MAX_TAG, clean
from wardwatch.agent.snmp.profiles import (
    INT,
    MAX_ROWS,
    METRICS,
    TEXT,
    Mask,
    PercentOf,
    PercentOfCol,
    Resolved,
    Scale,
    Source,
    Table,
    metric_target,
    source_columns,
)
from wardwatch.wire import Kind, Reading

Columns = dict[str, dict[str, Any]]  # column OID -> row index -> value
Number = int | float
Value = Number | str
# InfluxDB stores integers as int64, and the wire carries JSON numbers: anything outside
# is a bad value, never a reading.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Arithmetic a device's numbers can make fail: 10.0**huge, x / 0, int(nan), int(inf).
ARITHMETIC_ERRORS = (ArithmeticError, ValueError)


class BadValue(ValueError):
    """A value that cannot be read: skipped, counted in ``bad_values``, never a reading."""


@dataclass
class Evaluation:
    readings: list[Reading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if hasattr(value, "asOctets"):
        return bytes(value.asOctets())
    return str(value).encode()


def finite(value: Number) -> Number:
    """``value`` if it can be a reading's number: a finite float, or an int within int64."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadValue(f"{value} is not a finite number")
    elif not INT64_MIN <= value <= INT64_MAX:
        raise BadValue(f"an integer of {value.bit_length()} bits is out of the 64-bit range")
    return value


def to_number(value: Any) -> Number:
    """A device's value as a finite number; BadValue when it is none (text, NaN, infinity,
    an integer wider than 64 bits)."""
    if isinstance(value, bool) or value is None:
        raise BadValue(f"expected a number, got {type(value).__name__}")
    if isinstance(value, int | float):
        return finite(value)
    if isinstance(value, bytes | bytearray | str) or hasattr(value, "asOctets"):
        raw = to_bytes(value)
        if len(raw) > 64:  # no number is written in more digits; don't parse 10 kB of them
            raise BadValue(f"expected a number, got {len(raw)} bytes of text")
        text = raw.decode("ascii", "replace").strip("\x00 ")
        try:
            return finite(int(text))
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                kind = "text" if isinstance(value, bytes | bytearray | str) else type(value).__name__
                raise BadValue(f"expected a number, got {kind} {clean(text, limit=32)!r}") from None
            return finite(number)  # text "nan", "inf" and "1e999" stop here
    try:
        return finite(int(value))
    except (TypeError, ValueError, OverflowError):
        raise BadValue(f"expected a number, got {type(value).__name__}") from None


def to_int(value: Any, *, lo: int, hi: int, what: str = "") -> int:
    """A device's value as an integer in ``[lo, hi]`` (a counter's or a gauge's range)."""
    number = to_number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise BadValue(f"expected an integer, got {number}")
        number = int(number)
    if not lo <= number <= hi:
        raise BadValue(f"{number} is outside {what or 'the range'} {lo}..{hi}")
    return number


def to_text(value: Any, fmt: str = "text", *, limit: int = MAX_TAG) -> str:
    """A device's value as printable text of at most ``limit`` characters (core/text.py)."""
    if value is None:
        return ""
    if isinstance(value, int) and value.bit_length() > 256:
        raise BadValue(f"an integer of {value.bit_length()} bits where text belongs")
    if isinstance(value, int | float):
        value = repr(value)
    raw = to_bytes(value)
    if fmt == "mac":
        return raw.hex(":") if len(raw) == 6 else clean(raw, limit=limit)
    if fmt == "hex":
        return raw[: limit // 2].hex()
    return clean(raw, limit=limit)


def mhz_to_channel(mhz: float) -> int:
    if 2412 <= mhz <= 2472:
        return int((mhz - 2407) // 5)
    if mhz == 2484:
        return 14
    if 5000 <= mhz <= 5900:
        return int((mhz - 5000) // 5)
    if 5955 <= mhz <= 7115:  # 6 GHz
        return int((mhz - 5950) // 5)
    raise BadValue(f"{mhz} MHz is not a Wi-Fi channel")


class _Row:
    def __init__(self, table: Table, cols: Columns, index: str) -> None:
        self.table, self.cols, self.index = table, cols, index
        self.parts = index.split(".")

    def raw(self, src: Source) -> Any:
        if src.value is not None:
            return src.value
        if src.index is not None:
            try:
                key = ".".join(self.parts[i - 1] for i in src.index)
            except IndexError:
                raise BadValue(f"row index {self.index} has no part {max(src.index)}") from None
            if src.lookup is None:
                if src.format == "mac":
                    return bytes(int(p) & 0xFF for p in key.split("."))
                return key
            return self.cols.get(src.lookup, {}).get(key, key)
        column = source_columns(self.table, src)[0]
        return self.cols.get(column, {}).get(self.index)

    def col(self, n: int) -> Any:
        return self.cols.get(f"{self.table.oid}.{n}", {}).get(self.index)

    def label(self, src: Source, *, limit: int = MAX_TAG) -> str | None:
        """A tag (capped at MAX_TAG) or a text field (``limit=MAX_FIELD``), made safe;
        None when there is nothing printable."""
        raw = self.raw(src)
        if raw is None:
            return None
        if src.map is not None:
            key = _map_key(raw)
            if key in src.map:
                return clean(str(src.map[key]), limit=limit) or None
        return to_text(raw, src.format, limit=limit) or None

    def text(self, src: Source) -> str | None:
        return self.label(src, limit=MAX_FIELD)

    def number(self, src: Source) -> Number | None:
        raw = self.raw(src)
        return None if raw is None else convert(src, raw, self.col)


def convert(src: Source, raw: Any, col: Callable[[int], Any]) -> Number | None:
    """Map, then transform, a raw value into a number; None when the map drops it.
    ``col`` reads another column of the same row (for percent_of_col, entity_sensor)."""
    if src.map is not None:
        mapped = src.map.get(_map_key(raw))
        if mapped is None:
            return None
        raw = mapped
    value: Number = to_number(raw)
    try:
        for step in src.transform:
            value = _apply(step, value, col)
    except ARITHMETIC_ERRORS as exc:  # BadValue is a ValueError too: it passes through as it is
        if isinstance(exc, BadValue):
            raise
        raise BadValue(f"{type(exc).__name__}: {exc}") from None
    return finite(value)


def _apply(step: Any, value: Number, col: Callable[[int], Any]) -> Number:
    if isinstance(step, Scale):
        return value * step.scale
    if isinstance(step, Mask):
        return int(value) & step.mask
    if isinstance(step, PercentOf):
        return value * 100 / step.percent_of
    if isinstance(step, PercentOfCol):
        total = col(step.percent_of_col)
        if total is None or not to_number(total):
            raise BadValue(f"column {step.percent_of_col} is 0 or missing")
        return value * 100 / to_number(total)
    if step == "mw_to_w":
        return value / 1000
    if step == "negate":
        return -value
    if step == "mhz_to_channel":
        return mhz_to_channel(value)
    if step == "entity_sensor":  # ENTITY-SENSOR-MIB: value x 10^(3 x (scale - 9)) / 10^precision
        scale, precision = col(2), col(3)
        exp = 3 * (int(to_number(scale)) - 9) if scale is not None else 0
        return value * 10.0**exp / 10.0 ** (int(to_number(precision)) if precision is not None else 0)
    raise BadValue(f"unknown transform {step!r}")


def _map_key(raw: Any) -> int | str:
    try:
        return int(to_number(raw))
    except BadValue:
        pass
    try:
        return to_text(raw, "text")
    except BadValue:
        return ""


def _aggregate(how: str, values: list[Value]) -> Value:
    if how == "first":
        return values[0]
    if how == "count":
        return sum(1 for v in values if v)
    nums = [v for v in values if not isinstance(v, str)]
    if not nums:
        return values[0]
    if how == "sum":
        return sum(nums)
    if how == "avg":
        return sum(nums) / len(nums)
    return max(nums) if how == "max" else min(nums)


def _rows(table: Table, cols: Columns) -> list[str]:
    indices: dict[str, None] = {}
    for m in table.metrics.values():
        for column in source_columns(table, m):
            if m.lookup is None:
                indices.update(dict.fromkeys(cols.get(column, {})))
    keep = list(indices)[:MAX_ROWS]
    if table.where is not None:
        allowed = set(table.where.equals)
        where = cols.get(f"{table.oid}.{table.where.col}", {})
        keep = [i for i in keep if i in where and _map_key(where[i]) in allowed]
    return keep


def evaluate(
    profile: Resolved,
    *,
    cols: Columns,
    scalars: dict[str, Any],
    device: str,
    kind: Kind,
    time_ms: int,
    base_tags: dict[str, str] | None = None,
    skip: frozenset[str] = frozenset({"if_traffic"}),
) -> Evaluation:
    """One poll's readings for every measurement of the profile except those in ``skip``."""
    out = Evaluation()
    # (measurement, tags) -> metric -> (aggregate, values)
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, tuple[str, list[Value]]]] = defaultdict(dict)

    def add(meas: str, tags: dict[str, str], name: str, how: str, value: Value) -> None:
        entry = groups[(meas, tuple(sorted(tags.items())))].setdefault(name, (how, []))
        entry[1].append(value)

    for group in profile.scalars:
        if group.measurement in skip:
            continue
        for name, src in group.metrics.items():
            raw = scalars.get(src.oid or "")
            if raw is None:
                continue
            try:
                got = _scalar(src, raw, METRICS[group.measurement][name])
            except BadValue as exc:
                out.problems.append(f"{name} ({src.oid}): {exc}")
                continue
            if got is not None:
                add(group.measurement, dict(group.tags), name, "first", got)

    for table in profile.tables:
        if table.measurement in skip:
            continue
        for index in _rows(table, cols):
            row = _Row(table, cols, index)
            try:
                tags = {k: lab for k, src in table.tags.items() if (lab := row.label(src)) is not None}
            except BadValue as exc:
                out.problems.append(f"{table.name}.{index}: tags: {exc}")
                continue
            for key, m in table.metrics.items():
                meas, name = metric_target(table, key, m)
                if meas in skip:
                    continue
                by = m.by if m.by is not None else list(table.tags)
                if any(t not in tags for t in by):
                    continue
                try:
                    if m.aggregate == "count":  # rows that have the column, whatever its value
                        value: Value | None = 1 if row.raw(m) is not None else None
                    elif METRICS[meas][name] != TEXT:
                        value = row.number(m)
                    else:
                        value = row.text(m)
                except BadValue as exc:
                    out.problems.append(f"{table.name}.{index}: {name}: {exc}")
                    continue
                if value is not None:
                    add(meas, {t: tags[t] for t in by}, name, m.aggregate, value)

    base = base_tags or {}
    for (meas, tag_items), metrics in groups.items():
        fields: dict[str, int | float | str] = {}
        for name, (how, values) in metrics.items():
            try:  # a sum of many large values can leave int64 too
                fields[name] = _typed(_aggregate(how, values), METRICS[meas][name])
            except BadValue as exc:
                out.problems.append(f"{meas}.{name} {dict(tag_items)}: {exc}")
        if fields:
            out.readings.append(Reading(device=device, kind=kind, measurement=meas,  # type: ignore[arg-type]
                                        time_ms=time_ms, fields=fields, tags={**base, **dict(tag_items)}))
    return out


def _typed(value: Value, vtype: str) -> Value:
    """The canonical type of a metric: InfluxDB keeps one type per field. Numbers are
    finite and within int64 (BadValue otherwise)."""
    if isinstance(value, str) or vtype == TEXT:
        return value
    try:
        return finite(round(value) if vtype == INT else round(float(value), 3))
    except ARITHMETIC_ERRORS as exc:  # round(inf), float(10**400)
        if isinstance(exc, BadValue):
            raise
        raise BadValue(f"{type(exc).__name__}: {exc}") from None


def _scalar(src: Source, raw: Any, vtype: str) -> Value | None:
    if vtype == TEXT:
        return to_text(raw, src.format, limit=MAX_FIELD)
    return convert(src, raw, lambda _col: None)
