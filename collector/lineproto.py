"""InfluxDB line protocol, written from wire batches. Pure functions.

One line per reading::

    measurement,kind=switch,device=sw-core,if_name=Gi1/0/7,ward=cam-pho in_bps=1.5,oper_up=1i 1764201600000

- Tags: ``ward`` (from the batch), ``device`` and ``kind`` (from the reading), plus the
  reading's own tags, in sorted key order (what InfluxDB recommends).
- Escaping: in measurements, commas and spaces; in tag keys, tag values and field keys,
  commas, spaces and equals signs; in string field values, ``"`` and ``\\``.
- Backslashes in tag values: InfluxDB 1.x does *not* unescape ``\\\\`` in tags (it
  stores both characters) and cannot take a tag value that ends in a backslash, while
  2.x does unescape it. A backslash followed by an ordinary character means itself in
  both, so it is written as is; a backslash that ends a value or precedes ``\\ , = space``
  has no spelling both understand, and is refused with :class:`LineProtocolError`.
  Newlines and other control characters cannot be carried in a tag at all, and are
  refused likewise.
- Values: ints as ``123i`` (int64 range), floats as Python's ``repr`` (shortest exact
  form), strings double-quoted. The timestamp is ``time_ms``, written with
  ``precision=ms``.

A refusal names the reading, so the collector can dead-letter that one message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

import msgspec

from wardwatch import wire

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# InfluxDB stores int64 nanoseconds: the last millisecond it can hold.
MAX_TIME_MS: Final = INT64_MAX // 1_000_000
# Names InfluxDB refuses as a tag or field key.
_RESERVED_KEYS: Final = frozenset({"time"})

_MEASUREMENT_ESC = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESC = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_STRING_ESC = str.maketrans({"\\": "\\\\", '"': '\\"'})
# A backslash with no spelling that 1.x and 2.x both read back as itself.
_AMBIGUOUS_BACKSLASH = re.compile(r"\\(?=[\\, =]|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

FieldValue = int | float | str


class LineProtocolError(ValueError):
    """A value that line protocol cannot carry faithfully."""


def escape_measurement(name: str) -> str:
    if not name:
        raise LineProtocolError("empty measurement name")
    _check_no_control(name, "measurement")
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name!r} would read as a comment")
    return name.translate(_MEASUREMENT_ESC)


def escape_key(key: str, what: str = "key") -> str:
    """A tag key or a field key."""
    if not key:
        raise LineProtocolError(f"empty {what}")
    if key in _RESERVED_KEYS:
        raise LineProtocolError(f"{what} {key!r} is reserved by InfluxDB")
    _check_no_control(key, what)
    _check_backslashes(key, what)
    return key.translate(_KEY_ESC)


def escape_tag_value(value: str, key: str = "tag") -> str:
    if not value:
        raise LineProtocolError(f"tag {key}: empty value")
    _check_no_control(value, f"tag {key}")
    _check_backslashes(value, f"tag {key}")
    return value.translate(_KEY_ESC)


def format_field_value(value: FieldValue, key: str = "field") -> str:
    # bool is an int subclass; the wire refuses booleans, but a caller might not.
    if isinstance(value, bool):
        raise LineProtocolError(f"field {key}: booleans are written as 0/1 integers")
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise LineProtocolError(f"field {key}: {value} does not fit in a 64-bit integer")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field {key}: {value} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_STRING_ESC) + '"'
    raise LineProtocolError(f"field {key}: unsupported type {type(value).__name__}")


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    time_ms: int,
) -> bytes:
    """One point as a line of line protocol (no trailing newline)."""
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    if not 0 <= time_ms <= MAX_TIME_MS:
        raise LineProtocolError(f"time_ms {time_ms} is outside what InfluxDB can store")
    head = [_measurement(measurement)]
    for key in sorted(tags):
        head.append(_tag_pair(key, tags[key]))
    body = ",".join(f"{_field_key(key)}={format_field_value(value, key)}" for key, value in fields.items())
    return f"{','.join(head)} {body} {time_ms}".encode()


# Names and tag values repeat from batch to batch (the same devices and ports): escape
# each once. A refusal raises, and lru_cache does not keep it.
_measurement = lru_cache(maxsize=256)(escape_measurement)


@lru_cache(maxsize=65_536)
def _tag_pair(key: str, value: str) -> str:
    return f"{escape_key(key, 'tag key')}={escape_tag_value(value, key)}"


@lru_cache(maxsize=4096)
def _field_key(key: str) -> str:
    return escape_key(key, "field key")


def reading_tags(ward: str, reading: wire.Reading) -> dict[str, str]:
    tags = dict(reading.tags)
    tags.update(ward=ward, device=reading.device, kind=reading.kind)
    return tags


# The hot path: a batch's readings repeat the same few shapes (the same device, tags and
# field keys from poll to poll), so each shape is escaped and checked once and cached:
# - a reading's head (measurement and sorted, escaped tags, as bytes) per (measurement,
#   ward, device, kind, tags);
# - a template for its fields per (field keys, value types).
# The values of a reading without strings are then formatted by one msgspec encode of
# them all (its floats are the shortest form that reads back exactly, like repr's: only
# the exponent's spelling differs, 1e16 for 1e+16, which InfluxDB reads alike; a
# non-finite float comes out as null, and sends the reading through the strict path),
# then split at the commas into the template. A reading with a string field is formatted
# with str.format and its strings escaped. Ints are checked for int64. A type without a
# fast spelling (bool, ...) takes the strict path (:func:`line`), which refuses it. The
# caches are bounded: full, they start over.
_CACHE_MAX: Final = 65_536
_Template = tuple[Any, tuple[int, ...], tuple[int, ...]]  # bytes, or str for str.format
_heads: dict[tuple[str, ...], bytes] = {}
_templates: dict[tuple[object, ...], _Template | None] = {}
_encode_values = msgspec.json.Encoder().encode


def _head(measurement: str, ward: str, reading: wire.Reading) -> bytes:
    tags = reading_tags(ward, reading)
    parts = [_measurement(measurement)]
    parts += [_tag_pair(key, tags[key]) for key in sorted(tags)]
    return (",".join(parts) + " ").encode()


def _template(fields: Mapping[str, FieldValue], types: tuple[type, ...]) -> _Template | None:
    """The fields' template, the positions of ints and of strings; None when a value's type
    has no fast spelling. Bytes with %s for a reading without strings, else a str.format."""
    if any(t not in (int, float, str) for t in types):
        return None
    ints = tuple(i for i, t in enumerate(types) if t is int)
    strs = tuple(i for i, t in enumerate(types) if t is str)
    keys = [_field_key(key) for key in fields]
    if strs:
        spell = {float: "{!r}", int: "{}i", str: '"{}"'}
        return ",".join(k.replace("{", "{{").replace("}", "}}") + "=" + spell[t]
                        for k, t in zip(keys, types, strict=True)), ints, strs
    return b",".join(k.replace("%", "%%").encode() + (b"=%si" if t is int else b"=%s")
                     for k, t in zip(keys, types, strict=True)), ints, strs


def _strict(reading: wire.Reading, ward: str) -> bytes:
    return line(reading.measurement, reading_tags(ward, reading), reading.fields, reading.time_ms)


def batch_lines(batch: wire.Batch) -> list[bytes]:
    """Every reading of a batch as a line; LineProtocolError names the reading refused.

    What :func:`line` writes for each reading, from cached shapes (see above)."""
    out: list[bytes] = []
    append = out.append
    ward = batch.ward
    heads, templates = _heads, _templates
    for i, r in enumerate(batch.readings):
        try:
            tags = r.tags
            hkey = (r.measurement, ward, r.device, r.kind, *tags.keys(), *tags.values()) if tags else (
                r.measurement, ward, r.device, r.kind)
            head = heads.get(hkey)
            if head is None:
                if len(heads) >= _CACHE_MAX:
                    heads.clear()
                head = heads[hkey] = _head(r.measurement, ward, r)
            fields = r.fields
            values = tuple(fields.values())
            tkey = (*fields, *map(type, values))
            try:
                tmpl = templates[tkey]
            except KeyError:
                if not fields:
                    raise LineProtocolError("a point needs at least one field") from None
                if len(templates) >= _CACHE_MAX:
                    templates.clear()
                tmpl = templates[tkey] = _template(fields, tkey[len(fields):])  # type: ignore[arg-type]
            t = r.time_ms
            if tmpl is None or not 0 <= t <= MAX_TIME_MS:
                append(_strict(r, ward))  # raises, naming what is wrong
                continue
            template, ints, strs = tmpl
            if ints:
                wide = False
                for j in ints:
                    v = values[j]
                    if v > INT64_MAX or v < INT64_MIN:  # type: ignore[operator]
                        wide = True
                if wide:
                    append(_strict(r, ward))  # raises, naming the value
                    continue
            if strs:
                listed = list(values)
                for j in strs:
                    listed[j] = 0
                if not _finite(listed):
                    append(_strict(r, ward))
                    continue
                for j in strs:
                    listed[j] = values[j].translate(_STRING_ESC)  # type: ignore[union-attr]
                append(b"%s%s %d" % (head, template.format(*listed).encode(), t))
                continue
            encoded = _encode_values(values)
            if b"null" in encoded:  # a NaN or an infinity
                append(_strict(r, ward))
                continue
            append(b"%s%s %d" % (head, template % tuple(encoded[1:-1].split(b",")), t))
        except LineProtocolError as exc:
            raise LineProtocolError(f"readings[{i}]: {exc}") from None
    return out


def _finite(values: list[FieldValue]) -> bool:
    try:
        return math.isfinite(sum(values))  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float: the strict path decides
        return False


def _check_no_control(text: str, what: str) -> None:
    if _CONTROL.search(text):
        raise LineProtocolError(f"{what}: {text!r} has a control character, which line protocol cannot carry")


def _check_backslashes(text: str, what: str) -> None:
    if _AMBIGUOUS_BACKSLASH.search(text):
        raise LineProtocolError(
            f"{what}: {text!r} has a backslash at its end or before '\\', ',', '=' or ' ', "
            "which InfluxDB 1.x cannot read back"
        )
