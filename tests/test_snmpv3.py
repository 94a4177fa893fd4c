"""SNMPv3 against net-snmp's snmpd: SHA-256 authPriv, and two devices whose v3 user has the
same name but different keys (pysnmp keeps one key per user name in an engine)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.util import BIN, write_yaml
from wardwatch.simulators.lab import Service, _snmpget_ok, find_binary, free_port

pytestmark = pytest.mark.services


def start_snmpd_user(run_dir: Path, *, user: str, auth_proto: str, auth_key: str, priv_key: str) -> Service:
    """snmpd with one v3 authPriv user of our choosing (services.start_snmpd's user is SHA-1)."""
    port = free_port("udp")
    run_dir.mkdir(parents=True)
    conf = run_dir / "agent.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\n"
                    f"createUser {user} {auth_proto} {auth_key} AES {priv_key}\nrouser {user} priv\n"
                    f"dontLogTCPWrappersConnects yes\nsysName snmpd-{auth_proto.lower()}\n")
    log = run_dir / "snmpd.log"
    svc = Service(name="snmpd", argv=[find_binary("snmpd"), "-f", "-C", "-c", str(conf), "-Lf", str(log)],
                  host="127.0.0.1", port=port, run_dir=run_dir, log_path=log,
                  env={"SNMP_PERSISTENT_DIR": str(run_dir), "MIBS": ""},
                  ready=lambda s, t: _snmpget_ok(s.host, s.port, "public", t))
    svc.start()
    return svc


@pytest.fixture(scope="module")
def two_snmpds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Service]]:
    base = tmp_path_factory.mktemp("v3")
    a = start_snmpd_user(base / "a", user="mon", auth_proto="SHA-256", auth_key="sha256-key-A", priv_key="priv-key-A1")
    try:
        b = start_snmpd_user(base / "b", user="mon", auth_proto="SHA", auth_key="sha1-key-B22", priv_key="priv-key-B2")
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def check(tmp_path: Path, a: Service, b: Service, *, key_a: str = "sha256-key-A",
          broker: Service | None = None) -> subprocess.CompletedProcess[str]:
    cfg = write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "v3-test", "ward": "cam-pho"},
        **({"mqtt": {"host": broker.host, "port": broker.port}} if broker else {}),  # check tries the broker too
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {
            "v3-a": {"snmp": {"version": "3", "user": "mon", "auth_protocol": "SHA256", "auth_key": key_a,
                              "priv_protocol": "AES", "priv_key": "priv-key-A1"}},
            "v3-b": {"snmp": {"version": "3", "user": "mon", "auth_protocol": "SHA", "auth_key": "sha1-key-B22",
                              "priv_protocol": "AES", "priv_key": "priv-key-B2"}},
        },
        "devices": [
            {"id": "sw-a", "kind": "switch", "host": "127.0.0.1", "port": a.port, "auth": "v3-a", "interval": "5s",
             "timeout": "1s"},
            {"id": "sw-b", "kind": "switch", "host": "127.0.0.1", "port": b.port, "auth": "v3-b", "interval": "5s",
             "timeout": "1s"},
        ],
    })
    return subprocess.run([str(BIN / "wardwatch-agent"), "check", "-c", str(cfg)], capture_output=True, text=True,
                          timeout=60)


def rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("sw-")}


def test_same_user_name_with_different_keys_on_two_devices(tmp_path: Path, two_snmpds: tuple[Service, Service],
                                                           mosquitto: Service) -> None:
    proc = check(tmp_path, *two_snmpds, broker=mosquitto)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = rows(proc.stdout)
    assert got["sw-a"][3:6] == ["v3", "up", "snmpd-sha-256"]  # SHA-256 authPriv
    assert got["sw-b"][3:6] == ["v3", "up", "snmpd-sha"]


def test_wrong_sha256_key_is_auth_and_the_other_device_still_answers(
        tmp_path: Path, two_snmpds: tuple[Service, Service], mosquitto: Service) -> None:
    proc = check(tmp_path, *two_snmpds, key_a="not-the-key-A", broker=mosquitto)
    assert proc.returncode == 1
    got = rows(proc.stdout)
    assert got["sw-a"][4] == "auth", proc.stdout
    assert got["sw-b"][4] == "up", proc.stdout
    assert "not-the-key-A" not in proc.stdout + proc.stderr


async def test_wrong_key_is_auth_in_device_status_too(tmp_path: Path, two_snmpds: tuple[Service, Service]) -> None:
    from wardwatch.agent.core.config import load_config
    from wardwatch.agent.core.poller import Context
    from wardwatch.agent.snmp.poller import SnmpPoller

    check(tmp_path, *two_snmpds, key_a="not-the-key-A")  # writes the config
    cfg = load_config(tmp_path / "agent.yaml")
    results = {}
    async with SnmpPoller(Context.new(cfg)) as poller:
        for dev in cfg.devices:
            poller.add(dev)
            results[dev.id] = await poller.poll(dev)
    status = {dev: r.readings[0] for dev, r in results.items()}
    assert status["sw-a"].measurement == "device_status"
    # 127.0.0.1 answers ping, so the device is alive but SNMP refuses our key.
    assert status["sw-a"].fields["reason"] in ("auth", "snmp_auth"), status["sw-a"]
    assert status["sw-b"].fields["reason"] == "ok" and status["sw-b"].fields["up"] == 1
