"""``wardwatch-collector broker-config`` against a real Mosquitto 2.0 started on the config it
writes, over its TLS listener: the ACL confines an agent to its own ward, a wrong password
and an untrusted CA are refused, a collector reads every ward (plain and $share
subscriptions); re-running keeps passwords and the CA, --rotate replaces them; secrets are
0600; a bad inventory exits 2 naming the key. The last test runs a real agent and a real
collector over the listener with the generated credentials files."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import stat
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from paho.mqtt.client import Client, MQTTMessage, MQTTv5
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.util import wait_for, write_yaml
from wardwatch import wire
from wardwatch.collector import brokerconfig
from wardwatch.collector.cli import main as collector_main
from wardwatch.simulators.lab import LOOPBACK, InfluxService, Service, find_binary, free_port, script

INVENTORY = {
    "agents": [
        {"id": "cam-pho-1", "ward": "cam-pho"},
        {"id": "minh-an-1", "ward": "minh-an", "client_cert": True},
    ],
    "collectors": [{"id": "collector-1"}],
}
TIMEOUT = 10.0


def _generate(tmp: Path, *extra: str, inventory: dict[str, Any] | None = None, port: int = 8883) -> Path:
    inv = write_yaml(tmp / "inventory.yaml", inventory or INVENTORY)
    out = tmp / "broker"
    code = collector_main(["broker-config", "--inventory", str(inv), "--out", str(out),
                           "--listen", f"{LOOPBACK}:{port}", "--user", "root", *extra])  # fmt: skip
    assert code == 0
    return out


def _tls_ready(ca: Path) -> Any:
    def ready(service: Service, timeout: float) -> bool:
        ctx = ssl.create_default_context(cafile=str(ca))
        try:
            with socket.create_connection((service.host, service.port), timeout=timeout) as raw, \
                    ctx.wrap_socket(raw, server_hostname=service.host):  # fmt: skip
                return True
        except OSError:
            return False

    return ready


@dataclass
class Broker:
    dir: Path
    service: Service

    @property
    def port(self) -> int:
        return self.service.port

    def creds(self, uid: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((self.dir / "credentials" / f"{uid}.yaml").read_text())
        section: dict[str, Any] = doc["mqtt"]
        return section

    def users(self) -> set[str]:
        return {p.stem for p in (self.dir / "credentials").glob("*.yaml")}

    def password(self, uid: str) -> str:
        return (self.dir / "credentials" / f"{uid}.password").read_text().strip()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("broker-config")
    port = free_port()
    out = _generate(tmp, port=port)
    service = Service(
        name="mosquitto", argv=[find_binary("mosquitto"), "-c", str(out / "mosquitto.conf")], host=LOOPBACK,
        port=port, run_dir=out, log_path=tmp / "mosquitto.log", ready=_tls_ready(out / "tls" / "ca.pem"),
    )  # fmt: skip
    service.start()
    try:
        yield Broker(out, service)
    finally:
        service.stop()


@dataclass
class Peer:
    """A paho MQTT 5 client over TLS, with what it received and its acknowledgements."""

    client: Client
    connected: threading.Event = field(default_factory=threading.Event)
    reason: ReasonCode | None = None
    got: list[MQTTMessage] = field(default_factory=list)
    acks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)

    def topics(self) -> list[str]:
        return [m.topic for m in list(self.got)]

    def publish(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return wait_for(lambda: self.acks.get(info.mid), timeout=TIMEOUT, what=f"PUBACK of {topic}")

    def subscribe(self, topic: str) -> list[ReasonCode]:
        _rc, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        return wait_for(lambda: self.subacks.get(mid), timeout=TIMEOUT, what=f"SUBACK of {topic}")


@contextlib.contextmanager
def peer(broker: Broker, user: str, password: str | None = None, *, ca: Path | None = None,
         expect_refusal: bool = False, cert: bool = False) -> Iterator[Peer]:  # fmt: skip
    client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{free_port()}",
                    protocol=MQTTv5)  # fmt: skip
    p = Peer(client)

    def on_connect(_c: Client, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None) -> None:
        p.reason = reason
        p.connected.set()

    def on_message(_c: Client, _u: Any, msg: MQTTMessage) -> None:
        p.got.append(msg)

    def on_publish(_c: Client, _u: Any, mid: int, reason: ReasonCode, _p: Properties) -> None:
        p.acks[mid] = reason

    def on_subscribe(_c: Client, _u: Any, mid: int, reasons: list[ReasonCode], _p: Properties) -> None:
        p.subacks[mid] = reasons

    client.on_connect, client.on_message = on_connect, on_message
    client.on_publish, client.on_subscribe = on_publish, on_subscribe
    client.username_pw_set(user, broker.password(user) if password is None else password)
    tls = broker.creds(user)["tls"] if cert and user in broker.users() else {}
    client.tls_set(ca_certs=str(ca or broker.dir / "tls" / "ca.pem"), certfile=tls.get("cert_file"),
                   keyfile=tls.get("key_file"), cert_reqs=ssl.CERT_REQUIRED)  # fmt: skip
    client.connect(LOOPBACK, broker.port, keepalive=10)
    client.loop_start()
    try:
        assert p.connected.wait(TIMEOUT), f"{user}: no CONNACK"
        assert p.reason is not None
        if not expect_refusal:
            assert not p.reason.is_failure, f"{user}: {p.reason}"
        yield p
    finally:
        client.disconnect()
        client.loop_stop()


def test_an_agent_publishes_in_its_own_ward_only(broker: Broker) -> None:
    with peer(broker, "collector-1") as coll, peer(broker, "cam-pho-1") as agent:
        assert not coll.subscribe("wardwatch/v1/+/+/readings")[0].is_failure
        intruding = agent.publish("wardwatch/v1/minh-an/minh-an-1/readings", b'{"forged": 1}')
        assert intruding.is_failure and intruding.getName() == "Not authorized"
        # Not even under its own ward with another agent's id.
        assert agent.publish("wardwatch/v1/cam-pho/cam-pho-2/readings").is_failure
        assert not agent.publish("wardwatch/v1/cam-pho/cam-pho-1/readings", b'{"own": 1}').is_failure
        wait_for(lambda: "wardwatch/v1/cam-pho/cam-pho-1/readings" in coll.topics(), timeout=TIMEOUT,
                 what="the agent's own readings at the collector")  # fmt: skip
        # The forged ones were published first, by the same client: they would have come first.
        assert coll.topics() == ["wardwatch/v1/cam-pho/cam-pho-1/readings"]


def test_an_agent_reads_its_own_watermark_and_nothing_else(broker: Broker) -> None:
    with peer(broker, "collector-1") as coll, peer(broker, "cam-pho-1") as agent, \
            peer(broker, "minh-an-1") as other:  # fmt: skip
        assert not coll.publish("wardwatch/v1/cam-pho/cam-pho-1/stored", b'{"below": 4}', retain=True).is_failure
        assert not coll.publish("wardwatch/v1/minh-an/minh-an-1/stored", b'{"below": 9}', retain=True).is_failure
        assert not coll.publish("wardwatch/v1/alerts/cam-pho/critical", b"{}").is_failure
        agent.subscribe("wardwatch/v1/#")  # granted or not, the ACL filters each message
        agent.subscribe("$share/g/wardwatch/v1/#")
        agent.subscribe("wardwatch/v1/cam-pho/cam-pho-1/stored")
        assert not other.publish("wardwatch/v1/minh-an/minh-an-1/readings").is_failure
        assert not coll.publish("wardwatch/v1/alerts/minh-an/warning", b"{}").is_failure
        wait_for(lambda: "wardwatch/v1/cam-pho/cam-pho-1/stored" in agent.topics(), timeout=TIMEOUT,
                 what="the agent's own stored watermark")  # fmt: skip
        # A message the agent would see comes after everything it must not see: a round trip.
        assert not coll.publish("wardwatch/v1/cam-pho/cam-pho-1/stored", b'{"below": 5}', retain=True).is_failure
        wait_for(lambda: agent.topics().count("wardwatch/v1/cam-pho/cam-pho-1/stored") >= 3, timeout=TIMEOUT,
                 what="the second watermark")  # fmt: skip
        assert set(agent.topics()) == {"wardwatch/v1/cam-pho/cam-pho-1/stored"}
        # Nor may an agent write a watermark, even its own, or an alert.
        assert agent.publish("wardwatch/v1/cam-pho/cam-pho-1/stored", b"{}", retain=True).is_failure
        assert agent.publish("wardwatch/v1/alerts/cam-pho/critical").is_failure
        for ward, agent_id in (("cam-pho", "cam-pho-1"), ("minh-an", "minh-an-1")):  # clear the retained ones
            assert not coll.publish(f"wardwatch/v1/{ward}/{agent_id}/stored", b"", retain=True).is_failure


def test_a_collector_reads_every_ward_plain_and_shared(broker: Broker) -> None:
    with peer(broker, "collector-1") as plain, peer(broker, "collector-1") as shared, \
            peer(broker, "cam-pho-1") as a1, peer(broker, "minh-an-1") as a2:  # fmt: skip
        for sub in ("readings", "status", "events", "inventory"):
            assert not plain.subscribe(f"wardwatch/v1/+/+/{sub}")[0].is_failure
        assert not shared.subscribe("$share/collectors/wardwatch/v1/+/+/readings")[0].is_failure
        sent = []
        for agent, base in ((a1, "wardwatch/v1/cam-pho/cam-pho-1"), (a2, "wardwatch/v1/minh-an/minh-an-1")):
            for sub in ("readings", "status", "events", "inventory"):
                assert not agent.publish(f"{base}/{sub}").is_failure
                sent.append(f"{base}/{sub}")
        wait_for(lambda: sorted(plain.topics()) == sorted(sent), timeout=TIMEOUT,
                 what=lambda: f"every ward's topics at the collector: {plain.topics()}")  # fmt: skip
        wait_for(lambda: sorted(shared.topics()) == sorted(t for t in sent if t.endswith("/readings")),
                 timeout=TIMEOUT, what=lambda: f"the shared subscription's readings: {shared.topics()}")  # fmt: skip


def test_a_wrong_password_and_an_unknown_user_are_refused(broker: Broker) -> None:
    with peer(broker, "cam-pho-1", "not-the-password", expect_refusal=True) as p:
        assert p.reason is not None and p.reason.is_failure
    with peer(broker, "nobody", "whatever", expect_refusal=True) as p:
        assert p.reason is not None and p.reason.is_failure
    # The client certificate made for minh-an-1 is accepted; the password is still required.
    with peer(broker, "minh-an-1", cert=True) as p:
        assert not p.publish("wardwatch/v1/minh-an/minh-an-1/status", b"{}").is_failure
    with peer(broker, "minh-an-1", "wrong", expect_refusal=True, cert=True) as p:
        assert p.reason is not None and p.reason.is_failure


def test_a_client_that_does_not_trust_the_ca_is_refused(broker: Broker, tmp_path: Path) -> None:
    other = _generate(tmp_path)  # another CA, the same user names
    with pytest.raises(ssl.SSLCertVerificationError), peer(broker, "cam-pho-1", ca=other / "tls" / "ca.pem"):
        pass
    # Plain MQTT to the TLS listener gets no CONNACK.
    with socket.create_connection((LOOPBACK, broker.port), timeout=5) as raw:
        raw.sendall(b"\x10\x10\x00\x04MQTT\x05\x02\x00\x0a\x00\x00\x03abc")
        with contextlib.suppress(OSError):
            assert not raw.recv(4).startswith(b"\x20")


def test_rerun_keeps_passwords_and_ca_rotate_replaces_them(tmp_path: Path) -> None:
    out = _generate(tmp_path)
    creds = out / "credentials"
    before = {p.name: p.read_bytes() for p in creds.iterdir()}
    ca = (out / "tls" / "ca.pem").read_bytes()
    _generate(tmp_path)
    assert {p.name: p.read_bytes() for p in creds.iterdir()} == before
    assert (out / "tls" / "ca.pem").read_bytes() == ca
    # A new agent gets a password; a removed one loses its files.
    inv = {"agents": [{"id": "cam-pho-1", "ward": "cam-pho"}, {"id": "cua-dai-1", "ward": "cua-dai"}],
           "collectors": [{"id": "collector-1"}]}  # fmt: skip
    _generate(tmp_path, inventory=inv)
    names = {p.name for p in creds.iterdir()}
    assert "cua-dai-1.password" in names and "minh-an-1.password" not in names and "minh-an-1.pem" not in {
        p.name for p in (out / "tls").iterdir()}
    assert (creds / "cam-pho-1.password").read_bytes() == before["cam-pho-1.password"]
    assert "minh-an-1" not in (out / "acl").read_text() and "minh-an-1:" not in (out / "passwd").read_text()
    _generate(tmp_path, "--rotate", inventory=inv)
    assert (creds / "cam-pho-1.password").read_bytes() != before["cam-pho-1.password"]
    assert (out / "tls" / "ca.pem").read_bytes() != ca


def test_secrets_are_0600_and_never_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _generate(tmp_path)
    printed = capsys.readouterr()
    private = [out / "passwd", out / "acl", out / "tls" / "ca.key", out / "tls" / "server.key",
               out / "tls" / "minh-an-1.key", *(out / "credentials").iterdir()]  # fmt: skip
    assert len(private) == 5 + 6
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((out / "credentials").stat().st_mode) == 0o700
    for p in (out / "credentials").glob("*.password"):
        secret = p.read_text().strip()
        assert len(secret) >= 32
        assert secret not in printed.out + printed.err
        assert secret not in (out / "passwd").read_text()  # hashed
        assert secret not in (out / "mosquitto.conf").read_text()
    conf = (out / "mosquitto.conf").read_text()
    for line in ("allow_anonymous false", "max_queued_messages 0", "persistence true", "require_certificate false"):
        assert line in conf.splitlines()
    creds = yaml.safe_load((out / "credentials" / "minh-an-1.yaml").read_text())["mqtt"]
    assert creds["username"] == "minh-an-1" and creds["host"] == LOOPBACK and "password" not in creds
    assert set(creds["tls"]) == {"ca_file", "cert_file", "key_file"}


@pytest.mark.parametrize(("inventory", "error"), [
    ("agents: [{id: a1, ward: w1, zone: x}]", "agents[0].zone: unknown key"),
    ("agents: [{id: a1}]", "agents[0].ward: required key is missing"),
    ("agents: [{id: 'a 1', ward: w1}]", "agents[0].id: "),
    ("agents: [{id: a1, ward: alerts}]", "agents[0].ward: 'alerts' is not a ward id"),
    ("agents: [{id: a1, ward: w1}]\ncollectors: [{id: a1}]", "collectors[0].id: 'a1' appears twice"),
    ("collector: [{id: c1}]", "collector: unknown key"),
    ("agents: []", "inventory error: no agents and no collectors"),
    ("agents: [", "not valid YAML"),
])  # fmt: skip
def test_a_bad_inventory_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                inventory: str, error: str) -> None:  # fmt: skip
    inv = tmp_path / "inventory.yaml"
    inv.write_text(inventory)
    code = collector_main(["broker-config", "--inventory", str(inv), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert error in err and len(err.strip().splitlines()) == 1 and "(top level)" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_bad_listen_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = write_yaml(tmp_path / "inventory.yaml", INVENTORY)
    assert collector_main(["broker-config", "--inventory", str(inv), "--out", str(tmp_path), "--listen", "8883"]) == 2
    assert "--listen '8883': expected HOST:PORT" in capsys.readouterr().err


def test_the_server_certificate_names_the_broker(tmp_path: Path) -> None:
    from cryptography import x509

    inv = brokerconfig.load_inventory(write_yaml(tmp_path / "inv.yaml", INVENTORY))
    brokerconfig.generate(inv, tmp_path / "b", listen="0.0.0.0:8883", name="mqtt.hoian.example", user=None)
    cert = x509.load_pem_x509_certificate((tmp_path / "b" / "tls" / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"mqtt.hoian.example", "localhost"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"0.0.0.0", "127.0.0.1"}
    assert yaml.safe_load((tmp_path / "b" / "credentials" / "cam-pho-1.yaml").read_text())["mqtt"]["host"] == (
        "mqtt.hoian.example")
    assert "user " not in (tmp_path / "b" / "mosquitto.conf").read_text()


def test_an_agent_and_a_collector_over_tls_with_the_generated_credentials(
    broker: Broker, influx: InfluxService, database: str, tmp_path: Path
) -> None:
    from tests.pipeline import Collector, switch_sim

    # The alert engine rides along: its own subscription and its MQTT channel go over the
    # same TLS login. A rule that fires on a switch that answers proves it saw the readings.
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: switch_answers, series: device_status, field: up, when: {equals: 1}, "
                     "for: 0s, severity: info, summary: {vi: '{device} trả lời', en: '{device} answers'}}\n")
    alerts = {"rules": str(rules), "state": str(tmp_path / "alerts.db"), "channels": {"bus": {"type": "mqtt"}},
              "routes": [{"channels": ["bus"], "group_wait": "0.2s"}]}
    coll = Collector(tmp_path / "c", mqtt_port=broker.port, influx_url=influx.url, database=database,
                     mqtt=broker.creds("collector-1") | {"share_group": "collectors"}, alerts=alerts)  # fmt: skip
    assert coll.config.read_text().count("password_file") == 1
    with switch_sim(tmp_path, "sw-tls") as sim:
        cfg = write_yaml(tmp_path / "agent.yaml", {
            "agent": {"id": "cam-pho-1", "ward": "cam-pho"},
            "mqtt": broker.creds("cam-pho-1") | {"keepalive": "5s"},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "self_interval": "5s",
            "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
            "devices": [{"id": "sw-1", "kind": "switch", "host": "127.0.0.1", "port": sim.port, "auth": "v2c",
                         "interval": "2s", "timeout": "1s", "retries": 0, "icmp": False}],
        })  # fmt: skip
        coll.start()
        try:
            agent = script("wardwatch-agent", ["run", "-c", str(cfg)], run_dir=tmp_path / "agent")
            agent.start()
            with agent:
                rows = wait_for(
                    lambda: influx.points("SELECT up FROM device_status WHERE ward = 'cam-pho' AND device = 'sw-1'",
                                          db=database),
                    timeout=30, what=lambda: f"readings in InfluxDB\n{agent.log_tail()}\n{coll.service.log_tail()}",
                )  # fmt: skip
                assert rows[0]["up"] == 1
                fired = wait_for(
                    lambda: influx.points("SELECT state, device FROM alert WHERE alertname = 'switch_answers'",
                                          db=database),
                    timeout=20, what=lambda: f"the alert engine's alert over TLS\n{coll.service.log_tail()}",
                )  # fmt: skip
                assert fired[0]["state"] == "firing" and fired[0]["device"] == "sw-1"

                def delivered() -> list[dict[str, Any]]:
                    req = urllib.request.Request(f"http://127.0.0.1:{coll.http_port}/api/v1/alerts/deliveries",
                                                 headers={"Authorization": f"Bearer {coll.token}"})  # fmt: skip
                    with urllib.request.urlopen(req, timeout=5) as resp:
                        return [d for d in json.load(resp)["deliveries"] if d["channel"] == "bus" and d["ok"]]

                wait_for(delivered, timeout=10, what="the MQTT channel's delivery over TLS")
                # The cam-pho agent's login forging a minh-an batch: refused by the broker, so
                # nothing of it reaches InfluxDB while the agent's own readings keep coming.
                forged = wire.Batch(schema=wire.SCHEMA, agent="minh-an-1", ward="minh-an", seq=0, readings=[
                    wire.Reading(device="sw-1", kind="switch", measurement="device_status",
                                 time_ms=int(time.time() * 1000), fields={"up": 0})])  # fmt: skip
                with peer(broker, "cam-pho-1") as intruder:
                    assert intruder.publish(wire.readings_topic("minh-an", "minh-an-1"), wire.encode(forged)).is_failure
                wait_for(lambda: len(influx.points("SELECT up FROM device_status WHERE ward = 'cam-pho'",
                                                   db=database)) > len(rows),
                         timeout=30, what="the agent's next readings")  # fmt: skip
                assert influx.points("SELECT * FROM device_status WHERE ward = 'minh-an'", db=database) == []
                assert not [d for d in coll.dead_letters() if "/minh-an/" in d["topic"] and "readings" in d["topic"]]
        finally:
            coll.terminate()
    for secret in (broker.password("cam-pho-1"), broker.password("collector-1")):
        assert secret not in coll.service.log_path.read_text()


# --------------------------------------------------------------- TLS outside loopback (issue 14, item 2)


def _collector_cfg(tmp_path: Path, text: str) -> Any:
    from wardwatch.collector.config import load_config

    path = tmp_path / "collector.yaml"
    path.write_text(text)
    return load_config(path)


def _refusal(tmp_path: Path, text: str) -> str:
    from wardwatch.config import ConfigError

    with pytest.raises(ConfigError) as info:
        _collector_cfg(tmp_path, text)
    return str(info.value)


def test_plaintext_mqtt_off_loopback_is_refused_unless_tls_false(tmp_path: Path) -> None:
    assert _refusal(tmp_path, "mqtt: {host: mqtt.example}") == (
        "mqtt.tls: the broker mqtt.example is not on this machine; set tls: {ca_file: ...}, "
        "or tls: false to send in clear")
    assert _refusal(tmp_path, "mqtt: {host: 10.20.0.5, port: 1883}").startswith("mqtt.tls: the broker 10.20.0.5 ")
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "LOCALHOST"):
        assert _collector_cfg(tmp_path, f"mqtt: {{host: '{host}'}}").mqtt.tls is None
    assert _collector_cfg(tmp_path, "mqtt: {host: mqtt.example, tls: false}").mqtt.tls is False
    cfg = _collector_cfg(tmp_path, "mqtt: {host: mqtt.example, tls: {ca_file: /etc/wardwatch/tls/ca.pem}}")
    assert cfg.mqtt.tls.ca_file == Path("/etc/wardwatch/tls/ca.pem")
    # The agent's section is the same model.
    from wardwatch.agent.core.config import AgentMqtt

    with pytest.raises(ValueError, match=r"tls\n.*the broker mqtt\.example is not on this machine"):
        AgentMqtt(host="mqtt.example")


def test_tls_false_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    from wardwatch.config import MqttSection
    from wardwatch.mqtt import make_client

    cfg = MqttSection(host="mqtt-clear.example", tls=False)
    with caplog.at_level("WARNING", logger="wardwatch.mqtt"):
        make_client(cfg, client_id="a")
        make_client(cfg, client_id="a")  # a reconnect builds no second warning
        make_client(MqttSection(host="127.0.0.1", tls=False), client_id="b")  # loopback: nothing to warn of
    warned = [r.getMessage() for r in caplog.records if "in clear" in r.getMessage()]
    assert warned == ["mqtt.tls is false: the connection to mqtt-clear.example:1883, its login and every message "
                      "go in clear"]


def test_plain_http_influx_off_loopback_is_refused_unless_insecure_http(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    assert _refusal(tmp_path, "influx: {url: 'http://influx.example:8086'}") == (
        "influx.url: http:// to influx.example, which is not on this machine; use https://, "
        "or set influx.insecure_http: true to send in clear")
    assert _refusal(tmp_path, "influx: {url: 'http://10.0.0.9:8086/'}").startswith("influx.url: http:// to 10.0.0.9")
    assert _collector_cfg(tmp_path, "influx: {url: 'https://influx.example:8086'}").influx.url == (
        "https://influx.example:8086")
    assert _collector_cfg(tmp_path, "influx: {url: 'http://localhost:8086'}").influx.insecure_http is False
    with caplog.at_level("WARNING"):
        cfg = _collector_cfg(tmp_path, "influx: {url: 'http://influx.example:8086', insecure_http: true}")
    assert cfg.influx.insecure_http is True
    assert any("insecure_http is true" in r.getMessage() and "influx.example" in r.getMessage()
               for r in caplog.records)  # fmt: skip


# --------------------------------------------------------------- the broker's systemd unit (issue 16)


def test_the_generated_unit_verifies_and_starts_mosquitto_as_systemd_would(tmp_path: Path) -> None:
    from tests import deploy_rig

    # As the data centre gets it (--user mosquitto): run as that user from the start, sandboxed.
    unit_text = brokerconfig.render_unit(Path("/etc/mosquitto/wardwatch"), "mosquitto")
    prod = tmp_path / "prod" / brokerconfig.UNIT_NAME
    prod.parent.mkdir()
    prod.write_text(unit_text)
    parsed = deploy_rig.parse_unit(prod)
    service = parsed["Service"]
    assert deploy_rig.one(parsed, "Service", "ExecStart") == (
        "/usr/sbin/mosquitto -c /etc/mosquitto/wardwatch/mosquitto.conf")
    assert service["Type"] == ["notify"] and service["Restart"] == ["always"]
    assert service["User"] == ["mosquitto"] and service["CapabilityBoundingSet"] == [""]
    assert service["ProtectSystem"] == ["strict"] and service["NoNewPrivileges"] == ["yes"]
    assert service["ReadWritePaths"] == ["/etc/mosquitto/wardwatch/data"]  # its persistence, nothing else
    assert parsed["Unit"]["Conflicts"] == ["mosquitto.service"]

    # The unit broker-config wrote beside the conf: systemd-analyze verify (it checks that
    # /usr/sbin/mosquitto exists), then started as systemd would: it must say READY=1 on
    # $NOTIFY_SOCKET (Type=notify; Debian's 2.x is built with systemd support) and then
    # serve TLS with the generated certificate.
    port = free_port()
    out = _generate(tmp_path, port=port)
    written = out / brokerconfig.UNIT_NAME
    assert f"ExecStart=/usr/sbin/mosquitto -c {out / 'mosquitto.conf'}\n" in written.read_text()
    for path in (prod, written):
        done = deploy_rig.verify([path])
        assert done.returncode == 0 and not done.stderr.strip(), f"{path}: {done.stdout}{done.stderr}"
    unit = deploy_rig.Unit(written, mapped=lambda p: p, log_dir=tmp_path / "run")
    unit.start(timeout=10)
    try:
        probe = Service(name="probe", argv=[], host=LOOPBACK, port=port, run_dir=tmp_path, log_path=tmp_path / "x")
        assert _tls_ready(out / "tls" / "ca.pem")(probe, 5.0), unit.log()
    finally:
        assert unit.stop() == 0, unit.log()
