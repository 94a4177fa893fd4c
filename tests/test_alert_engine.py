"""The alert engine's logic, fed wire messages directly with a controlled clock.

The end-to-end behaviour with real agents, Mosquitto, InfluxDB and receivers is in
test_alerts_e2e.py; this module pins down the rules of docs/alerts.md one by one.
"""

from __future__ import annotations

from typing import Any

from wardwatch import wire
from wardwatch.collector.alerts.config import MaintenanceWindow
from wardwatch.collector.alerts.engine import Engine
from wardwatch.collector.alerts.model import Alert, Silence
from wardwatch.collector.alerts.rules import load_rules

WARD, AGENT = "cam-pho", "cam-pho-1"
T0 = 1_780_000_000_000  # ms


def inventory(devices: list[dict[str, Any]]) -> wire.Inventory:
    items = [wire.InventoryDevice(id=d["id"], kind=d["kind"], interval_s=d.get("interval", 10.0), host="127.0.0.1",
                                  feed=wire.FeedRef(**d["feed"]) if "feed" in d else None) for d in devices]
    return wire.decode_inventory(wire.inventory_topic(WARD, AGENT),
                                 wire.inventory_payload(agent=AGENT, ward=WARD, time_ms=T0, devices=items))


class City:
    """One ward: a switch feeding 10 cameras and 3 APs; every device polled every 10 s."""

    def __init__(self, **kw: Any) -> None:
        self.engine = Engine(load_rules(None), wards={WARD: "Cẩm Phô"}, tz=None, **kw)
        self.seq = 0
        self.now = T0
        devices: list[dict[str, Any]] = [{"id": "sw-a", "kind": "switch"}]
        devices += [{"id": f"cam-{i}", "kind": "camera", "feed": {"switch": "sw-a", "port": f"Gi0/{i}"}}
                    for i in range(10)]
        devices += [{"id": f"ap-{i}", "kind": "ap", "feed": {"switch": "sw-a", "port": f"Gi0/{20 + i}"}}
                    for i in range(3)]
        self.engine.observe_inventory(inventory(devices))
        self.up = {d["id"]: True for d in devices}
        self.kinds = {d["id"]: d["kind"] for d in devices}

    def readings(self, device: str, t: int) -> list[wire.Reading]:
        kind, up = self.kinds[device], self.up[device]
        out = [wire.Reading(device=device, kind=kind, measurement="device_status", time_ms=t,  # type: ignore[arg-type]
                            fields={"up": int(up), "reason": "ok" if up else "timeout"})]
        if kind == "camera":
            out.append(wire.Reading(device=device, kind="camera", measurement="camera_health", time_ms=t,
                                    fields={"ok": int(up), "reason": "ok" if up else "offline"}))
        return out

    def poll(self, devices: list[str] | None = None, *, at: int | None = None, now: int | None = None) -> None:
        """One batch with a reading of each device at ``at`` (default: now), arriving at ``now``."""
        t = self.now if at is None else at
        arrive = self.now if now is None else now
        readings = [r for d in (devices or list(self.kinds)) for r in self.readings(d, t)]
        batch = wire.Batch(schema=1, agent=AGENT, ward=WARD, seq=self.seq, readings=readings)
        self.seq += 1
        self.engine.observe_batch(batch, now_ms=arrive, wall=arrive / 1000)

    def advance(self, seconds: float, *, poll: bool = True, devices: list[str] | None = None) -> None:
        """Poll every 10 s (and tick every second) for ``seconds``."""
        end = self.now + int(seconds * 1000)
        while self.now < end:
            self.now += 1000
            if poll and (self.now - T0) % 10_000 == 0:
                self.poll(devices)
            self.engine.tick(self.now, self.now / 1000)

    def firing(self, rule: str | None = None) -> list[Alert]:
        return [a for a in self.engine.alerts.values() if a.state == "firing" and (rule is None or a.rule == rule)]

    def sendable(self) -> list[Alert]:
        return [a for a in self.engine.alerts.values() if a.sendable()]


def test_a_camera_offline_fires_after_for_and_resolves() -> None:
    city = City()
    city.advance(20)
    city.up["cam-3"] = False
    city.advance(55)
    assert not city.firing(), "for: 1m has not passed"
    city.advance(20)
    [alert] = city.sendable()
    assert (alert.rule, alert.device, alert.reason) == ("camera_not_ok", "cam-3", "offline")
    assert alert.labels == {"alertname": "camera_not_ok", "ward": WARD, "device": "cam-3", "kind": "camera",
                            "severity": "critical", "agent": AGENT}
    assert "Cẩm Phô" in alert.summary["vi"] and "Không trả lời (ONVIF)" in alert.summary["vi"]
    assert "Not answering (ONVIF)" in alert.summary["en"]
    assert alert.feed == "sw-a Gi0/3"
    city.up["cam-3"] = True
    city.advance(10)
    assert alert.state == "resolved" and alert.ended_ms is not None
    states = [t.state for t in city.engine.take_transitions()]
    assert states == ["firing", "resolved"]


def test_a_dead_switch_is_one_alert_with_its_13_devices_behind_it() -> None:
    city = City()
    city.advance(20)
    for dev in city.up:
        city.up[dev] = False
    city.advance(90)
    [root] = city.sendable()
    assert (root.rule, root.device) == ("device_down", "sw-a")
    kinds = sorted(b.kind for b in root.behind)
    assert len(root.behind) == 13 and kinds.count("camera") == 10 and kinds.count("ap") == 3
    children = [a for a in city.firing() if a.device != "sw-a"]
    assert len(children) == 13 and all(a.suppressed_by == "device:sw-a" for a in children)


def test_children_polled_before_their_parent_still_give_one_notice() -> None:
    """The children fail and are polled first; the switch is only polled 8 s later."""
    city = City()
    city.advance(20)
    for dev in city.up:
        city.up[dev] = False
    children = [d for d in city.kinds if d != "sw-a"]
    # the switch's last good reading is from before; the children are polled on the 10 s beat,
    # the switch 8 s after each beat
    for _ in range(12):
        for _ in range(10):
            city.now += 1000
            if (city.now - T0) % 10_000 == 0:
                city.poll(children)
            if (city.now - T0) % 10_000 == 8000:
                city.poll(["sw-a"])
            city.engine.tick(city.now, city.now / 1000)
        assert [a.device for a in city.sendable()] in ([], ["sw-a"])
    assert [a.device for a in city.sendable()] == ["sw-a"]


def test_a_child_still_down_after_its_parent_recovers_alerts_within_one_cycle() -> None:
    city = City()
    city.advance(20)
    for dev in city.up:
        city.up[dev] = False
    city.advance(90)
    for dev in city.up:
        city.up[dev] = dev != "cam-7"
    city.now += 1000
    city.poll(["sw-a"])  # the switch answers first; its children on the next beat
    city.engine.tick(city.now, city.now / 1000)
    assert not city.sendable(), "the children's last readings were taken behind a dead switch"
    city.advance(10)
    assert [a.device for a in city.sendable()] == ["cam-7"]


def test_a_child_poll_begun_before_its_parent_came_back_does_not_alert() -> None:
    """An AP's poll that started just before its switch answered again fails: that says
    nothing about the AP, and its next poll (which answers) decides."""
    city = City()
    city.advance(20)
    for dev in city.up:
        city.up[dev] = False
    city.advance(90)
    city.up["sw-a"] = True
    city.now += 1000
    city.poll(["sw-a"])
    city.engine.tick(city.now, city.now / 1000)
    city.poll(["ap-1"], at=city.now - 500)  # begun 0.5 s before the switch's good poll, still down
    city.engine.tick(city.now + 1000, city.now / 1000 + 1)
    assert not city.sendable()
    for dev in city.up:
        city.up[dev] = True
    city.advance(20)
    assert not city.sendable() and not city.firing()


def test_a_flapping_device_is_one_flapping_alert() -> None:
    """Toggled every 20 s for 5 minutes: 15 changes; camera_not_ok (for: 1m) never fires."""
    city = City()
    city.advance(20)
    for _ in range(15):
        city.up["cam-1"] = not city.up["cam-1"]
        city.advance(20)
    firing = city.firing()
    assert [a.rule for a in firing] == ["flapping"]
    assert firing[0].device == "cam-1" and firing[0].value == 15, "15 changes in the hour"
    city.up["cam-1"] = False  # it stays down: its alert fires, held back while flapping
    city.advance(70)
    down = city.firing("camera_not_ok")
    assert down and down[0].suppressed_by == "flapping" and not down[0].sendable()
    city.advance(15 * 60)
    assert not city.firing("flapping") and down[0].sendable(), "stable for 15 min: flapping over"


def test_an_offline_agent_is_one_alert_and_its_devices_are_unknown() -> None:
    city = City(stale_after=30)
    city.advance(20)
    city.up["cam-2"] = False
    city.advance(5, poll=False)
    city.engine.observe_status(wire.Status(schema=1, agent=AGENT, ward=WARD, state="offline", time_ms=city.now),
                               now_ms=city.now)
    city.advance(300, poll=False)
    [alert] = city.sendable()
    assert (alert.rule, alert.device, alert.labels["kind"]) == ("agent_offline", AGENT, "agent")
    assert len(alert.behind) == 14
    assert "camera_not_ok" not in {a.rule for a in city.firing()}, "cam-2 is unknown, not fired"


def test_backlog_after_an_outage_is_history_and_sends_nothing_stale() -> None:
    """While the agent was away cam-2 failed and recovered: that is history, never a notice."""
    city = City(stale_after=30)
    city.advance(20)
    gone = city.now
    city.engine.observe_status(wire.Status(schema=1, agent=AGENT, ward=WARD, state="offline", time_ms=gone),
                               now_ms=gone)
    city.advance(400, poll=False)
    city.engine.take_transitions()
    # back: the live batch first, then the backlog, oldest first (how the publisher interleaves)
    city.poll()
    city.up["cam-2"] = False
    for k in range(1, 20):
        city.poll(["cam-2"], at=gone + k * 10_000)
    city.up["cam-2"] = True
    city.poll(["cam-2"], at=gone + 200_000)
    city.engine.tick(city.now, city.now / 1000)
    history = [(t.alert.rule, t.state, t.backfill) for t in city.engine.take_transitions()]
    assert ("camera_not_ok", "firing", True) in history and ("camera_not_ok", "resolved", True) in history
    assert not city.sendable()
    offline = [a for a in city.engine.alerts.values() if a.rule == "agent_offline"]
    assert all(a.state == "resolved" for a in offline)


def test_late_firing_notifies_only_if_it_still_holds_at_the_live_edge() -> None:
    city = City()
    city.advance(20)
    city.up["cam-4"] = False
    late = city.now + 200_000
    for k in range(8):  # readings of 70 s, arriving over 2 min late (live_lag)
        city.poll(["cam-4"], at=city.now + k * 10_000, now=late + 1)
    city.now = late
    city.engine.tick(city.now, city.now / 1000)
    [alert] = city.firing()
    assert not alert.live and not alert.sendable(), "backfill is not notified"
    city.advance(10)  # a live reading: still down
    assert alert.sendable()


def test_maintenance_and_silences_record_but_do_not_send() -> None:
    window = MaintenanceWindow(wards=[WARD], rrule="FREQ=MINUTELY", duration=120)
    city = City(maintenance_windows=[window])
    city.advance(20)
    city.up["cam-5"] = False
    city.advance(90)
    [alert] = city.firing()
    assert alert.silenced_by == "maintenance" and not alert.sendable()
    silence = Silence(id="s1", matchers={"device": "cam-*"}, starts_ms=T0, ends_ms=T0 + 10**9, created_by="an")
    city2 = City(silences=lambda: [silence])
    city2.advance(20)
    city2.up["cam-5"] = False
    city2.advance(90)
    [alert2] = city2.firing()
    assert alert2.silenced_by == "s1" and not alert2.sendable()
    assert "silenced" in [t.state for t in city2.engine.take_transitions()]


def test_a_resolved_alert_still_owed_its_notice_is_not_overwritten() -> None:
    owed: set[str] = set()
    city = City(owed=lambda fp: fp in owed)
    city.advance(20)
    city.up["cam-6"] = False
    city.advance(80)
    [alert] = city.firing()
    owed.add(alert.fingerprint)
    city.up["cam-6"] = True
    city.advance(10)
    assert alert.state == "resolved"
    city.up["cam-6"] = False
    city.advance(20)
    assert city.engine.alerts[alert.fingerprint] is alert and alert.state == "resolved"
    owed.clear()
    city.advance(70)
    again = city.engine.alerts[alert.fingerprint]
    assert again is not alert and again.state == "firing"


def test_restored_firing_alerts_stay_firing() -> None:
    city = City()
    city.advance(20)
    city.up["cam-8"] = False
    city.advance(80)
    [alert] = city.firing()
    fresh = City()
    fresh.engine.restore([alert])
    fresh.up["cam-8"] = False
    fresh.now = city.now
    fresh.advance(20)
    assert fresh.firing() == [alert] and alert.fired_ms is not None
    assert not [t for t in fresh.engine.take_transitions() if t.state == "firing"], "no second firing"


def test_a_device_dropped_from_its_agents_inventory_resolves() -> None:
    city = City()
    city.advance(20)
    city.up["cam-9"] = False
    city.advance(80)
    [alert] = city.firing()
    kept = [{"id": d, "kind": k} for d, k in city.kinds.items() if d != "cam-9"]
    city.engine.observe_inventory(inventory(kept), now_ms=city.now)
    assert alert.state == "resolved" and alert.reason == "removed"


def test_a_controllers_aps_are_alerts_of_their_own() -> None:
    """A WLC reports every AP's radios: two APs' 2.4 GHz radios are two alerts, not one."""
    engine = Engine(load_rules(None), wards={WARD: "Cẩm Phô"})
    engine.observe_inventory(inventory([{"id": "wlc", "kind": "ap"}]))

    def poll(t: int, up: dict[str, int]) -> None:
        readings = [wire.Reading(device="wlc", kind="ap", measurement="wifi_radio", time_ms=t,
                                 fields={"up": v, "clients": 3}, tags={"ap": ap, "radio": "2.4GHz"})
                    for ap, v in up.items()]
        engine.observe_batch(wire.Batch(schema=1, agent=AGENT, ward=WARD, seq=t, readings=readings), now_ms=t,
                             wall=t / 1000)
        engine.tick(t, t / 1000)

    for k in range(20):
        poll(T0 + k * 10_000, {"ap-lobby": 0, "ap-hall": 1})
    firing = [a for a in engine.alerts.values() if a.state == "firing"]
    assert [(a.rule, a.labels["ap"], a.labels["radio"]) for a in firing] == [("ap_radio_down", "ap-lobby", "2.4GHz")]
    assert "ap-lobby" in firing[0].summary["vi"] and "wlc" in firing[0].summary["en"]
