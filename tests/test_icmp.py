"""ICMP: pings of 127.0.0.1 only, and how a ping is folded into device_status."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.util import write_yaml
from wardwatch.agent.core import icmp
from wardwatch.agent.core.config import load_config
from wardwatch.agent.core.icmp import Pinger, PingResult, combine
from wardwatch.agent.core.poller import Context
from wardwatch.agent.snmp.poller import SnmpPoller


async def test_loopback_answers_with_a_small_rtt_and_no_loss() -> None:
    pinger = Pinger(count=3, interval=0.05, timeout=1.0)
    assert pinger.available, pinger.mode
    result = await pinger.ping("127.0.0.1")
    assert result.reachable and result.loss_pct == 0
    assert result.rtt_ms is not None and 0 < result.rtt_ms < 50


def test_a_system_that_forbids_icmp_gets_one_clear_line(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(icmp, "_can_open", lambda kind: False)  # neither socket kind may be opened
    pinger = Pinger()
    assert not pinger.available
    (record,) = [r for r in caplog.records if r.name == "wardwatch.agent.core.icmp"]
    assert "net.ipv4.ping_group_range" in record.getMessage() and "CAP_NET_RAW" in record.getMessage()


@pytest.mark.parametrize(("snmp_ok", "reason", "ping", "up", "why"), [
    (True, "ok", PingResult(True, 0.2, 0.0), 1, "ok"),
    (True, "ok", PingResult(False, None, 100.0), 1, "ok"),  # ICMP filtered; SNMP says it is up
    (False, "timeout", PingResult(True, 0.3, 0.0), 1, "snmp_timeout"),  # alive, but SNMP is broken
    (False, "auth", PingResult(True, 0.3, 0.0), 1, "snmp_auth"),
    (False, "timeout", PingResult(False, None, 100.0), 0, "timeout"),  # gone
])
def test_up_combines_snmp_and_icmp(snmp_ok: bool, reason: str, ping: PingResult, up: int, why: str) -> None:
    fields: dict[str, int | float | str] = {"up": int(snmp_ok), "reason": reason}
    combine(fields, snmp_ok=snmp_ok, reason=reason, ping=ping)
    assert (fields["up"], fields["reason"], fields["icmp_up"]) == (up, why, int(ping.reachable))


async def test_device_whose_snmp_is_dead_but_pings_is_up_with_the_reason(tmp_path: Path, black_hole: int) -> None:
    cfg = load_config(write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "icmp-test", "ward": "cam-pho"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": [{"id": "ap-mute", "kind": "ap", "host": "127.0.0.1", "port": black_hole, "auth": "v2c",
                     "interval": "2s", "timeout": "0.5s", "retries": 0}],
    }))
    dev = cfg.devices[0]
    async with SnmpPoller(Context.new(cfg)) as poller:
        poller.add(dev)
        result = await poller.poll(dev)
        state = poller.state(dev)
    status = result.readings[0]
    assert not result.ok  # SNMP failed: check and polls_failed count it
    assert (status.fields["up"], status.fields["reason"], status.fields["icmp_up"]) == (1, "snmp_timeout", 1)
    assert status.fields["loss_pct"] == 0 and state.rtt_ms is not None
