"""The one message that crosses MQTT, and the topic names.

Both the agent and the collector import this module; it imports neither. Every payload
is JSON and carries ``"schema": 1``. The topic tree and payloads are documented in
``docs/mqtt.md``; change both together, and bump :data:`SCHEMA` for anything an old
collector could misread.

Decoding is strict: unknown fields, wrong types, non-finite numbers, unknown
measurements and over-long names are all rejected with :class:`WireError`, whose
message says what was wrong. msgspec does the parsing because the collector decodes
every message on its hot path.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Final, Literal, TypeVar, get_args

import msgspec

SCHEMA: Final = 1
PREFIX: Final = "wardwatch/v1"
MAX_PAYLOAD_BYTES: Final = 1024 * 1024

# The measurements of DESIGN.md. A reading for any other is refused, so that a typo
# in an agent cannot create a new measurement in InfluxDB.
Measurement = Literal[
    "device_status",
    "if_traffic",
    "poe",
    "wifi_radio",
    "wifi_ssid",
    "lldp_link",
    "device_health",
    "camera_health",
    "camera_event",
    "agent",
]
Kind = Literal["switch", "ap", "camera", "agent"]
MEASUREMENTS: Final = frozenset(get_args(Measurement))
KINDS: Final = frozenset(get_args(Kind))
# Tags that the collector sets from the batch and the reading itself.
RESERVED_TAGS: Final = frozenset({"ward", "device", "kind", "agent"})

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
NAME_PATTERN: Final = _NAME
NAME_RE: Final = re.compile(_NAME)

Name = Annotated[str, msgspec.Meta(pattern=_NAME)]
# A reading's device: checked against NAME_RE in check(), once per distinct name, like
# the keys below (the pattern per reading was 40% of decoding a batch).
DeviceName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_good_names: set[str] = set()
TagValue = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
# Field and tag keys: checked against KEY_RE in check(), once per distinct key, because
# msgspec's per-value pattern check costs more than the rest of decoding together.
FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
KEY_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_good_keys: set[str] = set()
FieldValue = int | float | Annotated[str, msgspec.Meta(max_length=256)]


class WireError(ValueError):
    """A payload or topic that does not follow this module's contract."""


class Reading(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """One measurement of one device at one time. (``gc=False``: it holds no cycles, and
    thousands are made a second; its dicts are tracked as usual.)"""

    device: DeviceName
    kind: Kind
    measurement: Measurement
    time_ms: Annotated[int, msgspec.Meta(ge=0)]
    fields: Annotated[dict[FieldName, FieldValue], msgspec.Meta(min_length=1, max_length=64)]
    tags: Annotated[dict[FieldName, TagValue], msgspec.Meta(max_length=16)] = {}


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    """What an agent publishes on its readings topic.

    ``seq`` increases by one per batch and never repeats for an agent, across restarts,
    so that the collector can count gaps and duplicates.
    """

    schema: int
    agent: Name
    ward: Name
    seq: Annotated[int, msgspec.Meta(ge=0)]
    readings: Annotated[list[Reading], msgspec.Meta(max_length=10_000)]
    # The lowest seq still in the agent's outbox when this batch was committed: every
    # lower seq was acknowledged by the broker or dropped by the outbox bounds. The
    # collector counts a seq below it that never arrived as missing (docs/reliability.md).
    pending_from: Annotated[int, msgspec.Meta(ge=0)] | None = None
    # Batches the agent's outbox has dropped to stay within its bounds, in all.
    dropped: Annotated[int, msgspec.Meta(ge=0)] | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Batch)


def encode(batch: Batch) -> bytes:
    """Validate what msgspec does not check when it encodes, then encode."""
    for i, r in enumerate(batch.readings):
        if r.measurement not in MEASUREMENTS:
            raise WireError(f"readings[{i}].measurement: unknown measurement {r.measurement!r}")
        if r.kind not in KINDS:
            raise WireError(f"readings[{i}].kind: unknown kind {r.kind!r}")
        for key, value in r.fields.items():
            if isinstance(value, bool):
                raise WireError(f"readings[{i}].fields.{key}: booleans are sent as 0/1")
            if isinstance(value, float) and not math.isfinite(value):
                raise WireError(f"readings[{i}].fields.{key}: {value} is not a finite number")
    check(batch)
    payload = _encoder.encode(batch)
    # The collector's own checks, on the very bytes it will get: what msgspec does not
    # check when it encodes (patterns, lengths, bounds, the size cap) fails here, in the
    # agent, rather than in the collector's dead-letter file. It costs about 0.3 ms for a
    # 48-port switch batch (97 readings, 20 kB), once per poll (docs/mqtt.md).
    decode(payload)
    return payload


def decode(payload: bytes) -> Batch:
    """Parse and validate a readings payload; raise WireError saying why not."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD_BYTES}-byte cap")
    try:
        batch = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise WireError(_schema_hint(payload) or str(exc)) from None
    except msgspec.DecodeError as exc:
        raise WireError(f"not JSON: {exc}") from None
    except RecursionError:  # msgspec's own guard against deep nesting
        raise WireError("JSON nested too deeply") from None
    check(batch)
    return batch


def check(batch: Batch) -> None:
    """The rules msgspec's types cannot say. (Decoding already refuses booleans for
    numbers, NaN and infinities: strict JSON has no spelling for them.)"""
    if batch.schema != SCHEMA:
        raise WireError(f"schema {batch.schema} is not supported (this side speaks {SCHEMA})")
    good, names = _good_keys, _good_names
    for i, r in enumerate(batch.readings):
        if r.device not in names:
            _check_name(r.device, f"readings[{i}].device")
        if not good.issuperset(r.fields):
            for key in r.fields:
                if key not in good:
                    _check_key(key, f"readings[{i}].fields")
        tags = r.tags
        if tags:
            if not good.issuperset(tags):
                for key in tags:
                    if key not in good:
                        _check_key(key, f"readings[{i}].tags")
            if not RESERVED_TAGS.isdisjoint(tags):
                clash = sorted(RESERVED_TAGS.intersection(tags))
                raise WireError(f"readings[{i}].tags: {clash} are set by the collector")


def _check_name(name: str, where: str) -> None:
    if not NAME_RE.match(name):
        raise WireError(f"{where}: {name!r} is not a name ({_NAME})")
    if len(_good_names) < 100_000:  # a bound: a fleet's devices
        _good_names.add(name)


def _check_key(key: str, where: str) -> None:
    if not KEY_RE.match(key):
        raise WireError(f"{where}: key {key!r} is not lower-case letters, digits and '_'")
    if len(_good_keys) < 10_000:  # a bound: keys are a small, fixed vocabulary
        _good_keys.add(key)


def _schema_hint(payload: bytes) -> str | None:
    """Name a wrong schema version plainly rather than as a type error deep inside."""
    try:
        raw = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return None
    if isinstance(raw, dict) and raw.get("schema") != SCHEMA:
        return f"schema {raw.get('schema')!r} is not supported (this side speaks {SCHEMA})"
    return None


# Topics ---------------------------------------------------------------------------


def readings_topic(ward: str, agent: str) -> str:
    return f"{PREFIX}/{ward}/{agent}/readings"


def status_topic(ward: str, agent: str) -> str:
    return f"{PREFIX}/{ward}/{agent}/status"


def events_topic(ward: str, agent: str) -> str:
    return f"{PREFIX}/{ward}/{agent}/events"


def stored_topic(ward: str, agent: str) -> str:
    """Retained, from the collectors: how far this agent's batches are durably stored."""
    return f"{PREFIX}/{ward}/{agent}/stored"


def inventory_topic(ward: str, agent: str) -> str:
    """Retained, from the agent: its devices and which switch port feeds each."""
    return f"{PREFIX}/{ward}/{agent}/inventory"


def alerts_topic(ward: str, severity: str) -> str:
    return f"{PREFIX}/alerts/{ward}/{severity}"


READINGS_FILTER: Final = f"{PREFIX}/+/+/readings"
STATUS_FILTER: Final = f"{PREFIX}/+/+/status"
STORED_FILTER: Final = f"{PREFIX}/+/+/stored"
EVENTS_FILTER: Final = f"{PREFIX}/+/+/events"
INVENTORY_FILTER: Final = f"{PREFIX}/+/+/inventory"


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription: collectors in one group split the messages."""
    return f"$share/{group}/{topic_filter}"


def parse_agent_topic(topic: str) -> tuple[str, str, str]:
    """``wardwatch/v1/{ward}/{agent}/{leaf}`` -> (ward, agent, leaf)."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX or parts[2] == "alerts":
        raise WireError(f"topic {topic!r} is not wardwatch/v1/{{ward}}/{{agent}}/{{leaf}}")
    _, _, ward, agent, leaf = parts
    if not (NAME_RE.match(ward) and NAME_RE.match(agent)):
        raise WireError(f"topic {topic!r} has a ward or agent that is not a valid name")
    return ward, agent, leaf


def decode_from(topic: str, payload: bytes) -> Batch:
    """Decode a readings payload and check that it came from the topic it names."""
    ward, agent, leaf = parse_agent_topic(topic)
    if leaf != "readings":
        raise WireError(f"topic {topic!r} is not a readings topic")
    batch = decode(payload)
    if (batch.ward, batch.agent) != (ward, agent):
        raise WireError(f"payload says ward={batch.ward!r} agent={batch.agent!r}, topic says {ward!r}/{agent!r}")
    return batch


class FromAgent(msgspec.Struct, forbid_unknown_fields=True):
    """What every small agent message (status, events) starts with."""

    schema: int
    agent: Name
    ward: Name


_S = TypeVar("_S", bound=FromAgent)


class Status(FromAgent, forbid_unknown_fields=True):
    """The retained ``status`` message of an agent."""

    state: Literal["online", "offline"]
    time_ms: Annotated[int, msgspec.Meta(ge=0)]


_status_decoder = msgspec.json.Decoder(Status)


def decode_status(topic: str, payload: bytes) -> Status:
    """Decode a ``status`` payload and check that it came from the topic it names."""
    return _decode_on(topic, payload, "status", _status_decoder, cap=4096)


def _decode_on(topic: str, payload: bytes, leaf: str, decoder: msgspec.json.Decoder[_S], *, cap: int) -> _S:
    """Decode a small payload of ``leaf`` topics (status, events): size cap, schema, and the
    ward and agent it names matching the topic's."""
    ward, agent, got = parse_agent_topic(topic)
    if got != leaf:
        raise WireError(f"topic {topic!r} is not a {leaf} topic")
    if len(payload) > cap:
        raise WireError(f"{leaf} payload of {len(payload)} bytes is over the {cap}-byte cap")
    try:
        doc = decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise WireError(f"bad {leaf} payload: {exc}") from None
    if doc.schema != SCHEMA:
        raise WireError(f"schema {doc.schema} is not supported (this side speaks {SCHEMA})")
    if (doc.ward, doc.agent) != (ward, agent):
        raise WireError(f"payload says ward={doc.ward!r} agent={doc.agent!r}, topic says {ward!r}/{agent!r}")
    return doc


def status_payload(state: str, *, agent: str, ward: str, time_ms: int) -> bytes:
    """The retained ``status`` message: ``online`` on connect; the Last Will says ``offline``."""
    return _encoder.encode({"schema": SCHEMA, "state": state, "agent": agent, "ward": ward, "time_ms": time_ms})


# Events ---------------------------------------------------------------------------


class Event(FromAgent, forbid_unknown_fields=True, rename={"cls": "class"}):
    """One device event on the ``events`` topic (best-effort live; the durable count is the
    ``camera_event`` reading). ``class`` is tamper, video_loss, storage_failure, motion or other."""

    device: Name
    time_ms: Annotated[int, msgspec.Meta(ge=0)]
    topic: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    cls: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    utc_time: Annotated[str, msgspec.Meta(max_length=64)] = ""  # the device's own time stamp, as it sent it
    data: Annotated[dict[Annotated[str, msgspec.Meta(max_length=64)],
                         Annotated[str, msgspec.Meta(max_length=256)]], msgspec.Meta(max_length=16)] = {}


_event_decoder = msgspec.json.Decoder(Event)


def event_payload(*, agent: str, ward: str, device: str, time_ms: int, topic: str, cls: str, utc_time: str = "",
                  data: dict[str, str] | None = None) -> bytes:
    """The payload of one event on ``events_topic(ward, agent)``."""
    items = dict(list((data or {}).items())[:16])
    event = Event(schema=SCHEMA, agent=agent, ward=ward, device=device, time_ms=time_ms, topic=topic[:256], cls=cls,
                  utc_time=utc_time[:64], data={k[:64]: v[:256] for k, v in items.items()})
    return _encoder.encode(event)


def decode_event(topic: str, payload: bytes) -> Event:
    """Decode an ``events`` payload and check that it came from the topic it names."""
    return _decode_on(topic, payload, "events", _event_decoder, cap=16384)


# Stored ---------------------------------------------------------------------------

MAX_STORED_RANGES: Final = 256
Seq = Annotated[int, msgspec.Meta(ge=0)]


class Stored(FromAgent, forbid_unknown_fields=True):
    """The retained ``stored`` message a collector publishes for one agent.

    ``watermark``: every seq below it is durably stored (in InfluxDB or a collector's
    spool), or was never going to be: it is below the agent's own ``pending_from``, so the
    agent no longer holds it (stored earlier, or dropped by its outbox bounds and counted).
    ``ranges``: further seqs above the watermark that are durably stored, as inclusive
    ``[first, last]`` pairs in ascending order; a share group's members store
    interleaved seqs, and this lets the agent delete them before the holes fill.
    """

    watermark: Seq
    time_ms: Seq
    ranges: Annotated[list[tuple[Seq, Seq]], msgspec.Meta(max_length=MAX_STORED_RANGES)] = []
    collector: Annotated[str, msgspec.Meta(max_length=128)] = ""


_stored_decoder = msgspec.json.Decoder(Stored)


def stored_payload(
    *, agent: str, ward: str, watermark: int, time_ms: int, ranges: list[tuple[int, int]] | None = None,
    collector: str = "",
) -> bytes:
    """The payload on ``stored_topic(ward, agent)``; checked like what decode_stored accepts."""
    doc = Stored(schema=SCHEMA, agent=agent, ward=ward, watermark=watermark, time_ms=time_ms,
                 ranges=list(ranges or [])[:MAX_STORED_RANGES], collector=collector[:128])
    payload = _encoder.encode(doc)
    decode_stored(stored_topic(ward, agent), payload)
    return payload


def decode_stored(topic: str, payload: bytes) -> Stored:
    """Decode a ``stored`` payload: the topic's agent, ranges ascending, above the watermark."""
    doc = _decode_on(topic, payload, "stored", _stored_decoder, cap=16384)
    low = doc.watermark
    for first, last in doc.ranges:
        if first < low or last < first:
            raise WireError(f"stored ranges must be ascending, disjoint and above the watermark {doc.watermark}")
        low = last + 1
    return doc


# Inventory ------------------------------------------------------------------------

MAX_INVENTORY_DEVICES: Final = 10_000
DeviceKind = Literal["switch", "ap", "camera"]
PortName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class FeedRef(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The switch port that feeds a device: ``switch`` is a switch of the same inventory,
    ``port`` its ifName (as the ``if_name`` tag of its ``if_traffic`` readings says it)."""

    switch: Name
    port: PortName


class InventoryDevice(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """One device of an agent's config, as the alert engine and the dashboard need it.
    ``vendor``, ``feed`` and ``uplink`` are left out of the JSON when unset."""

    id: Name
    kind: DeviceKind
    interval_s: Annotated[float, msgspec.Meta(gt=0, le=86400)]
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    vendor: Name | None = None
    feed: FeedRef | None = None
    uplink: PortName | None = None  # a switch: the ifName of the ward's uplink port


class Inventory(FromAgent, forbid_unknown_fields=True):
    """The retained ``inventory`` message of an agent: every device it polls, published on
    each connect right after ``online``. It replaces the agent's previous one."""

    time_ms: Annotated[int, msgspec.Meta(ge=0)]
    devices: Annotated[list[InventoryDevice], msgspec.Meta(max_length=MAX_INVENTORY_DEVICES)]


_inventory_decoder = msgspec.json.Decoder(Inventory)


def inventory_payload(*, agent: str, ward: str, time_ms: int, devices: list[InventoryDevice]) -> bytes:
    """The payload on ``inventory_topic(ward, agent)``; checked like what decode_inventory accepts."""
    for i, dev in enumerate(devices):
        if not math.isfinite(dev.interval_s):
            raise WireError(f"devices[{i}].interval_s: {dev.interval_s} is not a finite number")
    doc = Inventory(schema=SCHEMA, agent=agent, ward=ward, time_ms=time_ms, devices=list(devices))
    payload = _encoder.encode(doc)
    decode_inventory(inventory_topic(ward, agent), payload)
    return payload


def decode_inventory(topic: str, payload: bytes) -> Inventory:
    """Decode an ``inventory`` payload: the topic's agent, device ids unique, and every
    ``feed`` naming a switch of the same inventory. (A switch naming itself is let through,
    as the agent's config allows it; the topology ignores such a loop.)"""
    doc = _decode_on(topic, payload, "inventory", _inventory_decoder, cap=MAX_PAYLOAD_BYTES)
    kinds: dict[str, str] = {}
    for i, dev in enumerate(doc.devices):
        if dev.id in kinds:
            raise WireError(f"inventory devices[{i}].id: {dev.id!r} is listed twice")
        kinds[dev.id] = dev.kind
    for i, dev in enumerate(doc.devices):
        if dev.uplink is not None and dev.kind != "switch":
            raise WireError(f"inventory devices[{i}].uplink: only a switch has an uplink port, not a {dev.kind}")
        if dev.feed is None:
            continue
        kind = kinds.get(dev.feed.switch)
        if kind != "switch":
            what = "not in this inventory" if kind is None else f"a {kind}, not a switch"
            raise WireError(f"inventory devices[{i}].feed.switch: {dev.feed.switch!r} is {what}")
    return doc
