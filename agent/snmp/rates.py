"""Counter samples in, per-second rates out; never a spike.

Pure logic, one :class:`InterfaceRates` per device. The rules (devices.md section A):

- 64-bit counters are preferred; a 32-bit one that went backwards wrapped once, so 2^32
  is added. A 64-bit counter that went backwards was reset: no rate this time (counted
  in ``dropped``).
- A device reboot (sysUpTime went back, and it was not the 497-day TimeTicks wrap)
  discards every interface's state: no rate this cycle.
- A changed ifCounterDiscontinuityTime, a changed ifName for the same ifIndex (renumbered
  after a reboot), or a counter that switched between 32 and 64 bits discards that
  interface's state.
- On an interface whose ifHighSpeed is a physical limit, a traffic rate above 1.1 x
  ifHighSpeed is dropped and counted, never emitted.
- On an interface whose reported speed is no limit (ifType softwareLoopback, propVirtual,
  l2vlan, l3ipvlan, tunnel, ieee8023adLag, bridge; or ifHighSpeed 0) only resets,
  reboots and discontinuities are judged: net-snmp says ``lo`` is 10 Mb/s and a LAG's or
  a VLAN's speed is whatever the vendor chose. A rate above :data:`MAX_BPS` is still
  refused as no interface's.
- A 32-bit counter that went backwards is one wrap or a reset, and the two look alike.
  Where a speed guards it (a physical interface's octets) the guard tells them apart.
  Where none does (error and discard counters, and the octets of an interface without a
  limit) a backwards step is taken as one wrap only when the wrapped delta is under half
  the counter's range (2^31); a larger one is called a reset, dropped and counted. So a
  32-bit octet counter of a virtual interface must be polled at least once per 2^31
  bytes (about 107 s at 160 Mb/s); prefer its 64-bit twin, which net-snmp serves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TIMETICKS_MODULO = 2**32
SPIKE_FACTOR = 1.1
# IANAifType values whose ifSpeed/ifHighSpeed is no physical limit (RFC 2863, IANAifType-MIB).
VIRTUAL_IF_TYPES = frozenset({
    24,  # softwareLoopback
    53,  # propVirtual
    131,  # tunnel
    135,  # l2vlan
    136,  # l3ipvlan
    161,  # ieee8023adLag
    209,  # bridge
})
MAX_BPS = 1e13  # 10 Tb/s: no one interface carries more; above it a delta is garbage, not traffic
WRAP32_MAX = 2**31  # a Counter32 step back whose wrapped delta is larger is a reset (see above)


@dataclass(frozen=True, slots=True)
class Counter:
    value: int
    bits: int  # 32 or 64


@dataclass(frozen=True, slots=True)
class IfSample:
    """One interface as read in one poll."""

    name: str
    counters: dict[str, Counter]  # e.g. in_octets, out_octets, in_errors, out_errors
    speed_mbps: float = 0.0
    discontinuity: int = 0  # ifCounterDiscontinuityTime, in TimeTicks
    # When its octet counters were read, in the device's sysUpTime seconds (from the same
    # PDU); None means the poll's own time ``t``. One interface keeps to one clock.
    t: float | None = None
    if_type: int | None = None  # IF-MIB ifType; None: not read (the speed then counts as a limit)


def speed_is_limit(sample: IfSample) -> bool:
    """Whether the interface's reported speed bounds its traffic (see the module doc)."""
    return sample.speed_mbps > 0 and sample.if_type not in VIRTUAL_IF_TYPES


@dataclass(slots=True)
class RateResult:
    rates: dict[int, dict[str, float]] = field(default_factory=dict)  # ifIndex -> name -> per second
    rebooted: bool = False
    dropped: int = 0  # rates refused: by the spike guard, a counter reset, an ambiguous 32-bit step


@dataclass(slots=True)
class _Prev:
    sample: IfSample
    t: float


# Which counters give bits per second (guarded by the interface speed) and which give
# plain events per second.
_OCTETS = {"in_octets": "in_bps", "out_octets": "out_bps"}
_EVENTS = {"in_errors": "in_err_ps", "out_errors": "out_err_ps", "in_discards": "in_disc_ps",
           "out_discards": "out_disc_ps"}


def is_reboot(prev_ticks: int, now_ticks: int, elapsed_s: float) -> bool:
    """sysUpTime went back: a reboot, unless it is the TimeTicks wrap at 2^32 (497 days)."""
    if now_ticks >= prev_ticks:
        return False
    expected = prev_ticks + round(elapsed_s * 100)
    if expected < TIMETICKS_MODULO:
        return True
    slack = max(500, round(elapsed_s * 50))  # network jitter, and devices' loose clocks
    return abs(now_ticks - (expected - TIMETICKS_MODULO)) > slack


def counter_delta(prev: Counter, now: Counter) -> int | None:
    """How much a counter grew, or None when the interval cannot be trusted."""
    if prev.bits != now.bits:
        return None
    delta = now.value - prev.value
    if delta >= 0:
        return delta
    if now.bits == 32:
        return delta + 2**32
    return None  # a 64-bit counter does not wrap in practice: it was reset


class InterfaceRates:
    """Remembers the last poll of one device and turns the next one into rates."""

    def __init__(self) -> None:
        self._uptime: int | None = None
        self._uptime_t = 0.0
        self._prev: dict[int, _Prev] = {}

    def update(self, *, uptime_ticks: int, t: float, interfaces: dict[int, IfSample]) -> RateResult:
        """``t`` is the poller's monotonic clock, in seconds, when the answer came."""
        result = RateResult()
        if self._uptime is not None and is_reboot(self._uptime, uptime_ticks, t - self._uptime_t):
            result.rebooted = True
            self._prev.clear()
        self._uptime, self._uptime_t = uptime_ticks, t

        for index, now in interfaces.items():
            prev = self._prev.get(index)
            now_t = t if now.t is None else now.t
            self._prev[index] = _Prev(now, now_t)
            if prev is None or prev.sample.name != now.name:
                continue
            if prev.sample.discontinuity != now.discontinuity:
                continue
            dt = now_t - prev.t
            if now.t is not None and dt < 0:  # sysUpTime wrapped at 2^32 ticks (reboots cleared above)
                dt += TIMETICKS_MODULO / 100
            if dt <= 0:
                continue
            rates = self._rates(prev.sample, now, dt, result)
            if rates:
                result.rates[index] = rates
        for gone in set(self._prev) - set(interfaces):
            del self._prev[gone]
        return result

    @staticmethod
    def _rates(prev: IfSample, now: IfSample, dt: float, result: RateResult) -> dict[str, float]:
        out: dict[str, float] = {}
        guarded = speed_is_limit(now)
        limit = now.speed_mbps * 1e6 * SPIKE_FACTOR if guarded else MAX_BPS
        for counter, name in (*_OCTETS.items(), *_EVENTS.items()):
            if counter not in now.counters or counter not in prev.counters:
                continue
            before, after = prev.counters[counter], now.counters[counter]
            delta = counter_delta(before, after)
            if delta is None:
                if before.bits == after.bits:  # a 64-bit counter went backwards: a reset
                    result.dropped += 1
                continue
            octets = counter in _OCTETS
            wrapped = after.value < before.value
            if wrapped and delta > WRAP32_MAX and not (octets and guarded):
                result.dropped += 1  # a wrap or a reset: nothing tells them apart here
                continue
            rate = delta / dt * (8 if octets else 1)
            if not math.isfinite(rate) or (octets and rate > limit):
                result.dropped += 1
                continue
            out[name] = rate
        return out
