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


def test_fleet_is_hoi_an_at_its_real_size(tmp_path: Path) -> None:
    """Per ward a core switch and 2-4 PoE access switches, 6-20 APs (controllers count theirs),
    10-40 cameras each on a named access-switch port; the old town the largest, the xã smaller;
    every AP family and the three camera brands' share of the city."""
    from wardwatch.agent.core.config import load_config
    from wardwatch.simulators.aps import VENDORS
    from wardwatch.simulators.fleet import PLANS

    served = [{"id": f"c{i}", "brand": "dahua", "host": "127.0.0.1", "onvif_port": 1000 + i} for i in range(400)]
    fleet = write_fleet(tmp_path, cameras=served)
    sizes = {}
    for site in fleet.wards:
        assert 2 <= len(site.access) <= 4 and 6 <= site.ap_count() <= 20 and 10 <= len(site.cameras) <= 40, site.ward
        sizes[site.ward] = len(site.cameras) + site.ap_count()
        cfg = load_config(site.agent_config)
        devices = {d.id: d for d in cfg.devices}
        assert [d.id for d in cfg.devices if d.uplink] == ["sw-core"]
        for k, spec in enumerate(site.access):
            # the core's downlink carries what the access switch's uplink carries, and LLDP says who is there
            down = site.switch.port(f"Gi1/0/{k + 1}")
            up = spec.port(f"Gi1/0/{spec.ports}")
            assert (down.in_bps, down.out_bps) == (up.out_bps, up.in_bps)
            assert site.switch.lldp_neighbors()[down.name][0] == spec.name
            assert devices[spec.name].feed is not None and devices[spec.name].feed.port == down.name  # type: ignore[union-attr]
        for cam in site.cameras:
            feed = devices[cam.id].feed
            assert feed is not None and (feed.switch, feed.port) == (cam.feed_switch, cam.feed_port)
            spec = site.switch_spec(cam.feed_switch)
            assert spec.port(cam.feed_port).role == "camera" and spec.lldp_neighbors()[cam.feed_port][0] == cam.id
            assert spec.poe_delivering()[cam.feed_port] == 1
        for ap in site.aps:
            assert site.recording(ap.id).exists() and site.recording(ap.id).name == f"ro-{ap.id}.snmprec"
            if not ap.spec.controller:
                spec = site.switch_spec(ap.feed_switch or "")
                assert spec.port(ap.feed_port or "").role == "ap"
        assert sum(p.role == "downlink" for p in site.switch.port_specs()) == len(site.access)
    assert max(sizes, key=lambda w: sizes[w]) == "minh-an"
    communes = [w for w, name, _ in WARDS if name.startswith("Xã")]
    assert max(sizes[w] for w in communes) < min(sizes[w] for w in sizes if w not in communes)
    assert {v for plan in PLANS.values() for v, _ in plan.wifi} == set(VENDORS)
    assert fleet.cameras() == sum(p.cameras for p in PLANS.values())
    assert {PLANS[w].shape for w in ("minh-an", "cua-dai")} == {"evening"} and PLANS["tan-an"].shape == "office"
    collector = yaml.safe_load(fleet.collector_config.read_text())
    assert set(collector["wards"]) == {w for w, _, _ in WARDS}


def test_wifi_days_tourist_evenings_and_office_hours() -> None:
    """Epoch 0 is 07:00 in Hội An: the evening curve peaks at 19:00, the office one at 13:00;
    speed compresses the day; the recording says the same as Curve.at."""
    from wardwatch.simulators.aps import Curve

    hour = 3600
    evening, office = Curve(20, 15, "evening"), Curve(20, 13, "office")
    def local(h: int) -> float:  # epoch seconds of h o'clock in Hội An on day 0
        return ((h - 7) % 24) * hour

    day = [evening.at(local(h)) for h in range(24)]
    assert day[19] == 35 == max(day) and day[7] == 5 == min(day) and day[22] > day[13]
    day = [office.at(local(h)) for h in range(24)]
    assert day[13] == 33 == max(day) and day[1] == 7 == min(day) and day[10] > day[20]
    fast = Curve(20, 15, "evening", speed=288.0)
    assert fast.at(12 * hour / 288) == evening.at(12 * hour)  # a day in 300 s
    assert "function=cos" in evening.snmprec() and "scale=-15" in evening.snmprec()


def test_shipped_scenario_names_real_devices_and_fast_divides_it(tmp_path: Path) -> None:
    from wardwatch.config import ConfigError
    from wardwatch.simulators.scenario import FAULTS, SHIPPED, Scenario, check, load_scenario

    scenario = load_scenario(SHIPPED)
    assert {f.fault for f in scenario.faults} == set(FAULTS)  # one of each kind
    fast = scenario.scaled(scenario.fast)
    assert [f.at for f in fast.faults] == [f.at / scenario.fast for f in scenario.faults]
    assert min(f.at + f.for_ for f in fast.faults) <= 100  # --fast shows a fault come and go within minutes
    bad = Scenario.model_validate({"faults": [{"fault": "camera_frozen", "ward": "cam-kim", "device": "cam-99",
                                               "at": 0, "for": 10}]})
    assert "faults[0].device: 'cam-99' is not a camera of cam-kim" in check(bad)[0]
    typo = tmp_path / "typo.yaml"
    typo.write_text("faults:\n  - {fault: switch_dead, ward: cam-an, device: sw-a3, at: 1m, for: 5m, port: 3}\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: faults\[0\].*port: unknown key"):
        load_scenario(typo)


@pytest.mark.services
def test_a_device_dies_and_returns_by_its_recording_alone(tmp_path: Path) -> None:
    """What the scenario does to kill one device: its recording swapped for snmprec.silent; the
    snmpsim process and the other device on the endpoint go on answering."""
    from wardwatch.simulators.scenario import Recordings
    from wardwatch.simulators.snmprec import silent

    data = tmp_path / "d"
    data.mkdir()
    (data / "public.snmprec").write_text(render(SPEC24))
    (data / "other.snmprec").write_text(render(SPEC48))
    agent = SnmpsimAgent(data_dir=data, port=free_port("udp"))
    with start_snmpsim(tmp_path / "run", agents=[agent]):
        files = Recordings()
        assert snmp("snmpget", agent.port, SYS_NAME) == [(SYS_NAME, "sw-test")]
        files.write(data / "public.snmprec", silent(render(SPEC24)))
        for tool, oid in (("snmpget", SYS_NAME), ("snmpwalk", IF_NAME), ("snmpbulkwalk", "1.3.6.1.2.1.2")):
            dead = subprocess.run([tool, "-v2c", "-c", "public", "-t", "1", "-r", "0", f"127.0.0.1:{agent.port}", oid],
                                  capture_output=True, text=True, timeout=30, check=False)
            assert dead.returncode != 0 and "Timeout" in dead.stderr + dead.stdout, (tool, dead)
        other = subprocess.run(["snmpget", "-v2c", "-c", "other", "-On", "-Oqv", f"127.0.0.1:{agent.port}", SYS_NAME],
                               capture_output=True, text=True, timeout=30, check=True).stdout
        assert "sw-big" in other
        files.restore(data / "public.snmprec")
        assert snmp("snmpget", agent.port, SYS_NAME) == [(SYS_NAME, "sw-test")]
