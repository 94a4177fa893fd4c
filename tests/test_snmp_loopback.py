"""Real traffic on a virtual interface is not thrown away: net-snmp's snmpd says ``lo``
(ifType softwareLoopback) is a 10 Mb/s interface, and 160 Mb/s pushed over it must come
out as ~160 Mb/s, not as a refused spike (rates.py judges virtual interfaces by resets and
discontinuities only).

The measurement runs inside a network namespace of the test's own (snmpd, the traffic and
the polls): the machine's ``lo`` also carries whatever the other tests running in parallel
send, which the namespace's ``lo`` does not."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from wardwatch.agent.core.config import DeviceConfig, SnmpAuth
from wardwatch.agent.snmp.client import Engines, SnmpSession
from wardwatch.agent.snmp.device import SnmpState, poll_device
from wardwatch.simulators.lab import start_snmpd
from wardwatch.wire import Reading

pytestmark = pytest.mark.services

RATE = 20_000_000  # bytes per second: 160 Mb/s
CHUNK = 1 << 16
# snmpd refreshes its interface counters at most every few seconds, on a request that
# finds them stale. Nothing else polls this snmpd, so a poll after a quiet gap this long
# reads fresh counters.
QUIET = 6.0


class Push:
    """A TCP sender and receiver on 127.0.0.1, the sender held to ``rate`` bytes per
    second, for at most ``seconds`` and ``rate * seconds`` bytes."""

    def __init__(self, *, rate: int, seconds: float) -> None:
        self.rate, self.seconds = rate, seconds
        self.sent = 0
        self.started = self.ended = 0.0
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._threads = [threading.Thread(target=self._sink), threading.Thread(target=self._send)]

    def __enter__(self) -> Push:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.seconds + 10)
        self._server.close()

    def _sink(self) -> None:
        self._server.settimeout(10)
        conn, _ = self._server.accept()
        with conn:
            conn.settimeout(10)
            while conn.recv(1 << 20):
                pass

    def _send(self) -> None:
        chunk = b"\0" * CHUNK
        limit = int(self.rate * self.seconds)
        with socket.create_connection(("127.0.0.1", self._server.getsockname()[1]), timeout=10) as c:
            self.started = time.monotonic()
            deadline = self.started + self.seconds
            while self.sent < limit and not self._stop.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                ahead = self.sent / self.rate - (now - self.started)
                if ahead > 0:
                    time.sleep(min(ahead, 0.05))
                    continue
                c.sendall(chunk)
                self.sent += CHUNK
            self.ended = time.monotonic()

    def measured_bps(self) -> float:
        """What the sender achieved, in bits per second."""
        return self.sent * 8 / (self.ended - self.started)


def lo_reading(readings: list[Reading]) -> Reading:
    return next(r for r in readings if r.measurement == "if_traffic" and r.tags.get("if_name") == "lo")


async def measure(run_dir: Path) -> dict[str, Any]:
    """Inside the namespace: snmpd, 160 Mb/s over lo, two polls QUIET apart."""
    with start_snmpd(run_dir, sys_name="ward-lo-test") as snmpd:
        dev = DeviceConfig(id="snmpd-lo", kind="switch", host="127.0.0.1", port=snmpd.port, auth="v2c",
                           interval=30, timeout=1, retries=1, icmp=False)
        engines = Engines()
        session = SnmpSession(engine=engines.default, device=dev, auth=SnmpAuth(version="2c", community="public"))
        state = SnmpState()
        try:
            await poll_device(session, state)  # picks the profile; ifType is read from here on
            with Push(rate=RATE, seconds=2 * QUIET + 4) as push:
                await asyncio.sleep(QUIET)  # the flow is steady, and snmpd's cache has gone stale
                first = await poll_device(session, state)
                await asyncio.sleep(QUIET)
                second = await poll_device(session, state)
        finally:
            engines.close()
    return {"first": lo_reading(first).fields, "second": lo_reading(second).fields,
            "status": second[0].fields, "pushed": push.measured_bps()}


def test_160_mbit_over_loopback_is_measured_within_15_percent(netns: str, tmp_path: Path) -> None:
    proc = subprocess.run(["ip", "netns", "exec", netns, sys.executable, __file__, str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    lo, pushed = got["second"], got["pushed"]
    assert got["first"]["speed_mbps"] == 10  # what snmpd says; no limit for a loopback
    assert pushed == pytest.approx(RATE * 8, rel=0.1), "the sender could not keep up its rate"
    assert got["status"]["rate_dropped"] == 0
    assert lo["in_bps"] == pytest.approx(pushed, rel=0.15), (lo, pushed)
    assert lo["out_bps"] == pytest.approx(pushed, rel=0.15), (lo, pushed)
    assert "util_pct" not in lo  # a loopback has no capacity to be a percentage of


if __name__ == "__main__":  # run by the test inside its namespace
    print(json.dumps(asyncio.run(measure(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())))))
