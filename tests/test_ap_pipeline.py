"""Every vendor profile end to end: snmpsim (one process, a community per device) -> agent ->
Mosquitto -> collector -> InfluxDB, and each metric read back from InfluxDB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.snmp_pipeline import pipeline
from tests.util import wait_for
from wardwatch.simulators.aps import VENDORS, ApSpec, render_ap, write_many
from wardwatch.simulators.lab import InfluxService, Service, SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import CPU_LOADS, POE_BUDGET_W, SwitchSpec, render

pytestmark = pytest.mark.services

APS = {v: ApSpec(vendor=v, name=v.replace("_", "-"), seed=11) for v in VENDORS}
SWITCH = SwitchSpec(name="sw-poe", ports=24, seed=5, poe=True, lldp=True, health=True)
VENDOR_TAG = {"unifi": "ubiquiti", "aruba_instant": "aruba", "cisco_wlc": "cisco", "mikrotik": "mikrotik",
              "ruijie_ac": "ruijie"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    run = tmp_path_factory.mktemp("apsim")
    write_many(run / "data", {**{v: render_ap(s) for v, s in APS.items()}, "sw-poe": render(SWITCH)})
    with start_snmpsim(run, agents=[SnmpsimAgent(data_dir=run / "data", port=free_port("udp"))]) as svc:
        yield svc


@pytest.fixture
def db(tmp_path: Path, sim: Service, mosquitto: Service, influx: InfluxService, database: str,
       unique: str) -> Iterator[str]:
    communities = [*APS, "sw-poe"]
    devices = [{"id": c.replace("_", "-"), "kind": "switch" if c == "sw-poe" else "ap", "host": "127.0.0.1",
                "port": sim.port, "auth": c, "interval": "2s", "timeout": "1s", "retries": 0} for c in communities]
    auth = {c: {"snmp": {"version": "2c", "community": c}} for c in communities}
    with pipeline(tmp_path, mosquitto=mosquitto, influx=influx, database=database, agent_id=f"ap-{unique}",
                  auth=auth, devices=devices):
        # Two good polls of every device: the first poll's readings are all in by then.
        q = "SELECT count(up) AS n FROM device_status WHERE up = 1 GROUP BY device"
        wait_for(lambda: sum(r["n"] >= 2 for r in influx.points(q, db=database)) == len(devices), timeout=40,
                 what=lambda: f"two good polls of every device; got {influx.points(q, db=database)}")
        yield database


def last(influx: InfluxService, db: str, measurement: str, device: str) -> list[dict[str, Any]]:
    """The newest point of every series of a measurement for one device, with its time."""
    return influx.points(f"SELECT * FROM {measurement} WHERE device = '{device}' GROUP BY * ORDER BY time DESC "
                         f"LIMIT 1", db=db, epoch="ms")


def every(influx: InfluxService, db: str, measurement: str, device: str, key: Callable[[dict[str, Any]], Any],
          want: set[Any]) -> list[dict[str, Any]]:
    """:func:`last` once every series in ``want`` has a point. A walk that times out after
    its first pages keeps the rows it read (client.py), so on a loaded machine a poll may
    bring only the first AP's rows; the rest come with a later poll."""
    return wait_for(lambda: (rows := last(influx, db, measurement, device)) and {key(r) for r in rows} >= want
                    and rows, timeout=30,
                    what=lambda: f"{device} {measurement} for {sorted(map(str, want))}; "
                                 f"got {sorted(str(key(r)) for r in last(influx, db, measurement, device))}")


@pytest.mark.parametrize("vendor", VENDORS)
def test_vendor_radios_reach_influxdb(vendor: str, influx: InfluxService, db: str) -> None:
    spec = APS[vendor]
    device = vendor.replace("_", "-")
    want = {(r.ap, r.radio) for r in spec.radios()}
    rows = every(influx, db, "wifi_radio", device, lambda r: (r.get("ap") or "", r["radio"]), want)
    got = {(r.get("ap") or "", r["radio"]): r for r in rows}
    assert set(got) == want
    for radio in spec.radios():
        row = got[(radio.ap, radio.radio)]
        assert row["vendor"] == VENDOR_TAG[vendor]
        assert row["clients"] == pytest.approx(radio.clients_at(row["time"] / 1000), abs=1), radio
        if vendor != "ruijie_ac":  # the AC counts clients per AP, nothing per radio
            assert row["channel"] == radio.channel
        if vendor in ("unifi", "aruba_instant", "cisco_wlc"):
            assert row["util_pct"] == radio.util_pct
        if vendor in ("aruba_instant", "mikrotik"):
            assert row["noise_dbm"] == radio.noise_dbm
        if vendor in ("unifi", "aruba_instant"):
            assert row["tx_power_dbm"] == radio.tx_power_dbm
        if vendor in ("unifi", "cisco_wlc", "ruijie_ac"):
            assert row["up"] == 1

    expected = spec.ssid_clients_at(0)
    ssids = every(influx, db, "wifi_ssid", device, lambda r: r["ssid"], set(expected)) if expected else []
    assert {r["ssid"] for r in ssids} == set(expected)
    for r in ssids:
        assert r["clients"] == pytest.approx(spec.ssid_clients_at(r["time"] / 1000)[r["ssid"]], abs=2)


def test_controllers_report_their_aps(influx: InfluxService, db: str) -> None:
    wlc = wait_for(lambda: last(influx, db, "device_health", "cisco-wlc"), timeout=20, what="cisco-wlc health")
    assert (wlc[0]["aps_joined"], wlc[0]["aps_down"]) == (3, 0)
    ruijie = last(influx, db, "device_health", "ruijie-ac")[0]
    assert ruijie["aps_joined"] == 3
    assert ruijie["clients"] == pytest.approx(APS["ruijie_ac"].total_clients_curve().at(ruijie["time"] / 1000), abs=1)
    names = set(APS["aruba_instant"].ap_names())
    aruba = {r["ap"]: r["cpu_pct"] for r in every(influx, db, "device_health", "aruba-instant",
                                                  lambda r: r.get("ap"), names)}
    assert set(aruba) == set(APS["aruba_instant"].ap_names())
    assert last(influx, db, "device_health", "mikrotik")[0]["cpu_pct"] == 7


def test_poe_lldp_and_health_of_a_switch(influx: InfluxService, db: str) -> None:
    poe = every(influx, db, "poe", "sw-poe", lambda r: r.get("if_name"), set(SWITCH.poe_delivering()))
    ports = {r["if_name"]: r["delivering"] for r in poe if r.get("if_name")}
    assert ports == SWITCH.poe_delivering()
    pse = next(r for r in poe if r.get("pse") == "1")
    assert (pse["budget_w"], pse["consumption_w"], pse["pse_up"]) == (POE_BUDGET_W, SWITCH.poe_consumption_w(), 1)

    links = {r["if_name"]: (r["remote_sysname"], r["remote_port"], r["neighbors"])
             for r in last(influx, db, "lldp_link", "sw-poe")}
    assert links == {name: (*n, 1) for name, n in SWITCH.lldp_neighbors().items()}
    # Remote names are fields: the only tags are the bounded ones.
    tags = influx.points("SHOW TAG KEYS FROM lldp_link", db=db)
    assert {t["tagKey"] for t in tags} <= {"ward", "device", "kind", "agent", "vendor", "if_name"}

    health = last(influx, db, "device_health", "sw-poe")[0]
    assert health["cpu_pct"] == sum(CPU_LOADS) / len(CPU_LOADS)
    assert health["temp_c"] == 41.5
