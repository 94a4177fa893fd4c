"""The Hội An demo fleet at its real size: 13 wards and communes, their switches, free-Wi-Fi
APs and street cameras.

Per ward (``PLANS``; Minh An, the old town, the largest, the xã smallest):

* ``sw-core``: the ward office's core switch, 24 or 48 ports: a 10 G uplink to the city
  core (its last port, the agent's ``uplink``), a downlink to each access switch, a few
  office PCs;
* ``sw-a1`` .. ``sw-a4``: 2 to 4 24-port PoE access switches out in the streets, each on a
  downlink of ``sw-core`` (its ``feed``, and the core's LLDP neighbour there), uplink
  ``Gi1/0/24``; PoE (370 W budget), LLDP (the camera or AP on each port) and health rows;
* 6 to 20 APs (``ap-01`` ..), of one or two of the five vendor families: a controller
  (Cisco WLC ``wlc``, Ruijie AC ``ac``, Aruba Instant ``iap-vc``) answering for its APs,
  and/or stand-alone UniFi or MikroTik APs, one SNMP device each with a ``feed``; every
  AP sits on an access-switch port named after it;
* 10 to 40 cameras (``cam-01`` ..) of the three brands, each on an access-switch port
  (``feed``), served for the whole city by ONE ``wardwatch-sim cameras`` process.

Wi-Fi clients follow the day (``aps.Curve``): tourist evenings in Minh An and Cửa Đại,
office hours elsewhere; ``speed`` compresses the day (the demo's ``--fast``).

A ward's SNMP devices share one snmpsim endpoint (a UDP port per ward, as a ward's LAN would
be one subnet): ``sw-core`` under community ``public``, every other device under
``ro-<id>`` (:func:`community`).
``write_fleet`` lays out, under a base directory::

    snmpsim/<ward>/public.snmprec           # sw-core
    snmpsim/<ward>/ro-<device id>.snmprec   # each access switch, AP or controller
    agents/<ward>.yaml                      # wardwatch-agent config
    outbox/<ward>.db                        # (created by the agent)
    collector.yaml                          # wardwatch-collector config
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wardwatch.config import _parse_duration
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


def community(device: str) -> str:
    """The community (snmpsim: the recording's file name) a device of the ward answers to:
    ``public`` for the core switch, ``ro-<id>`` for the rest. Not the id itself: a community
    is a secret, and the agent's logs would star every mention of the device."""
    return COMMUNITY if device == DEVICE_ID else f"ro-{device}"


@dataclass(frozen=True)
class WardPlan:
    access: int  # PoE access switches, 2-4
    wifi: tuple[tuple[str, int], ...]  # (vendor family, APs): a controller counts its APs
    cameras: int  # 10-40
    shape: str  # the Wi-Fi clients' day: "evening" (tourists) or "office"


PLANS: dict[str, WardPlan] = {
    "minh-an": WardPlan(4, (("cisco_wlc", 16), ("unifi", 4)), 40, "evening"),  # the old town
    "tan-an": WardPlan(3, (("ruijie_ac", 10),), 20, "office"),
    "cam-pho": WardPlan(4, (("cisco_wlc", 12), ("mikrotik", 4)), 32, "office"),
    "thanh-ha": WardPlan(3, (("ruijie_ac", 10),), 18, "office"),
    "son-phong": WardPlan(3, (("aruba_instant", 12),), 24, "office"),
    "cam-chau": WardPlan(3, (("aruba_instant", 10),), 20, "office"),
    "cam-an": WardPlan(3, (("ruijie_ac", 8), ("unifi", 4)), 22, "office"),
    "cam-nam": WardPlan(2, (("aruba_instant", 8),), 16, "office"),
    "cua-dai": WardPlan(3, (("ruijie_ac", 10), ("unifi", 4)), 26, "evening"),  # the beach
    "cam-ha": WardPlan(2, (("unifi", 8),), 12, "office"),
    "cam-kim": WardPlan(2, (("mikrotik", 6),), 10, "office"),
    "cam-thanh": WardPlan(2, (("unifi", 8),), 14, "office"),
    "tan-hiep": WardPlan(2, (("mikrotik", 6),), 10, "office"),  # Cù Lao Chàm, the islands
}
CLIENTS = 0.6  # of aps.py's client counts: at the old town's evening peak a busy radio has ~40
CONTROLLER_ID = {"cisco_wlc": "wlc", "ruijie_ac": "ac", "aruba_instant": "iap-vc"}
DEVICE_ID = "sw-core"
# An access switch has 16 ports, 24 where its cameras and APs need more; its last port
# (Gi1/0/16 or Gi1/0/24) is its uplink to sw-core.
ACCESS_PORTS = (16, 24)
CORE_OFFICE_PORTS = 4  # PCs of the ward office on sw-core, after the downlinks
COMMUNITY = "public"

CAMERA_AUTH = "cam-admin"
CAMERA_USER = "admin"
CAMERA_PASSWORD = "Cam12345"
# Per ONVIF request. Above the agent's 2 s default: the agents' first camera polls (hundreds
# of cameras at once) all land in the demo's first seconds on a small machine.
CAMERA_TIMEOUT = "5s"
# The agents poll the cameras over ONVIF (agent/app.py). False serves the cameras but leaves
# them out of the agents' configs.
CAMERAS_IN_AGENTS = True


@dataclass(frozen=True)
class ApDevice:
    """One SNMP device of a ward's Wi-Fi: a stand-alone AP or a controller for several."""

    id: str  # device id, and its snmpsim community
    spec: ApSpec
    feed_port: str | None  # ifName of the access-switch port powering it (stand-alone APs)
    feed_switch: str | None = None  # that access switch's id

    def ap_names(self) -> list[str]:
        return self.spec.ap_names() if self.spec.controller else [self.id]


@dataclass(frozen=True)
class CameraSite:
    """A street camera on a PoE port of one of its ward's access switches."""

    id: str  # device id, unique in the ward (cam-07): the port's alias and LLDP name
    feed_port: str  # ifName on the access switch, e.g. Gi1/0/3
    feed_switch: str = ""  # the access switch's id, e.g. sw-a2
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
    switch: SwitchSpec  # sw-core
    data_dir: Path  # snmpsim --data-dir for this ward: its switches and its APs
    snmp_host: str
    snmp_port: int
    aps: tuple[ApDevice, ...] = ()
    cameras: tuple[CameraSite, ...] = ()
    access: tuple[SwitchSpec, ...] = ()  # sw-a1 ..; each spec's name is its device id
    shape: str = "office"

    def switches(self) -> tuple[SwitchSpec, ...]:
        return (self.switch, *self.access)

    def switch_spec(self, device: str) -> SwitchSpec:
        return next(s for s in self.switches() if (DEVICE_ID if s is self.switch else s.name) == device)

    def recording(self, device: str) -> Path:
        """The .snmprec file snmpsim serves ``device`` from (community = file name)."""
        return self.data_dir / f"{community(device)}.snmprec"

    def ap_count(self) -> int:
        return sum(len(ap.ap_names()) for ap in self.aps)


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

    def switches(self) -> int:
        return sum(len(site.switches()) for site in self.wards)

    def aps(self) -> int:
        return sum(site.ap_count() for site in self.wards)

    def snmp_devices(self) -> int:
        return sum(len(site.switches()) + len(site.aps) for site in self.wards)


def camera_count(*, seed: int = 0, switch_ports: int | None = None) -> int:
    """How many cameras ``write_fleet`` places, so that the camera simulator can serve them first."""
    return sum(plan.cameras for plan in PLANS.values())


def display_name(name: str) -> str:
    """'Phường Cẩm Phô' -> 'Cẩm Phô': the dashboard's tiles and the alerts' texts."""
    kind, _, rest = name.partition(" ")
    return rest if kind in ("Phường", "Xã") and rest else name


@dataclass(frozen=True)
class _Layout:
    access: tuple[SwitchSpec, ...]
    core: SwitchSpec
    cameras: tuple[CameraSite, ...]  # without simulator ids yet
    aps: tuple[ApDevice, ...]


def _deal(n: int, k: int) -> list[int]:
    """n things over k switches, as evenly as they go (the first ones get the rest)."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _layout(n: int, ward: str, name: str, core_ports: int, *, seed: int, speed: float) -> _Layout:
    plan = PLANS[ward]
    base_seed = seed * 100 + n
    ap_total = sum(count for _, count in plan.wifi)
    ap_names = [f"ap-{i + 1:02d}" for i in range(ap_total)]
    cam_names = [f"cam-{i + 1:02d}" for i in range(plan.cameras)]
    cams_per, aps_per = _deal(plan.cameras, plan.access), _deal(ap_total, plan.access)
    busiest = max(c + a for c, a in zip(cams_per, aps_per, strict=True))
    size = next((n for n in ACCESS_PORTS if busiest <= n - 3), 0)  # an office port and a spare
    if not size:
        raise ValueError(f"{ward}: more cameras and APs than its access switches have ports")
    access: list[SwitchSpec] = []
    cameras: list[CameraSite] = []
    ap_ports: dict[str, tuple[str, str]] = {}  # AP name -> (access switch, port)
    for k in range(plan.access):
        sw = f"sw-a{k + 1}"
        roles = ["unused"] * size
        aliases: list[tuple[int, str]] = []
        index = 1
        for _ in range(cams_per[k]):
            roles[index - 1] = "camera"
            cam = cam_names.pop(0)
            aliases.append((index, cam))
            cameras.append(CameraSite(id=cam, feed_port=f"Gi1/0/{index}", feed_switch=sw))
            index += 1
        for _ in range(aps_per[k]):
            roles[index - 1] = "ap"
            ap = ap_names[len(ap_ports)]
            aliases.append((index, ap))
            ap_ports[ap] = (sw, f"Gi1/0/{index}")
            index += 1
        roles[index - 1] = "office"  # the street cabinet's maintenance port
        roles[size - 1] = "uplink"
        access.append(SwitchSpec(name=sw, ports=size, seed=base_seed * 10 + k, uplink_speed_mbps=1000,
                                 location=f"{name}, Hội An, tủ {k + 1}", poe=True, lldp=True, health=True,
                                 roles=tuple(roles), aliases=tuple(aliases),
                                 uplink_neighbor=(DEVICE_ID, f"Gi1/0/{k + 1}")))
    core_roles = ["unused"] * core_ports
    downlinks = []
    for k, spec in enumerate(access):
        up = spec.port(f"Gi1/0/{spec.ports}")
        core_roles[k] = "downlink"
        downlinks.append((k + 1, spec.name, up.out_bytes_ps, up.in_bytes_ps))
    for i in range(plan.access, plan.access + CORE_OFFICE_PORTS):
        core_roles[i] = "office"
    core_roles[core_ports - 1] = "uplink"
    core = SwitchSpec(name=DEVICE_ID, ports=core_ports, seed=base_seed, location=f"{name}, Hội An", poe=True,
                      lldp=True, health=True, roles=tuple(core_roles), downlinks=tuple(downlinks))
    aps: list[ApDevice] = []
    names = iter(ap_names)
    for vendor, count in plan.wifi:
        mine = [next(names) for _ in range(count)]
        if vendor in CONTROLLER_ID:  # one controller answers for its APs, out on the access switches
            dev = CONTROLLER_ID[vendor]
            aps.append(ApDevice(dev, ApSpec(vendor=vendor, name=dev, seed=base_seed, aps=count, shape=plan.shape,
                                            speed=speed, clients=CLIENTS, ap_names_=tuple(mine)), None))
        else:
            for ap in mine:
                sw, port = ap_ports[ap]
                aps.append(ApDevice(ap, ApSpec(vendor=vendor, name=ap, seed=base_seed, shape=plan.shape, speed=speed,
                                           clients=CLIENTS),
                                    port, sw))
    return _Layout(access=tuple(access), core=core, cameras=tuple(cameras), aps=tuple(aps))


def ward_layout(ward: str, *, seed: int = 0, speed: float = 1.0) -> _Layout:
    """What ``write_fleet`` places in one ward (KeyError for a ward not in WARDS)."""
    for n, (w, name, ports) in enumerate(WARDS):
        if w == ward:
            return _layout(n, ward, name, ports, seed=seed, speed=speed)
    raise KeyError(ward)


def write_fleet(
    base_dir: Path,
    *,
    mqtt_host: str = "127.0.0.1",
    mqtt_port: int = 1883,
    mqtt_ports: Mapping[str, int] | None = None,
    influx_url: str = "http://127.0.0.1:8086",
    influx_database: str = "wardwatch",
    http_host: str = "127.0.0.1",
    http_port: int = 8080,
    http_token: str | None = None,
    snmp_host: str = "127.0.0.1",
    snmp_ports: dict[str, int] | None = None,
    switch_ports: int | None = None,
    interval: str = "30s",
    ap_interval: str = "30s",
    camera_interval: str = "30s",
    cameras: Sequence[Mapping[str, Any]] | None = None,
    cameras_in_agents: bool = CAMERAS_IN_AGENTS,
    seed: int = 0,
    speed: float = 1.0,
    no_icmp: Collection[tuple[str, str]] = (),
    device_intervals: Mapping[tuple[str, str], str] | None = None,
    webhook_url: str | None = None,
    rules: Path | None = None,
    stale_after: str | None = None,
) -> Fleet:
    """Write every file of the fleet and describe it.

    ``snmp_ports`` maps a ward id to the UDP port its devices will listen on; wards missing
    from it get a free port. ``mqtt_ports`` maps a ward id to the broker port its agent uses
    (the demo's per-ward uplink); else ``mqtt_port``. ``switch_ports`` (24 or 48) overrides
    the core switches' size. ``cameras`` is the camera simulator's listing (``wardwatch-sim
    cameras`` output: id, brand, host, onvif_port), at least ``camera_count()`` entries,
    handed out ward by ward; without it the cameras are planned but have no address.
    ``speed`` compresses the Wi-Fi day. ``no_icmp`` lists (ward, device) that the agent must
    not ping: a simulated device on loopback always answers a ping, so one the scenario
    kills would otherwise stay up. ``device_intervals`` maps (ward, device) to an interval of
    its own (``--fast`` polls the scenario's devices more often). ``webhook_url`` adds an Alertmanager webhook channel,
    ``rules`` a rules file, ``stale_after`` the collector's bound on a silent agent.
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
    quiet = set(no_icmp)
    sites = []
    for n, (ward, name, ports) in enumerate(WARDS):
        port = snmp_ports.get(ward) or free_port("udp", avoid=set(snmp_ports.values()))
        snmp_ports[ward] = port
        lay = _layout(n, ward, name, switch_ports or ports, seed=seed, speed=speed)
        cams = []
        for cam in lay.cameras:
            if listing:
                served = listing.pop(0)
                cam = CameraSite(id=cam.id, feed_port=cam.feed_port, feed_switch=cam.feed_switch,
                                 sim_id=str(served["id"]), brand=str(served["brand"]), host=str(served["host"]),
                                 onvif_port=int(served["onvif_port"]))
            cams.append(cam)
        data_dir = base / "snmpsim" / ward
        write_many(data_dir, {COMMUNITY: render(lay.core), **{community(s.name): render(s) for s in lay.access},
                              **{community(ap.id): render_ap(ap.spec) for ap in lay.aps}})

        snmp = {"host": snmp_host, "port": port}
        auth: dict[str, object] = {"v2c-public": {"snmp": {"version": "2c", "community": COMMUNITY}}}

        def icmp(device: str, ward: str = ward, every: str = interval, snmp: bool = True) -> dict[str, object]:
            extra: dict[str, object] = {}
            if (ward, device) in (device_intervals or {}):
                extra["interval"] = every = (device_intervals or {})[(ward, device)]
            if (ward, device) in quiet:
                extra["icmp"] = False
                if snmp:  # and patience: unpinged, a slow answer from a busy snmpsim reads as down;
                    # a retry would only queue there twice
                    extra.update(timeout=f"{max(1.0, min(9.0, 0.9 * float(_parse_duration(every)))):g}s", retries=0)
            return extra

        uplink = next(p.name for p in lay.core.port_specs() if p.role == "uplink")  # the port to the city core
        devices: list[dict[str, object]] = [{"id": DEVICE_ID, "kind": "switch", **snmp, "auth": "v2c-public",
                                             "interval": interval, "uplink": uplink, **icmp(DEVICE_ID)}]
        for k, spec in enumerate(lay.access):
            auth[spec.name] = {"snmp": {"version": "2c", "community": community(spec.name)}}
            devices.append({"id": spec.name, "kind": "switch", **snmp, "auth": spec.name, "interval": interval,
                            "feed": {"switch": DEVICE_ID, "port": f"Gi1/0/{k + 1}"}, **icmp(spec.name)})
        for ap in lay.aps:
            auth[ap.id] = {"snmp": {"version": "2c", "community": community(ap.id)}}
            entry: dict[str, object] = {"id": ap.id, "kind": "ap", **snmp, "auth": ap.id, "interval": ap_interval,
                                        **icmp(ap.id, every=ap_interval)}
            if ap.feed_port and ap.feed_switch:
                entry["feed"] = {"switch": ap.feed_switch, "port": ap.feed_port}
            devices.append(entry)
        if with_cameras:
            auth[CAMERA_AUTH] = {"onvif": {"username": CAMERA_USER, "password": CAMERA_PASSWORD}}
            devices += [{"id": c.id, "kind": "camera", "host": c.host, "port": c.onvif_port, "auth": CAMERA_AUTH,
                         "interval": camera_interval, "timeout": CAMERA_TIMEOUT, "vendor": c.brand,
                         "feed": {"switch": c.feed_switch, "port": c.feed_port}, **icmp(c.id, snmp=False)}
                        for c in cams]
        agent_id = f"{ward}-1"
        config = {
            "agent": {"id": agent_id, "ward": ward},
            "mqtt": {"host": mqtt_host, "port": (mqtt_ports or {}).get(ward, mqtt_port)},
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
                switch=lay.core,
                data_dir=data_dir,
                snmp_host=snmp_host,
                snmp_port=port,
                aps=lay.aps,
                cameras=tuple(cams),
                access=lay.access,
                shape=PLANS[ward].shape,
            )
        )
    channels: dict[str, object] = {"bus": {"type": "mqtt"}}
    if webhook_url:
        channels["log"] = {"type": "webhook", "url": webhook_url, "retries": 2, "backoff": "1s"}
    alerts: dict[str, object] = {"state": str(base / "alerts.db"), "channels": channels}
    if rules is not None:
        alerts["rules"] = str(rules)
    collector: dict[str, object] = {
        "mqtt": {"host": mqtt_host, "port": mqtt_port},
        "influx": {"api": "v1", "url": influx_url, "database": influx_database},
        "http": {"host": http_host, "port": http_port, **({"token": http_token} if http_token else {})},
        "timezone": "Asia/Ho_Chi_Minh",
        "wards": {ward: display_name(name) for ward, name, _ports in WARDS},
        # The alert engine, and with it the web dashboard: notices on the MQTT topic
        # wardwatch/v1/alerts/{ward}/{severity} (docs/alerts.md), and to the webhook.
        "alerts": alerts,
    }
    if stale_after:
        collector["stale_after"] = stale_after
    collector_path = base / "collector.yaml"
    _write_yaml(collector_path, collector, "wardwatch-collector config for the demo, written by wardwatch-sim")
    return Fleet(base_dir=base, collector_config=collector_path, wards=tuple(sites), cameras_in_agents=with_cameras)


def _write_yaml(path: Path, data: dict[str, object], comment: str) -> None:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=200)
    path.write_text(f"# {comment}\n{body}", encoding="utf-8")
