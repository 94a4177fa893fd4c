"""The generated switch recordings serve from a real snmpsim and move at the promised rates."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from wardwatch.simulators import cli
from wardwatch.simulators.fleet import WARDS, write_fleet
from wardwatch.simulators.lab import Service, SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT = "1.3.6.1.2.1.31.1.1.1.10"
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

SPEC24 = SwitchSpec(name="sw-test", ports=24, seed=7, location="Phường Cẩm Phô, Hội An")
SPEC48 = SwitchSpec(name="sw-big", ports=48, seed=8)


def snmp(tool: str, port: int, *oids: str) -> list[tuple[str, str]]:
    """(oid, value) pairs from net-snmp's snmpget/snmpwalk, numeric OIDs, bare values."""
    out = subprocess.run(
        [tool, "-v2c", "-c", "public", "-t", "2", "-r", "1", "-On", "-Oq", "-Ot", f"127.0.0.1:{port}", *oids],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    pairs = []
    for line in out.splitlines():
        oid, _, value = line.partition(" ")
        pairs.append((oid.lstrip("."), value.strip().strip('"')))
    return pairs


@pytest.fixture(scope="module")
def switches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """One snmpsim process serving the 24- and the 48-port switch; name -> UDP port."""
    base = tmp_path_factory.mktemp("snmpsim")
    agents = []
    for spec in (SPEC24, SPEC48):
        data = base / spec.name
        data.mkdir()
        (data / "public.snmprec").write_text(render(spec))
        agents.append(SnmpsimAgent(data_dir=data, port=free_port("udp")))
    service: Service = start_snmpsim(base / "run", agents=agents)
    with service:
        yield {SPEC24.name: agents[0].port, SPEC48.name: agents[1].port}


@pytest.mark.services
def test_recording_serves_system_and_if_tables(switches: dict[str, int]) -> None:
    port = switches[SPEC24.name]
    assert snmp("snmpget", port, SYS_NAME) == [(SYS_NAME, "sw-test")]
    names = [v for _, v in snmp("snmpwalk", port, IF_NAME)]
    assert names == [p.name for p in SPEC24.port_specs()]
    oper = {oid.rsplit(".", 1)[1]: v for oid, v in snmp("snmpwalk", port, IF_OPER)}
    assert oper == {str(p.index): ("1" if p.oper_up else "2") for p in SPEC24.port_specs()}
    assert "2" in oper.values()


@pytest.mark.services
def test_48_port_switch_has_48_interfaces(switches: dict[str, int]) -> None:
    names = snmp("snmpwalk", switches[SPEC48.name], IF_NAME)
    assert len(names) == 48
    assert names[-1] == (f"{IF_NAME}.48", "Te1/0/48")


@pytest.mark.services
def test_hc_counters_grow_at_the_spec_rate(switches: dict[str, int]) -> None:
    port = switches[SPEC24.name]
    camera = next(p for p in SPEC24.port_specs() if p.role == "camera")
    uplink = next(p for p in SPEC24.port_specs() if p.role == "uplink")
    dark = next(p for p in SPEC24.port_specs() if not p.oper_up)
    oids = [f"{IF_HC_IN}.{camera.index}", f"{IF_HC_OUT}.{uplink.index}", f"{IF_HC_IN}.{dark.index}"]

    def sample() -> tuple[float, list[int]]:
        t0 = time.time()
        values = [int(v) for _, v in snmp("snmpget", port, *oids)]
        return (t0 + time.time()) / 2, values

    t1, first = sample()
    time.sleep(3)  # the measurement interval itself, not a wait for readiness
    t2, second = sample()
    rates = [(b - a) * 8 / (t2 - t1) for a, b in zip(first, second, strict=True)]
    assert rates[0] == pytest.approx(camera.in_bps, rel=0.02)
    assert rates[1] == pytest.approx(uplink.out_bps, rel=0.02)
    assert rates[2] == 0


@pytest.mark.services
def test_counter32_is_the_hc_counter_modulo_2_32(switches: dict[str, int]) -> None:
    port = switches[SPEC24.name]
    p = next(p for p in SPEC24.port_specs() if p.role == "camera")
    (_, c32), (_, c64) = snmp("snmpget", port, f"{IF_IN_OCTETS}.{p.index}", f"{IF_HC_IN}.{p.index}")
    # Both are read in one PDU, a few microseconds apart.
    assert abs(int(c32) - int(c64) % 2**32) < p.in_bytes_ps * 0.05


def test_recording_is_sorted_deterministic_and_within_speed() -> None:
    text = render(SPEC48)
    oids = [tuple(int(x) for x in line.split("|", 1)[0].split(".")) for line in text.splitlines()]
    assert oids == sorted(oids)
    assert len(set(oids)) == len(oids)
    assert oids[-1][:7] == (1, 3, 6, 1, 2, 1, 47)  # rows after ifXTable: walks end cleanly
    assert render(SwitchSpec(name="sw-big", ports=48, seed=8)) == text
    assert render(SwitchSpec(name="sw-big", ports=48, seed=9)) != text
    for p in SPEC48.port_specs():
        assert max(p.in_bps, p.out_bps) <= 1.1 * p.speed_mbps * 1e6
    assert sum(p.role == "uplink" for p in SPEC48.port_specs()) == 1
    assert set(SPEC48.expected_bps()) == {p.name for p in SPEC48.port_specs()}


def test_cli_writes_the_same_recording(tmp_path: Path) -> None:
    out = tmp_path / "sw.snmprec"
    assert cli.main(["snmprec", "--ports", "48", "--name", "sw-big", "--seed", "8", "-o", str(out)]) == 0
    assert out.read_text() == render(SPEC48)


def test_fleet_writes_13_valid_agent_configs(tmp_path: Path) -> None:
    from wardwatch.agent.core.config import load_config

    fleet = write_fleet(tmp_path, mqtt_port=1999, influx_url="http://127.0.0.1:8999", http_port=8998)
    assert [w.ward for w in fleet.wards] == [w for w, _, _ in WARDS]
    assert len(fleet.wards) == 13
    configs = [yaml.safe_load(w.agent_config.read_text()) for w in fleet.wards]
    for site, cfg in zip(fleet.wards, configs, strict=True):
        assert list(cfg) == ["agent", "mqtt", "outbox", "auth", "devices"]
        assert cfg["agent"] == {"id": site.agent_id, "ward": site.ward}
        assert cfg["mqtt"] == {"host": "127.0.0.1", "port": 1999}
        assert Path(cfg["outbox"]["path"]).is_absolute()
        device = cfg["devices"][0]  # sw-core; the Wi-Fi APs follow it
        assert device["port"] == site.snmp_port
        assert (site.data_dir / "public.snmprec").read_text() == render(site.switch)
        load_config(site.agent_config)  # the agent accepts it
    assert len({c["agent"]["id"] for c in configs}) == 13
    assert len({c["devices"][0]["port"] for c in configs}) == 13
    collector = yaml.safe_load(fleet.collector_config.read_text())
    assert {k: collector[k] for k in ("mqtt", "influx", "http", "timezone")} == {
        "mqtt": {"host": "127.0.0.1", "port": 1999},
        "influx": {"api": "v1", "url": "http://127.0.0.1:8999", "database": "wardwatch"},
        "http": {"host": "127.0.0.1", "port": 8998},
        "timezone": "Asia/Ho_Chi_Minh",
    }
    # the display names the dashboard and the alerts show, without "Phường"/"Xã"
    assert collector["wards"]["cam-pho"] == "Cẩm Phô" and collector["wards"]["tan-hiep"] == "Tân Hiệp"
    assert collector["alerts"]["channels"] == {"bus": {"type": "mqtt"}}
    from wardwatch.collector.config import load_config

    assert load_config(fleet.collector_config).alerts is not None  # a valid collector config
