"""The composite "camera OK" state: pure logic, no I/O.

A poll gathers facts (ONVIF, RTSP, snapshot, ICMP, the feeding switch port); :func:`assess`
turns them into ``ok`` and one ``reason``, the most root-cause one that applies. The
switch-port facts come from :class:`wardwatch.agent.core.ports.PortStates`, which the
supervisor feeds with the readings of every SNMP poll.
"""

from __future__ import annotations

from dataclasses import dataclass

# Reasons, most root-cause first. Documented in docs/cameras.md.
REASONS = (
    "poe_lost", "port_down", "offline", "auth", "clock_skew_auth", "bad_xml", "onvif_error",
    "rtsp_401", "rtsp_404", "rtsp_timeout", "rtsp_error", "no_snapshot_uri", "snapshot_failed", "frozen", "ok",
)


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
    snapshot_reason: str | None = None  # SnapshotResult.reason
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
    if f.rtsp_reason == "rtsp_basic_refused" or f.snapshot_reason == "snapshot_basic_refused":
        return False, "auth"  # the credentials were not sent: Basic over plaintext (agent/camera/trust.py)
    if f.rtsp_reason is not None and f.rtsp_reason != "ok":
        return False, f.rtsp_reason if f.rtsp_reason in _RTSP_REASONS else "rtsp_error"
    if f.snapshot_uri is False:
        return False, "no_snapshot_uri"
    if f.snapshot_ok is False:
        return False, "snapshot_failed"
    if f.frozen:
        return False, "frozen"
    return True, "ok"
