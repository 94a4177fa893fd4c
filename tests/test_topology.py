"""The topology the alert engine suppresses by: configured feeds, LLDP filling the gaps."""

from __future__ import annotations

import logging

import pytest

from wardwatch import wire
from wardwatch.collector.alerts.topology import Topology

W = "cam-pho"


def dev(id: str, kind: str = "camera", *, feed: tuple[str, str] | None = None, host: str | None = None,
        uplink: str | None = None) -> wire.InventoryDevice:
    return wire.InventoryDevice(
        id=id, kind=kind, interval_s=60.0, host=host or f"{id}.hoian.local",  # type: ignore[arg-type]
        feed=None if feed is None else wire.FeedRef(switch=feed[0], port=feed[1]), uplink=uplink,
    )


def inv(*devices: wire.InventoryDevice, agent: str = "cam-pho-1", ward: str = W, time_ms: int = 1) -> wire.Inventory:
    # Through the wire, as the engine gets it: what the wire refuses never reaches the topology.
    payload = wire.inventory_payload(agent=agent, ward=ward, time_ms=time_ms, devices=list(devices))
    return wire.decode_inventory(wire.inventory_topic(ward, agent), payload)


def ids(nodes: list[object]) -> list[str]:
    return [n.id for n in nodes]  # type: ignore[attr-defined]


def test_configured_feeds_give_parent_behind_and_feed_text() -> None:
    t = Topology()
    t.update(inv(dev("sw-core", "switch", uplink="Te1/0/24"), dev("sw-a", "switch", feed=("sw-core", "Gi1/0/1")),
                 dev("cam-1", feed=("sw-a", "Gi0/5")), dev("ap-1", "ap", feed=("sw-a", "Gi0/6")), dev("cam-2")))
    node = t.device(W, "cam-1")
    assert node is not None and node.feed == ("sw-a", "Gi0/5") and node.feed_source == "config"
    assert node.agent == "cam-pho-1" and node.kind == "camera" and node.interval_s == 60.0
    assert t.feed_text(W, "cam-1") == "sw-a Gi0/5"
    assert t.feed_text(W, "cam-2") == "" and t.parent(W, "cam-2") is None
    assert t.parent(W, "ap-1") == t.device(W, "sw-a")  # feed is allowed on APs too
    assert ids(t.ancestors(W, "cam-1")) == ["sw-a", "sw-core"]
    # Switch behind switch: the core's dead port hides the cameras behind sw-a too; by kind, then id.
    assert ids(t.behind(W, "sw-core")) == ["ap-1", "cam-1", "sw-a"]
    assert ids(t.behind(W, "sw-a")) == ["ap-1", "cam-1"]
    assert t.behind(W, "cam-2") == []
    assert t.agent_of(W, "cam-1") == "cam-pho-1" and t.agent_of(W, "nope") is None
    assert ids(t.devices_of(W, "cam-pho-1")) == ["ap-1", "cam-1", "cam-2", "sw-a", "sw-core"]
    assert t.wards() == {W} and t.device("other", "cam-1") is None


def test_thirteen_devices_behind_one_access_switch() -> None:
    devices = [dev("sw-core", "switch", uplink="Te1/0/24"), dev("sw-acc", "switch", feed=("sw-core", "Gi1/0/2"))]
    devices += [dev(f"cam-{i:02}", feed=("sw-acc", f"Gi0/{i}")) for i in range(1, 11)]
    devices += [dev(f"ap-{i}", "ap", feed=("sw-acc", f"Gi0/{10 + i}")) for i in range(1, 4)]
    t = Topology()
    t.update(inv(*devices))
    behind = t.behind(W, "sw-acc")
    assert len(behind) == 13
    assert [n.kind for n in behind] == ["ap"] * 3 + ["camera"] * 10


@pytest.mark.parametrize("remote", ["cam-3", "CAM-3", "cam-3.hoian.local", "Cam-3.HoiAn.Local.", "cam-3.lan"])
def test_lldp_fills_a_missing_feed_by_id(remote: str) -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("cam-3")))
    t.observe_lldp(W, "sw-a", "Gi0/3", remote)
    node = t.device(W, "cam-3")
    assert node is not None and node.feed == ("sw-a", "Gi0/3") and node.feed_source == "lldp"
    assert ids(t.behind(W, "sw-a")) == ["cam-3"]


def test_lldp_matches_the_host_name_too_but_not_a_lookalike_or_an_ip_prefix() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("cam-cho", host="ipc-0042.hoian.local"), dev("cam-3"),
                 dev("ap-9", "ap", host="10.1.2.3")))
    t.observe_lldp(W, "sw-a", "Gi0/1", "IPC-0042")
    t.observe_lldp(W, "sw-a", "Gi0/2", "cam-33")  # not cam-3
    t.observe_lldp(W, "sw-a", "Gi0/4", "10.1.2.99")  # an address is not cut at its dots
    t.observe_lldp(W, "sw-a", "Gi0/7", "10.1.2.3")
    assert t.feed_text(W, "cam-cho") == "sw-a Gi0/1"
    assert t.feed_text(W, "cam-3") == ""
    assert t.feed_text(W, "ap-9") == "sw-a Gi0/7"


def test_an_ambiguous_short_name_matches_nothing_an_exact_one_wins() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("cam-1", host="cam-x.a.local"), dev("cam-2", host="cam-x.b.local"),
                 dev("cam-3", host="cam-y.a.local"), dev("cam-y", host="10.9.9.9")))
    t.observe_lldp(W, "sw-a", "Gi0/1", "cam-x")  # two devices are cam-x
    t.observe_lldp(W, "sw-a", "Gi0/2", "cam-y.a.local")  # exactly cam-3's host, though cam-y is its short name
    assert t.feed_text(W, "cam-1") == "" and t.feed_text(W, "cam-2") == ""
    assert t.feed_text(W, "cam-3") == "sw-a Gi0/2" and t.feed_text(W, "cam-y") == ""


def test_configured_feed_beats_lldp() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("sw-b", "switch"), dev("cam-1", feed=("sw-a", "Gi0/5"))))
    t.observe_lldp(W, "sw-b", "Gi0/9", "cam-1")
    node = t.device(W, "cam-1")
    assert node is not None and node.feed == ("sw-a", "Gi0/5") and node.feed_source == "config"
    assert t.behind(W, "sw-b") == []


def test_lldp_between_switches_feeds_the_downstream_one_and_behind_is_transitive() -> None:
    t = Topology()
    t.update(inv(dev("sw-core", "switch", uplink="Te1/0/24"), dev("sw-a", "switch"), dev("sw-b", "switch"),
                 dev("cam-1"), dev("cam-2", feed=("sw-b", "Gi0/2"))))
    # Both ends report the link; the one that leads to the uplink switch is upstream, whatever the order.
    t.observe_lldp(W, "sw-a", "Gi0/24", "sw-core.hoian.local")
    t.observe_lldp(W, "sw-b", "Gi0/24", "sw-a")
    t.observe_lldp(W, "sw-core", "Gi1/0/3", "sw-a")
    t.observe_lldp(W, "sw-a", "Gi0/1", "sw-b")
    t.observe_lldp(W, "sw-b", "Gi0/1", "cam-1")
    t.observe_lldp(W, "sw-core", "Te1/0/24", "cam-2")  # what the uplink port sees is not fed by the core
    core = t.device(W, "sw-core")
    assert core is not None and core.feed is None  # the uplink switch is the root
    assert t.feed_text(W, "sw-a") == "sw-core Gi1/0/3"
    assert t.feed_text(W, "sw-b") == "sw-a Gi0/1"
    assert t.feed_text(W, "cam-1") == "sw-b Gi0/1"
    assert ids(t.behind(W, "sw-core")) == ["cam-1", "cam-2", "sw-a", "sw-b"]
    assert ids(t.ancestors(W, "cam-1")) == ["sw-b", "sw-a", "sw-core"]


def test_lldp_self_loops_and_cycles_are_ignored() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("sw-b", "switch"), dev("cam-1")))
    t.observe_lldp(W, "sw-a", "Gi0/1", "sw-a")  # a loop-back cable
    t.observe_lldp(W, "sw-a", "Gi0/2", "sw-b")
    t.observe_lldp(W, "sw-b", "Gi0/2", "sw-a")  # no uplink switch: the first link stays, its reverse is a cycle
    a, b = t.device(W, "sw-a"), t.device(W, "sw-b")
    assert a is not None and b is not None
    assert [a.feed, b.feed] == [None, ("sw-a", "Gi0/2")] or [a.feed, b.feed] == [("sw-b", "Gi0/2"), None]
    assert len(t.behind(W, "sw-a")) + len(t.behind(W, "sw-b")) == 1


def test_a_configured_cycle_does_not_hang_the_walks() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch", feed=("sw-b", "Gi0/1")), dev("sw-b", "switch", feed=("sw-a", "Gi0/1")),
                 dev("sw-c", "switch", feed=("sw-c", "Gi0/9")), dev("cam-1", feed=("sw-a", "Gi0/5"))))
    assert ids(t.ancestors(W, "cam-1")) == ["sw-a", "sw-b"]
    assert ids(t.ancestors(W, "sw-a")) == ["sw-b"]
    assert ids(t.behind(W, "sw-a")) == ["cam-1", "sw-b"]
    # A switch naming itself as its feed (the agent's config lets it through) feeds nothing.
    assert t.parent(W, "sw-c") is None and t.behind(W, "sw-c") == []


def test_a_new_inventory_replaces_the_agents_devices() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("cam-1", feed=("sw-a", "Gi0/1")), dev("cam-2", feed=("sw-a", "Gi0/2"))))
    t.update(inv(dev("sw-a", "switch"), dev("cam-2", feed=("sw-a", "Gi0/7")), time_ms=2))
    assert t.device(W, "cam-1") is None
    assert t.feed_text(W, "cam-2") == "sw-a Gi0/7"
    assert ids(t.behind(W, "sw-a")) == ["cam-2"]
    t.update(inv(time_ms=3))  # an agent with no devices left
    assert t.wards() == set() and t.devices_of(W, "cam-pho-1") == []
    assert t.agents(W) == {"cam-pho-1"}


def test_lldp_seen_before_the_inventory_applies_when_it_comes() -> None:
    t = Topology()
    t.observe_lldp(W, "sw-a", "Gi0/3", "cam-3.hoian.local")
    assert t.device(W, "cam-3") is None
    t.update(inv(dev("sw-a", "switch"), dev("cam-3")))
    assert t.feed_text(W, "cam-3") == "sw-a Gi0/3"


def test_a_moved_device_follows_the_latest_lldp_report() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("sw-b", "switch"), dev("cam-3")))
    t.observe_lldp(W, "sw-a", "Gi0/3", "cam-3")
    t.observe_lldp(W, "sw-b", "Gi0/8", "cam-3")
    assert t.feed_text(W, "cam-3") == "sw-b Gi0/8"
    t.observe_lldp(W, "sw-b", "Gi0/8", "ap-new")  # the port now sees something else
    assert t.feed_text(W, "cam-3") == "sw-a Gi0/3"


def test_lldp_reported_by_a_non_switch_feeds_nothing() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("ap-1", "ap")))
    t.observe_lldp(W, "ap-1", "eth0", "sw-a")  # an AP seeing its switch: the switch is not behind the AP
    assert t.device(W, "sw-a") is not None and t.feed_text(W, "sw-a") == ""


def test_two_agents_one_ward_same_id_later_inventory_wins_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    t = Topology()
    with caplog.at_level(logging.WARNING, logger="wardwatch.collector.alerts.topology"):
        t.update(inv(dev("sw-x", "switch"), dev("cam-1", feed=("sw-x", "Gi0/1")), agent="a1", time_ms=10))
        t.update(inv(dev("sw-y", "switch"), dev("cam-1", feed=("sw-y", "Gi0/2")), agent="a2", time_ms=20))
        t.observe_lldp(W, "sw-x", "Gi0/9", "nobody")  # more rebuilds: no more warnings
        t.update(inv(dev("sw-x", "switch"), dev("cam-1", feed=("sw-x", "Gi0/1")), agent="a1", time_ms=10))
    assert t.agent_of(W, "cam-1") == "a2" and t.feed_text(W, "cam-1") == "sw-y Gi0/2"
    assert ids(t.devices_of(W, "a1")) == ["sw-x"]
    warnings = [r for r in caplog.records if "cam-1" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    # Same device id in another ward is another device.
    t.update(inv(dev("cam-1"), agent="minh-an-1", ward="minh-an"))
    assert t.agent_of("minh-an", "cam-1") == "minh-an-1" and t.wards() == {W, "minh-an"}
    # The winner's inventory is cleared: the other agent's device is back.
    t.forget(W, "a2")
    assert t.agent_of(W, "cam-1") == "a1" and t.feed_text(W, "cam-1") == "sw-x Gi0/1"


def test_a_changed_device_is_seen_after_lldp_rebuilds() -> None:
    t = Topology()
    t.update(inv(dev("sw-a", "switch"), dev("cam-3")))
    t.observe_lldp(W, "sw-a", "Gi0/3", "cam-3")
    assert t.feed_text(W, "cam-3") == "sw-a Gi0/3"
    changed = wire.InventoryDevice(id="cam-3", kind="camera", interval_s=15.0, host="cam-3.hoian.local",
                                   vendor="dahua")
    t.update(inv(dev("sw-a", "switch"), changed, time_ms=2))
    node = t.device(W, "cam-3")
    assert node is not None and (node.vendor, node.interval_s, node.feed) == ("dahua", 15.0, ("sw-a", "Gi0/3"))
