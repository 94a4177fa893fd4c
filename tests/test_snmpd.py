"""The agent's SNMP poller against net-snmp's snmpd, a second real implementation."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.util import BIN, write_yaml
from wardwatch.simulators.lab import Service, start_snmpd

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with start_snmpd(tmp_path_factory.mktemp("snmpd"), sys_name="ward-sw-test") as svc:
        yield svc


def agent_config(tmp_path: Path, snmpd: Service, broker: Service, *, v3_key: str = "authpass123") -> Path:
    return write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "snmpd-test", "ward": "cam-pho"},
        "mqtt": {"host": broker.host, "port": broker.port},  # check tries the broker too
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {
            "v2c": {"snmp": {"version": "2c", "community": "public"}},
            "v3": {"snmp": {"version": "3", "user": "mon", "auth_protocol": "SHA", "auth_key": v3_key,
                            "priv_protocol": "AES", "priv_key": "privpass123"}},
        },
        "devices": [
            {"id": "sw-v2c", "kind": "switch", "host": "127.0.0.1", "port": snmpd.port, "auth": "v2c",
             "interval": "5s", "timeout": "1s", "retries": 1,
             "icmp": False},
            {"id": "sw-v3", "kind": "switch", "host": "127.0.0.1", "port": snmpd.port, "auth": "v3",
             "interval": "5s", "timeout": "1s", "retries": 1},
        ],
    })


def check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "wardwatch-agent"), "check", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)


def test_check_polls_v2c_and_v3_authpriv(tmp_path: Path, snmpd: Service, mosquitto: Service) -> None:
    proc = check(agent_config(tmp_path, snmpd, mosquitto))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:] if line.startswith("sw-")}
    assert rows["sw-v2c"][3:6] == ["v2c", "up", "ward-sw-test"]
    assert rows["sw-v3"][3:6] == ["v3", "up", "ward-sw-test"]
    assert "2 of 2 devices answered" in proc.stdout


def test_wrong_v3_key_is_an_auth_error(tmp_path: Path, snmpd: Service, mosquitto: Service) -> None:
    proc = check(agent_config(tmp_path, snmpd, mosquitto, v3_key="wrong-key-123"))
    assert proc.returncode == 1
    row = next(line for line in proc.stdout.splitlines() if line.startswith("sw-v3"))
    assert row.split()[4] == "auth", proc.stdout
    assert "wrong-key-123" not in proc.stdout + proc.stderr


# Loopback traffic against snmpd's lo (ifType softwareLoopback, 10 Mb/s by its word):
# tests/test_snmp_loopback.py.
