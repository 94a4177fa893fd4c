"""The supervisor: one device's bug is that device's failed poll, nothing unencodable is
committed, and a disk that refuses writes is survived.

The pollers here are fakes of the Poller contract (agent/core/poller.py): the point is what
the supervisor does with whatever a poller raises or returns. The outbox is the real one,
and the full disk is a real one too (a 256 kB tmpfs under a real agent process)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from tests.util import write_yaml
from wardwatch import wire
from wardwatch.agent.core.config import load_config
from wardwatch.agent.core.outbox import Outbox, unpack
from wardwatch.agent.core.poller import CheckRow, Context, LiveEvent, PollResult, failed_status
from wardwatch.agent.core.ports import PortStates
from wardwatch.agent.core.supervisor import MAX_LIVE_EVENTS, Counters, Supervisor
from wardwatch.agent.snmp.poller import SnmpPoller
from wardwatch.wire import Reading


class FakePoller:
    """Answers with ``script``'s next item: an exception to raise, or fields for device_status."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    def add(self, device: Any) -> None:
        return None

    async def poll(self, device: Any) -> PollResult:
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        if item == "hang":
            await asyncio.sleep(3600)
        readings = item if isinstance(item, list) else [
            Reading(device=device.id, kind=device.kind, measurement="device_status", time_ms=int(time.time() * 1000),
                    fields={"up": 1, "reason": "ok", **item})]
        return PollResult(device, readings, ok=True, answered=True, reason="ok",
                          events=[LiveEvent(topic="tns1:Test", cls="tamper")])

    def failed(self, device: Any, *, reason: str, detail: str, poll_ms: float, up: int | None) -> PollResult:
        return PollResult(device, [failed_status(device, reason=reason, poll_ms=poll_ms, up=up)], ok=False,
                          answered=bool(up), reason=reason, detail=detail, row=CheckRow(protocol="x", status=reason))


def config(tmp_path: Path, **extra: Any) -> Any:
    return load_config(write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "sup-test", "ward": "cam-pho"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": [{"id": name, "kind": "switch", "host": "127.0.0.1", "auth": "v2c", "interval": "1s",
                     "timeout": "0.5s"} for name in ("sw-good", "sw-bad")],
        **extra,
    }))


async def stored(outbox: Outbox) -> list[wire.Batch]:
    return [wire.decode(unpack(p)) for _seq, p in await outbox.pending(after=-1, limit=1000)]


async def test_any_exception_in_a_poll_is_that_devices_failed_poll(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    good_dev, bad_dev = cfg.devices
    # A good poll first, so the device has shown it is up; then every kind of bug.
    bugs: list[Any] = [ValueError("line is longer than 64 KiB"), OverflowError("(34, 'Numerical result')"),
                       KeyError("ifIndex"), RecursionError(), sqlite3.OperationalError("no"), AssertionError()]
    counters = Counters()
    sent: list[bytes] = []
    async with Outbox(cfg.outbox.path, agent="sup-test", ward="cam-pho") as outbox:
        sups = {d.id: Supervisor(device=d, poller=FakePoller(script), outbox=outbox, ports=PortStates(),
                                 counters=counters, publish_event=lambda p: sent.append(p) or True,
                                 agent="sup-test", ward="cam-pho")
                for d, script in ((good_dev, [{} for _ in range(7)]), (bad_dev, [{}, *bugs]))}
        for _ in range(7):
            await asyncio.gather(*(s.step() for s in sups.values()))
        batches = await stored(outbox)
    by_device: dict[str, list[dict[str, Any]]] = {}
    for b in batches:
        for r in b.readings:
            by_device.setdefault(r.device, []).append(r.fields)
    assert [f["reason"] for f in by_device["sw-good"]] == ["ok"] * 7  # every poll of the neighbour
    bad = by_device["sw-bad"]
    assert bad[0]["reason"] == "ok"
    assert [f["reason"] for f in bad[1:]] == ["internal_error"] * len(bugs)
    assert [f["error"] for f in bad[1:]] == [type(b).__name__ for b in bugs]
    assert all(f["up"] == 1 for f in bad[1:])  # up stays what the device showed: our bug is no outage
    assert counters.poll_errors == len(bugs) and counters.polls_ok == 8
    assert len(sent) == 8  # events of the good polls went out


async def test_a_bug_before_the_device_ever_answered_says_nothing_of_up(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    dev = cfg.devices[1]
    async with Outbox(cfg.outbox.path, agent="sup-test", ward="cam-pho") as outbox:
        sup = Supervisor(device=dev, poller=FakePoller([ZeroDivisionError("x")]), outbox=outbox, ports=PortStates(),
                         counters=Counters(), publish_event=lambda _p: True, agent="sup-test", ward="cam-pho")
        result = await sup.step()
        (batch,) = await stored(outbox)
    assert result.reason == "internal_error"
    assert "up" not in batch.readings[0].fields  # unknown, not down


async def test_a_flood_of_live_events_is_capped_per_poll(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    dev = cfg.devices[0]
    poller = FakePoller([{}])
    counters = Counters()
    sent: list[bytes] = []
    sup = Supervisor(device=dev, poller=poller, outbox=None, ports=PortStates(), counters=counters,
                     publish_event=lambda p: sent.append(p) or True, agent="sup-test", ward="cam-pho")
    flood = [LiveEvent(topic=f"tns1:Junk/{i}", cls="other") for i in range(95)]
    result = await sup.poll()
    result.events = flood
    sup._send(result)
    assert len(sent) == MAX_LIVE_EVENTS and counters.events_capped == 95 - MAX_LIVE_EVENTS
    assert wire.decode_event(wire.events_topic("cam-pho", "sup-test"), sent[0]).topic == "tns1:Junk/0"


async def test_a_poll_past_its_interval_is_a_timeout(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    dev = cfg.devices[0]
    sup = Supervisor(device=dev, poller=FakePoller(["hang"]), outbox=None, ports=PortStates(), counters=Counters(),
                     publish_event=lambda _p: True, agent="sup-test", ward="cam-pho")
    started = time.monotonic()
    result = await sup.step()
    assert (result.reason, result.readings[0].fields["up"]) == ("timeout", 0)
    assert 0.9 <= time.monotonic() - started < 2.0


async def test_unencodable_values_never_reach_the_outbox(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    dev = cfg.devices[0]
    now = int(time.time() * 1000)
    nasty = [
        Reading(device=dev.id, kind="switch", measurement="device_status", time_ms=now,
                fields={"up": 1, "reason": "ok\nINJECTED line", "rtt_ms": math.nan, "poll_ms": math.inf,
                        "restarted": True, "uptime_s": 2**70}),  # type: ignore[dict-item]
        Reading(device=dev.id, kind="switch", measurement="if_traffic", time_ms=now,
                fields={"in_bps": 1.5e3, "oper_up": 1}, tags={"if_name": "ge-0/0/1\r\n" + "x" * 10_000}),
        Reading(device=dev.id, kind="switch", measurement="if_traffic", time_ms=now,
                fields={"in_bps": -math.inf}, tags={"if_name": "\x00\x00"}),  # nothing left: dropped
        Reading(device=dev.id, kind="switch", measurement="lldp_link", time_ms=now,
                fields={"remote": "sw\x1b[31m-red"}, tags={"if_name": "\n"}),
    ]
    counters = Counters()
    async with Outbox(cfg.outbox.path, agent="sup-test", ward="cam-pho") as outbox:
        sup = Supervisor(device=dev, poller=FakePoller([nasty]), outbox=outbox, ports=PortStates(), counters=counters,
                         publish_event=lambda _p: True, agent="sup-test", ward="cam-pho")
        await sup.step()
        (batch,) = await stored(outbox)  # decodes: the collector would take it
    status, traffic, lldp = batch.readings
    assert status.fields == {"up": 1, "reason": "ok INJECTED line", "restarted": 1, "uptime_s": 2.0**70}
    assert traffic.tags["if_name"] == ("ge-0/0/1 " + "x" * 10_000)[:128]
    assert lldp.fields == {"remote": "sw[31m-red"} and lldp.tags == {}
    assert counters.bad_values == 5 and counters.write_failed == 0


@contextlib.contextmanager
def tiny_disk(path: Path, size: str = "256k") -> Any:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, timeout=10)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=10)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def batches_in(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
        return int(conn.execute("SELECT coalesce(max(seq), -1) FROM batches").fetchone()[0])


def test_a_full_disk_is_survived_and_recovered_from(tmp_path: Path, black_hole: int) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        cfg = write_yaml(tmp_path / "agent.yaml", {
            "agent": {"id": "disk-test", "ward": "cam-pho"},
            "mqtt": {"host": "127.0.0.1", "port": 1},  # nobody there: the outbox only grows
            "outbox": {"path": str(disk / "outbox.db")},
            "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
            "devices": [{"id": "sw-mute", "kind": "switch", "host": "127.0.0.1", "port": black_hole, "auth": "v2c",
                         "interval": "1s", "timeout": "0.3s", "retries": 0, "icmp": False}],
        })
        log = (tmp_path / "agent.log").open("w+")
        proc = subprocess.Popen([sys.executable, "-m", "wardwatch.agent.core.cli", "run", "-c", str(cfg)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            db = disk / "outbox.db"
            wait_for(lambda: db.exists() and batches_in(db) >= 1, 15, "the first batches")
            filler = disk / "filler"
            with contextlib.suppress(OSError), filler.open("wb") as f:
                for _ in range(1024):  # bounded: 256 kB of disk is at most 64 of these
                    f.write(b"\0" * 4096)
                    f.flush()
            wait_for(lambda: "refuses writes" in Path(log.name).read_text(), 15, "the agent to say the disk is full")
            time.sleep(2.5)  # polls go on against the full disk
            assert proc.poll() is None, Path(log.name).read_text()
            before = batches_in(db)
            filler.unlink()
            wait_for(lambda: "accepts writes again" in Path(log.name).read_text(), 15, "the agent to recover")
            wait_for(lambda: batches_in(db) > before + 1, 10, "new batches after the disk recovered")
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=20)
            log.close()
        text = Path(log.name).read_text()
        assert rc == 0, text
        assert text.count("refuses writes") == 1  # loud once, not a line per poll


@pytest.mark.parametrize(("poe", "link", "want"), [(False, True, "poe_lost"), (None, False, "port_down"),
                                                    (True, True, "timeout")])
async def test_an_ap_behind_a_dead_port_says_so(tmp_path: Path, black_hole: int, poe: bool | None, link: bool,
                                                want: str) -> None:
    """The switch-port state has one home: the SNMP family reads it for a fed AP as the
    camera family does for a fed camera."""
    cfg = load_config(write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "feed-test", "ward": "cam-pho"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": [{"id": "ap-7", "kind": "ap", "host": "127.0.0.1", "port": black_hole, "auth": "v2c",
                     "interval": "2s", "timeout": "0.3s", "retries": 0, "icmp": False,
                     "feed": {"switch": "sw-core", "port": "Gi0/7"}},
                    {"id": "sw-core", "kind": "switch", "host": "127.0.0.1", "auth": "v2c"}],
    }))
    ctx = Context.new(cfg)
    ctx.ports.set("sw-core", "Gi0/7", oper_up=link, poe_delivering=poe)
    dev = cfg.devices[0]
    async with SnmpPoller(ctx) as poller:
        poller.add(dev)
        result = await poller.poll(dev)
    assert (result.reason, result.readings[0].fields["reason"], result.readings[0].fields["up"]) == (want, want, 0)
    if want != "timeout":
        assert result.detail.startswith("sw-core port Gi0/7")
