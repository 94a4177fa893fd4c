"""``wardwatch-agent discover``: sweep CIDRs for SNMP devices, find ONVIF cameras by
WS-Discovery, and write device entries.

SNMP: each address is tried with each named auth profile in turn (the first that answers wins),
with at most ``concurrency`` addresses in flight. A device that answers is identified the
way a poll does it (sysObjectID and probe OIDs -> profile -> kind) and becomes a ready
``devices:`` entry.

ONVIF (``--onvif``): one WS-Discovery Probe (agent/wsdiscovery.py), answers collected for a
bounded time and deduplicated by the camera's endpoint address; each camera found becomes a
``kind: camera`` entry with the host and port of its XAddr and the first ``--auth`` profile
with ``onvif:`` credentials that GetDeviceInformation accepts (its answer, vendor and model,
goes into a comment above the entry).

Progress goes to stderr; the YAML to stdout or a file.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import yaml

from wardwatch.agent.camera import wsdiscovery
from wardwatch.agent.camera.wsdiscovery import ProbeMatch
from wardwatch.agent.core.config import AgentConfig, DeviceConfig
from wardwatch.agent.core.errors import DeviceAuthError, DeviceError
from wardwatch.agent.snmp.client import Engines, SnmpSession
from wardwatch.agent.snmp.device import SYS_NAME, SwitchState, identify
from wardwatch.agent.snmp.profiles import Catalog

if TYPE_CHECKING:  # the ONVIF stack (aiohttp, zeep) loads only when cameras are probed
    from wardwatch.agent.camera.onvif import DeviceInfo

MAX_ADDRESSES = 65_536  # a /16: a bound on one sweep


@dataclass(frozen=True)
class Found:
    host: str
    auth: str
    sys_name: str
    sys_object_id: str
    profile: str
    vendor: str | None
    kind: str


def addresses(cidrs: list[str]) -> list[str]:
    out: list[str] = []
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.num_addresses > MAX_ADDRESSES:
            raise ValueError(f"--cidr {cidr}: {net.num_addresses} addresses is more than {MAX_ADDRESSES}")
        hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
        out.extend(str(h) for h in hosts)
    return list(dict.fromkeys(out))


async def probe(host: str, *, cfg: AgentConfig, auths: list[str], engines: Engines, catalog: Catalog, port: int,
                request_timeout: float, retries: int) -> Found | None:
    for name in auths:
        snmp = cfg.auth[name].snmp
        assert snmp is not None  # checked by the caller
        dev = DeviceConfig(id="discover", kind="switch", host=host, port=port, auth=name, timeout=request_timeout,
                           retries=retries, interval=max(60.0, request_timeout * (retries + 1)))
        session = SnmpSession(engine=engines.for_auth(snmp), device=dev, auth=snmp)
        state = SwitchState(catalog=catalog)
        try:
            profile = await identify(session, state)
            sys_name = (await session.get([SYS_NAME]))[SYS_NAME]
        except DeviceError:
            continue
        text = bytes(sys_name.asOctets()).decode("utf-8", "replace").strip() if sys_name is not None else ""
        return Found(host=host, auth=name, sys_name=text, sys_object_id=state.sys_object_id, profile=profile.name,
                     vendor=profile.vendor, kind=profile.kind or "switch")
    return None


async def sweep(cfg: AgentConfig, *, cidrs: list[str], auths: list[str], catalog: Catalog, port: int = 161,
                concurrency: int = 64, request_timeout: float = 1.0, retries: int = 0, progress: TextIO = sys.stderr
                ) -> list[Found]:
    hosts = addresses(cidrs)
    engines = Engines()
    limit = asyncio.Semaphore(concurrency)
    found: list[Found] = []
    done = 0
    step = max(1, len(hosts) // 20)

    async def one(host: str) -> None:
        nonlocal done
        async with limit:
            hit = await probe(host, cfg=cfg, auths=auths, engines=engines, catalog=catalog, port=port,
                              request_timeout=request_timeout, retries=retries)
        done += 1
        if hit:
            found.append(hit)
            print(f"found {hit.host}: {hit.sys_name or '-'} ({hit.profile}, {hit.kind})", file=progress, flush=True)
        if done % step == 0 or done == len(hosts):
            print(f"[{_bar(done, len(hosts))}] {done}/{len(hosts)} addresses, {len(found)} found",
                  file=progress, flush=True)

    try:
        async with asyncio.TaskGroup() as tg:
            for host in hosts:
                tg.create_task(one(host))
    finally:
        engines.close()
    return sorted(found, key=lambda f: ipaddress.ip_address(f.host))


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // max(total, 1)
    return "#" * filled + "." * (width - filled)


def device_entries(found: list[Found], *, port: int, taken: set[str]) -> list[dict[str, Any]]:
    """Ready-to-use ``devices:`` entries with unique ids (from sysName, else the address)."""
    out = []
    used = set(taken)
    for f in found:
        base = re.sub(r"[^A-Za-z0-9_.:-]+", "-", f.sys_name).strip("-.:_")[:56] or f"dev-{f.host.replace(':', '-')}"
        if not base[0].isalnum():
            base = f"dev-{base}"
        dev_id, n = base, 2
        while dev_id in used:
            dev_id, n = f"{base}-{n}", n + 1
        used.add(dev_id)
        entry: dict[str, Any] = {"id": dev_id, "kind": f.kind, "host": f.host}
        if port != 161:
            entry["port"] = port
        entry.update({"auth": f.auth, "profile": f.profile})
        if f.vendor:
            entry["vendor"] = f.vendor
        out.append(entry)
    return out


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
            lines.append(f"# {_clean(note, 240)}")
        lines.append(yaml.safe_dump([e], sort_keys=False, default_flow_style=None, width=200).rstrip("\n"))
    return "\n".join(lines) + "\n"


# ONVIF cameras: WS-Discovery, then GetDeviceInformation ----------------------------------

FIRST_INFO_TIMEOUT = 5.0  # the first camera also pays for parsing the device WSDL (~0.5 s here)


@dataclass(frozen=True)
class CameraFound:
    match: ProbeMatch
    host: str
    port: int
    xaddr: str
    auth: str
    info: DeviceInfo | None = None
    error: str | None = None  # GetDeviceInformation's error class, when it failed


async def device_info(host: str, port: int, *, cfg: AgentConfig, auths: list[str], request_timeout: float
                      ) -> tuple[str, DeviceInfo | None, str | None]:
    """(auth name, inventory, error class): each ONVIF profile in turn until one is accepted.
    When none is, the first profile and the last error."""
    from wardwatch.agent.camera.onvif import OnvifClient  # only here: it loads aiohttp and zeep

    error: str | None = None
    for name in auths:
        onvif = cfg.auth[name].onvif
        assert onvif is not None  # checked by the caller
        client = OnvifClient(host=host, port=port, username=onvif.username,
                             password=onvif.password.get_secret_value(), time_limit=request_timeout)
        try:
            return name, await client.device_info(), None
        except DeviceAuthError as exc:
            error = exc.reason
        except DeviceError as exc:
            return auths[0], None, exc.reason  # not a credentials problem: another profile won't help
        finally:
            await client.close()
    return auths[0], None, error


async def find_cameras(cfg: AgentConfig, *, auths: list[str], wait: float = 3.0, interface: str | None = None,
                       concurrency: int = 64, request_timeout: float = 1.0, info: bool = True,
                       progress: TextIO = sys.stderr, port: int = wsdiscovery.PORT) -> list[CameraFound]:
    """Probe, then ask every camera found for its inventory (bounded concurrency and time)."""
    print(f"ws-discovery: probing for ONVIF cameras for {wait:g}s", file=progress, flush=True)
    result = await wsdiscovery.probe(wait=wait, interface=interface, port=port)
    s = result.stats
    print(f"ws-discovery: {len(result.matches)} cameras ({s.datagrams} datagrams, {s.dropped} dropped)",
          file=progress, flush=True)
    cams: list[CameraFound] = []
    for m in result.matches:
        ep = m.endpoint()
        if ep is None:
            print(f"ws-discovery: {m.address} from {m.source}: no usable http XAddr ({' '.join(m.xaddrs)[:200]!r}),"
                  " skipped", file=progress, flush=True)
            continue
        cams.append(CameraFound(match=m, host=ep[0], port=ep[1], xaddr=ep[2], auth=auths[0]))
    cams.sort(key=lambda c: (_host_key(c.host), c.port))
    if not info or not cams:
        return cams
    limit = asyncio.Semaphore(concurrency)
    done = 0
    step = max(1, len(cams) // 20)

    async def one(i: int, first: bool = False) -> None:
        nonlocal done
        cam = cams[i]
        limit_s = max(request_timeout, FIRST_INFO_TIMEOUT) if first else request_timeout
        async with limit:
            auth, inv, err = await device_info(cam.host, cam.port, cfg=cfg, auths=auths, request_timeout=limit_s)
        cams[i] = CameraFound(match=cam.match, host=cam.host, port=cam.port, xaddr=cam.xaddr, auth=auth, info=inv,
                              error=err)
        done += 1
        what = f"{inv.manufacturer} {inv.model}".strip() if inv else f"GetDeviceInformation: {err}"
        print(f"camera {cam.host}:{cam.port}: {what}", file=progress, flush=True)
        if done % step == 0 or done == len(cams):
            answered = sum(1 for c in cams if c.info is not None)
            print(f"[{_bar(done, len(cams))}] {done}/{len(cams)} cameras asked, {answered} answered",
                  file=progress, flush=True)

    await one(0, first=True)
    async with asyncio.TaskGroup() as tg:
        for i in range(1, len(cams)):
            tg.create_task(one(i))
    return cams


def _host_key(host: str) -> tuple[int, Any]:
    try:
        return 0, ipaddress.ip_address(host)
    except ValueError:
        return 1, host


def _clean(text: str, limit: int = 80) -> str:
    """Text from the network made safe for a YAML comment: printable, one line, bounded."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]


def _camera_id(cam: CameraFound) -> str:
    m = cam.match
    name = m.name or ""
    generic = {w.lower() for w in (m.hardware, m.brand, cam.info.manufacturer if cam.info else None) if w}
    if name and name.lower() not in generic:
        base = re.sub(r"[^A-Za-z0-9_.:-]+", "-", name).strip("-.:_")[:56]
        if base and base[0].isalnum():
            return base
    base = f"cam-{cam.host.replace(':', '-').replace('.', '-')}"
    return base if cam.port == 80 else f"{base}-{cam.port}"


def camera_entries(cams: list[CameraFound], *, taken: set[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``devices:`` entries for cameras (ids unique against ``taken``), and a comment per id:
    what the camera said about itself."""
    out: list[dict[str, Any]] = []
    comments: dict[str, str] = {}
    used = set(taken)
    for cam in cams:
        base = _camera_id(cam)
        dev_id, n = base, 2
        while dev_id in used:
            dev_id, n = f"{base}-{n}", n + 1
        used.add(dev_id)
        entry: dict[str, Any] = {"id": dev_id, "kind": "camera", "host": cam.host}
        if cam.port != 80:
            entry["port"] = cam.port
        entry["auth"] = cam.auth
        vendor = _vendor(cam)
        if vendor:
            entry["vendor"] = vendor
        out.append(entry)
        comments[dev_id] = _comment(cam)
    return out, comments


def _vendor(cam: CameraFound) -> str | None:
    if cam.info and cam.info.manufacturer:
        words = [w for w in re.split(r"[^a-z0-9]+", cam.info.manufacturer.lower()) if w]
        for w in words:
            if w in wsdiscovery.BRANDS:
                return wsdiscovery.BRANDS[w]
        v = "-".join(words)[:64]
        return v or None
    return cam.match.brand


def _comment(cam: CameraFound) -> str:
    m, parts = cam.match, []
    if cam.info is not None:
        i = cam.info
        parts.append(" ".join(x for x in (i.manufacturer, i.model) if x) or "ONVIF camera")
        if i.firmware:
            parts.append(f"firmware {i.firmware}")
        if i.serial:
            parts.append(f"serial {i.serial}")
    else:
        parts.append(" ".join(x for x in (m.brand or "", m.hardware or "") if x) or "ONVIF camera")
        if cam.error:
            parts.append(f"GetDeviceInformation failed: {cam.error}")
    if m.name:
        parts.append(f"name {m.name}")
    if m.location:
        parts.append(f"location {m.location}")
    parts.append(cam.xaddr)
    if urlsplit(cam.xaddr).scheme != "http":
        parts.append("the poller speaks http: check the port")
    elif urlsplit(cam.xaddr).path.rstrip("/") != "/onvif/device_service":
        parts.append("non-standard service path")
    if cam.host != m.source:
        parts.append(f"answered from {m.source}")
    return _clean("; ".join(parts), 240)


# The command ---------------------------------------------------------------------------


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
