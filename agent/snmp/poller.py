"""The SNMP family's :class:`~wardwatch.agent.core.poller.Poller`: switches and APs.

One :class:`SnmpPoller` per agent: it loads the vendor profiles once (the shipped ones
plus the directories in the context's ``profile_dirs``; a bad profile raises
ProfileError at start-up), owns the pysnmp engines, and keeps one session and one
:class:`~wardwatch.agent.snmp.device.SnmpState` per device. A poll is SNMP
(agent/snmp/device.py) with ICMP alongside it; ``device_status`` says what each found
(agent/core/icmp.py).
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Self

from wardwatch.agent.core.config import DeviceConfig
from wardwatch.agent.core.errors import DeviceError
from wardwatch.agent.core.icmp import combine
from wardwatch.agent.core.poller import CheckRow, Context, PollResult, failed_status
from wardwatch.agent.snmp.client import Engines, SnmpSession
from wardwatch.agent.snmp.device import SnmpState, poll_device
from wardwatch.agent.snmp.profiles import load_catalog

HINTS = {
    "timeout": "no answer: check the address, port, community/user and any ACL on the device",
    "auth": "wrong SNMPv3 user, key or protocol (or a community the device does not accept)",
    "unreachable": "the address cannot be resolved or reached",
    "no_such_object": "the device lacks what its profile reads: try another profile",
}


def snmp_budget(interval: float) -> float:
    """The part of a poll's interval that SNMP may use: the rest is the ping's and ours."""
    return max(interval * 0.9, interval - 2.0)


class SnmpPoller:
    """Polls every switch and AP of the agent."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.catalog = load_catalog(list(ctx.profile_dirs))
        self.engines = Engines()
        self._devices: dict[str, tuple[SnmpSession, SnmpState]] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.engines.close()

    def add(self, device: DeviceConfig) -> None:
        snmp = self.ctx.cfg.auth[device.auth].snmp
        assert snmp is not None  # config.check() guarantees it
        session = SnmpSession(engine=self.engines.for_auth(snmp), device=device, auth=snmp)
        self._devices[device.id] = (session, SnmpState(catalog=self.catalog))

    def state(self, device: DeviceConfig) -> SnmpState:
        return self._devices[device.id][1]

    def session(self, device: DeviceConfig) -> SnmpSession:
        return self._devices[device.id][0]

    async def poll(self, device: DeviceConfig) -> PollResult:
        session, state = self._devices[device.id]
        pinger = self.ctx.pinger
        pinging = asyncio.create_task(pinger.ping(device.host)) if device.icmp and pinger.available else None
        started = time.monotonic()
        try:
            try:
                # SNMP gets most of the interval, so that a device whose tries fill it is
                # still this poller's timeout, with the ping's verdict beside it, rather
                # than the supervisor's (which knows nothing of the ping).
                async with asyncio.timeout(snmp_budget(device.interval)):
                    readings = await poll_device(session, state, kind=device.kind)
                ok, reason, detail = True, "ok", ""
            except DeviceError as exc:
                ok, reason, detail = False, exc.reason, str(exc)
                readings = [failed_status(device, reason=reason, poll_ms=(time.monotonic() - started) * 1000)]
            except TimeoutError:
                ok, reason = False, "timeout"
                detail = f"no answer within {snmp_budget(device.interval):.3g}s of the {device.interval:g}s interval"
                readings = [failed_status(device, reason=reason, poll_ms=(time.monotonic() - started) * 1000)]
            ping = await pinging if pinging else None
        except BaseException:
            if pinging:
                pinging.cancel()
            raise
        status = readings[0].fields
        combine(status, snmp_ok=ok, reason=reason, ping=ping)
        if not ok and device.feed is not None:
            reason, detail = self._feed_cause(device, status, reason, detail)
        state.rtt_ms = ping.rtt_ms if ping else None
        state.loss_pct = ping.loss_pct if ping else None
        return PollResult(device, readings, ok=ok, answered=ok, reason=reason, detail=detail,
                          row=self._row(device, state, ok=ok, reason=reason, detail=detail, status=status,
                                        version=session.version))

    def _feed_cause(self, device: DeviceConfig, status: dict[str, int | float | str], reason: str,
                    detail: str) -> tuple[str, str]:
        """An AP that does not answer behind a port that lost PoE or link: that is the
        cause (``poe_lost``, ``port_down``), as for a camera; the SNMP error goes to detail."""
        assert device.feed is not None
        port = self.ctx.ports.get(device.feed.switch, device.feed.port)
        cause = "poe_lost" if port.poe_delivering is False else "port_down" if port.oper_up is False else None
        if cause is None or status.get("up") == 1:  # it still answers ICMP: the port is not the cause
            return reason, detail
        status["reason"] = cause
        where = f"{device.feed.switch} port {device.feed.port}"
        return cause, f"{where}: {'PoE off' if cause == 'poe_lost' else 'link down'}; SNMP: {reason}: {detail}"

    def failed(self, device: DeviceConfig, *, reason: str, detail: str, poll_ms: float,
               up: int | None) -> PollResult:
        status = failed_status(device, reason=reason, poll_ms=poll_ms, up=up)
        session, _state = self._devices[device.id]
        return PollResult(device, [status], ok=False, answered=bool(up), reason=reason, detail=detail,
                          row=CheckRow(protocol=f"v{session.version}", status=reason, poll_ms=poll_ms, detail=detail))

    @staticmethod
    def _row(device: DeviceConfig, state: SnmpState, *, ok: bool, reason: str, detail: str,
             status: dict[str, int | float | str], version: str) -> CheckRow:
        if not ok:
            detail = f"{detail}; {HINTS[reason]}" if reason in HINTS else detail
            if status.get("icmp_up") == 1:
                detail += "; it answers pings"
        elif state.problems:
            detail = f"{state.bad_values} unreadable values, e.g. {state.problems[0]}"
        poll_ms = status.get("poll_ms", 0)
        return CheckRow(
            protocol=f"v{version}", status="up" if ok else reason, name=state.sys_name or "-",
            profile=state.profile.name if state.profile else "-",
            interfaces=str(state.interfaces) if ok else "-",
            clients="-" if state.clients is None or not ok else str(state.clients),
            rtt_ms=state.rtt_ms, poll_ms=float(poll_ms) if not isinstance(poll_ms, str) else 0.0, detail=detail)
