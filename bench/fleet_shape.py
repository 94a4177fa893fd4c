"""What the Hội An demo fleet sends, counted from real polls: per device kind, the readings,
values (fields) and series of one poll, and the MQTT batches, for docs/scaling.md.

    .venv/bin/python bench/fleet_shape.py [--wards all|minh-an,tan-hiep]

Writes the fleet (simulators/fleet.py), serves the chosen wards' switches, APs and
controllers from one snmpsim and every camera from one ``wardwatch-sim cameras``, and polls
each of the chosen wards' devices twice through the agent's own pollers (the second poll
has the rates), as ``wardwatch-agent check`` does. Prints the per-kind figures of the second
poll and the city's device counts. Bounded: two polls per device, 300 s in all.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wardwatch.agent.core.app import open_pollers
from wardwatch.agent.core.check import _poll_all
from wardwatch.agent.core.config import load_config
from wardwatch.agent.core.icmp import Pinger
from wardwatch.agent.core.poller import Context
from wardwatch.agent.core.ports import PortStates
from wardwatch.simulators.demo import _start_cameras
from wardwatch.simulators.fleet import WARDS, camera_count, write_fleet
from wardwatch.simulators.lab import SnmpsimAgent, start_snmpsim


async def _second_poll_results(path: Path) -> list[Any]:
    """Every device of the ward's agent config polled twice (the switches first, then what
    they feed), 2 s apart so that counters give rates: the second poll's results."""
    cfg = load_config(path)
    ctx = Context(cfg=cfg, pinger=Pinger(), ports=PortStates())
    async with open_pollers(cfg, ctx) as pollers:
        results = []
        for n in range(2):
            first = [d for d in cfg.devices if d.feed is None]
            fed = [d for d in cfg.devices if d.feed is not None]
            results = [*await _poll_all(first, pollers, ctx), *await _poll_all(fed, pollers, ctx)]
            if n == 0:
                await asyncio.sleep(2)
    return results


async def poll_ward(path: Path) -> dict[str, collections.Counter[str]]:
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in await _second_poll_results(path):
        c = out[r.device.kind]
        c["devices"] += 1
        c["ok"] += r.answered
        c["readings"] += len(r.readings)
        c["values"] += sum(len(x.fields) for x in r.readings)
        c["series"] += len({(x.measurement, x.device, tuple(sorted(x.tags.items()))) for x in r.readings})
        c["field_series"] += len({(x.measurement, x.device, tuple(sorted(x.tags.items())), f)
                                  for x in r.readings for f in x.fields})
        for x in r.readings:
            c[f"values:{x.measurement}"] += len(x.fields)
    return out


async def _second_poll(path: Path) -> list[Any]:
    return [reading for r in await _second_poll_results(path) for reading in r.readings]


def ward_readings(ward: str) -> list[Any]:
    """Every reading of one ward's second poll, its simulators started and stopped here."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        cams, listing = _start_cameras(run, camera_count(), "warning")
        try:
            fleet = write_fleet(run / "fleet", cameras=listing["cameras"])
            site = fleet.ward(ward)
            sim = start_snmpsim(run / "sim", agents=[SnmpsimAgent(data_dir=site.data_dir, port=site.snmp_port,
                                                                  host=site.snmp_host)])
            try:
                return asyncio.run(asyncio.wait_for(_second_poll(site.agent_config), 240))
            finally:
                sim.stop()
        finally:
            cams.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wards", default="all", help="comma-separated ward ids, or all")
    args = ap.parse_args()
    chosen = [w for w, _n, _p in WARDS] if args.wards == "all" else args.wards.split(",")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        cams, listing = _start_cameras(run, camera_count(), "warning")
        try:
            fleet = write_fleet(run / "fleet", cameras=listing["cameras"])
            print(f"city: {len(fleet.wards)} wards, {fleet.switches()} switches, {fleet.snmp_devices()} SNMP devices, "
                  f"{fleet.aps()} APs ({fleet.radios()} radios), {fleet.cameras()} cameras")
            for site in fleet.wards:
                print(f"  {site.ward}: {len(site.switches())} switches "
                      f"({sum(s.ports for s in site.switches())} ports), {site.ap_count()} APs in "
                      f"{len(site.aps)} SNMP devices, {len(site.cameras)} cameras")
            sites = [s for s in fleet.wards if s.ward in chosen]
            sim = start_snmpsim(run / "sim", agents=[SnmpsimAgent(data_dir=s.data_dir, port=s.snmp_port,
                                                                  host=s.snmp_host) for s in sites])
            total: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
            try:
                for site in sites:
                    got = asyncio.run(asyncio.wait_for(poll_ward(site.agent_config), 240))
                    for kind, c in got.items():
                        total[kind].update(c)
                    for kind, c in sorted(got.items()):
                        d = c["devices"]
                        print(f"{site.ward} {kind}: {d} devices ({c['ok']} answered); per poll: "
                              f"{c['readings']} readings, {c['values']} values, {c['series']} series, "
                              f"{c['field_series']} field series; per device {c['values'] / d:.1f} values, "
                              f"{c['series'] / d:.1f} series")
                        per = ", ".join(f"{k[7:]} {v}" for k, v in sorted(c.items()) if k.startswith("values:"))
                        print("    " + per)
            finally:
                sim.stop()
            for kind, c in sorted(total.items()):
                print(f"ALL {kind}: {c['devices']} devices ({c['ok']} answered); per poll {c['readings']} readings, "
                      f"{c['values']} values, {c['series']} series")
            print(f"ALL: {sum(c['values'] for c in total.values())} values, "
                  f"{sum(c['readings'] for c in total.values())} readings, "
                  f"{sum(c['series'] for c in total.values())} series, "
                  f"{sum(c['devices'] for c in total.values())} devices per round of polls")
        finally:
            cams.stop()
    print(f"({time.monotonic() - started:.0f} s; {', '.join(w for w, _n, _p in WARDS if w in chosen)})")


if __name__ == "__main__":
    main()
