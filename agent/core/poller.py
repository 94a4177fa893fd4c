"""The one contract between the agent's core and its device families.

A device family (``wardwatch.agent.snmp``, ``wardwatch.agent.camera``) is a package with a
class that implements :class:`Poller`: an async context manager that prepares a device
once (:meth:`Poller.add`) and polls it (:meth:`Poller.poll`), returning one
:class:`PollResult`. The supervisor (agent/core/supervisor.py), ``run`` and ``check``
know nothing else about a kind: they look its poller up in :data:`FAMILIES` and import
it only when the config has such a device, so that a switches-only agent never loads
the ONVIF stack.

A poller raises :class:`~wardwatch.agent.core.errors.DeviceError` for a device that did
not give a usable answer; it may also return a failed result itself. Anything else it
raises is a bug: the supervisor catches it, counts it (``poll_errors``) and reports the
device's poll as failed with reason ``internal_error``, without stopping anything else.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self

from wardwatch.wire import Kind, Reading

if TYPE_CHECKING:
    from types import TracebackType

    from wardwatch.agent.core.config import AgentConfig, DeviceConfig
    from wardwatch.agent.core.icmp import Pinger
    from wardwatch.agent.core.ports import PortStates


@dataclass(frozen=True, slots=True)
class CheckRow:
    """What ``wardwatch-agent check`` shows of one poll, in its columns."""

    protocol: str  # v1, v2c, v3, onvif
    status: str  # "up" or the reason
    name: str = "-"  # sysName, or the camera's model
    profile: str = "-"
    interfaces: str = "-"
    clients: str = "-"
    rtt_ms: float | None = None
    poll_ms: float = 0.0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """A device event worth a live message on the ``events`` topic (docs/mqtt.md)."""

    topic: str
    cls: str
    utc_time: str = ""
    data: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class PollResult:
    """One poll of one device, whatever its kind.

    ``ok``: the device answered and is healthy (for a camera, "camera OK"). ``answered``:
    the device answered at all (``device_status.up``); a camera that answers ONVIF but
    whose stream fails is answered and not ok. ``readings`` always holds a
    ``device_status`` reading."""

    device: DeviceConfig
    readings: list[Reading]
    ok: bool
    answered: bool
    reason: str
    detail: str = ""
    events: list[LiveEvent] = field(default_factory=list)
    row: CheckRow | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What the core lends every poller: the config, the pinger and the switch-port state."""

    cfg: AgentConfig
    pinger: Pinger
    ports: PortStates
    profile_dirs: tuple[Path, ...] = ()  # extra SNMP vendor profile directories

    @staticmethod
    def new(cfg: AgentConfig, *, profile_dirs: tuple[Path, ...] = ()) -> Context:
        """A context of its own: a new pinger and empty port state."""
        from wardwatch.agent.core.icmp import Pinger
        from wardwatch.agent.core.ports import PortStates

        return Context(cfg=cfg, pinger=Pinger(), ports=PortStates(), profile_dirs=profile_dirs)


class Poller(Protocol):
    """A device family's poller. One instance per agent, for every device of its kinds."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...

    def add(self, device: DeviceConfig) -> None:
        """Prepare ``device`` (its session, client and state); called once, before any poll."""

    async def poll(self, device: DeviceConfig) -> PollResult:
        """Poll ``device`` once. The supervisor bounds it by the device's interval."""
        ...

    def failed(self, device: DeviceConfig, *, reason: str, detail: str, poll_ms: float,
               up: int | None) -> PollResult:
        """The result of a poll that did not finish (``timeout``) or raised something other
        than DeviceError (``internal_error``). ``up`` is what the device last showed (None:
        unknown); a poll that failed inside wardwatch says nothing new about the device."""
        ...


PollerFactory = Callable[[Context], Poller]

# kind -> "module:class" of the poller that serves it. A new device family is a new
# package with one Poller class, and one line here.
FAMILIES: dict[str, str] = {
    "switch": "wardwatch.agent.snmp.poller:SnmpPoller",
    "ap": "wardwatch.agent.snmp.poller:SnmpPoller",
    "camera": "wardwatch.agent.camera.poller:OnvifPoller",
}


def factory(kind: str) -> PollerFactory:
    """The poller class for ``kind``, imported on first use."""
    module, _, name = FAMILIES[kind].partition(":")
    cls: PollerFactory = getattr(importlib.import_module(module), name)
    return cls


def failed_status(device: DeviceConfig, *, reason: str, poll_ms: float, up: int | None = 0,
                  kind: Kind | None = None) -> Reading:
    """``device_status`` for a poll that gave no readings: ``up`` (0, or None when the
    poll says nothing about whether the device answered) and why."""
    fields: dict[str, int | float | str] = {"poll_ms": round(poll_ms, 1), "reason": reason}
    if up is not None:
        fields["up"] = up
    return Reading(device=device.id, kind=kind or device.kind, measurement="device_status",
                   time_ms=int(time.time() * 1000), fields=fields,
                   tags={"vendor": device.vendor} if device.vendor else {})
