"""The Hội An demo fleet: per ward a PoE core switch, free-Wi-Fi APs and street cameras.

Per ward:

* ``sw-core``: a 24- or 48-port switch (``SwitchSpec`` with PoE, LLDP and health rows);
* free Wi-Fi from one vendor family: the town-centre phường on a controller (Cisco WLC,
  Ruijie AC or an Aruba Instant virtual controller, one SNMP device answering for its APs),
  the xã on stand-alone UniFi or MikroTik APs (one SNMP device each, fed by a PoE port);
* street cameras (3 to 5) on the switch's camera ports, served for the whole city by ONE
  ``wardwatch-sim cameras`` process; each camera's ``feed`` is its PoE port.

The switch and the APs of a ward share one snmpsim endpoint (a UDP port per ward, as a
ward's LAN would be one subnet): the switch under community ``public``, each AP under its
device id as community. ``write_fleet`` lays out, under a base directory::

    snmpsim/<ward>/public.snmprec           # sw-core
    snmpsim/<ward>/<ap id>.snmprec          # each AP or controller, community = its id
    agents/<ward>.yaml                      # wardwatch-agent config
    outbox/<ward>.db                        # (created by the agent)
    collector.yaml                          # wardwatch-collector config

Cameras are in the agents' configs when ``cameras_in_agents`` is true (``CAMERAS_IN_AGENTS``,
the default) and the camera simulator's listing is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wardwatch.simulators.aps import ApSpec, render_ap, write_many
from wardwatch.simulators.lab import free_port
from wardwatch.simulators.snmprec import SwitchSpec, render

# (id, display name, ports on the core switch). The town-centre wards get 48 ports.
WARDS: tuple[tuple[str, str, int], ...] = (
    ("minh-an", "Phường Minh An", 48),
    ("tan-an", "Phường Tân An", 24),
    ("cam-pho", "Phường Cẩm Phô", 48),
    ("thanh-ha", "Phường Thanh Hà", 24),
    ("son-phong", "Phường Sơn Phong", 48),
    ("cam-chau", "Phường Cẩm Châu", 24),
    ("cam-an", "Phường Cẩm An", 24),
    ("cam-nam", "Phường Cẩm Nam", 24),
    ("cua-dai", "Phường Cửa Đại", 24),
    ("cam-ha", "Xã Cẩm Hà", 24),
    ("cam-kim", "Xã Cẩm Kim", 24),
    ("cam-thanh", "Xã Cẩm Thanh", 24),
    ("tan-hiep", "Xã Tân Hiệp", 24),
)
# Each ward's Wi-Fi comes from one vendor family: controllers in the city, stand-alone APs
# in the communes (Tân Hiệp, the Cù Lao Chàm islands, on MikroTik).
WIFI_VENDOR: dict[str, str] = {
    "minh-an": "cisco_wlc", "tan-an": "ruijie_ac", "cam-pho": "cisco_wlc", "thanh-ha": "ruijie_ac",
    "son-phong": "cisco_wlc", "cam-chau": "aruba_instant", "cam-an": "ruijie_ac", "cam-nam": "aruba_instant",
    "cua-dai": "ruijie_ac", "cam-ha": "unifi", "cam-kim": "mikrotik", "cam-thanh": "unifi", "tan-hiep": "mikrotik",
}
CONTROLLER_ID = {"cisco_wlc": "wlc", "ruijie_ac": "ac", "aruba_instant": "iap-vc"}
DEVICE_ID = "sw-core"
COMMUNITY = "public"
CAMERA_AUTH = "cam-admin"
CAMERA_USER = "admin"
CAMERA_PASSWORD = "Cam12345"
# Per ONVIF request. Above the agent's 2 s default: the 13 agents' first camera polls (WSDLs
# parsed, services built) all land in the demo's first seconds on a small machine.
CAMERA_TIMEOUT = "5s"
# The agents poll the cameras over ONVIF (agent/app.py). False serves the cameras but leaves
# them out of the agents' configs (an agent that polled them over SNMP would write made-up
# "down" readings).
CAMERAS_IN_AGENTS = True


@dataclass(frozen=True)
class ApDevice:
    """One SNMP device of a ward's Wi-Fi: a stand-alone AP or a controller for several."""

    id: str  # device id, and its snmpsim community
    spec: ApSpec
    feed_port: str | None  # ifName of the sw-core port powering it (stand-alone APs)


@dataclass(frozen=True)
class CameraSite:
    """A street camera on a PoE port of its ward's switch."""

    id: str  # device id: the port's alias on the switch (and its LLDP name), e.g. cam-03
    feed_port: str  # ifName of the sw-core port, e.g. Gi1/0/3
    sim_id: str = ""  # the camera simulator's id for it, once served
    brand: str = ""
    host: str = ""
    onvif_port: int = 0


@dataclass(frozen=True)
class WardSite:
    ward: str
    name: str
    agent_id: str
    agent_config: Path
    switch: SwitchSpec
    data_dir: Path  # snmpsim --data-dir for this ward: the switch and its APs
    snmp_host: str
    snmp_port: int
    aps: tuple[ApDevice, ...] = ()
    cameras: tuple[CameraSite, ...] = ()


@dataclass(frozen=True)
class Fleet:
    base_dir: Path
    collector_config: Path
    wards: tuple[WardSite, ...]
    cameras_in_agents: bool = False

    def ward(self, ward: str) -> WardSite:
        for site in self.wards:
            if site.ward == ward:
                return site
        raise KeyError(ward)

    def radios(self) -> int:
        return sum(len(ap.spec.radios()) for site in self.wards for ap in site.aps)

    def cameras(self) -> int:
        return sum(len(site.cameras) for site in self.wards)


def _ward_switch(n: int, name: str, ports: int, *, seed: int, switch_ports: int | None) -> SwitchSpec:
    return SwitchSpec(name=DEVICE_ID, ports=switch_ports or ports, seed=seed * 100 + n, location=f"{name}, Hội An",
                      poe=True, lldp=True, health=True)


def _targets(name: str, ports: int) -> tuple[int, int]:
    """(APs, cameras) a ward gets: more in the 48-port town centre, fewer in the communes."""
    if ports == 48:
        return 4, 5
    return (2, 3) if name.startswith("Xã") else (3, 4)


def _ward_aps(ward: str, switch: SwitchSpec, want: int, seed: int) -> tuple[ApDevice, ...]:
    vendor = WIFI_VENDOR[ward]
    ap_ports = [p for p in switch.port_specs() if p.role == "ap"]
    if vendor in CONTROLLER_ID:  # one controller answers for the APs on the switch's AP ports
        dev = CONTROLLER_ID[vendor]
        return (ApDevice(dev, ApSpec(vendor=vendor, name=dev, seed=seed, aps=max(1, min(want, len(ap_ports)))), None),)
    if not ap_ports:  # a seed without AP ports: one AP on the office LAN
        return (ApDevice("ap-01", ApSpec(vendor=vendor, name="ap-01", seed=seed), None),)
    return tuple(ApDevice(p.alias, ApSpec(vendor=vendor, name=p.alias, seed=seed), p.name) for p in ap_ports[:want])


def camera_count(*, seed: int = 0, switch_ports: int | None = None) -> int:
    """How many cameras ``write_fleet`` places, so that the camera simulator can serve them first."""
    total = 0
    for n, (_, name, ports) in enumerate(WARDS):
        switch = _ward_switch(n, name, ports, seed=seed, switch_ports=switch_ports)
        total += min(_targets(name, switch.ports)[1], sum(p.role == "camera" for p in switch.port_specs()))
    return total


def display_name(name: str) -> str:
    """'Phường Cẩm Phô' -> 'Cẩm Phô': the dashboard's tiles and the alerts' texts."""
    kind, _, rest = name.partition(" ")
    return rest if kind in ("Phường", "Xã") and rest else name


def write_fleet(
    base_dir: Path,
    *,
    mqtt_host: str = "127.0.0.1",
    mqtt_port: int = 1883,
    influx_url: str = "http://127.0.0.1:8086",
    influx_database: str = "wardwatch",
    http_host: str = "127.0.0.1",
    http_port: int = 8080,
    http_token: str | None = None,
    snmp_host: str = "127.0.0.1",
    snmp_ports: dict[str, int] | None = None,
    switch_ports: int | None = None,
    interval: str = "10s",
    ap_interval: str = "30s",
    camera_interval: str = "30s",
    cameras: Sequence[Mapping[str, Any]] | None = None,
    cameras_in_agents: bool = CAMERAS_IN_AGENTS,
    seed: int = 0,
) -> Fleet:
    """Write every file of the fleet and describe it.

    ``snmp_ports`` maps a ward id to the UDP port its switch and APs will listen on; wards
    missing from it get a free port. ``switch_ports`` (24 or 48) overrides the per-ward
    switch size. ``cameras`` is the camera simulator's listing (``wardwatch-sim cameras``
    output: id, brand, host, onvif_port), at least ``camera_count()`` entries, handed out
    ward by ward; without it the cameras are planned but have no address.
    """
    base = Path(base_dir).resolve()
    (base / "agents").mkdir(parents=True, exist_ok=True)
    (base / "outbox").mkdir(parents=True, exist_ok=True)
    snmp_ports = dict(snmp_ports or {})
    listing = list(cameras or [])
    needed = camera_count(seed=seed, switch_ports=switch_ports)
    if listing and len(listing) < needed:
        raise ValueError(f"{len(listing)} cameras served, the fleet needs {needed}")
    with_cameras = bool(listing) and cameras_in_agents
    sites = []
    for n, (ward, name, ports) in enumerate(WARDS):
        port = snmp_ports.get(ward) or free_port("udp", avoid=set(snmp_ports.values()))
        snmp_ports[ward] = port
        spec = _ward_switch(n, name, ports, seed=seed, switch_ports=switch_ports)
        want_aps, want_cams = _targets(name, spec.ports)
        aps = _ward_aps(ward, spec, want_aps, seed * 100 + n)
        cams = []
        for p in [p for p in spec.port_specs() if p.role == "camera"][:want_cams]:
            cam = CameraSite(id=p.alias, feed_port=p.name)
            if listing:
                served = listing.pop(0)
                cam = CameraSite(id=p.alias, feed_port=p.name, sim_id=str(served["id"]), brand=str(served["brand"]),
                                 host=str(served["host"]), onvif_port=int(served["onvif_port"]))
            cams.append(cam)
        data_dir = base / "snmpsim" / ward
        write_many(data_dir, {COMMUNITY: render(spec), **{ap.id: render_ap(ap.spec) for ap in aps}})

        snmp = {"host": snmp_host, "port": port}
        auth: dict[str, object] = {"v2c-public": {"snmp": {"version": "2c", "community": COMMUNITY}}}
        uplink = next(p.name for p in spec.port_specs() if p.role == "uplink")  # the port to the city core
        devices: list[dict[str, object]] = [{"id": DEVICE_ID, "kind": "switch", **snmp, "auth": "v2c-public",
                                             "interval": interval, "uplink": uplink}]
        for ap in aps:
            auth[ap.id] = {"snmp": {"version": "2c", "community": ap.id}}
            entry: dict[str, object] = {"id": ap.id, "kind": "ap", **snmp, "auth": ap.id, "interval": ap_interval}
            if ap.feed_port:
                entry["feed"] = {"switch": DEVICE_ID, "port": ap.feed_port}
            devices.append(entry)
        if with_cameras:
            auth[CAMERA_AUTH] = {"onvif": {"username": CAMERA_USER, "password": CAMERA_PASSWORD}}
            devices += [{"id": c.id, "kind": "camera", "host": c.host, "port": c.onvif_port, "auth": CAMERA_AUTH,
                         "interval": camera_interval, "timeout": CAMERA_TIMEOUT, "vendor": c.brand,
                         "feed": {"switch": DEVICE_ID, "port": c.feed_port}} for c in cams]
        agent_id = f"{ward}-1"
        config = {
            "agent": {"id": agent_id, "ward": ward},
            "mqtt": {"host": mqtt_host, "port": mqtt_port},
            "outbox": {"path": str(base / "outbox" / f"{ward}.db")},
            "auth": auth,
            "devices": devices,
        }
        path = base / "agents" / f"{ward}.yaml"
        _write_yaml(path, config, f"wardwatch-agent config for {name} ({ward}), written by wardwatch-sim")
        sites.append(
            WardSite(
                ward=ward,
                name=name,
                agent_id=agent_id,
                agent_config=path,
                switch=spec,
                data_dir=data_dir,
                snmp_host=snmp_host,
                snmp_port=port,
                aps=aps,
                cameras=tuple(cams),
            )
        )
    collector = {
        "mqtt": {"host": mqtt_host, "port": mqtt_port},
        "influx": {"api": "v1", "url": influx_url, "database": influx_database},
        "http": {"host": http_host, "port": http_port, **({"token": http_token} if http_token else {})},
        "timezone": "Asia/Ho_Chi_Minh",
        "wards": {ward: display_name(name) for ward, name, _ports in WARDS},
        # The alert engine, and with it the web dashboard: notices on the MQTT topic
        # wardwatch/v1/alerts/{ward}/{severity} (docs/alerts.md).
        "alerts": {"state": str(base / "alerts.db"), "channels": {"bus": {"type": "mqtt"}}},
    }
    collector_path = base / "collector.yaml"
    _write_yaml(collector_path, collector, "wardwatch-collector config for the demo, written by wardwatch-sim")
    return Fleet(base_dir=base, collector_config=collector_path, wards=tuple(sites), cameras_in_agents=with_cameras)


def _write_yaml(path: Path, data: dict[str, object], comment: str) -> None:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=200)
    path.write_text(f"# {comment}\n{body}", encoding="utf-8")
