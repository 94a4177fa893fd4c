"""Rate computation: wraps, reboots, discontinuities and the spike guard (pure logic)."""

from __future__ import annotations

import pytest

from wardwatch.agent.snmp.rates import Counter, IfSample, InterfaceRates, counter_delta, is_reboot

GBIT = 1000.0


def sample(in_octets: int, *, bits: int = 64, name: str = "Gi1/0/1", speed: float = GBIT, disc: int = 0,
           errors: int = 0) -> IfSample:
    return IfSample(name=name, speed_mbps=speed, discontinuity=disc,
                    counters={"in_octets": Counter(in_octets, bits), "out_octets": Counter(in_octets // 2, bits),
                              "in_errors": Counter(errors, 32)})


def two_polls(first: IfSample, second: IfSample, *, dt: float = 10.0, up1: int = 100_000, up2: int | None = None):
    rates = InterfaceRates()
    rates.update(uptime_ticks=up1, t=0.0, interfaces={1: first})
    return rates.update(uptime_ticks=up1 + int(dt * 100) if up2 is None else up2, t=dt, interfaces={1: second})


def test_steady_counter_gives_bits_per_second() -> None:
    result = two_polls(sample(1_000_000, errors=5), sample(1_000_000 + 12_500_000, errors=25))
    assert result.rates[1]["in_bps"] == pytest.approx(10_000_000)  # 12.5 MB in 10 s = 10 Mb/s
    assert result.rates[1]["in_err_ps"] == pytest.approx(2.0)
    assert not result.rebooted and result.dropped == 0


def test_counter32_wrap_is_added_back_once() -> None:
    before = 2**32 - 1_000_000
    result = two_polls(sample(before, bits=32), sample(11_500_000, bits=32))
    assert result.rates[1]["in_bps"] == pytest.approx(12_500_000 * 8 / 10)


def test_counter64_going_backwards_is_a_reset_not_a_rate() -> None:
    assert counter_delta(Counter(5_000, 64), Counter(10, 64)) is None
    result = two_polls(sample(5_000_000_000), sample(10))
    assert "in_bps" not in result.rates.get(1, {})


def test_reboot_discards_state_and_emits_nothing() -> None:
    # sysUpTime went from 1000 s to 5 s: the device rebooted and its counters restarted.
    result = two_polls(sample(9_000_000_000), sample(1_000), up1=100_000, up2=500)
    assert result.rebooted
    assert result.rates == {}
    assert result.dropped == 0


def test_timeticks_wrap_after_497_days_is_not_a_reboot() -> None:
    prev = 2**32 - 300  # three seconds before the wrap
    assert not is_reboot(prev, 700, elapsed_s=10.0)
    assert is_reboot(prev, 50_000_000, elapsed_s=10.0)
    result = two_polls(sample(0), sample(12_500_000), up1=prev, up2=700)
    assert not result.rebooted and result.rates[1]["in_bps"] == pytest.approx(10_000_000)


def test_spike_above_speed_is_dropped_and_counted() -> None:
    # 10 Mb/s port; a jump of 1 GB in 10 s would be 800 Mb/s: impossible, so dropped.
    result = two_polls(sample(0, speed=10), sample(1_000_000_000, speed=10))
    assert "in_bps" not in result.rates.get(1, {})
    assert result.dropped >= 1
    # Just under 1.1 x speed is believed.
    ok = two_polls(sample(0, speed=10), sample(int(10e6 * 1.09 / 8 * 10), speed=10))
    assert ok.rates[1]["in_bps"] == pytest.approx(10.9e6)


def test_unknown_speed_skips_the_guard() -> None:
    result = two_polls(sample(0, speed=0), sample(1_000_000_000, speed=0))
    assert result.rates[1]["in_bps"] == pytest.approx(800_000_000)


def test_discontinuity_time_change_drops_that_interval() -> None:
    result = two_polls(sample(0, disc=0), sample(12_500_000, disc=4242))
    assert 1 not in result.rates


def test_renumbered_interface_is_not_compared_with_another_port() -> None:
    result = two_polls(sample(0, name="Gi1/0/1"), sample(12_500_000, name="Gi1/0/2"))
    assert 1 not in result.rates


def test_switch_from_32_to_64_bit_counter_resets() -> None:
    result = two_polls(sample(100, bits=32), sample(12_500_000, bits=64))
    assert "in_bps" not in result.rates.get(1, {})


def test_vanished_interfaces_are_forgotten() -> None:
    rates = InterfaceRates()
    rates.update(uptime_ticks=100, t=0.0, interfaces={1: sample(0), 2: sample(0, name="Gi1/0/2")})
    rates.update(uptime_ticks=1100, t=10.0, interfaces={1: sample(1000)})
    result = rates.update(uptime_ticks=2100, t=20.0, interfaces={1: sample(2000), 2: sample(9_000, name="Gi1/0/2")})
    assert 2 not in result.rates  # port 2 came back: it needs a fresh baseline
    assert 1 in result.rates


def test_device_clock_of_the_counter_beats_the_poll_clock() -> None:
    # The poll's own clock says 12 s passed (a slow walk); the device stamped the counters 10 s apart.
    rates = InterfaceRates()
    first = IfSample(name="Gi1/0/1", speed_mbps=GBIT, counters={"in_octets": Counter(0, 64)}, t=500.0)
    second = IfSample(name="Gi1/0/1", speed_mbps=GBIT, counters={"in_octets": Counter(12_500_000, 64)}, t=510.0)
    rates.update(uptime_ticks=50_000, t=0.0, interfaces={1: first})
    result = rates.update(uptime_ticks=51_200, t=12.0, interfaces={1: second})
    assert result.rates[1]["in_bps"] == pytest.approx(10_000_000)
