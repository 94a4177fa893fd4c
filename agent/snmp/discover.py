"""The SNMP half of ``wardwatch-agent discover``: sweep CIDRs for SNMP devices.

Each address is tried with each named auth profile in turn (the first that answers wins),
with at most ``concurrency`` addresses in flight. A device that answers is identified the
way a poll does it (sysObjectID and probe OIDs -> profile -> kind) and becomes a ready
``devices:`` entry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from wardwatch.agent.core.config import AgentConfig, DeviceConfig
from wardwatch.agent.core.errors import DeviceError
from wardwatch.agent.core.text import progress_bar
from wardwatch.agent.snmp.client import Engines, SnmpSession
from wardwatch.agent.snmp.device import SYS_NAME, SnmpState, identify
from wardwatch.agent.snmp.evaluate import to_bytes
from wardwatch.agent.snmp.profiles import Catalog

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
        state = SnmpState(catalog=catalog)
        try:
            profile = await identify(session, state)
            sys_name = (await session.get([SYS_NAME]))[SYS_NAME]
        except DeviceError:
            continue
        text = to_bytes(sys_name).decode("utf-8", "replace").strip() if sys_name is not None else ""
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
            print(f"[{progress_bar(done, len(hosts))}] {done}/{len(hosts)} addresses, {len(found)} found",
                  file=progress, flush=True)

    try:
        async with asyncio.TaskGroup() as tg:
            for host in hosts:
                tg.create_task(one(host))
    finally:
        engines.close()
    return sorted(found, key=lambda f: ipaddress.ip_address(f.host))


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
