"""End to end on real services: snmpsim switches -> agent -> Mosquitto -> collector -> InfluxDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.snmp_pipeline import WARD, pipeline
from tests.util import wait_for
from wardwatch.simulators.lab import InfluxService, Service, SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

pytestmark = pytest.mark.services

INTERVAL = 2.0
DASHBOARDS = Path(__file__).parent.parent / "dashboards"


@dataclass
class Fleet:
    specs: dict[str, SwitchSpec]
    sims: dict[str, Service]
    agent: Service
    collector: Service
    database: str


def _switch(run_dir: Path, spec: SwitchSpec) -> Service:
    data = run_dir / spec.name
    data.mkdir(parents=True)
    (data / "public.snmprec").write_text(render(spec))
    return start_snmpsim(run_dir / f"sim-{spec.name}", agents=[SnmpsimAgent(data_dir=data, port=free_port("udp"))])


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Service, influx: InfluxService, database: str, unique: str) -> Iterator[Fleet]:
    specs = {name: SwitchSpec(name=name, ports=ports, seed=7) for name, ports in (("sw-a", 24), ("sw-b", 48))}
    sims = {name: _switch(tmp_path, spec) for name, spec in specs.items()}
    devices = [
        {"id": name, "kind": "switch", "host": "127.0.0.1", "port": sims[name].port,
         "auth": "v2c-public", "interval": f"{INTERVAL}s", "timeout": "0.5s", "retries": 0,
         # A killed simulator stands for a dead switch; 127.0.0.1 itself would still answer pings.
         "icmp": False}
        for name in specs
    ]
    try:
        with pipeline(tmp_path, mosquitto=mosquitto, influx=influx, database=database, agent_id=f"agent-{unique}",
                      auth={"v2c-public": {"snmp": {"version": "2c", "community": "public"}}},
                      devices=devices) as (agent, collector):
            yield Fleet(specs, sims, agent, collector, database)
    finally:
        for svc in sims.values():
            svc.stop()


def _points(influx: InfluxService, db: str, q: str) -> list[dict]:
    return influx.points(q, db=db, epoch="ms")


def test_rates_and_status_reach_influxdb(fleet: Fleet, influx: InfluxService) -> None:
    spec = fleet.specs["sw-a"]
    port = next(p for p in spec.port_specs() if p.oper_up and p.in_bps > 0)
    q = (f"SELECT in_bps, out_bps FROM if_traffic WHERE device='sw-a' AND if_name='{port.name}' "
         f"AND ward='{WARD}' AND in_bps > 0")
    rows = wait_for(lambda: len(r := _points(influx, fleet.database, q)) >= 3 and r,
                    timeout=30, what=f"three if_traffic rates for sw-a {port.name}")
    for row in rows:
        assert row["in_bps"] == pytest.approx(port.in_bps, rel=0.05), rows
        assert row["out_bps"] == pytest.approx(port.out_bps, rel=0.05), row

    status = _points(influx, fleet.database, "SELECT last(up) AS up FROM device_status GROUP BY device")
    assert {r["device"]: r["up"] for r in status} == {"sw-a": 1, "sw-b": 1}
    names = _points(influx, fleet.database, "SHOW TAG VALUES FROM if_traffic WITH KEY = if_name WHERE device='sw-b'")
    assert len(names) == 48


def test_dead_switch_goes_down_while_the_other_keeps_reporting(fleet: Fleet, influx: InfluxService) -> None:
    wait_for(lambda: _points(influx, fleet.database, "SELECT up FROM device_status WHERE device='sw-a'"),
             timeout=20, what="first sw-a status")
    fleet.sims["sw-a"].kill()
    killed_ms = time.time() * 1000

    down_q = f"SELECT up, reason FROM device_status WHERE device='sw-a' AND up = 0 AND time > {int(killed_ms)}ms"
    down = wait_for(lambda: _points(influx, fleet.database, down_q), timeout=4 * INTERVAL + 5,
                    what="sw-a reported down")
    # The first failed poll is stamped when the poll gave up: within two intervals of the kill.
    assert down[0]["time"] - killed_ms <= 2 * INTERVAL * 1000
    assert down[0]["reason"] == "timeout"

    up_q = f"SELECT up FROM device_status WHERE device='sw-b' AND up = 1 AND time > {int(killed_ms)}ms"
    alive = wait_for(lambda: len(r := _points(influx, fleet.database, up_q)) >= 2 and r,
                     timeout=4 * INTERVAL + 5, what="sw-b still reporting")
    assert all(r["up"] == 1 for r in alive)


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, InfluxQL) for every query of ward-overview.json, with Grafana's macros
    filled in as Grafana would for 'the last hour, all wards'. (Every dashboard, with the
    series this pipeline does not write, such as alerts: tests/test_grafana.py.)"""
    out = []
    for path in [DASHBOARDS / "ward-overview.json"]:
        dash = json.loads(path.read_text())
        for var in dash["templating"]["list"]:
            if var["type"] == "datasource":  # Grafana's data source picker: no query
                continue
            out.append((f"{path.name}: variable {var['name']}", var["query"]))
        for panel in dash["panels"]:
            for target in panel.get("targets", []):  # rows have none
                q = (target["query"].replace("$timeFilter", "time > now() - 1h")
                     .replace("$__interval", "10s").replace("$ward", ".*"))
                out.append((f"{path.name}: {panel['title']} {target['refId']}", q))
    return out


# Wi-Fi, PoE and camera panels need APs, PoE switches and cameras: tests/test_demo.py runs
# every query against the demo fleet's data; this fleet (two plain switches) covers the rest.
NOT_IN_THIS_FLEET = ("wifi_radio", "wifi_ssid", "poe", "camera_health")


def test_dashboard_queries_return_the_pipelines_data(fleet: Fleet, influx: InfluxService) -> None:
    queries = [(t, q) for t, q in dashboard_queries() if not any(f'"{m}"' in q for m in NOT_IN_THIS_FLEET)]
    assert len(queries) >= 9

    empty: list[str] = []

    def all_have_data() -> bool:
        empty[:] = [title for title, q in queries if not influx.points(q, db=fleet.database)]
        return not empty

    # Every panel has data once the agent's and the collector's self-metrics have come in.
    wait_for(all_have_data, timeout=40, what=lambda: f"data for every dashboard query; none yet for {empty}")
    up = next(q for title, q in queries if title.endswith("Devices up A"))
    assert {(r["ward"], r["device"], r["up"]) for r in influx.points(up, db=fleet.database)} == {
        (WARD, "sw-a", 1), (WARD, "sw-b", 1)}
