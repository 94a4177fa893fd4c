"""The Hội An demo fleet: one simulated core switch, one agent config per ward.

``write_fleet`` lays out, under a base directory::

    snmpsim/<ward>/sw-core/public.snmprec   # snmpsim data dir per ward; community "public"
    agents/<ward>.yaml                      # wardwatch-agent config
    outbox/<ward>.db                        # (created by the agent)
    collector.yaml                          # wardwatch-collector config
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from wardwatch.services import free_port
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
DEVICE_ID = "sw-core"
COMMUNITY = "public"


@dataclass(frozen=True)
class WardSite:
    ward: str
    name: str
    agent_id: str
    agent_config: Path
    switch: SwitchSpec
    data_dir: Path  # snmpsim --data-dir for this ward's switch
    snmp_host: str
    snmp_port: int


@dataclass(frozen=True)
class Fleet:
    base_dir: Path
    collector_config: Path
    wards: tuple[WardSite, ...]

    def ward(self, ward: str) -> WardSite:
        for site in self.wards:
            if site.ward == ward:
                return site
        raise KeyError(ward)


def write_fleet(
    base_dir: Path,
    *,
    mqtt_host: str = "127.0.0.1",
    mqtt_port: int = 1883,
    influx_url: str = "http://127.0.0.1:8086",
    influx_database: str = "wardwatch",
    http_host: str = "127.0.0.1",
    http_port: int = 8080,
    snmp_host: str = "127.0.0.1",
    snmp_ports: dict[str, int] | None = None,
    switch_ports: int | None = None,
    interval: str = "10s",
    seed: int = 0,
) -> Fleet:
    """Write every file of the fleet and describe it.

    ``snmp_ports`` maps a ward id to the UDP port its switch will listen on; wards
    missing from it get a free port. ``switch_ports`` (24 or 48) overrides the
    per-ward switch size.
    """
    base = Path(base_dir).resolve()
    (base / "agents").mkdir(parents=True, exist_ok=True)
    (base / "outbox").mkdir(parents=True, exist_ok=True)
    snmp_ports = dict(snmp_ports or {})
    sites = []
    for n, (ward, name, ports) in enumerate(WARDS):
        port = snmp_ports.get(ward) or free_port("udp", avoid=set(snmp_ports.values()))
        snmp_ports[ward] = port
        spec = SwitchSpec(
            name=DEVICE_ID,
            ports=switch_ports or ports,
            seed=seed * 100 + n,
            location=f"{name}, Hội An",
        )
        data_dir = base / "snmpsim" / ward / DEVICE_ID
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / f"{COMMUNITY}.snmprec").write_text(render(spec))
        agent_id = f"{ward}-1"
        config = {
            "agent": {"id": agent_id, "ward": ward},
            "mqtt": {"host": mqtt_host, "port": mqtt_port},
            "outbox": {"path": str(base / "outbox" / f"{ward}.db")},
            "auth": {"v2c-public": {"snmp": {"version": "2c", "community": COMMUNITY}}},
            "devices": [
                {
                    "id": DEVICE_ID,
                    "kind": "switch",
                    "host": snmp_host,
                    "port": port,
                    "auth": "v2c-public",
                    "interval": interval,
                }
            ],
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
            )
        )
    collector = {
        "mqtt": {"host": mqtt_host, "port": mqtt_port},
        "influx": {"api": "v1", "url": influx_url, "database": influx_database},
        "http": {"host": http_host, "port": http_port},
    }
    collector_path = base / "collector.yaml"
    _write_yaml(collector_path, collector, "wardwatch-collector config for the demo, written by wardwatch-sim")
    return Fleet(base_dir=base, collector_config=collector_path, wards=tuple(sites))


def _write_yaml(path: Path, data: dict[str, object], comment: str) -> None:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=200)
    path.write_text(f"# {comment}\n{body}", encoding="utf-8")
