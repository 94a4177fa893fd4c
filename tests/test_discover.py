"""``wardwatch-agent discover`` sweeps 127.0.0.0/28 (snmpsim agents on 127.0.0.2, .3 and .5,
one snmpsim process) and writes device entries the agent accepts as they are."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.util import BIN, write_yaml
from wardwatch.agent.core.config import load_config
from wardwatch.simulators.aps import ApSpec, render_ap
from wardwatch.simulators.lab import Service, SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

pytestmark = pytest.mark.services

DEVICES = {
    "127.0.0.2": render(SwitchSpec(name="sw-core", ports=24, seed=1, poe=True)),
    "127.0.0.3": render_ap(ApSpec(vendor="unifi", name="ap-market", seed=2)),
    "127.0.0.5": render_ap(ApSpec(vendor="mikrotik", name="ap-pier", seed=3)),
}


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    run = tmp_path_factory.mktemp("discover")
    port = free_port("udp")  # free on 127.0.0.1; the others are unused loopback addresses
    agents = []
    for host, text in DEVICES.items():
        data = run / host
        data.mkdir()
        (data / "ward7.snmprec").write_text(text)  # the community is ward7
        (data / "public.snmprec").write_text("1.3.6.1.2.1.1.3.0|67:numeric|rate=100\n")  # readiness only
        agents.append(SnmpsimAgent(data_dir=data, port=port, host=host))
    with start_snmpsim(run, agents=agents) as svc:
        yield svc


def test_sweep_finds_kind_and_profile_and_writes_usable_entries(tmp_path: Path, sims: Service) -> None:
    cfg = write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "disc", "ward": "cam-pho"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"wrong": {"snmp": {"version": "2c", "community": "nope"}},
                 "ward7": {"snmp": {"version": "2c", "community": "ward7"}}},
        "devices": [],
    })
    out = tmp_path / "found.yaml"
    proc = subprocess.run(
        [str(BIN / "wardwatch-agent"), "discover", "-c", str(cfg), "--cidr", "127.0.0.0/28", "--auth", "wrong",
         "--auth", "ward7", "--port", str(sims.port), "--timeout", "0.3", "--concurrency", "8", "-o", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = {d["host"]: d for d in yaml.safe_load(out.read_text())["devices"]}
    assert found == {
        "127.0.0.2": {"id": "sw-core", "kind": "switch", "host": "127.0.0.2", "port": sims.port, "auth": "ward7",
                      "profile": "generic_switch"},
        "127.0.0.3": {"id": "ap-market", "kind": "ap", "host": "127.0.0.3", "port": sims.port, "auth": "ward7",
                      "profile": "unifi", "vendor": "ubiquiti"},
        "127.0.0.5": {"id": "ap-pier", "kind": "ap", "host": "127.0.0.5", "port": sims.port, "auth": "ward7",
                      "profile": "mikrotik", "vendor": "mikrotik"},
    }
    assert "14/14 addresses, 3 found" in proc.stderr  # progress on stderr; .0 and .15 are not hosts

    # The entries go into a config as they are, and check polls them.
    full = yaml.safe_load(cfg.read_text())
    full["devices"] = list(found.values())
    load_config(write_yaml(tmp_path / "full.yaml", full))
    check = subprocess.run([str(BIN / "wardwatch-agent"), "check", "-c", str(tmp_path / "full.yaml")],
                           capture_output=True, text=True, timeout=60)
    # Every entry polls (the setup steps, the broker's among them, are not discover's business).
    assert "3 of 3 devices answered" in check.stdout, check.stdout + check.stderr
    for host, dev in found.items():
        assert re.search(rf"^{dev['id']} +{dev['kind']} +{re.escape(host)}:\d+ +v2c +up ", check.stdout, re.M), \
            check.stdout


def test_unknown_auth_name_is_refused(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path / "agent.yaml", {"agent": {"id": "d", "ward": "w"},
                                               "outbox": {"path": str(tmp_path / "o.db")}})
    proc = subprocess.run([str(BIN / "wardwatch-agent"), "discover", "-c", str(cfg), "--cidr", "127.0.0.0/30",
                           "--auth", "ward9"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--auth ward9: no SNMP auth profile of that name" in proc.stderr
