"""Switch-port state: the one home of what a switch said about each of its ports.

The supervisor feeds it every SNMP poll's readings (agent/core/supervisor.py); pollers
of devices with a ``feed: {switch, port}`` read it, so that a camera or AP behind a
port without PoE is ``poe_lost``, not just offline.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from wardwatch.wire import Reading


@dataclass(frozen=True, slots=True)
class PortState:
    """The latest known state of one switch port."""

    oper_up: bool | None = None
    poe_delivering: bool | None = None
    oper_at: float = 0.0  # monotonic time of the reading that set oper_up
    poe_at: float = 0.0


class PortStates:
    """Latest ``if_traffic`` / ``poe`` state per ``(switch id, if_name)``, fed by the agent.

    The agent calls :meth:`ingest` with every batch of readings its switch polls produce
    (any readings may be passed: only ``if_traffic.oper_up`` and ``poe.delivering`` with an
    ``if_name`` tag are used). A camera poll then asks :meth:`get` for its ``feed`` port.
    State older than ``max_age`` seconds is unknown: a switch that stopped answering must
    not keep explaining a camera's outage with what it said an hour ago.
    """

    def __init__(self, *, max_age: float = 300.0) -> None:
        self.max_age = max_age
        self._ports: dict[tuple[str, str], PortState] = {}

    def ingest(self, readings: Iterable[Reading], *, now: float | None = None) -> None:
        t = time.monotonic() if now is None else now
        for r in readings:
            if r.measurement not in ("if_traffic", "poe"):
                continue
            if_name = r.tags.get("if_name")
            if if_name is None:
                continue
            key = (r.device, if_name)
            old = self._ports.get(key, PortState())
            if r.measurement == "if_traffic" and "oper_up" in r.fields:
                self._ports[key] = PortState(oper_up=bool(r.fields["oper_up"]), poe_delivering=old.poe_delivering,
                                             oper_at=t, poe_at=old.poe_at)
            elif r.measurement == "poe" and "delivering" in r.fields:
                self._ports[key] = PortState(oper_up=old.oper_up, poe_delivering=bool(r.fields["delivering"]),
                                             oper_at=old.oper_at, poe_at=t)

    def set(self, switch: str, if_name: str, *, oper_up: bool | None = None, poe_delivering: bool | None = None,
            now: float | None = None) -> None:
        """Set a port's state directly (for callers that do not have readings at hand)."""
        t = time.monotonic() if now is None else now
        old = self._ports.get((switch, if_name), PortState())
        self._ports[(switch, if_name)] = PortState(
            oper_up=old.oper_up if oper_up is None else oper_up,
            poe_delivering=old.poe_delivering if poe_delivering is None else poe_delivering,
            oper_at=old.oper_at if oper_up is None else t,
            poe_at=old.poe_at if poe_delivering is None else t,
        )

    def get(self, switch: str, if_name: str, *, now: float | None = None) -> PortState:
        """The port's fresh state; fields are None where unknown or stale."""
        t = time.monotonic() if now is None else now
        st = self._ports.get((switch, if_name))
        if st is None:
            return PortState()
        fresh_oper = st.oper_up if t - st.oper_at <= self.max_age else None
        fresh_poe = st.poe_delivering if t - st.poe_at <= self.max_age else None
        return PortState(oper_up=fresh_oper, poe_delivering=fresh_poe, oper_at=st.oper_at, poe_at=st.poe_at)

    def __len__(self) -> int:
        return len(self._ports)
