"""Garbage from cameras (issue 9): whatever a camera says, the poll ends, within its interval,
with a reason; the agent stays up; the healthy camera beside it keeps every poll.

The project's ONVIF simulator runs in a process of its own (``wardwatch-sim cameras``, free
ports), one camera per garbage knob beside a healthy one, over real loopback sockets:
SOAP garbage, a billion-laughs document, 1 MiB RTSP lines, a 100 MiB snapshot and an event
stream with garbage. The poller is tested in-process, side by side with the healthy camera
(memory measured while it polls); ``wardwatch-agent run`` polls all of them at once in
one test, its readings read back from Mosquitto. rtsps is tested against a TLS RTSP stub
with a certificate made here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

from tests.util import wait_for, write_yaml
from wardwatch import wire
from wardwatch.agent.camera import rtsp
from wardwatch.agent.camera.poll import CameraPoller, CameraPollResult, CameraSession
from wardwatch.agent.core.config import AgentConfig
from wardwatch.agent.core.ports import PortStates
from wardwatch.agent.core.text import MAX_EVENT, MAX_FIELD
from wardwatch.simulators.camera import CameraFleet
from wardwatch.simulators.lab import Service, script

INTERVAL = 4.0
TIMEOUT = 1.5
POLLS = 4
# role -> the camera's knobs; cameras are numbered in this order
ROLES: dict[str, dict[str, Any]] = {
    "ok": {},
    "soap": {"soap_garbage": True},
    "laughs": {"billion_laughs": True},
    "rtsp": {"rtsp_long_line": True},
    "snap": {"snapshot_huge": True},
    "events": {"event_garbage": True},
}
RSS_GROWTH_LIMIT_MB = 40


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """The simulator process; role -> its listing entry."""
    run_dir = tmp_path_factory.mktemp("camgarbage")
    listing = run_dir / "cameras.json"
    faults = {f"cam-{i + 1:03d}": knobs for i, knobs in enumerate(ROLES.values()) if knobs}
    svc = script("wardwatch-sim", ["cameras", "--count", str(len(ROLES)), "--brand", "hikvision",
                                   "--faults", json.dumps(faults), "--output", str(listing)],
                 run_dir=run_dir / "sim")
    svc.start()
    try:
        def complete() -> dict[str, Any] | None:
            try:
                doc: dict[str, Any] = json.loads(listing.read_text())
                return doc
            except (OSError, ValueError):
                return None
        doc = wait_for(complete, timeout=20, interval=0.1, what=lambda: f"simulator listing\n{svc.log_tail()}")
        yield dict(zip(ROLES, doc["cameras"], strict=True))
    finally:
        svc.stop()


def device(role: str, cam: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
    return {"id": role, "kind": "camera", "host": cam["host"], "port": cam["onvif_port"], "auth": "cam",
            "interval": f"{INTERVAL}s", "timeout": f"{timeout}s", "retries": 0, "icmp": False}


def agent_doc(tmp_path: Path, cams: dict[str, dict[str, Any]], *, timeout: float = TIMEOUT,
              **extra: Any) -> dict[str, Any]:
    first = next(iter(cams.values()))
    return {
        "agent": {"id": f"agent-{uuid.uuid4().hex[:8]}", "ward": "ward-g"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"cam": {"onvif": {"username": first["username"], "password": first["password"]}}},
        "devices": [device(role, cam, timeout) for role, cam in cams.items()],
        **extra,
    }


def health(result: CameraPollResult) -> dict[str, Any]:
    return next(r.fields for r in result.readings if r.measurement == "camera_health")


def status(result: CameraPollResult) -> dict[str, Any]:
    return next(r.fields for r in result.readings if r.measurement == "device_status")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class RssPeak:
    """The highest RSS seen while the block runs, sampled every 5 ms on the loop (the poll
    under test yields at least every 64 KiB chunk it reads)."""

    def __init__(self) -> None:
        self.base = self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb())
            await asyncio.sleep(0.005)

    async def __aenter__(self) -> RssPeak:
        self.base = self.peak = rss_mb()
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.base


@dataclass
class Pair:
    poller: CameraPoller
    ok: CameraSession
    broken: CameraSession

    async def poll(self) -> tuple[CameraPollResult, CameraPollResult, float]:
        """Both cameras at once, as the agent polls them; -> results and the longer poll's seconds."""
        started = time.monotonic()
        ok, broken = await asyncio.gather(self.poller.poll(self.ok), self.poller.poll(self.broken))
        return ok, broken, time.monotonic() - started


@pytest.fixture
async def pair(request: pytest.FixtureRequest, sim: dict[str, dict[str, Any]], tmp_path: Path) -> AsyncIterator[Pair]:
    role: str = request.param
    cfg = AgentConfig.model_validate(agent_doc(tmp_path, {"ok": sim["ok"], role: sim[role]}))
    async with CameraPoller(cfg, ports=PortStates()) as poller:
        p = Pair(poller, poller.session(cfg.devices[0]), poller.session(cfg.devices[1]))
        await p.poll()  # services built and WSDLs parsed (once per process): not what is measured
        yield p


async def run_pair(pair: Pair) -> list[CameraPollResult]:
    """POLLS polls of both; the healthy camera is OK every time, every poll ends within its
    interval, and the broken camera answers (device_status.up=1) with a reason each time."""
    broken: list[CameraPollResult] = []
    for _ in range(POLLS):
        ok, bad, took = await pair.poll()
        assert (ok.ok, ok.reason, health(ok)["ok"]) == (True, "ok", 1), ok.detail
        assert took < INTERVAL, f"the polls took {took:.1f}s, interval {INTERVAL}s"
        assert status(bad)["up"] == 1, (bad.reason, bad.detail)  # it answered: never down for what it said
        assert bad.reason and len(bad.detail) <= MAX_FIELD and bad.detail.isprintable()
        broken.append(bad)
    return broken


@pytest.mark.parametrize("pair", ["soap"], indirect=True)
async def test_soap_garbage_is_bad_xml_and_the_neighbour_keeps_polling(pair: Pair) -> None:
    results = await run_pair(pair)
    reasons = {r.reason for r in results}
    assert reasons <= {"bad_xml", "onvif_error"} and "bad_xml" in reasons, [(r.reason, r.detail) for r in results]
    assert all(health(r)["online"] == 1 for r in results)


@pytest.mark.parametrize("pair", ["laughs"], indirect=True)
async def test_billion_laughs_is_refused_unexpanded(pair: Pair) -> None:
    async with RssPeak() as mem:
        results = await run_pair(pair)
    for r in results:
        assert (r.reason, r.error_class) == ("bad_xml", "bad_xml")
        assert "DTD" in r.detail, r.detail
    assert mem.growth < RSS_GROWTH_LIMIT_MB


@pytest.mark.parametrize("pair", ["rtsp"], indirect=True)
async def test_rtsp_line_of_1_mib_is_rtsp_error(pair: Pair) -> None:
    async with RssPeak() as mem:
        results = await run_pair(pair)
    for r in results:
        h = health(r)
        assert (r.reason, h["rtsp_ok"], h["snapshot_ok"]) == ("rtsp_error", 0, 1), r.detail
        assert "longer than 8192 bytes" in r.detail
    assert mem.growth < RSS_GROWTH_LIMIT_MB


@pytest.mark.parametrize("pair", ["snap"], indirect=True)
async def test_snapshot_of_100_mib_stops_at_the_cap_without_holding_it(pair: Pair) -> None:
    async with RssPeak() as mem:
        results = await run_pair(pair)
    for r in results:
        h = health(r)
        assert (r.reason, h["snapshot_ok"], h["snapshot_error"], h["rtsp_ok"]) == \
            ("snapshot_failed", 0, "snapshot_too_large", 1), r.detail
        assert "too large" in r.detail
    print(f"RSS while polling a 100 MiB snapshot {POLLS}x: base {mem.base:.1f} MB, peak +{mem.growth:.1f} MB")
    assert mem.growth < RSS_GROWTH_LIMIT_MB


@pytest.mark.parametrize("pair", ["events"], indirect=True)
async def test_event_garbage_is_counted_and_cleaned(pair: Pair) -> None:
    results = await run_pair(pair)
    assert all(r.ok for r in results)  # the camera itself is fine: the garbage is in its events
    evs = [next(x.fields for x in r.readings if x.measurement == "camera_event")
           for r in results if any(x.measurement == "camera_event" for x in r.readings)]
    assert evs, "the event step never ran"
    assert any(e.get("skipped", 0) > 0 for e in evs), evs  # 300 messages over the MessageLimit
    assert any(e.get("error", "").startswith("bad_xml") for e in evs), evs  # the pulls that were random bytes
    assert all(e["resubscriptions"] == 0 for e in evs)  # garbage is not a lost subscription
    events = [ev for r in results for ev in r.events]
    assert events and len({ev.topic for ev in events}) > 3
    for ev in events:
        assert 0 < len(ev.topic) <= MAX_FIELD and ev.topic.isprintable()
        for k, v in (*ev.data.items(), *ev.source.items()):
            assert k and k.isprintable() and v.isprintable() and len(v) <= MAX_EVENT
    assert max(len(r.events) for r in results) <= 100


# ------------------------------------------------------------------------------------ agent


@pytest.mark.services
def test_agent_process_stays_up_and_reports_every_broken_camera(
        sim: dict[str, dict[str, Any]], mosquitto: Service, tmp_path: Path) -> None:
    """``wardwatch-agent run`` with every garbage camera at once: it stays up, the healthy
    camera is OK in every poll, each broken one says why, and its memory stays bounded."""
    # A 3 s timeout: the agent's first polls build six cameras' ONVIF services at once (WSDL
    # parsing, CPU-bound), on a machine that runs other tests beside this one.
    doc = agent_doc(tmp_path, sim, timeout=3.0, mqtt={"host": "127.0.0.1", "port": mosquitto.port, "keepalive": "5s"})
    cfg = write_yaml(tmp_path / "agent.yaml", doc)
    ward, agent_id = doc["agent"]["ward"], doc["agent"]["id"]
    got: dict[str, list[dict[str, Any]]] = {role: [] for role in ROLES}
    lock = threading.Lock()

    def on_message(_c: Client, _u: object, msg: MQTTMessage) -> None:
        batch = wire.decode(msg.payload)
        with lock:
            for r in batch.readings:
                if r.measurement == "camera_health" and r.device in got:
                    got[r.device].append(dict(r.fields))

    sub = Client(CallbackAPIVersion.VERSION2, client_id=f"garbage-{uuid.uuid4().hex[:8]}")
    sub.on_message = on_message
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe(wire.readings_topic(ward, agent_id), qos=1)
    sub.loop_start()
    agent = script("wardwatch-agent", ["run", "-c", str(cfg)], run_dir=tmp_path / "agent")
    agent.start()
    try:
        def enough() -> bool:
            with lock:
                return all(len(rows) >= 3 for rows in got.values())
        wait_for(enough, timeout=6 * INTERVAL + 15, interval=0.5,
                 what=lambda: f"3 polls of each camera: {({k: len(v) for k, v in got.items()})}\n{agent.log_tail()}")
        assert agent.running(), agent.log_tail()
        with lock:
            rows = {k: list(v) for k, v in got.items()}
        assert all(r["ok"] == 1 for r in rows["ok"]), rows["ok"]
        expect = {"soap": {"bad_xml", "onvif_error"}, "laughs": {"bad_xml"}, "rtsp": {"rtsp_error"},
                  "snap": {"snapshot_failed"}, "events": {"ok"}}
        for role, reasons in expect.items():
            assert {r["reason"] for r in rows[role]} <= reasons, (role, rows[role])
            assert all(r["online"] == 1 and r["poll_ms"] < INTERVAL * 1000 for r in rows[role]), (role, rows[role])
        assert all(r.get("snapshot_error") == "snapshot_too_large" for r in rows["snap"])
        hwm = _vm(agent.pid, "VmHWM")
        print(f"agent peak RSS (VmHWM) after {len(rows['snap'])} polls of a 100 MiB snapshot and the rest: "
              f"{hwm:.0f} MB; now {_vm(agent.pid, 'VmRSS'):.0f} MB")
        assert hwm < 250, "the agent's memory ballooned"
    finally:
        agent.stop()
        sub.loop_stop()
        sub.disconnect()


def _vm(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        line = next(x for x in f if x.startswith(f"{key}:"))
    return int(line.split()[1]) / 1024


# ------------------------------------------------------------------------------------ rtsps


def _cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as a camera has: -> (cert, key) PEM files."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camera")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cam.crt", tmp_path / "cam.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _server_ctx(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.mark.parametrize("verify", ["self-signed", "tls_ca", "wrong_ca"])
async def test_rtsps_goes_over_tls(tmp_path: Path, verify: str) -> None:
    cert, key = _cert(tmp_path)
    other, _ = _cert(tmp_path / "other") if verify == "wrong_ca" else (cert, key)
    async with CameraFleet(count=1, brand="dahua", rtsp_tls=_server_ctx(cert, key)) as fleet:
        listing = fleet.listing()[0]
        assert listing["rtsp_scheme"] == "rtsps"
        camera = {} if verify == "self-signed" else {"tls_ca": str(other)}
        doc = agent_doc(tmp_path, {"cam": listing})
        doc["devices"][0]["camera"] = camera
        cfg = AgentConfig.model_validate(doc)
        async with CameraPoller(cfg) as poller:
            result = await poller.poll(poller.session(cfg.devices[0]))
        h = health(result)
        stub = fleet[listing["id"]].rtsp
        if verify == "wrong_ca":
            assert (result.reason, h["rtsp_ok"]) == ("rtsp_error", 0), result.detail
            assert "CERTIFICATE_VERIFY_FAILED" in result.detail.upper().replace(" ", "_")
        else:
            assert (result.ok, h["rtsp_ok"], h["rtsp_status"]) == (True, 1, 200), result.detail
            assert stub.tls_handshakes >= 1


class PlainStub:
    """A plaintext TCP listener on the "rtsps" port: records what arrives; answers like a
    plaintext RTSP server would (400), or not at all."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await reader.read(4096)
            self.received += data
            if self.answer:
                writer.write(b"RTSP/1.0 400 Bad Request\r\nCSeq: 0\r\n\r\n")
                await writer.drain()
            else:
                self.received += await reader.read(4096)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.mark.parametrize("answer", [True, False], ids=["answers-400", "silent"])
async def test_plaintext_server_on_an_rtsps_url_is_rtsp_error_and_sees_no_request(answer: bool) -> None:
    stub = PlainStub(answer)
    async with stub as port:
        result = await rtsp.probe(f"rtsps://127.0.0.1:{port}/Streaming/Channels/101", username="admin",
                                  password="pw", time_limit=1.0)
    assert (result.ok, result.reason) == (False, "rtsp_error"), result.detail
    assert "plaintext RTSP?" in result.detail
    assert stub.received[:1] == b"\x16"  # a TLS handshake record: the ClientHello
    assert b"OPTIONS" not in stub.received and b"admin" not in stub.received


def test_rtsps_default_port_is_322() -> None:
    assert rtsp.split_url("rtsps://10.0.0.5/live")[2] == 322
    assert rtsp.split_url("rtsp://10.0.0.5/live")[2] == 554
