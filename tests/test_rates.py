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


def test_counter64_going_backwards_is_counted_as_dropped() -> None:
    result = two_polls(sample(5_000_000_000), sample(4_000_000_000))
    assert "in_bps" not in result.rates.get(1, {}) and "out_bps" not in result.rates.get(1, {})
    assert result.dropped == 2  # in and out both went back: two rates refused, none negative or huge


@pytest.mark.parametrize("if_type", [24, 53, 131, 135, 136, 161, 209])
def test_a_virtual_interface_speed_is_no_limit(if_type: int) -> None:
    # 160 Mb/s on an interface that says it is 10 Mb/s: a loopback, a VLAN, a LAG, ...
    first = IfSample(name="lo", speed_mbps=10, if_type=if_type, counters={"in_octets": Counter(0, 64)})
    second = IfSample(name="lo", speed_mbps=10, if_type=if_type, counters={"in_octets": Counter(200_000_000, 64)})
    result = two_polls(first, second)
    assert result.rates[1]["in_bps"] == pytest.approx(160e6)
    assert result.dropped == 0


def test_a_physical_interface_keeps_its_guard() -> None:
    first = IfSample(name="Gi1", speed_mbps=10, if_type=6, counters={"in_octets": Counter(0, 64)})
    second = IfSample(name="Gi1", speed_mbps=10, if_type=6, counters={"in_octets": Counter(200_000_000, 64)})
    result = two_polls(first, second)
    assert "in_bps" not in result.rates.get(1, {}) and result.dropped == 1


def test_counter32_on_a_virtual_interface_wraps_only_within_half_its_range() -> None:
    def vlan(octets: int) -> IfSample:
        return IfSample(name="vlan10", speed_mbps=0, if_type=135, counters={"in_octets": Counter(octets, 32)})

    def poll(before: int, after: int):
        return two_polls(vlan(before), vlan(after))

    wrapped = poll(2**32 - 1_000_000, 11_500_000)  # 12.5 MB across the wrap: one wrap
    assert wrapped.rates[1]["in_bps"] == pytest.approx(12_500_000 * 8 / 10)
    reset = poll(1_000_000_000, 5_000)  # a wrapped delta of 3.3 GB: a wrap or a reset, nobody can tell
    assert "in_bps" not in reset.rates.get(1, {}) and reset.dropped == 1


def test_an_error_counter_reset_is_no_error_storm() -> None:
    result = two_polls(sample(1_000, errors=1_000_000), sample(2_000, errors=3))
    assert "in_err_ps" not in result.rates[1] and result.dropped == 1
