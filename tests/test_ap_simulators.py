"""The AP, PoE and LLDP recordings serve from ONE snmpsim process, one community per device,
and say what their MIBs mean (read with net-snmp's tools, not with our poller)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from wardwatch.simulators.aps import VENDORS, ApSpec, render_ap, write_many
from wardwatch.simulators.lab import Service, SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

pytestmark = pytest.mark.services

APS = {v: ApSpec(vendor=v, name=v.replace("_", "-"), seed=3) for v in VENDORS}
SWITCH = SwitchSpec(name="sw-poe", ports=24, seed=5, poe=True, lldp=True, health=True)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    run = tmp_path_factory.mktemp("apsim")
    write_many(run / "data", {**{v: render_ap(s) for v, s in APS.items()}, "sw-poe": render(SWITCH)})
    with start_snmpsim(run, agents=[SnmpsimAgent(data_dir=run / "data", port=free_port("udp"))]) as svc:
        yield svc


def walk(sim: Service, community: str, oid: str) -> dict[str, str]:
    names = subprocess.run(["snmpbulkwalk", "-v2c", "-c", community, "-On", "-Oq", "-t", "2",
                            f"127.0.0.1:{sim.port}", oid], capture_output=True, text=True, check=True, timeout=30)
    pairs = (line.split(" ", 1) for line in names.stdout.splitlines() if " " in line)
    return {k.lstrip(".").removeprefix(oid + "."): v.strip('"') for k, v in pairs
            if not v.startswith(("No more variables", "No Such"))}


def test_client_counts_follow_the_daily_curve(sim: Service) -> None:
    cisco = APS["cisco_wlc"]
    users = walk(sim, "cisco_wlc", "1.3.6.1.4.1.14179.2.2.2.1.15")  # bsnApIfNoOfUsers
    now = time.time()
    expected = sorted(r.clients_at(now) for r in cisco.radios())
    assert sorted(int(v) for v in users.values()) == pytest.approx(expected, abs=1)
    assert len(users) == 2 * cisco.aps  # one row per AP radio, from one controller
    # Over a day the curve moves: six hours later the count is different.
    r = cisco.radios()[0]
    assert {r.clients_at(now + h * 3600) for h in range(0, 24, 6)} != {r.clients_at(now)}


def test_each_vendor_answers_under_its_own_community(sim: Service) -> None:
    probes = {"unifi": "1.3.6.1.4.1.41112.1.6.3.3.0", "aruba_instant": "1.3.6.1.4.1.14823.2.3.3.1.1.2.0",
              "cisco_wlc": "1.3.6.1.4.1.14179.1.1.1.3.0", "ruijie_ac": "1.3.6.1.4.1.4881.1.1.10.2.56.1.1.11.0",
              "mikrotik": "1.3.6.1.4.1.14988.1.1.1.3.1.4"}
    for vendor, oid in probes.items():
        assert walk(sim, vendor, oid), vendor
        assert not walk(sim, "sw-poe", oid), f"{vendor}'s objects leak into another community"


def test_poe_and_lldp_switch(sim: Service) -> None:
    detection = walk(sim, "sw-poe", "1.3.6.1.2.1.105.1.1.1.6")
    delivering = {f"Gi1/0/{k.split('.')[1]}": int(v == "3") for k, v in detection.items()}
    assert delivering == SWITCH.poe_delivering()
    assert 0 < sum(delivering.values()) < len(delivering)
    sysnames = walk(sim, "sw-poe", "1.0.8802.1.1.2.1.4.1.1.9")
    assert sorted(sysnames.values()) == sorted(n for n, _ in SWITCH.lldp_neighbors().values())
