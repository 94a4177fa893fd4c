"""The composite "camera OK" state: pure logic, no I/O.

A poll gathers facts (ONVIF, RTSP, snapshot, ICMP, the feeding switch port); :func:`assess`
turns them into ``ok`` and one ``reason``, the most root-cause one that applies. The
switch-port facts come from :class:`PortStates`, which the agent feeds with the readings
of its switch polls.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from wardwatch.wire import Reading

# Reasons, most root-cause first. Documented in docs/cameras.md.
REASONS = (
    "poe_lost", "port_down", "offline", "auth", "clock_skew_auth", "bad_xml", "onvif_error",
    "rtsp_401", "rtsp_404", "rtsp_timeout", "rtsp_error", "no_snapshot_uri", "snapshot_failed", "frozen", "ok",
)


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


class FrozenDetector:
    """Frozen image: the same snapshot hash ``after`` polls in a row."""

    def __init__(self, after: int = 3) -> None:
        if after < 2:
            raise ValueError("frozen detection needs at least 2 snapshots")
        self.after = after
        self.last: str | None = None
        self.run = 0  # how many consecutive snapshots had hash ``last``

    def update(self, digest: str | None) -> bool:
        """Feed this poll's snapshot hash (None: no snapshot); True when frozen."""
        if digest is None:
            self.last, self.run = None, 0
            return False
        if digest == self.last:
            self.run += 1
        else:
            self.last, self.run = digest, 1
        return self.frozen

    @property
    def frozen(self) -> bool:
        return self.run >= self.after


@dataclass(frozen=True, slots=True)
class Facts:
    """What one poll learned. None means not checked (disabled, or not reached)."""

    online: bool
    onvif_error: str = ""  # error class of the ONVIF step that failed: timeout, refused, auth, bad_xml, ...
    skew_auth: bool = False  # auth failed because of the clock, and the offset retry told us so
    rtsp_reason: str | None = None  # RtspResult.reason
    snapshot_uri: bool | None = None  # False: the camera gave no snapshot URI
    snapshot_ok: bool | None = None
    frozen: bool = False
    icmp_ok: bool | None = None
    port_up: bool | None = None
    poe_delivering: bool | None = None


_RTSP_REASONS = {"rtsp_401", "rtsp_404", "rtsp_timeout"}


def assess(f: Facts) -> tuple[bool, str]:
    """(ok, reason) from a poll's facts; the reason is the most root-cause one that applies.

    The feeding port explains an unreachable camera (``poe_lost`` before ``port_down``:
    a port without power loses its link too). A camera that answers is judged on what it
    answers, whatever the switch says.
    """
    if not f.online:
        if f.poe_delivering is False:
            return False, "poe_lost"
        if f.port_up is False:
            return False, "port_down"
        if f.onvif_error in ("auth", "bad_xml"):
            return False, f.onvif_error
        return False, "offline"
    if f.skew_auth:
        return False, "clock_skew_auth"
    if f.onvif_error:
        if f.onvif_error in ("auth", "clock_skew_auth", "bad_xml"):
            return False, f.onvif_error
        return False, "onvif_error"
    if f.rtsp_reason is not None and f.rtsp_reason != "ok":
        return False, f.rtsp_reason if f.rtsp_reason in _RTSP_REASONS else "rtsp_error"
    if f.snapshot_uri is False:
        return False, "no_snapshot_uri"
    if f.snapshot_ok is False:
        return False, "snapshot_failed"
    if f.frozen:
        return False, "frozen"
    return True, "ok"
