"""``wardwatch-agent check``'s setup section against real peers on loopback: one Mosquitto 2.0
on the files ``wardwatch-collector broker-config`` writes (TLS, password file, ACL), with
two more listeners in the same process: the same TLS certificate on 127.0.0.2 (an address
the certificate does not name) and a plain one. Each broker failure names its step and
gives its hint; the outbox's directory is checked by writing to it (root passes every mode
bit, not a read-only mount); a device that fails gets a hint line; the exit status is 0
only when the setup and every device are ok."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.client import Client, MQTTv5
from paho.mqtt.enums import CallbackAPIVersion

from tests.util import BIN, write_yaml
from wardwatch import wire
from wardwatch.agent.core.outbox import Outbox
from wardwatch.collector.cli import main as collector_main
from wardwatch.simulators.aps import write_many
from wardwatch.simulators.lab import LOOPBACK, Service, SnmpsimAgent, find_binary, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

pytestmark = pytest.mark.services

AGENT, WARD, OTHER = "hoi-an-1", "minh-an", "hoi-an-2"
NAME = "broker.wardwatch.test"  # broker-config --name: the certificate names it, 127.0.0.1 and localhost
SECOND = "127.0.0.2"  # also loopback, and not in the certificate


@dataclass
class Broker:
    dir: Path
    tls_port: int  # broker-config's listener on 127.0.0.1
    second_port: int  # the same certificate, on 127.0.0.2
    plain_port: int  # no TLS, the same password file and ACL
    expired_port: int  # a certificate from the same CA that expired yesterday
    soon_port: int  # one that expires in 10 days
    other_ca: Path  # a CA from another broker-config run

    def mqtt(self, uid: str = AGENT) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((self.dir / "credentials" / f"{uid}.yaml").read_text())
        section: dict[str, Any] = doc["mqtt"]
        return {**section, "host": LOOPBACK, "port": self.tls_port}


def _generate(tmp: Path, out: str, port: int) -> Path:
    inv = write_yaml(tmp / f"{out}-inventory.yaml", {
        "agents": [{"id": AGENT, "ward": WARD}, {"id": OTHER, "ward": WARD}], "collectors": [{"id": "collector-1"}]})
    code = collector_main(["broker-config", "--inventory", str(inv), "--out", str(tmp / out),
                           "--listen", f"{LOOPBACK}:{port}", "--name", NAME, "--user", "root"])  # fmt: skip
    assert code == 0
    return tmp / out


def _leaf(tls: Path, stem: str, *, days_left: float) -> None:
    """A server certificate for NAME and 127.0.0.1 from broker-config's CA, ending in ``days_left`` days."""
    ca_key = serialization.load_pem_private_key((tls / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate((tls / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=days_left))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME),
                                                        x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), False)
            .sign(ca_key, hashes.SHA256()))  # fmt: skip
    (tls / f"{stem}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))  # fmt: skip
    (tls / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("check-setup")
    tls_port, second_port, plain_port = free_port(), free_port(), free_port()
    out = _generate(tmp, "broker", tls_port)
    other = _generate(tmp, "other", free_port())
    tls = out / "tls"
    expired_port, soon_port = free_port(), free_port()
    _leaf(tls, "expired", days_left=-1)
    _leaf(tls, "soon", days_left=10)

    def listener(port: int, host: str, stem: str) -> list[str]:
        return [f"listener {port} {host}", f"cafile {tls / 'ca.pem'}", f"certfile {tls / stem}.pem",
                f"keyfile {tls / stem}.key"]

    conf = (out / "mosquitto.conf").read_text() + "\n".join([
        *listener(second_port, SECOND, "server"), *listener(expired_port, LOOPBACK, "expired"),
        *listener(soon_port, LOOPBACK, "soon"), f"listener {plain_port} {LOOPBACK}", ""])
    (tmp / "mosquitto.conf").write_text(conf)
    service = Service(name="mosquitto", argv=[find_binary("mosquitto"), "-c", str(tmp / "mosquitto.conf")],
                      host=LOOPBACK, port=plain_port, run_dir=tmp, log_path=tmp / "mosquitto.log")  # fmt: skip
    service.start()
    try:
        yield Broker(out, tls_port, second_port, plain_port, expired_port, soon_port, other / "tls" / "ca.pem")
    finally:
        service.stop()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    run = tmp_path_factory.mktemp("check-setup-sim")
    write_many(run / "data", {"sw": render(SwitchSpec(name="sw-hall", ports=8, seed=3))})
    with start_snmpsim(run, agents=[SnmpsimAgent(data_dir=run / "data", port=free_port("udp"))]) as svc:
        yield svc


def agent_config(tmp_path: Path, sim: Service, mqtt: dict[str, Any], *, agent: str = AGENT,
                 outbox: Path | None = None, devices: list[dict[str, Any]] | None = None) -> Path:
    if outbox is None and not (tmp_path / "state").exists():
        (tmp_path / "state").mkdir()
    return write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": agent, "ward": WARD},
        "mqtt": mqtt,
        "outbox": {"path": str(outbox or tmp_path / "state" / "outbox.db")},
        "auth": {"sw": {"snmp": {"version": "2c", "community": "sw"}}},
        "devices": [{"id": "sw-hall", "kind": "switch", "host": LOOPBACK, "port": sim.port, "auth": "sw",
                     "interval": "5s", "timeout": "1s", "retries": 0}, *(devices or [])],
    })


def run_check(cfg: Path, *prefix: str) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run([*prefix, str(BIN / "wardwatch-agent"), "check", "-c", str(cfg)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def setup_lines(out: str) -> dict[str, tuple[str, str, str]]:
    """name -> (state, text, hint) of the setup section."""
    lines = out.split("SETUP\n", 1)[1].split("\n\n", 1)[0].splitlines()
    found: dict[str, tuple[str, str, str]] = {}
    last = ""
    for line in lines:
        m = re.match(r"(ok|warn|FAIL)\s+(config|outbox|icmp|broker \w+)\s+(.*)$", line)
        if m:
            last = m[2]
            found[last] = (m[1], m[3], "")
        else:
            state, text, _ = found[last]
            found[last] = (state, text, line.strip().removeprefix("hint: "))
    return found


def broker_steps(out: str) -> list[str]:
    return [n.removeprefix("broker ") for n in setup_lines(out) if n.startswith("broker ")]


def publish_watermark(broker: Broker, watermark: int) -> None:
    """As a collector: the retained ``stored`` watermark of AGENT."""
    client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"t-coll-{free_port()}",
                    protocol=MQTTv5)  # fmt: skip
    client.username_pw_set("collector-1", (broker.dir / "credentials" / "collector-1.password").read_text().strip())
    client.tls_set(ca_certs=str(broker.dir / "tls" / "ca.pem"), cert_reqs=ssl.CERT_REQUIRED)
    client.connect(LOOPBACK, broker.tls_port, keepalive=10)
    client.loop_start()
    try:
        info = client.publish(wire.stored_topic(WARD, AGENT), wire.stored_payload(
            agent=AGENT, ward=WARD, watermark=watermark, time_ms=int(time.time() * 1000)), qos=1, retain=True)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_good_setup_passes_with_the_waiting_batches(tmp_path: Path, broker: Broker, sim: Service) -> None:
    state = tmp_path / "state"
    state.mkdir()
    publish_watermark(broker, 3)

    async def fill() -> None:
        async with Outbox(state / "outbox.db", agent=AGENT, ward=WARD) as box:
            for _ in range(3):
                await box.put([wire.Reading(device="sw-hall", kind="switch", measurement="device_status",
                                            time_ms=int(time.time() * 1000), fields={"up": 1})])  # fmt: skip

    asyncio.run(fill())
    before = sorted(p.name for p in state.iterdir())
    code, out, took = run_check(agent_config(tmp_path, sim, broker.mqtt()))
    assert code == 0, out
    lines = setup_lines(out)
    assert [n for n, (s, _, _) in lines.items() if s != "ok"] == [], out
    assert broker_steps(out) == ["tcp", "tls", "login", "acl"]
    assert lines["config"][1].endswith(f"agent {AGENT}, ward {WARD}, 1 device (1 switch)")
    assert "3 batches wait in it" in lines["outbox"][1]
    assert f"for {LOOPBACK}" in lines["broker tls"][1]
    assert f"{AGENT} logged in" in lines["broker login"][1]
    # The retained watermark came through: the ACL lets the agent read its own.
    assert lines["broker acl"][1] == (f"reads wardwatch/v1/{WARD}/{AGENT}/stored: collectors have stored this "
                                      "agent's batches below seq 3")
    assert "hint" not in out
    assert broker.mqtt()["password_file"] not in out and (broker.dir / "credentials" / f"{AGENT}.password") \
        .read_text().strip() not in out  # fmt: skip
    # Read-only: no -wal or -shm file left beside the outbox (root-owned ones would lock the service out).
    assert sorted(p.name for p in state.iterdir()) == before
    assert "1 of 1 devices answered; setup ok" in out
    assert took < 15


def test_nothing_listening(tmp_path: Path, broker: Broker, sim: Service) -> None:
    code, out, took = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "port": free_port()},
                                             outbox=tmp_path / "new" / "outbox.db"))
    assert code == 1
    assert setup_lines(out)["outbox"][:2] == ("warn", f"{tmp_path / 'new'} does not exist yet; the agent makes it "
                                                      "at start")  # fmt: skip
    state, text, hint = setup_lines(out)["broker tcp"]
    assert (state, text.endswith("connection refused")) == ("FAIL", True), out
    assert "is the broker running" in hint and "mqtt.port" in hint
    assert broker_steps(out) == ["tcp"]  # it stops at the first failure
    assert "1 of 1 devices answered; setup: 1 failed" in out  # the devices were still polled
    assert took < 15


def test_a_port_that_accepts_and_says_nothing_is_bounded(tmp_path: Path, broker: Broker, sim: Service) -> None:
    with socket.socket() as mute:
        mute.bind((LOOPBACK, 0))
        mute.listen(4)  # the kernel completes the handshake; nobody ever reads or writes
        code, out, took = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "port": mute.getsockname()[1]}))
    assert code == 1
    state, text, hint = setup_lines(out)["broker tls"]
    assert (state, text.endswith("failed: no answer in time")) == ("FAIL", True), out
    assert "TLS listener" in hint
    assert took < 15


def test_plain_port_with_tls_set(tmp_path: Path, broker: Broker, sim: Service) -> None:
    code, out, _ = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "port": broker.plain_port}))
    assert code == 1
    state, text, hint = setup_lines(out)["broker tls"]
    assert (state, text) == ("FAIL", f"port {broker.plain_port} speaks plain MQTT, not TLS"), out
    assert "TLS listener" in hint


def test_tls_port_with_tls_false(tmp_path: Path, broker: Broker, sim: Service) -> None:
    code, out, _ = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "tls": False}))
    assert code == 1
    state, text, hint = setup_lines(out)["broker plain"]
    assert (state, text) == ("FAIL", f"port {broker.tls_port} speaks TLS, but the config has tls: false"), out
    assert f"credentials/{AGENT}.yaml" in hint and "ca_file" in hint
    assert broker_steps(out) == ["tcp", "plain"]  # the password was not sent in clear


def test_a_plain_port_with_tls_false_logs_in(tmp_path: Path, broker: Broker, sim: Service) -> None:
    code, out, _ = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "tls": False, "port": broker.plain_port}))
    assert code == 0, out
    assert broker_steps(out) == ["tcp", "plain", "login", "acl"]
    assert setup_lines(out)["broker plain"][0] == "ok"  # on loopback: no warning about clear text


def test_wrong_ca(tmp_path: Path, broker: Broker, sim: Service) -> None:
    code, out, _ = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "tls": {"ca_file": str(broker.other_ca)}}))
    assert code == 1
    state, text, hint = setup_lines(out)["broker tls"]
    assert state == "FAIL" and text.startswith("certificate verify failed") and str(broker.other_ca) in text, out
    assert "tls/ca.pem" in hint and "broker-config" in hint


def test_a_missing_ca_file(tmp_path: Path, broker: Broker, sim: Service) -> None:
    missing = tmp_path / "ca.pem"
    code, out, _ = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "tls": {"ca_file": str(missing)}}))
    assert code == 1
    state, text, hint = setup_lines(out)["broker tls"]
    assert (state, text.startswith(f"cannot load tls.ca_file {missing}")) == ("FAIL", True), out
    assert "copy tls/ca.pem" in hint


def test_a_host_the_certificate_does_not_name(tmp_path: Path, broker: Broker, sim: Service) -> None:
    code, out, _ = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "host": SECOND,
                                                          "port": broker.second_port}))
    assert code == 1
    state, text, hint = setup_lines(out)["broker tls"]
    assert state == "FAIL" and text.startswith(f"the broker's certificate is for {NAME}") and \
        text.endswith(f"not {SECOND}"), out  # fmt: skip
    assert "--name" in hint and NAME in hint


def test_wrong_password(tmp_path: Path, broker: Broker, sim: Service) -> None:
    mqtt = {k: v for k, v in broker.mqtt().items() if k != "password_file"}
    code, out, _ = run_check(agent_config(tmp_path, sim, {**mqtt, "password": "not-the-password"}))
    assert code == 1
    state, text, hint = setup_lines(out)["broker login"]
    # Mosquitto 2.0 answers a wrong password with "Not authorized"; MQTT 5 has "Bad user name or password" too.
    assert state == "FAIL" and text in (f"{AGENT} refused: Not authorized", f"{AGENT} refused: Bad user name or "
                                                                              "password"), out
    assert "password is wrong" in hint and f"credentials/{AGENT}.yaml" in hint
    assert "not-the-password" not in out


def test_an_agent_id_not_in_the_acl(tmp_path: Path, broker: Broker, sim: Service) -> None:
    # OTHER's login, under an agent id the inventory does not have: the ACL grants user
    # OTHER only OTHER's topics, so every batch of hoi-an-9 would be refused.
    code, out, _ = run_check(agent_config(tmp_path, sim, broker.mqtt(OTHER), agent="hoi-an-9"))
    assert code == 1
    lines = setup_lines(out)
    assert lines["broker login"][0] == "ok"
    state, text, hint = lines["broker acl"]
    assert (state, text) == ("FAIL", f"mqtt.username {OTHER} is not agent.id hoi-an-9"), out
    assert "credentials/hoi-an-9.yaml" in hint


def test_an_outbox_path_under_a_file(tmp_path: Path, broker: Broker, sim: Service) -> None:
    (tmp_path / "state").write_text("a file where the directory should be\n")
    code, out, _ = run_check(agent_config(tmp_path, sim, broker.mqtt()))
    assert code == 1
    state, text, hint = setup_lines(out)["outbox"]
    assert (state, text.startswith(f"{tmp_path / 'state'} is not a directory")) == ("FAIL", True), out
    assert "/var/lib/wardwatch/outbox.db" in hint


def test_a_read_only_outbox_directory(tmp_path: Path, broker: Broker, sim: Service) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    cfg = agent_config(tmp_path, sim, broker.mqtt())
    # As root only a read-only mount refuses a write: bind the directory read-only in a
    # mount namespace of the check's own.
    code, out, _ = run_check(cfg, "unshare", "--mount", "--", "sh", "-c",
                             f'mount --bind -o ro "{state_dir}" "{state_dir}" && exec "$0" "$@"')
    assert code == 1, out
    state, text, hint = setup_lines(out)["outbox"]
    assert state == "FAIL" and "cannot write there (Read-only file system)" in text, out
    assert "StateDirectory" in hint and "chown" in hint


def test_a_failing_device_gets_a_hint(tmp_path: Path, broker: Broker, sim: Service, black_hole: int) -> None:
    cfg = agent_config(tmp_path, sim, broker.mqtt(), devices=[
        {"id": "sw-mute", "kind": "switch", "host": LOOPBACK, "port": black_hole, "auth": "sw", "interval": "5s",
         "timeout": "1s", "retries": 0, "icmp": False}])
    code, out, _ = run_check(cfg)
    assert code == 1
    assert all(s == "ok" for s, _, _ in setup_lines(out).values()), out
    hints = [x for x in out.splitlines() if x.startswith("hint ")]
    assert len(hints) == 1 and hints[0].split()[1:3] == ["sw-mute", "timeout:"], out
    assert f"UDP {black_hole}" in hints[0] and f"SNMP ACL allows this box ({LOOPBACK})" in hints[0]
    assert "1 of 2 devices answered; setup ok" in out


def test_an_expired_broker_certificate(tmp_path: Path, broker: Broker, sim: Service) -> None:
    code, out, _ = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "port": broker.expired_port}))
    assert code == 1
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    state, text, hint = setup_lines(out)["broker tls"]
    assert state == "FAIL" and text.startswith("the broker's certificate expired on"), out
    assert abs((dt.date.fromisoformat(text.rsplit(" ", 1)[1]) - yesterday).days) <= 1
    assert "broker-config` again" in hint and "clock" in hint


def test_a_certificate_that_expires_soon_is_a_warning_not_a_failure(tmp_path: Path, broker: Broker,
                                                                    sim: Service) -> None:
    code, out, _ = run_check(agent_config(tmp_path, sim, {**broker.mqtt(), "port": broker.soon_port}))
    assert code == 0, out  # a warn does not fail
    state, text, hint = setup_lines(out)["broker tls"]
    assert state == "warn" and "it expires on" in text, out
    assert "broker-config` again" in hint
    assert broker_steps(out) == ["tcp", "tls", "login", "acl"]


def test_check_while_the_agent_holds_the_outbox(tmp_path: Path, broker: Broker, sim: Service) -> None:
    """A running agent keeps the outbox open in WAL mode: check reads its batches beside it."""
    cfg = agent_config(tmp_path, sim, broker.mqtt())
    path = tmp_path / "state" / "outbox.db"

    async def hold() -> tuple[int, str, float]:
        async with Outbox(path, agent=AGENT, ward=WARD) as box:
            box.db.execute("PRAGMA wal_autocheckpoint=0")  # the batches stay in the -wal file
            for _ in range(2):
                await box.put([wire.Reading(device="sw-hall", kind="switch", measurement="device_status",
                                            time_ms=int(time.time() * 1000), fields={"up": 1})])  # fmt: skip
            assert (tmp_path / "state" / "outbox.db-wal").stat().st_size > 0
            return await asyncio.to_thread(run_check, cfg)

    code, out, _ = asyncio.run(hold())
    assert code == 0, out
    assert "2 batches wait in it, the oldest from" in setup_lines(out)["outbox"][1]
    with sqlite3.connect(path) as db:  # and it wrote nothing into it
        assert db.execute("SELECT count(*) FROM batches").fetchone() == (2,)


def test_as_a_user_without_rights(tmp_path: Path, broker: Broker, sim: Service) -> None:
    """Without the rights the service user lacks: the mode bits count, and ICMP needs CAP_NET_RAW or
    ping_group_range. The check runs as root stripped of the capabilities that pass over mode bits
    and of CAP_NET_RAW (setpriv's bounding set), against a state directory someone else owns:
    the same answers as for another user, from a checkout of any mode (CI's clone is 0700, which
    user nobody could not even read the venv from)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chown(state, 65534, 65534)
    password = (broker.dir / "credentials" / f"{AGENT}.password").read_text().strip()
    mqtt = {"host": LOOPBACK, "port": broker.plain_port, "tls": False, "username": AGENT, "password": password}
    cfg = agent_config(tmp_path, sim, mqtt)
    code, out, _ = run_check(cfg, "setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner,-net_raw",
                             "--inh-caps", "-all", "--")
    assert code == 1, out
    lines = setup_lines(out)
    st, text, hint = lines["outbox"]
    assert st == "FAIL" and f"{state}: root cannot write there (Permission denied)" == text, out
    assert "chown" in hint
    low, high = map(int, Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    if low <= os.getgid() <= high:  # unprivileged ICMP sockets for this group
        assert lines["icmp"][0] == "ok", out
    else:
        assert lines["icmp"][0] == "warn" and "CAP_NET_RAW" in lines["icmp"][2], out
    assert broker_steps(out) == ["tcp", "plain", "login", "acl"] and lines["broker acl"][0] == "ok", out
    assert password not in out


def test_batches_waiting_for_hours_are_a_warning(tmp_path: Path, broker: Broker, sim: Service) -> None:
    cfg = agent_config(tmp_path, sim, broker.mqtt())
    path = tmp_path / "state" / "outbox.db"

    async def fill() -> None:
        async with Outbox(path, agent=AGENT, ward=WARD) as box:
            await box.put([wire.Reading(device="sw-hall", kind="switch", measurement="device_status",
                                        time_ms=int(time.time() * 1000), fields={"up": 1})])  # fmt: skip
            box.db.execute("UPDATE batches SET created_ms = created_ms - 3 * 3600 * 1000")

    asyncio.run(fill())
    code, out, _ = run_check(cfg)
    assert code == 0, out  # a warn does not fail
    state, text, hint = setup_lines(out)["outbox"]
    assert state == "warn" and text.endswith("1 batch waits in it, the oldest from 3 h ago"), out
    assert "once a collector has stored them" in hint


def test_a_broker_name_that_does_not_resolve(tmp_path: Path, broker: Broker, sim: Service) -> None:
    # In a network namespace of its own (loopback only): the resolver is out of reach, so no
    # query leaves this machine; the devices fail there too, only the setup line matters.
    cfg = agent_config(tmp_path, sim, {**broker.mqtt(), "host": "broker.wardwatch.invalid"})
    code, out, took = run_check(cfg, "unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"')
    assert code == 1
    state, text, hint = setup_lines(out)["broker dns"]
    assert state == "FAIL" and text.startswith("mqtt.host broker.wardwatch.invalid does not resolve"), out
    assert "/etc/hosts" in hint and "--name" in hint
    assert broker_steps(out) == ["dns"]
    assert took < 15
