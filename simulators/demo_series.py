"""The demo fleet's series as line protocol, written straight into InfluxDB without the
pipeline: for benchmarks (bench/report_capacity.py: 30 days of the city) and for tests
that need hours of data in seconds (tests/test_grafana.py: every dashboard query).

The fleet is a small one on fleet.py's 13 wards (not fleet.PLANS's full size): each a core
switch of 24 or 48 ports (its real port names and roles, the last port the uplink with
``uplink=1``), the ward's APs with 2 radios each and its 3-5 cameras. Per minute:
``if_traffic`` for every port, ``poe`` per port and per PSE, ``wifi_radio`` per radio,
``camera_health`` per camera, with the fields the agent writes (``device_status`` and the
rest are not here: report capacity never reads them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wardwatch.simulators.fleet import WARDS
from wardwatch.simulators.snmprec import POE_BUDGET_W, POE_WATTS, SwitchSpec

INTERVAL_S = 60


def _targets(name: str, ports: int) -> tuple[int, int]:
    """(APs, cameras) of a ward here: more in the 48-port town centre, fewer in the communes.
    A smaller city than ``wardwatch-sim demo``'s (fleet.PLANS): what the report benchmarks and
    the Grafana and web API tests were measured with."""
    if ports == 48:
        return 4, 5
    return (2, 3) if name.startswith("Xã") else (3, 4)


@dataclass(frozen=True)
class Ward:
    ward: str
    ports: tuple[tuple[str, str], ...]  # (ifName, role)
    uplink: str
    aps: tuple[str, ...]
    cameras: tuple[str, ...]


def fleet() -> list[Ward]:
    wards = []
    for n, (ward, name, ports) in enumerate(WARDS):
        spec = SwitchSpec(name="sw-core", ports=ports, seed=n, poe=True)
        want_aps, want_cams = _targets(name, ports)
        specs = spec.port_specs()
        wards.append(Ward(
            ward=ward, ports=tuple((p.name, p.role) for p in specs),
            uplink=next(p.name for p in specs if p.role == "uplink"),
            aps=tuple(f"ap-{i + 1:02d}" for i in range(want_aps)),
            cameras=tuple(f"cam-{i + 1:02d}" for i in range(want_cams)),
        ))
    return wards


def hour_lines(wards: list[Ward], hour_start_s: int) -> bytes:
    """One hour of the whole city, a point per series per minute (times in seconds)."""
    out: list[str] = []
    add = out.append
    for w_i, w in enumerate(wards):
        sw = f"ward={w.ward},device=sw-core,kind=switch"
        for minute in range(3600 // INTERVAL_S):
            t = hour_start_s + minute * INTERVAL_S
            day = math.sin(2 * math.pi * ((t + 7 * 3600) % 86400) / 86400 - math.pi / 2)  # low at night
            busy = 0.5 + 0.5 * day
            total = 0
            for p_i, (name, role) in enumerate(w.ports):
                if role == "uplink":
                    continue
                bps = 0 if role in ("unused", "shutdown") else int((2e6 if role == "camera" else 5e6) * (0.3 + busy)
                                                                     + p_i * 1000 + minute)
                total += bps
                up = 0 if role in ("unused", "shutdown") else 1
                add(f"if_traffic,{sw},if_name={name} in_bps={bps // 8},out_bps={bps},in_err_ps=0,out_err_ps=0,"
                    f"oper_up={up}i,speed_mbps=1000i,util_pct={bps / 1e7:.3f} {t}")
                add(f"poe,{sw},if_name={name} delivering={1 if role in ('camera', 'ap') else 0}i {t}")
            add(f"if_traffic,{sw},if_name={w.uplink} in_bps={total // 10},out_bps={total},in_err_ps=0,out_err_ps=0,"
                f"oper_up=1i,speed_mbps=10000i,util_pct={total / 1e8:.3f},uplink=1i {t}")
            draw = sum(POE_WATTS.get(role, 0) for _, role in w.ports if role in POE_WATTS)
            add(f"poe,{sw},pse=1 budget_w={POE_BUDGET_W}i,consumption_w={draw + minute % 3}i,pse_up=1i {t}")
            for a_i, ap in enumerate(w.aps):
                for r_i, radio in enumerate(("2.4GHz", "5GHz")):
                    clients = int((8 + 4 * w_i % 7 + 3 * a_i) * (0.2 + 1.6 * busy) * (0.6 if r_i == 0 else 1.0)
                                  + (minute * 7 + a_i) % 5)
                    add(f"wifi_radio,ward={w.ward},device={ap},kind=ap,radio={radio} clients={clients}i,"
                        f"channel={6 if r_i == 0 else 36}i,util_pct={min(99.0, 10 + clients * 1.7):.1f},"
                        f"noise_dbm=-92 {t}")
            for c_i, cam in enumerate(w.cameras):
                add(f"camera_health,ward={w.ward},device={cam},kind=camera ok=1i,online=1i,auth_ok=1i,"
                    f"rtt_ms={1.5 + c_i / 10:.1f},rtsp_ok=1i,snapshot_ok=1i,snapshot_bytes={180000 + minute}i,"
                    f"bitrate_kbps={2048 * (1 + c_i % 2)}i,fps=25i,clock_skew_s=0.2 {t}")
    return ("\n".join(out)).encode()
