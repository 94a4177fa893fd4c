"""The service helpers start real processes that really answer, and stop them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from wardwatch.simulators.lab import (
    Service,
    ServiceError,
    SnmpsimAgent,
    SnmpsimService,
    find_binary,
    free_port,
    start_influxdb,
    start_mosquitto,
    start_snmpd,
    start_snmpsim,
)

pytestmark = pytest.mark.services

SYS_NAME = "1.3.6.1.2.1.1.5.0"


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def mqtt_roundtrip(port: int, topic: str, payload: bytes, timeout: float = 5.0) -> bytes:
    """Subscribe, publish one QoS 1 message, return what the subscriber got."""
    got: list[bytes] = []
    arrived = threading.Event()
    subscribed = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        arrived.set()

    def on_subscribe(client: mqtt.Client, *args: object) -> None:
        subscribed.set()

    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex}")
    sub.on_message = on_message
    sub.on_subscribe = on_subscribe
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex}")
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    try:
        sub.subscribe(topic, qos=1)
        assert subscribed.wait(timeout), "no SUBACK"
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        try:
            info = pub.publish(topic, payload, qos=1)
            info.wait_for_publish(timeout)
            assert info.is_published()
            assert arrived.wait(timeout), "message did not arrive"
        finally:
            pub.disconnect()
            pub.loop_stop()
    finally:
        sub.disconnect()
        sub.loop_stop()
    return got[0]


def snmpget(port: int, oid: str, *extra: str) -> str:
    args = extra or ("-v2c", "-c", "public")
    done = subprocess.run(
        [find_binary("snmpget"), *args, "-t", "1", "-r", "1", "-Oqv", f"127.0.0.1:{port}", oid],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().strip('"')


# --------------------------------------------------------------------------- helpers


def test_free_port_is_bindable() -> None:
    for kind, sock_type in (("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)):
        port = free_port(kind)
        with socket.socket(socket.AF_INET, sock_type) as s:
            s.bind(("127.0.0.1", port))


def test_find_binary() -> None:
    assert Path(find_binary("mosquitto")).is_file()
    # snmpsim lives beside the interpreter, in the venv's bin dir.
    assert Path(find_binary("snmpsim-command-responder")).parent == Path(sys.prefix) / "bin"
    with pytest.raises(ServiceError, match=r"no-such-binary-xyz not found: run `make deps`"):
        find_binary("no-such-binary-xyz")


# --------------------------------------------------------------------------- mosquitto


def test_mosquitto_pubsub_and_stop(tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path)
    with broker:
        assert broker.running()
        assert broker.host == "127.0.0.1"
        conf = (broker.run_dir / "mosquitto.conf").read_text()
        assert "user root" in conf and "max_queued_messages 0" in conf
        topic = f"test/{uuid.uuid4().hex}/x"
        assert mqtt_roundtrip(broker.port, topic, b"hello") == b"hello"
        pid = broker.pid
    assert not broker.running()
    assert pid_gone(pid)
    broker.stop()  # idempotent


def test_mosquitto_persistence(tmp_path: Path) -> None:
    with start_mosquitto(tmp_path, persistence=True, max_queued_messages=5000) as broker:
        conf = (broker.run_dir / "mosquitto.conf").read_text()
        assert "persistence true" in conf and "max_queued_messages 5000" in conf
    # mosquitto saves its database on a clean (SIGTERM) shutdown.
    assert (broker.run_dir / "data" / "mosquitto.db").is_file()


def test_mosquitto_restart_same_port(tmp_path: Path) -> None:
    with start_mosquitto(tmp_path) as broker:
        port, first_pid = broker.port, broker.pid
        broker.stop()
        assert pid_gone(first_pid)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        broker.start()
        assert broker.port == port and broker.pid != first_pid
        assert mqtt_roundtrip(port, f"test/{uuid.uuid4().hex}", b"again") == b"again"
        # kill -9 and come back, as a broker-crash test would.
        broker.kill()
        assert not broker.running()
        broker.start()
        assert mqtt_roundtrip(port, f"test/{uuid.uuid4().hex}", b"thrice") == b"thrice"


def test_mosquitto_port_taken_fails_fast_with_log(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(ServiceError) as info:
            start_mosquitto(tmp_path, port=port)
        assert time.monotonic() - t0 < 5
    message = str(info.value)
    assert message.startswith("mosquitto: exited with status")
    assert "command: " in message and "mosquitto.conf" in message
    assert "Address already in use" in message


def test_not_ready_before_deadline_raises_and_stops(tmp_path: Path) -> None:
    service = Service(
        name="sleeper",
        argv=[find_binary("sleep"), "60"],
        host="127.0.0.1",
        port=0,
        run_dir=tmp_path,
        log_path=tmp_path / "sleeper.log",
        ready=lambda service, timeout: False,
        ready_timeout=0.5,
    )
    t0 = time.monotonic()
    with pytest.raises(ServiceError, match=r"sleeper: not ready after 0\.5 s"):
        service.start()
    assert time.monotonic() - t0 < 3
    assert not service.running()
    assert pid_gone(service.pid)


# --------------------------------------------------------------------------- influxdb


def test_influxdb_write_query_and_stop(tmp_path: Path) -> None:
    with start_influxdb(tmp_path) as influx:
        assert influx.url == f"http://127.0.0.1:{influx.port}"
        assert influx.rpc_port != influx.port
        db = f"t_{uuid.uuid4().hex[:8]}"
        influx.create_database(db)
        line = b"ifrate,device=sw01,ifname=lo in_bps=1234.5,oper=1i 1700000000000000000\n"
        req = urllib.request.Request(f"{influx.url}/write?db={db}", data=line, method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 204
        rows = influx.points("SELECT * FROM ifrate", db=db)
        assert rows == [
            {
                "time": "2023-11-14T22:13:20Z",
                "device": "sw01",
                "ifname": "lo",
                "in_bps": 1234.5,
                "oper": 1,
            }
        ]
        grouped = influx.points('SELECT last("in_bps") FROM ifrate GROUP BY "device"', db=db, epoch="s")
        assert grouped == [{"device": "sw01", "time": 1700000000, "last": 1234.5}]
        with pytest.raises(ServiceError, match="influxdb: query"):
            influx.query("SELECT FROM nothing", db=db)
        with pytest.raises(ServiceError, match="database not found"):
            influx.query("SELECT * FROM ifrate", db="no_such_db")
        pid = influx.pid
        # Data survives a restart on the same port.
        influx.stop()
        assert pid_gone(pid)
        influx.start()
        assert influx.points("SELECT in_bps FROM ifrate", db=db)[0]["in_bps"] == 1234.5
        pid = influx.pid
    assert pid_gone(pid)


# --------------------------------------------------------------------------- snmpd


def test_snmpd_v2c_v3_and_stop(tmp_path: Path) -> None:
    with start_snmpd(tmp_path, sys_name="ward1-core") as agent:
        assert snmpget(agent.port, SYS_NAME) == "ward1-core"
        v3 = "-v3 -l authPriv -u mon -a SHA -A authpass123 -x AES -X privpass123".split()
        assert snmpget(agent.port, SYS_NAME, *v3) == "ward1-core"
        # restart on the same port: persisted state (engine boots, users) reloads fine.
        first = agent.pid
        agent.stop()
        assert pid_gone(first)
        agent.start()
        assert snmpget(agent.port, SYS_NAME, *v3) == "ward1-core"
        pid = agent.pid
    assert pid_gone(pid)


# --------------------------------------------------------------------------- snmpsim


def write_recording(data_dir: Path, sys_name: str) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "public.snmprec").write_text(
        f"1.3.6.1.2.1.1.3.0|67:numeric|rate=100\n1.3.6.1.2.1.1.5.0|4|{sys_name}\n"
    )


def test_snmpsim_two_endpoints_own_data(tmp_path: Path) -> None:
    write_recording(tmp_path / "a", "sim-a")
    write_recording(tmp_path / "b", "sim-b")
    agents = [
        SnmpsimAgent(data_dir=tmp_path / "a", port=free_port("udp")),
        SnmpsimAgent(data_dir=tmp_path / "b", port=free_port("udp")),
    ]
    sim = start_snmpsim(tmp_path / "run", agents=agents)
    with sim:
        assert isinstance(sim, SnmpsimService)
        assert sim.agents == agents and sim.port == agents[0].port
        assert snmpget(agents[0].port, SYS_NAME) == "sim-a"
        assert snmpget(agents[1].port, SYS_NAME) == "sim-b"
        assert (sim.run_dir / "cache").is_dir()
        pid = sim.pid
    assert pid_gone(pid)
