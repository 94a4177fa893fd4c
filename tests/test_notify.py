"""The notifier on a fake clock: grouping per ward, pairing per channel, repeats,
escalation and acknowledgement, failing channels, restarts and routing.

Pure logic: channels and the ledger are small in-memory fakes, time is injected (STYLE 14:
"at t fire; want one notice at t + group_wait"). The tests at the end use the real
AlertStore (SQLite) and the real ``deliver``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from wardwatch.collector.alerts import links, notify
from wardwatch.collector.alerts.channels import open_channel
from wardwatch.collector.alerts.config import AlertsSection
from wardwatch.collector.alerts.model import Alert, Attempt, DeliveryError, Notice, Sent, fingerprint
from wardwatch.collector.alerts.notify import Notifier
from wardwatch.collector.alerts.store import AlertStore

SECRET = b"k" * 32
T0 = 1_700_000_000.0
WARDS = {"cam-pho": "Cẩm Phô", "minh-an": "Minh An"}


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class FakeChannel:
    """Collects what it is sent; ``fail`` makes it raise, ``gate`` makes it wait."""

    name: str
    notices: list[Notice] = field(default_factory=list)
    fail: bool = False
    gate: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, notice: Notice) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise DeliveryError(f"{self.name} answered 500", status=500)
        self.notices.append(notice)
        self.arrived.set()

    def kinds(self) -> list[str]:
        return [n.kind for n in self.notices]


class FakeLedger:
    """The store's pairing ledger and delivery log, in memory (survives a 'restart')."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Sent] = {}
        self.attempts: list[Attempt] = []

    def sent(self) -> dict[tuple[str, str], Sent]:
        return dict(self.rows)

    def save_sent(self, sent: Sent) -> None:
        self.rows[(sent.fingerprint, sent.channel)] = sent

    def log_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)


async def fake_deliver(channel: Any, notice: Notice, *, record: Any, stop: Any = None, clock: Any = time.time) -> bool:
    """One try, recorded: what the real deliver does with retries 0."""
    fps = [a.alert.fingerprint for a in notice.alerts]
    try:
        await channel.send(notice)
    except DeliveryError as exc:
        record(Attempt(channel.name, notice.kind, notice.group_key, fps, 1, False, int(clock() * 1000), str(exc)))
        return False
    record(Attempt(channel.name, notice.kind, notice.group_key, fps, 1, True, int(clock() * 1000)))
    return True


def section(routes: list[dict[str, Any]] | None = None, channels: tuple[str, ...] = ("ops", "tg")) -> AlertsSection:
    return AlertsSection.model_validate(
        {
            "channels": {c: {"type": "webhook", "url": f"http://127.0.0.1:9/{c}"} for c in channels},
            "routes": routes if routes is not None else [{"channels": list(channels)}],
            "language": "vi",
        }
    )


def make(
    cfg: AlertsSection, ledger: FakeLedger, clock: Clock, **kw: Any
) -> tuple[Notifier, dict[str, FakeChannel]]:
    chans = {name: FakeChannel(name) for name in cfg.channels}
    n = Notifier(
        cfg, channels=chans, store=ledger, ward_names=WARDS, external_url="http://127.0.0.1:8080/",
        secret=SECRET, clock=clock, deliver=kw.pop("deliver", fake_deliver), **kw,
    )
    return n, chans


def alert(device: str, *, ward: str = "cam-pho", state: str = "firing", rule: str = "device_down",
          severity: str = "critical", kind: str = "camera", **kw: Any) -> Alert:
    labels = {"alertname": rule, "ward": ward, "device": device, "kind": kind, "severity": severity}
    return Alert(fingerprint=fingerprint(labels), rule=rule, labels=labels, state=state,  # type: ignore[arg-type]
                 started_ms=int(T0 * 1000), updated_ms=int(T0 * 1000), fired_ms=int(T0 * 1000), **kw)


def resolve(a: Alert, clock: Clock) -> None:
    a.state = "resolved"
    a.ended_ms = int(clock() * 1000)


async def step(n: Notifier, alerts: list[Alert], clock: Clock, seconds: float = 0.0) -> None:
    clock.advance(seconds)
    n.reconcile(alerts)
    await n.flush_due()


# -- pairing ---------------------------------------------------------------------------


async def test_one_firing_then_one_resolved_per_channel() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    a = alert("cam-01")
    await step(n, [a], clock)
    await step(n, [a], clock, 9.9)
    assert ch["ops"].notices == [] and ch["tg"].notices == []  # still inside group_wait (10 s)
    await step(n, [a], clock, 0.1)
    for c in ("ops", "tg"):
        assert ch[c].kinds() == ["firing"]
        notice = ch[c].notices[0]
        assert (notice.channel, notice.group_key, notice.ward) == (c, "0:cam-pho", "cam-pho")
        assert notice.ward_name == "Cẩm Phô" and notice.external_url == "http://127.0.0.1:8080"
        assert (notice.language, notice.timezone) == ("vi", "Asia/Ho_Chi_Minh")
        [item] = notice.alerts
        assert item.status == "firing" and item.alert.device == "cam-01"
        token = item.ack_url.removeprefix("http://127.0.0.1:8080/ack/")
        assert links.verify(SECRET, token, now_ms=int(clock() * 1000)) == a.fingerprint
        assert links.verify(SECRET, token, now_ms=int((clock() + 7 * 86400 + 1) * 1000)) is None  # 7 days
    assert n.owed(a.fingerprint)

    for _ in range(5):  # still firing: nothing more (repeat is 4 h)
        await step(n, [a], clock, 30)
    resolve(a, clock)
    await step(n, [a], clock)
    assert n.owed(a.fingerprint)  # the resolved notice is queued
    await step(n, [a], clock, 10)
    for c in ("ops", "tg"):
        assert ch[c].kinds() == ["firing", "resolved"]
        assert ch[c].notices[1].alerts[0].status == "resolved" and ch[c].notices[1].alerts[0].ack_url == ""
    assert not n.owed(a.fingerprint)
    for _ in range(3):
        await step(n, [a], clock, 60)
    assert ch["ops"].kinds() == ["firing", "resolved"] and n.sent_ok == 4 and n.queued == 0


async def test_13_alerts_in_one_ward_within_group_wait_are_one_notice_per_channel() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    switch = alert("sw-01", kind="switch")
    devices = [alert(f"cam-{i:02}") for i in range(10)] + [alert(f"ap-{i}", kind="ap") for i in range(3)]
    alerts: list[Alert] = []
    for i, a in enumerate([switch, *devices[:12]]):  # one every 0.7 s: all within 10 s of the first
        alerts.append(a)
        await step(n, alerts, clock, 0.7 if i else 0)
    await step(n, alerts, clock, 10)
    for c in ("ops", "tg"):
        assert len(ch[c].notices) == 1
        assert len(ch[c].notices[0].alerts) == 13
    assert n.queued == 0


async def test_two_wards_are_two_notices() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    alerts = [alert("cam-01"), alert("cam-02"), alert("cam-09", ward="minh-an")]
    await step(n, alerts, clock)
    await step(n, alerts, clock, 10)
    for c in ("ops", "tg"):
        by_ward = {x.ward: x for x in ch[c].notices}
        assert sorted(by_ward) == ["cam-pho", "minh-an"]
        assert by_ward["minh-an"].ward_name == "Minh An" and by_ward["minh-an"].group_key == "0:minh-an"
        assert [len(by_ward[w].alerts) for w in ("cam-pho", "minh-an")] == [2, 1]


async def test_an_alert_resolved_within_group_wait_sends_nothing() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    a = alert("cam-01")
    await step(n, [a], clock)
    assert n.owed(a.fingerprint)
    resolve(a, clock)
    await step(n, [a], clock, 5)
    await step(n, [a], clock, 5)
    await step(n, [a], clock, 30)
    assert ch["ops"].notices == [] and ch["tg"].notices == []
    assert not n.owed(a.fingerprint) and n.queued == 0 and ledger.rows == {}


async def test_suppressed_after_firing_gets_no_repeat_but_its_resolved_notice() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section([{"channels": ["ops", "tg"], "repeat": "1h"}]), ledger, clock)
    a = alert("cam-01")
    await step(n, [a], clock)
    await step(n, [a], clock, 10)
    a.suppressed_by = "device:sw-01"  # its switch went down after it fired
    await step(n, [a], clock, 2 * 3600)  # past repeat: still nothing while muted
    await step(n, [a], clock, 10)
    assert ch["ops"].kinds() == ["firing"]
    assert n.owed(a.fingerprint)
    resolve(a, clock)  # resolved while still suppressed
    await step(n, [a], clock)
    await step(n, [a], clock, 10)
    assert ch["ops"].kinds() == ["firing", "resolved"] and ch["tg"].kinds() == ["firing", "resolved"]
    assert not n.owed(a.fingerprint)


async def test_silenced_from_the_start_sends_nothing_and_owes_nothing() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    a = alert("cam-01", silenced_by="maintenance")
    b = alert("cam-02", live=False)  # known only from backfill: not notified either
    for _ in range(3):
        await step(n, [a, b], clock, 10)
    resolve(a, clock)
    resolve(b, clock)
    for _ in range(3):
        await step(n, [a, b], clock, 10)
    assert ch["ops"].notices == [] and ch["tg"].notices == []
    assert not n.owed(a.fingerprint) and not n.owed(b.fingerprint)


async def test_an_alert_gone_from_the_engine_after_firing_gets_its_resolved_notice() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    a = alert("cam-01")
    await step(n, [a], clock)
    await step(n, [a], clock, 10)
    await step(n, [], clock, 60)  # forgotten by the engine, still firing when last seen
    await step(n, [], clock, 10)
    assert ch["ops"].kinds() == ["firing", "resolved"]
    assert ch["ops"].notices[1].alerts[0].alert.state == "resolved"
    assert not n.owed(a.fingerprint)


async def test_a_new_episode_after_the_resolved_notice_fires_again() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    a = alert("cam-01")
    await step(n, [a], clock)
    await step(n, [a], clock, 10)
    resolve(a, clock)
    await step(n, [a], clock, 1)
    await step(n, [a], clock, 10)
    again = alert("cam-01")  # the engine's next episode: same fingerprint
    await step(n, [again], clock, 60)
    await step(n, [again], clock, 10)
    assert ch["ops"].kinds() == ["firing", "resolved", "firing"]
    assert n.owed(a.fingerprint)


# -- repeats, escalation, acknowledgement ----------------------------------------------------


async def test_repeat_after_the_route_repeat_interval() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section([{"channels": ["ops"], "repeat": "1h"}], channels=("ops",)), ledger, clock)
    a = alert("cam-01")
    await step(n, [a], clock)
    await step(n, [a], clock, 10)  # firing delivered at T0 + 10
    await step(n, [a], clock, 3599)  # 1 s short of an hour since then
    await step(n, [a], clock, 10)
    assert ch["ops"].kinds() == ["firing"]
    await step(n, [a], clock, 1)  # an hour since the firing: a repeat is owed, after group_wait
    assert ch["ops"].kinds() == ["firing"]
    await step(n, [a], clock, 10)
    assert ch["ops"].kinds() == ["firing", "repeat"]
    assert ch["ops"].notices[1].alerts[0].status == "firing" and ch["ops"].notices[1].alerts[0].ack_url
    await step(n, [a], clock, 1800)  # the next repeat counts from this one
    await step(n, [a], clock, 10)
    assert ch["ops"].kinds() == ["firing", "repeat"]
    await step(n, [a], clock, 1800)
    await step(n, [a], clock, 10)
    assert ch["ops"].kinds() == ["firing", "repeat", "repeat"]


ESCALATING = [{"channels": ["ops"], "repeat": "4h", "escalate": {"after": "15m", "channels": ["mail"]}}]


async def test_escalation_after_m_without_ack_and_paired_on_the_escalation_channel() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(ESCALATING, channels=("ops", "mail")), ledger, clock)
    a = alert("cam-01")
    await step(n, [a], clock)
    await step(n, [a], clock, 10)  # ops got it at T0 + 10
    assert ch["ops"].kinds() == ["firing"] and ch["mail"].notices == []
    await step(n, [a], clock, 899)
    await step(n, [a], clock, 10)
    assert ch["mail"].notices == []  # 15 min since the first notice is at T0 + 910
    await step(n, [a], clock, 1)
    await step(n, [a], clock, 10)
    assert ch["mail"].kinds() == ["escalation"] and ch["ops"].kinds() == ["firing"]
    assert ch["mail"].notices[0].alerts[0].status == "firing"
    assert ledger.rows[(a.fingerprint, "mail")].escalation
    for _ in range(4):
        await step(n, [a], clock, 600)
    assert ch["mail"].kinds() == ["escalation"]  # once
    resolve(a, clock)
    await step(n, [a], clock)
    await step(n, [a], clock, 10)
    assert ch["ops"].kinds() == ["firing", "resolved"] and ch["mail"].kinds() == ["escalation", "resolved"]
    assert not n.owed(a.fingerprint)


async def test_an_acknowledged_alert_neither_escalates_nor_repeats() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(ESCALATING, channels=("ops", "mail")), ledger, clock)
    a = alert("cam-01")
    b = alert("cam-02")  # acknowledged in the engine's copy (e.g. restored from the state file)
    await step(n, [a, b], clock)
    await step(n, [a, b], clock, 10)
    n.acknowledged(a.fingerprint)
    b.acked_by, b.acked_ms = "lan", int(clock() * 1000)
    for _ in range(10):  # 5 h: past escalate.after and repeat
        await step(n, [a, b], clock, 1800)
    assert ch["mail"].notices == []
    assert ch["ops"].kinds() == ["firing"]
    resolve(a, clock)
    resolve(b, clock)
    await step(n, [a, b], clock)
    await step(n, [a, b], clock, 10)
    assert ch["ops"].kinds() == ["firing", "resolved"] and len(ch["ops"].notices[1].alerts) == 2


# -- failing and slow channels ------------------------------------------------------------


async def test_a_failing_channel_does_not_stop_another_and_is_retried_later() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock, retry_wait=30)
    ch["ops"].fail = True
    a = alert("cam-01")
    await step(n, [a], clock)
    await step(n, [a], clock, 10)
    assert ch["tg"].kinds() == ["firing"] and ch["ops"].notices == []
    assert (a.fingerprint, "ops") not in ledger.rows and (a.fingerprint, "tg") in ledger.rows
    assert n.sent_failed == 1 and n.sent_ok == 1 and n.queued == 1
    assert sorted((x.channel, x.ok) for x in ledger.attempts) == [("ops", False), ("tg", True)]
    await step(n, [a], clock, 10)  # held off for retry_wait after the failure
    assert n.sent_failed == 1
    ch["ops"].fail = False
    await step(n, [a], clock, 20)
    assert ch["ops"].kinds() == ["firing"] and ch["tg"].kinds() == ["firing"]
    assert ledger.rows[(a.fingerprint, "ops")].firing_ms == int(clock() * 1000)
    assert n.queued == 0


async def test_a_channel_whose_delivery_returns_false_is_owed_again() -> None:
    clock, ledger = Clock(), FakeLedger()
    refuse = {"ops"}

    async def deliver(channel: Any, notice: Notice, **kw: Any) -> bool:
        if channel.name in refuse:
            return False
        return await fake_deliver(channel, notice, **kw)

    n, ch = make(section(), ledger, clock, deliver=deliver, retry_wait=0)
    a = alert("cam-01")
    await step(n, [a], clock)
    await step(n, [a], clock, 10)
    assert ch["tg"].kinds() == ["firing"] and n.sent_failed == 1 and n.owed(a.fingerprint)
    refuse.clear()
    await step(n, [a], clock, 1)  # the next flush
    assert ch["ops"].kinds() == ["firing"] and ch["tg"].kinds() == ["firing"]


async def test_a_slow_channel_does_not_hold_back_another() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    gate = ch["ops"].gate = asyncio.Event()
    a = alert("cam-01")
    n.reconcile([a])
    clock.advance(10)
    flush = asyncio.create_task(n.flush_due())
    await asyncio.wait_for(ch["tg"].arrived.wait(), 2)
    assert ch["ops"].notices == [] and not flush.done()
    # while ops is in flight, another flush neither resends to ops nor blocks
    n.reconcile([a])
    await asyncio.wait_for(n.flush_due(), 1)
    gate.set()
    await asyncio.wait_for(flush, 2)
    assert ch["ops"].kinds() == ["firing"] and ch["tg"].kinds() == ["firing"]


# -- restarts ---------------------------------------------------------------------------------


async def test_a_restarted_notifier_sends_no_duplicate_and_pairs_the_resolved_later() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(), ledger, clock)
    a = alert("cam-01")
    b = alert("cam-02")  # queued but not yet sent when the collector stops
    await step(n, [a], clock)
    await step(n, [a], clock, 10)
    await step(n, [a, b], clock, 1)
    assert ch["ops"].kinds() == ["firing"]

    clock.advance(120)  # restart: a new notifier over the same ledger, the engine's restored alerts
    n2, ch2 = make(section(), ledger, clock)
    assert n2.owed(a.fingerprint) and not n2.owed(b.fingerprint)
    for _ in range(3):
        await step(n2, [a, b], clock, 10)
    for c in ("ops", "tg"):  # a: nothing new; b: its first firing notice
        assert [(x.kind, [i.alert.device for i in x.alerts]) for x in ch2[c].notices] == [("firing", ["cam-02"])]
    resolve(a, clock)
    await step(n2, [a, b], clock)
    await step(n2, [a, b], clock, 10)
    for c in ("ops", "tg"):
        assert [(x.kind, [i.alert.device for i in x.alerts]) for x in ch2[c].notices] == [
            ("firing", ["cam-02"]), ("resolved", ["cam-01"]),
        ]
    assert not n2.owed(a.fingerprint) and n2.owed(b.fingerprint)


# -- routing and bounds --------------------------------------------------------------------------


async def test_routing_first_match_and_continue(caplog: pytest.LogCaptureFixture) -> None:
    routes = [
        {"match": {"severity": "critical"}, "channels": ["ops"], "continue": True},
        {"match": {"kind": "cam*"}, "channels": ["tg"]},
        {"match": {"severity": "critical"}, "channels": ["mail"]},
        {"match": {"severity": "warning", "alertname": "uplink_*"}, "channels": ["mail"]},
    ]
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(routes, channels=("ops", "tg", "mail")), ledger, clock)
    camera = alert("cam-01")  # critical camera: routes 0 and 1 (1 has no continue)
    switch = alert("sw-01", kind="switch")  # critical switch: routes 0 and 2
    uplink = alert("sw-01", rule="uplink_saturated", severity="warning", kind="switch")  # route 3
    nowhere = alert("ap-01", rule="ap_clients_high", severity="warning", kind="ap")
    nowhere2 = alert("ap-02", rule="ap_clients_high", severity="warning", kind="ap")
    with caplog.at_level(logging.INFO, logger="wardwatch.collector.alerts.notify"):
        everything = [camera, switch, uplink, nowhere, nowhere2]
        await step(n, everything, clock)
        await step(n, everything, clock, 10)
    got = {c: sorted((x.group_key, i.alert.device, i.alert.rule) for x in ch[c].notices for i in x.alerts) for c in ch}
    assert got == {
        "ops": [("0:cam-pho", "cam-01", "device_down"), ("0:cam-pho", "sw-01", "device_down")],
        "tg": [("1:cam-pho", "cam-01", "device_down")],
        "mail": [("2:cam-pho", "sw-01", "device_down"), ("3:cam-pho", "sw-01", "uplink_saturated")],
    }
    unrouted = [r for r in caplog.records if "matches no route" in r.getMessage()]
    assert len(unrouted) == 1 and "ap_clients_high" in unrouted[0].getMessage()  # once per alertname
    assert unrouted[0].levelno == logging.INFO
    assert not n.owed(nowhere.fingerprint)


async def test_the_queue_is_bounded_and_drops_are_counted() -> None:
    clock, ledger = Clock(), FakeLedger()
    n, ch = make(section(channels=("ops",)), ledger, clock, max_queued=5)
    alerts = [alert(f"cam-{i:02}") for i in range(8)]
    n.reconcile(alerts)
    assert n.queued == 5 and n.dropped == 3
    await step(n, alerts, clock, 10)
    assert len(ch["ops"].notices[0].alerts) == 5
    assert n.queued == 0
    await step(n, alerts, clock, 1)  # room again: the other 3 are queued, in a group of their own
    assert n.queued == 3
    await step(n, alerts, clock, 10)
    assert [len(x.alerts) for x in ch["ops"].notices] == [5, 3]


async def test_run_sends_on_its_tick_and_returns_on_stop() -> None:
    ledger = FakeLedger()
    cfg = section([{"channels": ["ops"], "group_wait": 0}], channels=("ops",))
    chans = {"ops": FakeChannel("ops")}
    notifier = Notifier(cfg, channels=chans, store=ledger, ward_names=WARDS, external_url="http://127.0.0.1:8080",
                        secret=SECRET, deliver=fake_deliver)
    a = alert("cam-01")
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(lambda: [a], stop, tick=0.02))
    await asyncio.wait_for(chans["ops"].arrived.wait(), 2)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert chans["ops"].kinds() == ["firing"]


async def test_stop_waits_a_bounded_time_for_a_stuck_delivery_which_stays_owed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notify, "DRAIN_TIMEOUT", 0.2)
    ledger = FakeLedger()
    cfg = section([{"channels": ["ops", "tg"], "group_wait": 0}])
    chans = {"ops": FakeChannel("ops", gate=asyncio.Event()), "tg": FakeChannel("tg")}  # ops never answers
    notifier = Notifier(cfg, channels=chans, store=ledger, ward_names=WARDS, external_url="http://127.0.0.1:8080",
                        secret=SECRET, deliver=fake_deliver)
    a = alert("cam-01")
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(lambda: [a], stop, tick=0.02))
    await asyncio.wait_for(chans["tg"].arrived.wait(), 2)
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(task, 2)
    assert time.monotonic() - started < 1.0
    assert (a.fingerprint, "ops") not in ledger.rows and (a.fingerprint, "tg") in ledger.rows
    restarted = Notifier(cfg, channels={"ops": FakeChannel("ops"), "tg": FakeChannel("tg")}, store=ledger,
                         ward_names=WARDS, external_url="http://127.0.0.1:8080", secret=SECRET, deliver=fake_deliver)
    restarted.reconcile([a])
    assert restarted.queued == 1  # ops is still owed its firing notice, tg nothing


# -- the real store and the real deliver, against a local webhook receiver -----------------------


class Receiver:
    """An Alertmanager-style webhook receiver on loopback; answers ``status`` (a list, one per request, then 200)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.bodies.append(await request.json())
        return web.Response(status=status, text="ok" if status == 200 else "boom")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._post)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def real_section(ops: str, mail: str) -> AlertsSection:
    fast = {"retries": 1, "backoff": "50ms", "timeout": 2}
    return AlertsSection.model_validate({
        "channels": {"ops": {"type": "webhook", "url": ops, **fast}, "mail": {"type": "webhook", "url": mail, **fast}},
        "routes": [{"channels": ["ops", "mail"], "group_wait": "1s"}],
    })


async def real_notifier(cfg: AlertsSection, store: AlertStore, clock: Clock) -> tuple[Notifier, dict[str, Any]]:
    channels = {name: open_channel(name, c) for name, c in cfg.channels.items()}
    n = Notifier(cfg, channels=channels, store=store, ward_names=WARDS, external_url="http://127.0.0.1:8080",
                 secret=store.secret(), clock=clock, retry_wait=0)
    return n, channels


async def test_real_store_and_deliver_pair_across_a_restart_and_survive_a_failing_webhook(tmp_path: Path) -> None:
    clock = Clock()
    async with Receiver() as ops, Receiver() as mail:
        cfg = real_section(ops.url, mail.url)
        ops.statuses = [500, 500]  # both tries of the first delivery fail
        store = AlertStore(tmp_path / "alerts.db")
        store.open()
        n, channels = await real_notifier(cfg, store, clock)
        a = alert("cam-01")
        await step(n, [a], clock)
        await step(n, [a], clock, 1)
        assert [b["status"] for b in mail.bodies] == ["firing"] and ops.bodies == []
        assert (a.fingerprint, "mail") in store.sent() and (a.fingerprint, "ops") not in store.sent()
        tries = [(x.channel, x.attempt, x.ok, x.status) for x in store.attempts(channel="ops")]
        assert sorted(tries) == [("ops", 1, False, 500), ("ops", 2, False, 500)]
        await step(n, [a], clock, 1)  # the next flush: ops recovered
        assert [b["status"] for b in ops.bodies] == ["firing"]
        body = ops.bodies[0]
        assert body["version"] == "4" and body["groupKey"] == "0:cam-pho"
        assert body["wardwatch"]["ward_name"] == "Cẩm Phô"
        assert body["wardwatch"]["alerts"][a.fingerprint]["ack_url"].startswith("http://127.0.0.1:8080/ack/")
        for c in channels.values():
            await c.close()
        store.close()

        clock.advance(300)  # the collector restarts mid-outage
        store = AlertStore(tmp_path / "alerts.db")
        store.open()
        n, channels = await real_notifier(cfg, store, clock)
        for _ in range(3):
            await step(n, [a], clock, 1)
        assert len(ops.bodies) == 1 and len(mail.bodies) == 1  # no duplicate firing
        resolve(a, clock)
        await step(n, [a], clock, 1)
        await step(n, [a], clock, 1)
        assert [b["status"] for b in ops.bodies] == ["firing", "resolved"]
        assert [b["status"] for b in mail.bodies] == ["firing", "resolved"]
        assert not n.owed(a.fingerprint)
        assert all(s.resolved_ms is not None for s in store.sent().values())
        for c in channels.values():
            await c.close()
        store.close()
