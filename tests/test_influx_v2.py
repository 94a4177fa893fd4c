"""``influx.api: v2``: the influxdb-client writer (collector/influx_v2.py) against a real server
that speaks ``/api/v2/write`` (Debian's victoria-metrics, simulators/lab.py), and against a
small local server (FakeV2) for the answers VictoriaMetrics never gives: a refused token
(401), a refused line (400), 429 with Retry-After, 503 and a timeout. The Store (spool,
retries, refused chunks written line by line) runs on it as it does on the v1 writer, and so
does the whole collector process. Also: https with the system's trust store, the example
config, and reads that go to the configured RP (both writers; on InfluxDB 1.6).

Not tested here: InfluxDB 2.x, 3.x and Cloud themselves (not installable on these machines),
nor InfluxQL on /query against a real 2.x DBRP mapping (VictoriaMetrics' /query is a stub).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion

from tests.pipeline import Collector
from tests.receivers import self_signed_cert
from tests.util import wait_for
from wardwatch import wire
from wardwatch.collector import seqlog
from wardwatch.collector.config import InfluxSection
from wardwatch.collector.influx import InfluxRejected, InfluxUnavailable, open_influx
from wardwatch.collector.influx_v2 import InfluxV2Writer
from wardwatch.collector.ledger import Counters, DeadLetter
from wardwatch.collector.spool import Spool
from wardwatch.collector.store import Store
from wardwatch.simulators.lab import InfluxService, Service, VictoriaService, free_port, start_victoria

pytestmark = pytest.mark.services

TOKEN = "tok-" + "x" * 24


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaService]:
    vm = start_victoria(tmp_path / "vm")
    try:
        yield vm
    finally:
        vm.stop()


def v2(url: str, **over: Any) -> InfluxSection:
    doc = {"api": "v2", "url": url, "token": TOKEN, "org": "hoian", "bucket": "wardwatch", "timeout": 2.0}
    doc.update(over)
    return InfluxSection.model_validate(doc)


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- a v2 server that can say no


@dataclass
class Answer:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeV2:
    """``/api/v2/write``, ``/query`` and ``/ping`` on a loopback port, in its own thread:
    - a write without ``Authorization: Token <one of tokens>`` gets 401 (2.x's body);
    - else the next scripted ``answers`` entry, if any;
    - else 400 (2.x's partial-write body) when a line holds ``bad``, 204 otherwise.
    Accepted lines are kept in ``lines``; every write request in ``requests``."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.tokens = {TOKEN}
        self.answers: list[Answer] = []
        self.lines: list[bytes] = []
        self.requests: list[dict[str, Any]] = []
        self.queries: list[dict[str, Any]] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") in {f"Token {t}" for t in self.tokens}

    async def _write(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"t": time.monotonic(), "query": dict(request.query),
                              "auth": request.headers.get("Authorization"), "lines": body.count(b"\n") + 1})
        if not self._authorized(request):
            return web.json_response({"code": "unauthorized", "message": "unauthorized access"}, status=401)
        if self.answers:
            a = self.answers.pop(0)
            await asyncio.sleep(a.delay)
            if a.status != 204:
                return web.json_response(a.body or {}, status=a.status, headers=a.headers)
        elif any(b"bad" in line for line in body.split(b"\n")):
            return web.json_response({"code": "invalid", "message": "partial write: field type conflict"}, status=400)
        self.lines.extend(body.split(b"\n"))
        return web.Response(status=204)

    async def _query(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.queries.append({"form": form, "auth": request.headers.get("Authorization")})
        if not self._authorized(request):
            return web.json_response({"code": "unauthorized", "message": "unauthorized access"}, status=401)
        return web.json_response({"results": [{"statement_id": 0, "series": [
            {"name": "m", "columns": ["time", "v"], "values": [[1, 2.5]]}]}]})

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-Influxdb-Version": "v2.7.11"})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.add_routes([web.post("/api/v2/write", self._write), web.post("/query", self._query),
                        web.get("/ping", self._ping)])
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.tls).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> FakeV2:
        self._thread.start()
        assert self._ready.wait(10), "the fake server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def fake() -> Iterator[FakeV2]:
    with FakeV2() as server:
        yield server


def store_on(influx: InfluxV2Writer, tmp_path: Path, *, spool_after: float = 30.0) -> tuple[Store, Spool, DeadLetter]:
    spool = Spool(tmp_path / "spool.db", max_bytes=2**26)
    spool.open()
    dead = DeadLetter(tmp_path / "dead.jsonl", max_bytes=2**20)
    store = Store(influx=influx, spool=spool, dead_letter=dead, counters=Counters(), stop=asyncio.Event(),
                  spool_after=spool_after)
    return store, spool, dead


@pytest.fixture
async def opened(fake: FakeV2) -> AsyncIterator[InfluxV2Writer]:
    writer = open_influx(v2(fake.url, timeout=0.5))
    assert isinstance(writer, InfluxV2Writer)
    async with writer:
        yield writer


# --------------------------------------------------------------------------- against VictoriaMetrics


async def test_points_written_through_v2_come_back_with_their_values_tags_and_times(
    victoria: VictoriaService,
) -> None:
    t = now_ms() - 60_000
    lines = [
        f"if_traffic,ward=minh-an,device=sw-1,if_name=ge1/0/1 in_bps=1250.5,out_bps=300i {t}".encode(),
        f"if_traffic,ward=minh-an,device=sw-1,if_name=ge1/0/2 in_bps=0,out_bps=7i {t + 1}".encode(),
        f"device_status,ward=cam\\ thanh,device=ap\\,1 up=1i,state=\"ok\" {t + 2}".encode(),
    ]
    async with open_influx(v2(victoria.url)) as influx:
        assert isinstance(influx, InfluxV2Writer)
        await influx.write(lines)
        assert await influx.ping()  # /ping, with the token
    got = victoria.samples('{__name__=~"if_traffic_.*|device_status_.*"}')
    port1 = (("device", "sw-1"), ("if_name", "ge1/0/1"), ("ward", "minh-an"))
    port2 = (("device", "sw-1"), ("if_name", "ge1/0/2"), ("ward", "minh-an"))
    ap = (("device", "ap,1"), ("ward", "cam thanh"))  # escaped comma and space arrive as the names
    assert got == {
        (("__name__", "if_traffic_in_bps"), *port1): {t: 1250.5},
        (("__name__", "if_traffic_out_bps"), *port1): {t: 300},
        (("__name__", "if_traffic_in_bps"), *port2): {t + 1: 0},
        (("__name__", "if_traffic_out_bps"), *port2): {t + 1: 7},
        (("__name__", "device_status_up"), *ap): {t + 2: 1},
        (("__name__", "device_status_state"), *ap): {t + 2: 0},  # a string: VictoriaMetrics keeps 0
    }


def ledger_lines(agent: str, seqs: range, start: int) -> list[bytes]:
    out = []
    for seq in seqs:
        r = wire.Reading(device="sw", kind="switch", measurement="device_status", time_ms=start + seq * 1000,
                         fields={"up": 1})
        batch = wire.Batch(schema=1, agent=agent, ward="w", seq=seq, readings=[r], pending_from=seq)
        out.append(f"device_status,ward=w,device=sw,agent={agent} up=1i {start + seq * 1000}".encode())
        out.append(seqlog.record_line(batch, "c1"))
    return out


async def test_the_store_spools_while_victoria_is_down_and_writes_it_all_back(
    victoria: VictoriaService, tmp_path: Path
) -> None:
    start = now_ms() - 600_000
    async with open_influx(v2(victoria.url, timeout=0.5)) as influx:
        store, spool, _ = store_on(influx, tmp_path, spool_after=0.5)
        await store.write(ledger_lines("a1", range(0, 10), start))
        assert store.ok and store.counters.points_written == 10 and store.counters.spooled == 0  # readings
        victoria.stop()
        await store.write(ledger_lines("a1", range(10, 20), start))  # retried for spool_after, then spooled
        await store.write(ledger_lines("a1", range(20, 30), start))  # straight to the spool: known away
        assert not store.ok and store.counters.spooled == 20 and spool.points == 40  # readings, lines
        assert store.counters.write_errors >= 1
        drain = asyncio.create_task(store.drain_spool())
        try:
            await asyncio.to_thread(victoria.start)
            await asyncio.to_thread(wait_for, lambda: spool.points == 0, timeout=15, interval=0.05,
                                    what="the spool written back")
        finally:
            store.stop.set()
            await asyncio.wait_for(drain, 10)
        assert store.counters.points_written == 30 and store.counters.rejected == 0
    got = victoria.samples('{__name__="wardwatch_batch_seq", agent="a1"}')
    (seqs,) = got.values()
    assert sorted(int(v) for v in seqs.values()) == list(range(30)), "every seq of the ledger is in"
    ups = victoria.samples('{__name__="device_status_up", agent="a1"}', flush=False)  # flushed just above
    assert sorted(next(iter(ups.values()))) == [start + s * 1000 for s in range(30)]
    spool.close()


# --------------------------------------------------------------------------- the answers VictoriaMetrics never gives


async def test_a_write_goes_to_api_v2_write_with_token_org_bucket_and_ms(
    fake: FakeV2, opened: InfluxV2Writer
) -> None:
    await opened.write([b"m,ward=a v=1i 1700000000123", b"m,ward=b v=2i 1700000000124"])
    assert fake.lines == [b"m,ward=a v=1i 1700000000123", b"m,ward=b v=2i 1700000000124"]
    (req,) = fake.requests
    assert req["auth"] == f"Token {TOKEN}"
    assert req["query"] == {"org": "hoian", "bucket": "wardwatch", "precision": "ms"}
    assert TOKEN not in repr(opened)


async def test_a_refused_token_is_kept_and_retried_until_it_is_accepted(
    fake: FakeV2, opened: InfluxV2Writer, tmp_path: Path
) -> None:
    fake.tokens = {"the-old-one"}
    with pytest.raises(InfluxUnavailable, match=r"answered 401 .*unauthorized access") as info:
        await opened.write([b"m v=1i 1"])
    assert info.value.status == 401
    store, spool, dead = store_on(opened, tmp_path, spool_after=30)
    task = asyncio.create_task(store.write([b"m v=2i 2", b"m v=3i 3"]))
    await asyncio.to_thread(wait_for, lambda: len(fake.requests) >= 3, timeout=10, interval=0.02)
    assert not task.done(), "still holding the points"
    fake.tokens.add(TOKEN)  # the operator grants the token
    await asyncio.wait_for(task, 10)
    assert fake.lines == [b"m v=2i 2", b"m v=3i 3"]
    assert store.counters.write_errors >= 2 and store.counters.rejected == 0 and spool.points == 0
    assert not dead.path.exists() or dead.path.read_text() == ""
    spool.close()


async def test_a_400_is_rejected_and_only_its_line_is_dead_lettered(
    fake: FakeV2, opened: InfluxV2Writer, tmp_path: Path
) -> None:
    with pytest.raises(InfluxRejected, match=r"answered 400 .*partial write: field type conflict") as info:
        await opened.write([b"m v=1i 1", b'm bad="x" 2'])
    assert info.value.status == 400
    store, spool, dead = store_on(opened, tmp_path)
    good = [f"m,i={i} v={i}i {i + 10}".encode() for i in range(30)]
    spool.add([*good[:12], b'm,i=x bad="text" 5', *good[12:]])
    task = asyncio.create_task(store.drain_spool())
    try:
        await asyncio.to_thread(wait_for, lambda: spool.points == 0, timeout=10, interval=0.02)
    finally:
        store.stop.set()
        await asyncio.wait_for(task, 10)
    assert sorted(fake.lines) == sorted(good)
    assert store.counters.rejected == 1
    (entry,) = [json.loads(x) for x in dead.path.read_text().splitlines()]
    assert "field type conflict" in entry["reason"]
    assert base64.b64decode(entry["payload_b64"]) == b'm,i=x bad="text" 5'
    spool.close()


async def test_retry_after_5xx_and_timeouts_are_unavailable_and_retry_after_is_honoured(
    fake: FakeV2, opened: InfluxV2Writer, tmp_path: Path
) -> None:
    fake.answers = [Answer(429, {"code": "too many requests", "message": "slow down"}, {"Retry-After": "2"})]
    with pytest.raises(InfluxUnavailable, match="429") as info:
        await opened.write([b"m v=1i 1"])
    assert (info.value.status, info.value.retry_after) == (429, 2.0)
    fake.answers = [Answer(503, {"message": "starting"}), Answer(204, delay=1.5)]  # the second outlasts 0.5 s
    with pytest.raises(InfluxUnavailable, match="503"):
        await opened.write([b"m v=1i 1"])
    with pytest.raises(InfluxUnavailable, match="timed out"):
        await opened.write([b"m v=1i 1"])
    # The Store waits what Retry-After says (2 s) rather than its first backoff (0.5 s).
    fake.requests.clear()
    fake.answers = [Answer(503, {"message": "busy"}, {"Retry-After": "2"})]
    store, spool, _ = store_on(opened, tmp_path)
    await store.write([b"m v=5i 5"])
    first, second = fake.requests
    assert 1.9 <= second["t"] - first["t"] < 4
    assert b"m v=5i 5" in fake.lines
    spool.close()
    async with InfluxV2Writer(url=f"http://127.0.0.1:{free_port()}", token=TOKEN, org="o", bucket="b",
                              database="d", timeout=1) as nobody:
        with pytest.raises(InfluxUnavailable, match="Cannot connect"):
            await nobody.write([b"m v=1i 1"])


async def test_reads_are_influxql_on_query_with_the_token_and_the_dbrp(fake: FakeV2) -> None:
    async with open_influx(v2(fake.url, database="wardwatch", rp="raw", bucket=None)) as influx:
        assert isinstance(influx, InfluxV2Writer) and influx.bucket == "wardwatch/raw"
        results = await influx.query("SELECT last(v) FROM m", epoch="ms")
        assert results[0]["series"][0]["values"] == [[1, 2.5]]
        assert await influx.ping() == "v2.7.11"
        await influx.ensure_database()  # nothing to do on v2, and no request
    (q,) = fake.queries
    assert q["auth"] == f"Token {TOKEN}"
    assert q["form"] == {"q": "SELECT last(v) FROM m", "db": "wardwatch", "rp": "raw", "epoch": "ms"}
    fake.tokens.clear()
    async with open_influx(v2(fake.url)) as influx:
        with pytest.raises(InfluxUnavailable, match="401"):
            await influx.query("SELECT 1")


async def test_https_writes_and_reads_with_a_trusted_certificate_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with FakeV2(tls=tls) as server:
        async with open_influx(v2(server.url)) as influx:
            with pytest.raises(InfluxUnavailable, match="certificate verify failed"):
                await influx.write([b"m v=1i 1"])  # not trusted: kept and retried, not sent
        assert server.requests == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the machine's trust store, as an operator sets it
        async with open_influx(v2(server.url)) as influx:
            await influx.write([b"m v=1i 1"])
            assert (await influx.query("SELECT last(v) FROM m"))[0]["series"][0]["name"] == "m"
        assert server.lines == [b"m v=1i 1"] and server.queries[0]["auth"] == f"Token {TOKEN}"


# --------------------------------------------------------------------------- the whole collector process


class Publisher:
    def __init__(self, port: int, ward: str, agent: str) -> None:
        self.ward, self.agent = ward, agent
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, seqs: range, start: int) -> None:
        for seq in seqs:
            readings = [wire.Reading(device="sw-1", kind="switch", measurement="if_traffic",
                                     time_ms=start + seq * 1000, tags={"if_name": f"ge{p}"},
                                     fields={"in_bps": float(seq * 10 + p)}) for p in range(4)]
            b = wire.Batch(schema=1, agent=self.agent, ward=self.ward, seq=seq, readings=readings, pending_from=0)
            self.client.publish(wire.readings_topic(self.ward, self.agent), wire.encode(b), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def v2_collector(tmp_path: Path, mosquitto: Service, url: str) -> Collector:
    # reconcile_interval: VictoriaMetrics' /query is a stub, not InfluxQL (see the report).
    return Collector(tmp_path, mqtt_port=mosquitto.port, influx_url=url, database="wardwatch",
                     influx={"api": "v2", "token": TOKEN, "org": "hoian", "bucket": "wardwatch"},
                     spool={"path": str(tmp_path / "spool.db"), "after": "0.5s"}, reconcile_interval="1h")


def test_the_collector_on_v2_loses_nothing_when_victoria_is_stopped_mid_run(
    tmp_path: Path, mosquitto: Service, victoria: VictoriaService, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    c = v2_collector(tmp_path, mosquitto, victoria.url)
    c.start()
    pub = Publisher(mosquitto.port, ward, agent)
    start = now_ms() - 120_000
    try:
        pub.send(range(0, 10), start)
        c.wait_counter("points_written", 40)  # readings
        victoria.stop()
        pub.send(range(10, 25), start)
        c.wait_counter("spooled", 60)
        assert c.health()["influx_ok"] is False
        victoria.start()
        wait_for(lambda: c.health()["spool"]["points"] == 0 and c.counter("points_written") >= 100,
                 timeout=20, interval=0.1, what=lambda: str(c.try_health()))
        assert c.counter("rejected") == 0 and c.counter("invalid") == 0
    finally:
        pub.close()
        assert c.terminate() == 0, c.service.log_tail()
    seqs = victoria.samples(f'{{__name__="wardwatch_batch_seq", agent="{agent}"}}')
    assert sorted(int(v) for s in seqs.values() for v in s.values()) == list(range(25)), "the ledger is whole"
    rates = victoria.samples(f'{{__name__="if_traffic_in_bps", ward="{ward}"}}', flush=False)
    assert {k: v for k, v in rates.items() if ("if_name", "ge3") in k} == {
        (("__name__", "if_traffic_in_bps"), ("device", "sw-1"), ("if_name", "ge3"),
         ("kind", "switch"), ("ward", ward)): {start + s * 1000: float(s * 10 + 3) for s in range(25)}}
    assert len(rates) == 4


def test_the_collector_on_v2_dead_letters_the_one_message_refused_and_stores_the_rest(
    tmp_path: Path, mosquitto: Service, fake: FakeV2, unique: str
) -> None:
    ward, agent = f"w-{unique}", f"a-{unique}"
    c = v2_collector(tmp_path, mosquitto, fake.url)
    c.start()
    pub = Publisher(mosquitto.port, ward, agent)
    try:
        bad = wire.Batch(schema=1, agent=agent, ward=ward, seq=5, pending_from=0, readings=[
            wire.Reading(device="bad-1", kind="switch", measurement="device_status", time_ms=now_ms(),
                         fields={"up": 1})])
        pub.send(range(0, 5), now_ms() - 60_000)
        pub.client.publish(wire.readings_topic(ward, agent), wire.encode(bad), qos=1).wait_for_publish(5)
        pub.send(range(6, 10), now_ms() - 60_000)
        wait_for(lambda: c.counter("rejected") >= 1 and len(c.dead_letters()) >= 1, timeout=15, interval=0.1,
                 what=lambda: str(c.try_health()))
    finally:
        pub.close()
        assert c.terminate() == 0, c.service.log_tail()
    # Only the refused data is dead-lettered: the message (again, if the broker redelivered it
    # before its ack went out), or, when a loaded machine's slow write sent the batch to the
    # spool first, its refused line from the spool's drain.
    entries = c.dead_letters()
    assert entries and all("field type conflict" in e["reason"] for e in entries), entries
    for e in entries:
        payload = base64.b64decode(e["payload_b64"])
        if e["topic"] == "spool":
            assert b"device=bad-1" in payload, e
        else:
            assert wire.decode_from(e["topic"], payload).seq == 5, e
    assert not [line for line in fake.lines if b"bad-1" in line]
    stored = [line for line in fake.lines if line.startswith(b"wardwatch_batch,") and agent.encode() in line]
    seqs = {int(line.split(b"seq=")[1].split(b"i")[0]) for line in stored}
    if any(e["topic"] == "spool" for e in entries):  # the spool keeps the batch's good lines, its ledger line too
        assert seqs == set(range(10)), seqs
    else:
        assert seqs == {0, 1, 2, 3, 4, 6, 7, 8, 9}, seqs


def test_the_v2_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from wardwatch.collector.config import load_config

    monkeypatch.setenv("WARDWATCH_MQTT_PASSWORD", "pw-123456")
    monkeypatch.setenv("WARDWATCH_HTTP_TOKEN", "token-0123456789abcdef")
    monkeypatch.setenv("WARDWATCH_INFLUX_TOKEN", TOKEN)
    cfg = load_config(Path(__file__).parent.parent / "configs" / "collector-v2.example.yaml")
    writer = open_influx(cfg.influx)
    assert isinstance(writer, InfluxV2Writer)
    assert (writer.url, writer.org, writer.bucket, writer.database) == (
        "https://influx.hoian.example:8086", "hoian", "wardwatch", "wardwatch")
    assert writer.tls_context() is not None


async def test_reads_go_to_the_retention_policy_written_to_on_v1_too(influx: InfluxService, unique: str) -> None:
    """Both writers send ``rp`` with each /query: without it InfluxDB reads the database's
    default RP, and a collector writing to another one would find its own ledger empty."""
    from wardwatch.collector.influx import InfluxV1Writer

    db = f"rp_{unique}"
    async with InfluxV1Writer(url=influx.url, database=db, rp="raw") as writer:
        await writer.ensure_database()  # CREATE DATABASE, with rp in the form
        await writer.query(f'CREATE RETENTION POLICY "raw" ON "{db}" DURATION 1d REPLICATION 1')  # not the default
        await writer.write(ledger_lines("a1", range(3), now_ms() - 10_000))
        rows = seqlog.series_of(await writer.query("SELECT count(seq) FROM wardwatch_batch"))
        assert rows and rows[0]["values"][0][1] == 3
        ledger = await seqlog.reconcile(writer, {}, now_ms=now_ms(), window_s=3600)
        assert ledger["a1"].last == 2 and ledger["a1"].missing == 0
