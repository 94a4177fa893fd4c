"""`make demo`'s main job, bounded: the Hội An fleet fills InfluxDB for all 13 wards (switches,
Wi-Fi APs, cameras), every dashboard query has the demo's data, and SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.test_e2e import dashboard_queries
from tests.util import BIN, wait_for
from wardwatch.simulators.fleet import CAMERAS_IN_AGENTS, WARDS
from wardwatch.simulators.lab import InfluxService

pytestmark = pytest.mark.services

DATABASE = "wardwatch"
WARD_IDS = {w for w, _, _ in WARDS}
# The first rates need two switch polls; APs and cameras answer on their first poll; the
# agents' self-metrics come every 30 s. With 13 agents starting at once on two cores beside
# the other tests running in parallel, 120 s.
DATA_TIMEOUT = 120.0


class Output:
    """The demo's stdout, read on a thread so that waiting for a line has a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def text(self) -> str:
        return "".join(self.lines)

    def join(self, timeout: float) -> str:
        self._thread.join(timeout)
        return self.text()


def _wards(influx: InfluxService, q: str) -> set[str]:
    return {r["ward"] for r in influx.points(q, db=DATABASE) if r["count"]}


def test_demo_brings_switches_aps_and_cameras_of_13_wards_into_influxdb_and_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(BIN / "wardwatch-sim"), "demo", "--run-dir", str(tmp_path / "demo"), "--interval", "10s",
         "--duration", "150"],  # a bound in case the test dies; the test stops it with SIGTERM
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    out = Output(proc)
    try:
        banner = wait_for(lambda: "Ctrl-C stops everything" in out.text() and out.text(), timeout=60,
                          what=lambda: f"the demo's banner; output so far:\n{out.text()}")
        port = int(re.search(r"InfluxDB +http://127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        pids = [int(p) for p in re.findall(r" pid (\d+)$", banner, re.M)]
        assert len(pids) == 18, banner  # mosquitto, influxdb, cameras, snmpsim, collector, 13 agents
        radios = int(re.search(r"Wi-Fi +(\d+) radios", banner).group(1))  # type: ignore[union-attr]
        cameras = int(re.search(r"cameras +(\d+) \(", banner).group(1))  # type: ignore[union-attr]
        assert radios >= 2 * 13 and 13 * 3 <= cameras <= 13 * 6, banner
        influx = InfluxService(name="demo influxdb", argv=[], host="127.0.0.1", port=port, run_dir=tmp_path,
                               log_path=tmp_path / "none.log")

        def everything() -> bool:
            return (_wards(influx, "SELECT count(in_bps) FROM if_traffic GROUP BY ward") == WARD_IDS
                    and _wards(influx, "SELECT count(clients) FROM wifi_radio GROUP BY ward") == WARD_IDS
                    and _wards(influx, "SELECT count(consumption_w) FROM poe GROUP BY ward") == WARD_IDS
                    and (not CAMERAS_IN_AGENTS
                         or _wards(influx, "SELECT count(ok) FROM camera_health GROUP BY ward") == WARD_IDS))

        wait_for(everything, timeout=DATA_TIMEOUT, interval=1.0,
                 what=lambda: f"switch rates, AP radios, PoE and cameras of all 13 wards; demo output:\n{out.text()}")
        # Every radio of the banner, each from its AP's first poll that answered: on a loaded
        # box snmpsim can miss an AP's first poll, and the next is an AP interval (30 s) later.
        rq = "SELECT last(clients) FROM wifi_radio GROUP BY ward, device, ap, radio"
        radio_series = wait_for(lambda: len(r := influx.points(rq, db=DATABASE)) == radios and r, timeout=40,
                                interval=1.0, what=lambda: f"{radios} radios; {len(influx.points(rq, db=DATABASE))}")
        assert all(r["last"] > 0 for r in radio_series), radio_series  # the day curves never reach 0
        if CAMERAS_IN_AGENTS:
            # Every camera has been OK at least once, with the brand it was served as.
            q = "SELECT max(ok) AS ok FROM camera_health GROUP BY ward, device"
            ok = wait_for(lambda: len(r := influx.points(q, db=DATABASE)) == cameras and all(x["ok"] for x in r)
                          and r, timeout=30, interval=1.0, what=lambda: f"{cameras} cameras OK once")
            assert {r["ward"] for r in ok} == WARD_IDS
            vendors = influx.points("SHOW TAG VALUES FROM camera_health WITH KEY = vendor", db=DATABASE)
            assert {v["value"] for v in vendors} == {"hikvision", "dahua", "kbvision"}

        # Every dashboard query returns the demo's data (the agents' self-metrics come last).
        queries = [(t, q) for t, q in dashboard_queries() if CAMERAS_IN_AGENTS or "camera_health" not in q]
        empty: list[str] = []

        def all_have_data() -> bool:
            empty[:] = [title for title, q in queries if not influx.points(q, db=DATABASE)]
            return not empty

        wait_for(all_have_data, timeout=45, interval=1.0,
                 what=lambda: f"data for every dashboard query; none for {empty}")

        # The dashboard and the alert engine run in the collector: 13 wards by their names.
        m = re.search(r"dashboard +http://127\.0\.0\.1:(\d+)/ +log in with the token (\S+)", banner)
        assert m, banner
        api = f"http://127.0.0.1:{m.group(1)}/api/v1"
        headers = {"Authorization": f"Bearer {m.group(2)}"}

        def get(path: str) -> Any:
            with urllib.request.urlopen(urllib.request.Request(api + path, headers=headers), timeout=5) as resp:
                return json.loads(resp.read())

        wards = wait_for(lambda: (w := get("/wards")["wards"]) and {x["id"] for x in w} == WARD_IDS and w,
                         timeout=30, what="the dashboard's 13 wards")
        names = {x["id"]: x["name"] for x in wards}
        assert names["cam-pho"] == "Cẩm Phô" and names["cua-dai"] == "Cửa Đại", names
        assert isinstance(get("/alerts")["alerts"], list)
    finally:
        proc.send_signal(signal.SIGTERM)  # as Ctrl-C would
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = out.join(5)
    assert proc.returncode == 0, text
    final = re.search(r"demo: stopping \(wards with if_traffic rates (\d+)/13, if_traffic rate points (\d+), .*"
                      r"wards with AP radios (\d+)/13, AP radios (\d+)/(\d+)", text)
    assert final, text
    assert int(final.group(1)) == 13 and int(final.group(2)) > 0, text
    assert int(final.group(3)) == 13 and final.group(4) == final.group(5) == str(radios), text
    if CAMERAS_IN_AGENTS:
        assert re.search(rf"cameras OK \d+/{cameras}", text), text
    assert "processes up 18/18" in text, text
    assert "demo: stopped 18 processes" in text, text
    for pid in pids:  # every process the demo started is gone (reaped, so not even a zombie)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
