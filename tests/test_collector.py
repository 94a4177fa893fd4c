"""The collector: line protocol as pure functions, then the real process against a real
Mosquitto and a real InfluxDB 1.6 (the session fixtures of conftest.py), each test with
its own database, agent names and config."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from tests.pipeline import Collector
from tests.util import BIN, wait_for, write_yaml
from wardwatch import wire
from wardwatch.collector import lineproto
from wardwatch.collector.config import load_config
from wardwatch.collector.ledger import DeadLetter, SeqTracker
from wardwatch.config import ConfigError
from wardwatch.simulators.lab import InfluxService, Service, free_port, start_influxdb, start_mosquitto

T0 = 1_764_201_600_000  # 2025-11-27T00:00:00Z, in ms


def reading(**over: Any) -> wire.Reading:
    base: dict[str, Any] = {
        "device": "sw-core",
        "kind": "switch",
        "measurement": "if_traffic",
        "time_ms": T0,
        "fields": {"in_bps": 1.5, "oper_up": 1},
        "tags": {"if_name": "Gi1/0/7"},
    }
    base.update(over)
    return wire.Reading(**base)


def batch(agent: str, ward: str, seq: int, readings: list[wire.Reading]) -> wire.Batch:
    return wire.Batch(schema=wire.SCHEMA, agent=agent, ward=ward, seq=seq, readings=readings)


# --------------------------------------------------------------------------- line protocol


class TestLineProtocol:
    def test_a_reading_becomes_one_line_with_sorted_tags(self) -> None:
        b = batch("a1", "cam-pho", 0, [reading()])
        assert lineproto.batch_lines(b) == [
            b"if_traffic,device=sw-core,if_name=Gi1/0/7,kind=switch,ward=cam-pho in_bps=1.5,oper_up=1i 1764201600000"
        ]

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("a,b", r"a\,b"),
            ("a b", r"a\ b"),
            ("a=b", r"a\=b"),
            ("Hik, Vision=X", r"Hik\,\ Vision\=X"),
            (r"C:\cams", r"C:\cams"),  # a backslash before an ordinary character is itself
            ('"quoted"', '"quoted"'),  # quotes mean nothing in a tag
            ("Đông Hà", r"Đông\ Hà"),
        ],
    )
    def test_tag_values_escape_commas_spaces_and_equals(self, value: str, expected: str) -> None:
        assert lineproto.escape_tag_value(value) == expected

    @pytest.mark.parametrize("value", ["ends\\", "a\\,b", "a\\ b", "a\\=b", "a\\\\b", "two\nlines", "cr\r", "tab\t"])
    def test_tag_values_line_protocol_cannot_carry_are_refused(self, value: str) -> None:
        with pytest.raises(lineproto.LineProtocolError, match="tag vendor"):
            lineproto.escape_tag_value(value, "vendor")

    def test_measurement_escapes_commas_and_spaces_but_not_equals(self) -> None:
        assert lineproto.escape_measurement("my meas,x=y") == r"my\ meas\,x=y"
        with pytest.raises(lineproto.LineProtocolError, match="comment"):
            lineproto.escape_measurement("#x")

    def test_keys_escape_and_refuse_time(self) -> None:
        assert lineproto.escape_key("a b,c=d") == r"a\ b\,c\=d"
        with pytest.raises(lineproto.LineProtocolError, match="reserved"):
            lineproto.escape_key("time", "field key")

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, "0i"),
            (-3, "-3i"),
            (2**63 - 1, "9223372036854775807i"),
            (1.5, "1.5"),
            (1.0, "1.0"),
            (1e16, "1e+16"),
            (0.1 + 0.2, "0.30000000000000004"),
            ("plain", '"plain"'),
            ('he said "hi" \\ ok', r'"he said \"hi\" \\ ok"'),
            ("ends\\", r'"ends\\"'),
            ("", '""'),
            ("two\nlines", '"two\nlines"'),
        ],
    )
    def test_field_values(self, value: int | float | str, expected: str) -> None:
        assert lineproto.format_field_value(value) == expected

    @pytest.mark.parametrize("value", [2**63, -(2**63) - 1, float("nan"), float("inf"), True])
    def test_field_values_influxdb_cannot_store_are_refused(self, value: Any) -> None:
        with pytest.raises(lineproto.LineProtocolError, match="field f"):
            lineproto.format_field_value(value, "f")

    def test_time_beyond_int64_nanoseconds_is_refused(self) -> None:
        assert lineproto.line("m", {}, {"f": 1}, lineproto.MAX_TIME_MS).endswith(b" 9223372036854")
        with pytest.raises(lineproto.LineProtocolError, match="time_ms"):
            lineproto.line("m", {}, {"f": 1}, lineproto.MAX_TIME_MS + 1)

    def test_a_refused_value_names_the_reading(self) -> None:
        b = batch("a1", "w1", 0, [reading(), reading(tags={"vendor": "bad\\"})])
        with pytest.raises(lineproto.LineProtocolError, match=r"readings\[1\]: tag vendor"):
            lineproto.batch_lines(b)

    @pytest.mark.parametrize("value", [2**63, -(2**63) - 1, float("nan"), float("-inf"), True])
    def test_the_batch_path_refuses_what_line_refuses_naming_the_reading(self, value: Any) -> None:
        b = batch("a1", "w1", 0, [reading(), reading(fields={"in_bps": 1.5, "f": value})])
        with pytest.raises(lineproto.LineProtocolError, match=r"readings\[1\]: field f"):
            lineproto.batch_lines(b)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.dictionaries(
        st.sampled_from(["a", "b_1", "util_pct", "reason", "x9"]),
        st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
        min_size=1, max_size=5), min_size=1, max_size=4))
    def test_the_batch_path_writes_what_line_writes(self, fields: list[dict[str, Any]]) -> None:
        """The cached batch path against the plain one, reading by reading: the same bytes,
        but for a float's exponent (msgspec's 1e16 for repr's 1e+16), which reads back the same."""
        b = batch("a1", "w1", 0, [reading(fields=f, time_ms=T0 + i) for i, f in enumerate(fields)])
        for _ in range(2):  # the second time from the caches
            got = lineproto.batch_lines(b)
            for line, r in zip(got, b.readings, strict=True):
                want = lineproto.line(r.measurement, lineproto.reading_tags("w1", r), r.fields, r.time_ms)
                if line != want:
                    head, body, t = line.decode().rsplit(" ", 2)
                    whead, wbody, wt = want.decode().rsplit(" ", 2)
                    assert (head, t) == (whead, wt)
                    pairs = [p.split("=", 1) for p in body.split(",")]
                    wpairs = [p.split("=", 1) for p in wbody.split(",")]
                    assert [k for k, _ in pairs] == [k for k, _ in wpairs]
                    for (_, v), (_, wv) in zip(pairs, wpairs, strict=True):
                        assert v == wv or (float(v) == float(wv) and "e" in wv), (line, want)

    def test_floats_in_exponent_form_keep_msgspec_spelling(self) -> None:
        """InfluxDB reads these back as themselves: test_valid_batches_land_... below."""
        b = batch("a1", "w1", 0, [reading(fields={"a": 1e16, "b": 1e-5, "c": 5e-324, "d": -1.5e300})])
        assert lineproto.batch_lines(b)[0].split(b" ")[1] == b"a=1e16,b=0.00001,c=5e-324,d=-1.5e300"


# --------------------------------------------------------------------------- small parts


def test_seq_tracker_tells_reordering_from_duplicates() -> None:
    seq = SeqTracker()
    assert seq.observe(ward="w", agent="a", seq=10, now=1.0) == "new"  # baseline
    assert seq.observe(ward="w", agent="a", seq=11, now=2.0) == "new"
    assert seq.observe(ward="w", agent="a", seq=15, now=3.0) == "new"
    assert seq.observe(ward="w", agent="a", seq=15, now=4.0) == "duplicate"
    assert seq.observe(ward="w", agent="a", seq=12, now=5.0) == "reordered"  # late, filling a hole
    assert seq.observe(ward="w", agent="a", seq=12, now=5.0) == "duplicate"
    assert seq.observe(ward="w", agent="b", seq=0, now=5.0) == "new"
    state = seq.agents["a"]
    assert (state.last_seq, state.reordered, state.duplicates, state.holes) == (15, 1, 2, {13, 14})


def test_dead_letter_rotates_before_passing_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "dl" / "dead.jsonl"
    dl = DeadLetter(path, max_bytes=4096)
    payload = b"\x00\xff" + b"x" * 1000
    for i in range(6):
        dl.append(topic=f"t/{i}", reason="bad", payload=payload, now=1.0)
    dl.sync()
    assert path.stat().st_size <= 4096
    rotated = path.with_name("dead.jsonl.1")
    assert rotated.stat().st_size <= 4096
    records = [json.loads(line) for f in (rotated, path) for line in f.read_text().splitlines()]
    assert [r["topic"] for r in records] == [f"t/{i}" for i in range(6)][-len(records) :]
    assert base64.b64decode(records[-1]["payload_b64"]) == payload
    assert records[-1]["reason"] == "bad"


def test_dead_letter_keeps_the_head_of_an_oversized_payload_and_its_size(tmp_path: Path) -> None:
    dl = DeadLetter(tmp_path / "dead.jsonl", max_bytes=10**7)
    big = bytes(range(256)) * 5000
    dl.append(topic="t", reason="too big", payload=big, now=1.0)
    dl.close()
    (record,) = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert record["size"] == len(big) and record["truncated"] is True
    assert base64.b64decode(record["payload_b64"]) == big[: DeadLetter.MAX_KEPT]


def test_config_defaults_and_relative_dead_letter_path(tmp_path: Path) -> None:
    cfg = load_config(write_yaml(tmp_path / "c.yaml", {"mqtt": {"share_group": "collectors"}}))
    assert cfg.influx.api == "v1"
    assert cfg.influx.timeout == 10.0 and cfg.influx.flush_interval == 1.0 and cfg.influx.batch_points == 5000
    assert cfg.dead_letter.path == tmp_path / "dead-letter.jsonl"
    assert cfg.mqtt.share_group == "collectors"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"influx": {"api": "v2"}}, "influx: api: v2 needs token and org"),
        ({"influx": {"username": "w"}}, "influx: username is set but password is not"),
        ({"influx": {"url": "127.0.0.1:8086"}}, "influx.url:"),
        ({"influx": {"batch_points": 0}}, "influx.batch_points:"),
        ({"http": {"host": "0.0.0.0"}}, "http: token is required"),
        ({"http": {"token": "short"}}, "http.token: must be at least 16 characters"),
        ({"mqtt": {"share_group": "a/b"}}, "mqtt.share_group:"),
        ({"alerts": {"rulez": []}}, "alerts.rulez: unknown key"),
        ({"alarms": {}}, "alarms: unknown key"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write_yaml(tmp_path / "c.yaml", doc))
    assert str(err.value).startswith(message)


def test_secrets_do_not_show_in_the_config_repr(tmp_path: Path) -> None:
    cfg = load_config(
        write_yaml(
            tmp_path / "c.yaml",
            {"influx": {"username": "w", "password": "pw-Zq81x"}, "http": {"token": "tok-Zq81x-0123456789"}},
        )
    )
    assert "Zq81x" not in repr(cfg) and "Zq81x" not in str(cfg.model_dump())


# --------------------------------------------------------------------------- the real process


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"influx": {"databse": "x"}}, "influx.databse: unknown key"),
        ({"http": {"port": "eighty"}}, "http.port:"),
        ({"influx": {"api": "v2"}}, "influx: api: v2 needs token and org"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path: Path, doc: dict[str, Any], key: str) -> None:
    cfg = write_yaml(tmp_path / "c.yaml", doc)
    done = subprocess.run(
        [str(BIN / "wardwatch-collector"), "run", "-c", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"wardwatch-collector: config error: {key}"), lines[0]
    assert done.stdout == ""


class Publisher:
    """A paho MQTT 5 client that publishes QoS 1 and waits for the broker's PUBACK."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(5), "publisher could not connect"

    def raw(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=5)
        assert info.is_published(), f"broker did not ack the publish on {topic}"

    def batch(self, b: wire.Batch) -> None:
        self.raw(wire.readings_topic(b.ward, b.agent), wire.encode(b))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Service) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()


@pytest.fixture
def collector(tmp_path: Path, mosquitto: Service, influx: InfluxService, database: str) -> Iterator[Collector]:
    c = Collector(tmp_path, mqtt_port=mosquitto.port, influx_url=influx.url, database=database)
    c.start()
    yield c
    c.service.stop()


def points(influx: InfluxService, database: str, q: str) -> list[dict[str, Any]]:
    return influx.points(q, db=database, epoch="ms")


def wait_points(influx: InfluxService, database: str, q: str, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = wait_for(
        lambda: len(r := points(influx, database, q)) >= n and r,
        timeout=timeout,
        interval=0.05,
        what=f"{n} rows of {q}",
    )
    return rows


def wait_rows(influx: InfluxService, database: str, q: str, expected: list[dict[str, Any]], key: str = "time") -> None:
    wait_for(
        lambda: sorted(points(influx, database, q), key=lambda r: r[key]) == expected,
        timeout=10,
        interval=0.05,
        what=f"{q} to give {expected}; it gives {points(influx, database, q)}",
    )


@pytest.mark.services
def test_valid_batches_land_with_their_tags_fields_and_times(
    collector: Collector, publisher: Publisher, influx: InfluxService, database: str, unique: str
) -> None:
    ward, a1, a2 = f"w-{unique}", f"a1-{unique}", f"a2-{unique}"
    publisher.batch(
        batch(
            a1,
            ward,
            0,
            [
                reading(time_ms=T0, fields={"in_bps": 1.5, "oper_up": 1, "speed_mbps": 1000}),
                reading(time_ms=T0, tags={"if_name": "Gi1/0/8"}, fields={"in_bps": 0.25, "oper_up": 0}),
                reading(measurement="device_status", time_ms=T0 + 5, tags={},
                        fields={"up": 1, "rtt_ms": 0.7, "big": 1e16, "tiny": 5e-324}),
            ],
        )
    )
    publisher.batch(
        batch(
            a2,
            ward,
            7,
            [
                reading(
                    device="cam-1",
                    kind="camera",
                    measurement="camera_health",
                    time_ms=T0 + 1000,
                    tags={"vendor": "Hik, Vision=X"},
                    fields={"online": 1, "clock_skew_s": -2.5, "note": 'says "hi" \\ ok'},
                )
            ],
        )
    )

    # Polled until equal: InfluxDB 1.x can show a point's fields one at a time while it applies a write.
    wait_rows(influx, database, "SELECT * FROM if_traffic", [
        {"time": T0, "device": "sw-core", "kind": "switch", "ward": ward, "if_name": "Gi1/0/7",
         "in_bps": 1.5, "oper_up": 1, "speed_mbps": 1000},
        {"time": T0, "device": "sw-core", "kind": "switch", "ward": ward, "if_name": "Gi1/0/8",
         "in_bps": 0.25, "oper_up": 0, "speed_mbps": None},
    ], key="if_name")  # fmt: skip
    wait_rows(influx, database, "SELECT * FROM device_status", [
        {"time": T0 + 5, "device": "sw-core", "kind": "switch", "ward": ward, "up": 1, "rtt_ms": 0.7,
         "big": 1e16, "tiny": 5e-324}
    ])  # fmt: skip
    wait_rows(influx, database, "SELECT * FROM camera_health", [
        {"time": T0 + 1000, "device": "cam-1", "kind": "camera", "ward": ward, "vendor": "Hik, Vision=X",
         "online": 1, "clock_skew_s": -2.5, "note": 'says "hi" \\ ok'}
    ])  # fmt: skip
    # Integers stay integers: InfluxDB knows the field types we wrote.
    types = points(influx, database, "SHOW FIELD KEYS FROM if_traffic")
    assert {r["fieldKey"]: r["fieldType"] for r in types} == {
        "in_bps": "float", "oper_up": "integer", "speed_mbps": "integer"
    }  # fmt: skip

    collector.wait_counter("points_written", 4)
    h = collector.health()
    assert h["status"] == "ok"
    assert h["counters"]["messages"] == 2 and h["counters"]["invalid"] == 0
    assert h["agents"][a1]["last_seq"] == 0 and h["agents"][a2]["last_seq"] == 7
    # The collector's own counters are a series too.
    own = wait_points(influx, database, "SELECT * FROM collector", 1)
    assert own[0]["collector"] == h["client_id"]
    expected = {"messages", "points_written", "invalid", "write_errors", "missing", "duplicates", "queue_depth"}
    assert expected <= set(own[0])


@pytest.mark.services
def test_healthz_is_open_but_its_counters_want_the_token(collector: Collector) -> None:
    """A load balancer may ask whether the collector is well; only the token sees its agents."""
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
        req = urllib.request.Request(f"http://127.0.0.1:{collector.http_port}/healthz", headers=headers)
        with urllib.request.urlopen(req, timeout=2) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "ok" and "agents" not in doc and "counters" not in doc
    full = collector.health()
    assert full["status"] == "ok" and "counters" in full and "agents" in full
    api = urllib.request.Request(f"http://127.0.0.1:{collector.http_port}/api/v1/alerts")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(api, timeout=2)
    assert err.value.code in (401, 404)


@pytest.mark.services
def test_bad_messages_are_dead_lettered_counted_and_the_rest_flows(
    collector: Collector, publisher: Publisher, influx: InfluxService, database: str, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    topic = wire.readings_topic(ward, agent)
    good = [batch(agent, ward, seq, [reading(time_ms=T0 + seq)]) for seq in range(4)]
    wrong_schema = json.dumps({"schema": 2, "agent": agent, "ward": ward, "seq": 9, "readings": []}).encode()
    elsewhere = wire.encode(batch(f"other-{unique}", ward, 0, [reading()]))
    unstorable = wire.encode(batch(agent, ward, 99, [reading(tags={"vendor": "ends\\"})]))
    bad = [
        (topic, b'{"schema": 1, "agent": ', "not JSON"),
        (topic, wrong_schema, "schema 2 is not supported"),
        (topic, elsewhere, "payload says ward="),
        (topic, unstorable, "readings[0]: tag vendor"),
    ]

    publisher.batch(good[0])
    for (t, payload, _), b in zip(bad, [*good[1:], None], strict=True):
        publisher.raw(t, payload)
        if b is not None:
            publisher.batch(b)

    rows = wait_points(influx, database, "SELECT in_bps FROM if_traffic", 4)
    assert [r["time"] for r in rows] == [T0, T0 + 1, T0 + 2, T0 + 3]
    collector.wait_counter("invalid", 4)
    collector.wait_counter("points_written", 4)
    h = collector.health()
    assert h["counters"]["messages"] == 8
    assert h["counters"]["points_written"] == 4
    assert h["counters"]["missing"] == 0 and h["counters"]["duplicates"] == 0

    letters = wait_for(lambda: len(d := collector.dead_letters()) >= 4 and d, timeout=5, what="dead letters")
    assert len(letters) == 4
    for letter, (t, payload, reason) in zip(letters, bad, strict=True):
        assert letter["topic"] == t
        assert reason in letter["reason"]
        assert base64.b64decode(letter["payload_b64"]) == payload
        assert letter["time"].endswith("Z")
    log = collector.service.log_tail(400)
    assert sum("WARNING" in line and "invalid message on" in line for line in log.splitlines()) == 4


@pytest.mark.services
def test_a_payload_over_the_cap_is_dead_lettered_and_one_over_max_packet_size_never_reaches_us(
    collector: Collector, publisher: Publisher, influx: InfluxService, database: str, unique: str
) -> None:
    """2 MiB (over wire.MAX_PAYLOAD_BYTES, under our MQTT 5 Maximum Packet Size of 16 MiB)
    reaches the collector and is dead-lettered with its reason; 17 MiB the broker drops
    rather than send (docs/mqtt.md), and the next batch is written."""
    ward, agent = f"w-{unique}", f"a-{unique}"
    topic = wire.readings_topic(ward, agent)
    publisher.raw(topic, b"x" * (2 * 2**20))
    publisher.raw(topic, b"y" * (17 * 2**20))
    publisher.batch(batch(agent, ward, 0, [reading()]))
    wait_points(influx, database, "SELECT in_bps FROM if_traffic", 1)
    collector.wait_counter("invalid", 1)
    letters = collector.dead_letters()
    assert [(d["size"], d["truncated"]) for d in letters] == [(2 * 2**20, True)]
    assert f"over the {wire.MAX_PAYLOAD_BYTES}-byte cap" in letters[0]["reason"]
    h = collector.health()
    assert h["counters"]["messages"] == 2 and h["counters"]["invalid"] == 1


@pytest.mark.services
def test_points_influxdb_refuses_are_dead_lettered_and_the_rest_written(
    collector: Collector, publisher: Publisher, influx: InfluxService, database: str, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    # in_bps is written as an integer first; a later float for it is a field type conflict.
    publisher.batch(batch(agent, ward, 0, [reading(time_ms=T0, fields={"in_bps": 1})]))
    wait_points(influx, database, "SELECT in_bps FROM if_traffic", 1)
    publisher.batch(batch(agent, ward, 1, [reading(time_ms=T0 + 1, fields={"in_bps": 2})]))
    publisher.batch(batch(agent, ward, 2, [reading(time_ms=T0 + 2, fields={"in_bps": 2.5})]))
    publisher.batch(batch(agent, ward, 3, [reading(time_ms=T0 + 3, fields={"in_bps": 3})]))

    collector.wait_counter("rejected", 1)
    rows = wait_points(influx, database, "SELECT in_bps FROM if_traffic", 3)
    assert [(r["time"], r["in_bps"]) for r in rows] == [(T0, 1), (T0 + 1, 2), (T0 + 3, 3)]
    (letter,) = wait_for(lambda: collector.dead_letters(), timeout=5, what="the dead letter")
    assert "rejected by InfluxDB" in letter["reason"] and "field type conflict" in letter["reason"]
    assert wire.decode(base64.b64decode(letter["payload_b64"])).seq == 2
    assert collector.health()["status"] == "ok"


@pytest.mark.services
def test_missing_reordered_and_duplicate_batches_show_in_healthz(
    tmp_path: Path, mosquitto: Service, publisher: Publisher, influx: InfluxService, database: str, unique: str
) -> None:
    c = Collector(
        tmp_path, mqtt_port=mosquitto.port, influx_url=influx.url, database=database, reconcile_interval="0.5s",
        reconcile_window="400d",  # T0 is in 2025
    )
    c.start()
    try:
        ward, agent, other = f"w-{unique}", f"a-{unique}", f"b-{unique}"
        for seq in (0, 1, 5, 5, 6, 2):  # 3 and 4 never come; 2 comes late; 5 comes twice
            b = batch(agent, ward, seq, [reading(time_ms=T0 + seq)])
            b.pending_from = seq  # the agent's outbox held nothing older
            publisher.batch(b)
        publisher.batch(batch(other, ward, 3, [reading(device="sw-2", time_ms=T0)]))
        c.wait_counter("messages", 7)
        c.wait_counter("missing", 2)
        h = c.health()
        assert h["agents"][agent] == {
            "ward": ward, "last_seq": 6, "reordered": 1, "duplicates": 1, "holes": 2, "given_up": 0,
            "last_seen": h["agents"][agent]["last_seen"],
        }  # fmt: skip
        ledger = h["ledger"][agent]
        assert (ledger["first"], ledger["last"], ledger["received"], ledger["missing"]) == (0, 6, 5, 2)
        assert h["ledger"][other]["missing"] == 0
        assert h["counters"]["missing"] == 2 and h["counters"]["reordered"] == 1
        # Duplicates are written again: harmless, the same series and time overwrite.
        rows = wait_points(
            influx, database, f"SELECT in_bps FROM if_traffic WHERE device='sw-core' AND ward='{ward}'", 5
        )
        assert [r["time"] for r in rows] == [T0, T0 + 1, T0 + 2, T0 + 5, T0 + 6]
    finally:
        c.service.stop()


@pytest.mark.services
def test_sigterm_flushes_the_batch_acks_it_and_exits_0(
    tmp_path: Path, mosquitto: Service, publisher: Publisher, influx: InfluxService, database: str, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    # A batch that would sit for a minute: only the shutdown can write it.
    c = Collector(
        tmp_path,
        mqtt_port=mosquitto.port,
        influx_url=influx.url,
        database=database,
        influx={"flush_interval": "60s", "batch_points": 100_000},
    )
    c.start()
    try:
        for seq in range(3):
            publisher.batch(batch(agent, ward, seq, [reading(time_ms=T0 + seq)]))
        c.wait_counter("messages", 3)
        assert points(influx, database, "SELECT in_bps FROM if_traffic") == []
        assert c.terminate() == 0
        assert len(points(influx, database, "SELECT in_bps FROM if_traffic")) == 3
        # (The count includes retained status messages of other tests' agents on this broker.)
        assert "stopping: flushing " in c.service.log_tail(200)

        # Restarted with the same session: had anything gone unacked, the broker would
        # deliver it again, before the sentinel.
        c.start()
        publisher.batch(batch(agent, ward, 3, [reading(time_ms=T0 + 3)]))
        c.wait_counter("messages", 1)
        h = c.health()
        assert h["counters"]["messages"] == 1 and h["agents"][agent]["last_seq"] == 3
        assert c.terminate() == 0
        assert len(points(influx, database, "SELECT in_bps FROM if_traffic")) == 4
    finally:
        c.service.stop()


@pytest.mark.services
def test_influxdb_outage_keeps_the_batch_and_a_crash_loses_nothing(
    tmp_path: Path, mosquitto: Service, publisher: Publisher, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    own = start_influxdb(tmp_path / "influx")
    own.create_database("outage")
    own.stop()
    c = Collector(tmp_path, mqtt_port=mosquitto.port, influx_url=own.url, database="outage")
    try:
        c.start(influx_up=False)
        assert c.health()["status"] == "degraded"

        # 1. InfluxDB is away: the batch is kept and retried until it comes back.
        publisher.batch(batch(agent, ward, 0, [reading(time_ms=T0)]))
        c.wait_counter("messages", 1)
        c.wait_counter("write_errors", 1)
        assert f"InfluxDB {own.url}" in c.service.log_tail(200)
        own.start()
        wait_points(own, "outage", "SELECT in_bps FROM if_traffic", 1, timeout=20)
        wait_for(lambda: c.health()["status"] == "ok", timeout=15, interval=0.05, what="status ok again")

        # 2. InfluxDB away again and the collector killed with messages taken but not
        # written: they were never acked, so the broker delivers them again.
        own.stop()
        errors = c.counter("write_errors")
        for seq in (1, 2):
            publisher.batch(batch(agent, ward, seq, [reading(time_ms=T0 + seq)]))
        c.wait_counter("messages", 3)
        c.wait_counter("write_errors", errors + 1)
        c.service.kill()
        own.start()
        c.start()
        rows = wait_points(own, "outage", "SELECT in_bps FROM if_traffic", 3, timeout=15)
        assert [r["time"] for r in rows] == [T0, T0 + 1, T0 + 2]
        assert c.counter("messages") == 2
    finally:
        c.service.stop()
        own.stop()


@pytest.mark.services
def test_two_collectors_in_one_share_group_split_the_readings(
    tmp_path: Path, mosquitto: Service, publisher: Publisher, influx: InfluxService, database: str, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    group = f"g-{unique}"
    pair = []
    for name in ("c1", "c2"):
        (tmp_path / name).mkdir()
        pair.append(
            Collector(
                tmp_path / name,
                mqtt_port=mosquitto.port,
                influx_url=influx.url,
                database=database,
                mqtt={"share_group": group},
            )
        )
    try:
        for c in pair:
            c.start()
        for seq in range(20):
            publisher.batch(batch(agent, ward, seq, [reading(time_ms=T0 + seq)]))
        rows = wait_points(influx, database, "SELECT in_bps FROM if_traffic", 20)
        assert [r["time"] for r in rows] == [T0 + seq for seq in range(20)]
        taken = [c.counter("messages") for c in pair]
        assert sum(taken) == 20 and all(taken), taken
    finally:
        for c in pair:
            c.service.stop()


def test_the_example_in_docs_mqtt_md_is_a_valid_batch() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "mqtt.md").read_text()
    example = doc.split("```json\n", 1)[1].split("```", 1)[0]
    b = wire.decode_from(wire.readings_topic("cam-pho", "cam-pho-1"), example.encode())
    assert len(lineproto.batch_lines(b)) == len(b.readings) == 2


@pytest.mark.services
def test_without_a_broker_it_is_degraded_and_still_stops_cleanly(
    tmp_path: Path, influx: InfluxService, database: str
) -> None:
    nobody = free_port()
    c = Collector(tmp_path, mqtt_port=nobody, influx_url=influx.url, database=database)
    c.service.start()
    try:
        wait_for(
            lambda: f"cannot connect to mqtt://127.0.0.1:{nobody}" in c.service.log_tail(200),
            timeout=10,
            interval=0.05,
            what="a log line about the broker",
        )
        h = wait_for(lambda: c.try_health(), timeout=10, interval=0.05, what="/healthz")
        assert h["mqtt_connected"] is False and h["status"] == "degraded"
        started = time.monotonic()
        assert c.terminate() == 0
        assert time.monotonic() - started < 8
    finally:
        c.service.stop()


@pytest.mark.services
def test_broker_restart_reconnects_and_subscribes_again(
    tmp_path: Path, influx: InfluxService, database: str, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    broker = start_mosquitto(tmp_path / "broker")  # no persistence: the restart forgets every session
    c = Collector(tmp_path, mqtt_port=broker.port, influx_url=influx.url, database=database)
    try:
        c.start()
        broker.stop()
        wait_for(lambda: not c.health()["mqtt_connected"], timeout=10, interval=0.05, what="disconnect noticed")
        assert "mqtt: disconnected from" in c.service.log_tail(200)
        broker.start()
        wait_for(lambda: c.health()["mqtt_subscribed"], timeout=15, interval=0.05, what="subscribed again")
        pub = Publisher(broker.port)
        try:
            pub.batch(batch(agent, ward, 0, [reading(time_ms=T0)]))
        finally:
            pub.close()
        wait_points(influx, database, "SELECT in_bps FROM if_traffic", 1)
        assert c.terminate() == 0
    finally:
        c.service.stop()
        broker.stop()


def test_points_written_counts_readings_not_the_collectors_bookkeeping() -> None:
    from wardwatch.collector import presence, seqlog

    b = batch("a1", "w1", 0, [reading(), reading(device="sw-2")])
    status = wire.decode_status(wire.status_topic("w1", "a1"), wire.status_payload("online", agent="a1", ward="w1",
                                                                                   time_ms=T0))  # fmt: skip
    lines = [*lineproto.batch_lines(b), seqlog.record_line(b, "c1"), presence.status_line(status, received_ms=T0,
                                                                                          retained=False)]  # fmt: skip
    assert seqlog.readings_in(lines) == 2


async def test_the_ledger_and_presence_survive_a_store_whose_query_is_not_influxql() -> None:
    """VictoriaMetrics (influx api v2 here) answers /query with rows of its own shape: the
    reconcile reads nothing from them rather than crash the collector at its first run."""
    from wardwatch.collector import presence, seqlog

    class Odd:
        async def query(self, q: str, *, epoch: str | None = None) -> list[dict[str, Any]]:
            return [{"series": [{"name": "x", "values": [["only-one-column"]]}, {"name": "y"}]}]

    assert await seqlog.reconcile(Odd(), {}, now_ms=T0, window_s=3600) == {}
    assert await presence.stale_lines(Odd(), stale_after=90, already=set()) == []
