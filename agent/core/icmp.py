"""ICMP echo: reachability, round-trip time and loss, without root where the kernel allows.

Linux lets a process open an unprivileged ICMP socket when one of its groups is inside
``net.ipv4.ping_group_range``; otherwise it needs root or CAP_NET_RAW for a raw socket.
:func:`detect_mode` tries both once at start-up; when neither works the agent says so in
one clear line and polls without ICMP.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from icmplib import ICMPLibError, NameLookupError, SocketPermissionError, async_ping

log = logging.getLogger(__name__)

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


@dataclass(frozen=True, slots=True)
class PingResult:
    reachable: bool
    rtt_ms: float | None  # average over the echoes that came back
    loss_pct: float
    error: str = ""  # why nothing could be sent (name lookup, permission), else ""


def _can_open(kind: int) -> bool:
    try:
        socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
    except OSError:
        return False
    return True


def detect_mode() -> tuple[bool | None, str]:
    """(icmplib's ``privileged`` flag, or None when ICMP is impossible here; a message)."""
    if _can_open(socket.SOCK_DGRAM):
        return False, "unprivileged ICMP sockets (net.ipv4.ping_group_range)"
    if _can_open(socket.SOCK_RAW):
        return True, "raw ICMP sockets (root or CAP_NET_RAW)"
    try:
        group_range = PING_GROUP_RANGE.read_text().strip()
    except OSError:
        group_range = "unknown"
    return None, (
        f"ICMP is off: net.ipv4.ping_group_range is '{group_range}', which excludes this process's groups "
        f"(gid {os.getegid()}), and it may not open raw sockets. Allow it with "
        "`sysctl -w net.ipv4.ping_group_range='0 2147483647'` or give it CAP_NET_RAW."
    )


class Pinger:
    """Pings hosts; one per agent. ``available`` is False when the system forbids ICMP."""

    def __init__(self, *, count: int = 3, interval: float = 0.2, timeout: float = 1.0) -> None:
        self.count, self.interval, self.timeout = count, interval, timeout
        self.privileged, self.mode = detect_mode()
        if self.privileged is None:
            log.warning("%s", self.mode)
        else:
            log.debug("ICMP through %s", self.mode)

    @property
    def available(self) -> bool:
        return self.privileged is not None

    async def ping(self, host: str) -> PingResult:
        if self.privileged is None:
            return PingResult(False, None, 100.0, "icmp_unavailable")
        try:
            reply = await async_ping(host, count=self.count, interval=self.interval, timeout=self.timeout,
                                     privileged=self.privileged)
        except NameLookupError:
            return PingResult(False, None, 100.0, "name_lookup")
        except SocketPermissionError:
            return PingResult(False, None, 100.0, "icmp_permission")
        except (ICMPLibError, OSError) as exc:
            return PingResult(False, None, 100.0, type(exc).__name__)
        rtt = round(reply.avg_rtt, 3) if reply.is_alive else None
        return PingResult(reply.is_alive, rtt, round(reply.packet_loss * 100, 1))


def combine(fields: dict[str, int | float | str], *, snmp_ok: bool, reason: str, ping: PingResult | None) -> None:
    """Fold a ping into a ``device_status`` reading's fields (pure).

    ``up`` is 1 when the device answered SNMP or ICMP. When only ICMP answered, the
    reason says which SNMP error it was (``snmp_timeout``, ``snmp_auth``, ...): the
    device is alive but cannot be monitored. When SNMP answered and pings were lost, the
    device is up (many networks filter ICMP) and ``icmp_up`` 0 records it.
    """
    if ping is None:
        return
    fields["icmp_up"] = int(ping.reachable)
    fields["loss_pct"] = ping.loss_pct
    if ping.rtt_ms is not None:
        fields["rtt_ms"] = ping.rtt_ms
    if not snmp_ok and ping.reachable:
        fields["up"] = 1
        fields["reason"] = f"snmp_{reason}"
