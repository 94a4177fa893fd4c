"""The agent's SNMP poller against net-snmp's snmpd, a second real implementation."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.util import BIN, write_yaml
from wardwatch.agent.core.app import Poller
from wardwatch.agent.core.config import load_config
from wardwatch.agent.snmp.device import SwitchState
from wardwatch.simulators.lab import Service, start_snmpd

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with start_snmpd(tmp_path_factory.mktemp("snmpd"), sys_name="ward-sw-test") as svc:
        yield svc


def agent_config(tmp_path: Path, snmpd: Service, *, v3_key: str = "authpass123") -> Path:
    return write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "snmpd-test", "ward": "cam-pho"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {
            "v2c": {"snmp": {"version": "2c", "community": "public"}},
            "v3": {"snmp": {"version": "3", "user": "mon", "auth_protocol": "SHA", "auth_key": v3_key,
                            "priv_protocol": "AES", "priv_key": "privpass123"}},
        },
        "devices": [
            {"id": "sw-v2c", "kind": "switch", "host": "127.0.0.1", "port": snmpd.port, "auth": "v2c",
             "interval": "5s", "timeout": "1s", "retries": 1,
             # No pings: this device's polls count lo's bytes against snmpd's counter cache, and
             # with a ping beside each poll the count came out wrong in 3 runs of 3 (not understood yet).
             "icmp": False},
            {"id": "sw-v3", "kind": "switch", "host": "127.0.0.1", "port": snmpd.port, "auth": "v3",
             "interval": "5s", "timeout": "1s", "retries": 1},
        ],
    })


def check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "wardwatch-agent"), "check", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)


def test_check_polls_v2c_and_v3_authpriv(tmp_path: Path, snmpd: Service) -> None:
    proc = check(agent_config(tmp_path, snmpd))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:] if line.startswith("sw-")}
    assert rows["sw-v2c"][3:6] == ["v2c", "up", "ward-sw-test"]
    assert rows["sw-v3"][3:6] == ["v3", "up", "ward-sw-test"]
    assert "2 of 2 devices answered" in proc.stdout


def test_wrong_v3_key_is_an_auth_error(tmp_path: Path, snmpd: Service) -> None:
    proc = check(agent_config(tmp_path, snmpd, v3_key="wrong-key-123"))
    assert proc.returncode == 1
    row = next(line for line in proc.stdout.splitlines() if line.startswith("sw-v3"))
    assert row.split()[4] == "auth", proc.stdout
    assert "wrong-key-123" not in proc.stdout + proc.stderr


def _push_over_loopback(total: int) -> None:
    """Send ``total`` bytes through a TCP connection on lo."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            while conn.recv(1 << 20):
                pass

    t = threading.Thread(target=sink)
    t.start()
    with socket.create_connection(("127.0.0.1", port)) as c:
        chunk = b"\0" * (1 << 20)
        for _ in range(total // len(chunk)):
            c.sendall(chunk)
    t.join(timeout=30)
    server.close()


async def _poll_around_push(poller: Poller, session, state: SwitchState, pushed: int, seconds: float):
    first = await poller.poll(session, state)
    assert first.ok, first.detail
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.to_thread(_push_over_loopback, pushed)
    await asyncio.sleep(max(0.0, seconds - (loop.time() - started)))
    second = await poller.poll(session, state)
    lo = next(r for r in second.readings if r.tags.get("if_name") == "lo")
    return first, second.readings[0], lo


async def test_loopback_traffic_gives_a_plausible_rate(tmp_path: Path, snmpd: Service) -> None:
    cfg = load_config(agent_config(tmp_path, snmpd))
    poller = Poller(cfg)
    session, state = poller.session(cfg.devices[0]), SwitchState()
    try:
        # snmpd reports lo as a 10 Mb/s interface; 1 MiB in 5 s is 1.7 Mb/s, under the guard.
        # Polls are 5 s apart because snmpd caches interface counters for a few seconds.
        pushed = 1 << 20
        first, _, lo = await _poll_around_push(poller, session, state, pushed, 5.0)
        assert lo.fields["speed_mbps"] == 10
        # Between the polls lo carried the pushed bytes plus TCP/IP headers, SNMP itself
        # and whatever else the machine sent to itself.
        elapsed = lo.time_ms - first.readings[0].time_ms
        bytes_seen = lo.fields["in_bps"] / 8 * elapsed / 1000
        assert pushed <= bytes_seen <= pushed * 1.25 + 200_000, (bytes_seen, pushed)
        assert lo.fields["oper_up"] == 1

        # 64 MiB in 5 s is far above 1.1 x 10 Mb/s: the guard drops the rate and counts it.
        _, status, lo = await _poll_around_push(poller, session, state, 64 << 20, 5.0)
        assert "in_bps" not in lo.fields
        assert status.fields["rate_dropped"] >= 1
    finally:
        poller.close()
