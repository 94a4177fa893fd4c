"""The ward's uplink: a switch's `uplink:` key marks that port's if_traffic readings with
uplink=1 (report capacity finds it with ``WHERE uplink = 1``); the demo fleet sets it on
each core switch; only a switch has one, and an agent has at most one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.test_agent_config import GOOD, mutate, write
from wardwatch.agent.core.config import DeviceConfig, SnmpAuth, load_config
from wardwatch.agent.snmp.client import Engines, SnmpSession
from wardwatch.agent.snmp.device import SnmpState, poll_device
from wardwatch.config import ConfigError
from wardwatch.simulators.fleet import DEVICE_ID, write_fleet
from wardwatch.simulators.lab import SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render
from wardwatch.wire import Reading

SPEC = SwitchSpec(name="sw-up", ports=24, seed=3)  # the uplink is the last port, Te1/0/24


async def _poll_twice(port: int, uplink: str) -> list[Reading]:
    dev = DeviceConfig(id="sw-up", kind="switch", host="127.0.0.1", port=port, auth="v2c", interval=30,
                       timeout=2, retries=1, icmp=False, uplink=uplink)
    engines = Engines()
    try:
        session = SnmpSession(engine=engines.default, device=dev, auth=SnmpAuth(version="2c", community="public"))
        state = SnmpState()
        await poll_device(session, state)
        await asyncio.sleep(1.2)  # the second poll has rates
        return await poll_device(session, state)
    finally:
        engines.close()


@pytest.mark.services
def test_the_uplink_port_and_only_it_carries_uplink_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "public.snmprec").write_text(render(SPEC))
    agent = SnmpsimAgent(data_dir=data, port=free_port("udp"))
    with start_snmpsim(tmp_path / "run", agents=[agent]):
        readings = asyncio.run(_poll_twice(agent.port, "Te1/0/24"))
    traffic = {r.tags["if_name"]: r.fields for r in readings if r.measurement == "if_traffic"}
    assert len(traffic) == 24, sorted(traffic)
    assert {name for name, f in traffic.items() if "uplink" in f} == {"Te1/0/24"}
    up = traffic["Te1/0/24"]
    assert up["uplink"] == 1 and up["speed_mbps"] == 10_000 and "in_bps" in up, up


def test_the_demo_fleet_marks_each_core_switchs_uplink(tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path, mqtt_port=1999, influx_url="http://127.0.0.1:8999", http_port=8998)
    for site in fleet.wards:
        cfg = load_config(site.agent_config)
        (core,) = [d for d in cfg.devices if d.id == DEVICE_ID]
        (uplink,) = [p.name for p in site.switch.port_specs() if p.role == "uplink"]
        assert core.uplink == uplink, site.ward
        assert [d.id for d in cfg.devices if d.uplink] == [DEVICE_ID]


def test_uplink_only_on_a_switch_and_once_per_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("V3_AUTH", "authpass123")
    ok = load_config(write(tmp_path, mutate("devices.0.uplink", "Te1/0/24")))
    assert ok.devices[0].uplink == "Te1/0/24" and ok.devices[1].uplink is None
    assert load_config(write(tmp_path, GOOD)).devices[0].uplink is None

    on_ap = mutate("devices.1.uplink", "Gi1/0/1")
    on_ap["devices"][1]["kind"] = "ap"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, on_ap))
    assert str(err.value).startswith("devices[1].uplink: only a switch has an uplink port, not an ap"), str(err.value)

    twice = mutate("devices.0.uplink", "Te1/0/24")
    twice["devices"][1]["uplink"] = "Te1/0/48"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, twice))
    assert str(err.value).startswith("devices[1].uplink: the ward's uplink is already devices[0]'s port 'Te1/0/24'")
