"""A device that answers with one unreadable value is up: the value is skipped and counted,
and the rest of the device is read. Other devices are not affected."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.util import BIN, write_yaml
from wardwatch.simulators.lab import Service, SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

pytestmark = pytest.mark.services

IF_HC_IN_OCTETS_1 = "1.3.6.1.2.1.31.1.1.1.6.1|"


@pytest.fixture
def switches(tmp_path: Path) -> Iterator[Service]:
    good = render(SwitchSpec(name="sw-good", ports=24, seed=1))
    # A counter that comes back as a string: what a buggy firmware answers.
    broken = "\n".join(
        f"{IF_HC_IN_OCTETS_1}4|not-a-counter" if line.startswith(IF_HC_IN_OCTETS_1) else line
        for line in render(SwitchSpec(name="sw-broken", ports=24, seed=2)).splitlines()
    ) + "\n"
    agents = []
    for name, text in (("good", good), ("broken", broken)):
        data = tmp_path / name
        data.mkdir()
        (data / "public.snmprec").write_text(text)
        agents.append(SnmpsimAgent(data_dir=data, port=free_port("udp")))
    with start_snmpsim(tmp_path / "sim", agents=agents) as sim:
        yield sim


def test_one_bad_value_is_counted_not_a_down_device(tmp_path: Path, switches: Service, mosquitto: Service) -> None:
    good, broken = switches.agents  # type: ignore[attr-defined]
    cfg = write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "a1", "ward": "cam-nam"},
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},  # check tries the broker too
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": [
            {"id": "sw-good", "kind": "switch", "host": "127.0.0.1", "port": good.port, "auth": "v2c",
             "interval": "5s", "timeout": "1s"},
            {"id": "sw-broken", "kind": "switch", "host": "127.0.0.1", "port": broken.port, "auth": "v2c",
             "interval": "5s", "timeout": "1s"},
        ],
    })
    proc = subprocess.run([str(BIN / "wardwatch-agent"), "check", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("sw-")}
    assert rows["sw-good"].split()[4] == "up"
    assert rows["sw-broken"].split()[4] == "up"
    assert rows["sw-broken"].split()[7] == "24"  # every interface is still read
    assert "1 unreadable values, e.g. ifHCInOctets.1: expected a number" in rows["sw-broken"], rows["sw-broken"]
