"""10,000 hypothesis-made bad payloads into a real collector, with valid batches among
them: the collector stays up, dead-letters and counts every bad one, and writes every
valid one. Each strategy makes payloads that are invalid by construction."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pipeline import Collector
from tests.test_collector import Publisher
from tests.util import wait_for
from wardwatch import wire
from wardwatch.simulators.lab import InfluxService, Service

pytestmark = pytest.mark.services

EXAMPLES = 10_000
VALID_EVERY = 50
WARD, AGENT = "fuzz-ward", "fuzz-agent"
TOPIC = wire.readings_topic(WARD, AGENT)
T0 = 1_764_201_600_000


def valid_doc(seq: int) -> dict[str, Any]:
    return {
        "schema": 1,
        "agent": AGENT,
        "ward": WARD,
        "seq": seq,
        "readings": [
            {
                "device": "sw-1",
                "kind": "switch",
                "measurement": "device_status",
                "time_ms": T0 + seq,
                "fields": {"up": 1, "poll_ms": 12.5},
                "tags": {},
            }
        ],
    }


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
json_any = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
not_a_number = st.sampled_from([math.nan, math.inf, -math.inf])
wrong_type = (
    st.none()
    | st.booleans()
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid batch with one thing broken."""
    doc = valid_doc(0)
    how = draw(st.sampled_from(["type", "nan", "huge", "schema", "unknown_key", "measurement", "nesting", "topic"]))
    if how == "type":
        where = draw(st.sampled_from([("seq",), ("agent",), ("readings",), ("readings", 0, "time_ms"),
                                      ("readings", 0, "fields", "up"), ("readings", 0, "fields")]))  # fmt: skip
        # An empty readings list, or a dict of ints for fields, would be valid.
        value = draw(wrong_type.filter(lambda v: v != [] and not (where[-1] == "fields" and isinstance(v, dict))))
        return dumps(_set(doc, where, value))
    if how == "nan":
        return dumps(_set(doc, ("readings", 0, "fields", "up"), draw(not_a_number)))
    if how == "huge":
        size = draw(st.integers(min_value=300, max_value=50_000))
        where = draw(st.sampled_from([("readings", 0, "tags", "if_name"), ("readings", 0, "fields", "reason"),
                                      ("readings", 0, "device")]))  # fmt: skip
        return dumps(_set(doc, where, "x" * size))
    if how == "schema":
        return dumps(_set(doc, ("schema",), draw(st.integers().filter(lambda n: n != 1))))
    if how == "unknown_key":
        return dumps(_set(doc, (draw(st.sampled_from(["extra", "Schema", "readingz"])),), draw(json_leaf)))
    if how == "measurement":
        return dumps(_set(doc, ("readings", 0, "measurement"), draw(st.text(max_size=20).filter(
            lambda m: m not in wire.MEASUREMENTS))))  # fmt: skip
    if how == "nesting":
        depth = draw(st.integers(min_value=50, max_value=5000))
        return b'{"schema":1,"agent":"' + AGENT.encode() + b'","readings":' + b"[" * depth + b"]" * depth + b"}"
    return dumps(_set(doc, ("agent",), "someone-else"))  # the topic names another agent


oversized = st.integers(min_value=1, max_value=1000).map(
    lambda extra: b'{"pad":"' + b"x" * (wire.MAX_PAYLOAD_BYTES + extra) + b'"}'
)
bad_payloads = st.one_of(
    st.binary(max_size=2000),
    json_any.map(dumps),
    mutated(),
    mutated(),
    mutated(),
    st.integers(0, 199).flatmap(lambda n: oversized if n == 0 else mutated()),
)


@dataclass
class Tally:
    bad: int = 0
    valid: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def rig(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Service, influx: InfluxService
) -> Iterator[tuple[Collector, Publisher, Tally, str]]:
    database = "fuzz"
    influx.create_database(database)
    c = Collector(tmp_path_factory.mktemp("fuzz"), mqtt_port=mosquitto.port, influx_url=influx.url, database=database)
    c.start()
    pub = Publisher(mosquitto.port)
    try:
        yield c, pub, Tally(), database
    finally:
        pub.close()
        c.service.stop()


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(payload=bad_payloads)
def test_fuzzed_payloads(rig: tuple[Collector, Publisher, Tally, str], payload: bytes) -> None:
    _, pub, tally, _ = rig
    pub.raw(TOPIC, payload)
    tally.bad += 1
    if tally.bad % VALID_EVERY == 0:
        seq = len(tally.valid)
        pub.raw(TOPIC, dumps(valid_doc(seq)))
        tally.valid.append(seq)


def test_every_bad_one_dead_lettered_and_counted_every_valid_one_written(
    rig: tuple[Collector, Publisher, Tally, str], influx: InfluxService
) -> None:
    c, _, tally, database = rig
    assert tally.bad >= EXAMPLES, f"hypothesis made only {tally.bad} payloads"
    c.wait_counter("messages", tally.bad + len(tally.valid), timeout=120)
    assert c.service.running(), "the collector is still up"
    assert c.counter("invalid") == tally.bad
    wait_for(lambda: len(c.dead_letters()) == tally.bad, timeout=30, interval=0.5, what="every bad one dead-lettered")
    rows = influx.points(f"SELECT up FROM device_status WHERE ward = '{WARD}'", db=database, epoch="ms")
    assert sorted(int(r["time"]) - T0 for r in rows) == tally.valid
