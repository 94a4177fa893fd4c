"""The camera half of ``wardwatch-agent discover``: find ONVIF cameras by WS-Discovery.

One WS-Discovery Probe (agent/camera/wsdiscovery.py), answers collected for a bounded time
and deduplicated by the camera's endpoint address; each camera found becomes a
``kind: camera`` entry with the host and port of its XAddr and the first ``--auth`` profile
with ``onvif:`` credentials that GetDeviceInformation accepts (its answer, vendor and model,
goes into a comment above the entry). GetDeviceInformation is the poll's own call
(agent/camera/soap.py's :class:`~wardwatch.agent.camera.soap.SoapClient`, over one
:class:`~wardwatch.agent.camera.http.HttpClient` for the whole run), sent to the XAddr's host
and port only: the credentials go nowhere else (agent/camera/trust.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from wardwatch.agent.camera import wsdiscovery
from wardwatch.agent.camera.wsdiscovery import ProbeMatch
from wardwatch.agent.core.config import AgentConfig
from wardwatch.agent.core.errors import DeviceAuthError, DeviceError
from wardwatch.agent.core.text import progress_bar

if TYPE_CHECKING:  # the SOAP client (lxml) loads only when cameras are asked
    from wardwatch.agent.camera.http import HttpClient
    from wardwatch.agent.camera.onvif import DeviceInfo


@dataclass(frozen=True)
class CameraFound:
    match: ProbeMatch
    host: str
    port: int
    xaddr: str
    auth: str
    info: DeviceInfo | None = None
    error: str | None = None  # GetDeviceInformation's error class, when it failed


async def device_info(host: str, port: int, *, cfg: AgentConfig, auths: list[str], request_timeout: float,
                      http: HttpClient | None = None) -> tuple[str, DeviceInfo | None, str | None]:
    """(auth name, inventory, error class): each ONVIF profile in turn until one is accepted.
    When none is, the first profile and the last error.

    GetDeviceInformation goes out as the poll sends it (agent/camera/soap.py: a fixed
    envelope signed with a WS-UsernameToken digest, the answer read with lxml within its
    bounds), to ``host:port`` only, over ``http`` (the caller's shared client, kept open) or a
    client of its own, closed before returning."""
    from wardwatch.agent.camera.http import HttpClient  # only here: lxml is not loaded by the CLI
    from wardwatch.agent.camera.soap import SoapClient

    own = http is None
    client = HttpClient() if http is None else http
    error: str | None = None
    try:
        for name in auths:
            onvif = cfg.auth[name].onvif
            assert onvif is not None  # checked by the caller
            soap = SoapClient(host=host, port=port, username=onvif.username,
                              password=onvif.password.get_secret_value(), time_limit=request_timeout,
                              http=lambda: client)
            try:
                return name, await soap.device_info(), None
            except DeviceAuthError as exc:
                error = exc.reason
            except DeviceError as exc:
                return auths[0], None, exc.reason  # not a credentials problem: another profile won't help
        return auths[0], None, error
    finally:
        if own:
            await client.aclose()


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
    from wardwatch.agent.camera.http import HttpClient  # only now: lxml and the SOAP client

    limit = asyncio.Semaphore(concurrency)
    done = 0
    step = max(1, len(cams) // 20)
    http = HttpClient()  # one for every camera (a second profile reuses the connection), closed below

    async def one(i: int) -> None:
        nonlocal done
        cam = cams[i]
        async with limit:
            auth, inv, err = await device_info(cam.host, cam.port, cfg=cfg, auths=auths,
                                               request_timeout=request_timeout, http=http)
        cams[i] = CameraFound(match=cam.match, host=cam.host, port=cam.port, xaddr=cam.xaddr, auth=auth, info=inv,
                              error=err)
        done += 1
        what = f"{inv.manufacturer} {inv.model}".strip() if inv else f"GetDeviceInformation: {err}"
        print(f"camera {cam.host}:{cam.port}: {what}", file=progress, flush=True)
        if done % step == 0 or done == len(cams):
            answered = sum(1 for c in cams if c.info is not None)
            print(f"[{progress_bar(done, len(cams))}] {done}/{len(cams)} cameras asked, {answered} answered",
                  file=progress, flush=True)

    try:
        async with asyncio.TaskGroup() as tg:
            for i in range(len(cams)):
                tg.create_task(one(i))
    finally:
        await http.aclose()
    return cams


def _host_key(host: str) -> tuple[int, Any]:
    try:
        return 0, ipaddress.ip_address(host)
    except ValueError:
        return 1, host


def clean_comment(text: str, limit: int = 80) -> str:
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
    return clean_comment("; ".join(parts), 240)
