"""``wardwatch-agent discover``: the SNMP sweep (agent/snmp/discover.py) and the ONVIF
WS-Discovery (agent/camera/discover.py) side by side, written as ``devices:`` entries.

Progress goes to stderr; the YAML to stdout or a file.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from wardwatch.agent.camera import wsdiscovery
from wardwatch.agent.camera.discover import CameraFound, camera_entries, clean_comment, find_cameras
from wardwatch.agent.core.config import AgentConfig
from wardwatch.agent.snmp.discover import Found, addresses, device_entries, sweep

if TYPE_CHECKING:
    from wardwatch.agent.snmp.profiles import Catalog


def to_yaml(entries: list[dict[str, Any]], comments: dict[str, str] | None = None) -> str:
    """``devices:`` with one flow mapping per entry; ``comments`` (by id, one line each, already
    made safe) go above their entry."""
    head = "# written by wardwatch-agent discover; paste under devices: in the agent config\n"
    if not comments:
        return head + yaml.safe_dump({"devices": entries}, sort_keys=False, default_flow_style=None, width=200)
    lines = [head + "devices:"] if entries else [head + "devices: []"]
    for e in entries:
        note = comments.get(str(e["id"]))
        if note:
            lines.append(f"# {clean_comment(note, 240)}")
        lines.append(yaml.safe_dump([e], sort_keys=False, default_flow_style=None, width=200).rstrip("\n"))
    return "\n".join(lines) + "\n"


def check_args(cfg: AgentConfig, *, cidrs: list[str], auths: list[str], onvif: bool, onvif_wait: float,
               onvif_interface: str | None, source: str) -> str | None:
    """What is wrong with the arguments (one line), or None."""
    if not cidrs and not onvif:
        return "discover needs --cidr (SNMP sweep), --onvif (camera discovery), or both"
    for name in auths:
        profile = cfg.auth.get(name)
        usable = profile is not None and ((bool(cidrs) and profile.snmp is not None)
                                          or (onvif and profile.onvif is not None))
        if profile is None:
            kinds = "SNMP or ONVIF" if onvif and cidrs else "ONVIF" if onvif else "SNMP"
            return f"--auth {name}: no {kinds} auth profile of that name in {source}"
        if not usable:
            return f"--auth {name}: the profile has no {'onvif' if onvif else 'snmp'}: credentials"
    if cidrs and not any(cfg.auth[a].snmp for a in auths):
        return "--cidr needs an --auth profile with snmp: credentials"
    if onvif and not any(cfg.auth[a].onvif for a in auths):
        return "--onvif needs an --auth profile with onvif: credentials"
    if onvif and not 0 < onvif_wait <= wsdiscovery.MAX_WAIT:
        return f"--onvif-wait {onvif_wait:g}: 0..{wsdiscovery.MAX_WAIT:g} s"
    if onvif_interface is not None:
        try:
            ipaddress.IPv4Address(onvif_interface)
        except ValueError:
            return f"--onvif-interface {onvif_interface}: not an IPv4 address"
    try:
        addresses(cidrs)
    except ValueError as exc:
        return str(exc)
    return None


async def discover(cfg: AgentConfig, *, cidrs: list[str], auths: list[str], catalog: Catalog | None, port: int,
                   concurrency: int, request_timeout: float, retries: int, onvif: bool, onvif_wait: float,
                   onvif_interface: str | None, progress: TextIO = sys.stderr) -> tuple[str, int]:
    """The SNMP sweep and the camera discovery, side by side; (YAML text, devices found)."""
    snmp_auths = [a for a in auths if cfg.auth[a].snmp is not None]
    onvif_auths = [a for a in auths if cfg.auth[a].onvif is not None]
    found: list[Found] = []
    cams: list[CameraFound] = []
    async with asyncio.TaskGroup() as tg:
        swept = tg.create_task(sweep(cfg, cidrs=cidrs, auths=snmp_auths, catalog=catalog, port=port,
                                     concurrency=concurrency, request_timeout=request_timeout, retries=retries,
                                     progress=progress)) if cidrs and catalog is not None else None
        probed = tg.create_task(find_cameras(cfg, auths=onvif_auths, wait=onvif_wait, interface=onvif_interface,
                                             concurrency=concurrency, request_timeout=request_timeout,
                                             progress=progress)) if onvif else None
    found = swept.result() if swept else []
    cams = probed.result() if probed else []
    camera_hosts = {c.host for c in cams}
    for f in found:
        if f.host in camera_hosts:
            print(f"{f.host}: answers SNMP and ONVIF; written as a camera only", file=progress, flush=True)
    found = [f for f in found if f.host not in camera_hosts]
    taken = {d.id for d in cfg.devices}
    entries = device_entries(found, port=port, taken=taken)
    cam_entries, comments = camera_entries(cams, taken=taken | {str(e["id"]) for e in entries})
    return to_yaml(entries + cam_entries, comments), len(entries) + len(cam_entries)
