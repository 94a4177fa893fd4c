"""``wardwatch-agent check`` against real snmpsim devices and the session's Mosquitto: the
table a technician reads, the hint under it for each device that failed, and its exit
codes (0 setup and every device ok, 1 some failed, 2 bad config). The setup section's own
failures are in tests/test_check_setup.py."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.util import BIN, wait_for, write_yaml
from wardwatch.simulators.aps import ApSpec, render_ap, write_many
from wardwatch.simulators.lab import Service, SnmpsimAgent, free_port, script, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

pytestmark = pytest.mark.services

WLC = ApSpec(vendor="cisco_wlc", name="wlc-1", seed=4, aps=2)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    run = tmp_path_factory.mktemp("check")
    write_many(run / "data", {"wlc": render_ap(WLC), "sw": render(SwitchSpec(name="sw-hall", ports=24, seed=2))})
    with start_snmpsim(run, agents=[SnmpsimAgent(data_dir=run / "data", port=free_port("udp"))]) as svc:
        yield svc


def config(tmp_path: Path, devices: list[dict[str, Any]], broker: Service) -> Path:
    communities = {d["auth"] for d in devices}
    return write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "check-test", "ward": "cam-pho"},
        "mqtt": {"host": broker.host, "port": broker.port},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {c: {"snmp": {"version": "2c", "community": c}} for c in communities},
        "devices": [{"kind": "switch", "host": "127.0.0.1", "interval": "5s", "timeout": "1s", "retries": 0, **d}
                    for d in devices],
    })


def run_check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "wardwatch-agent"), "check", "-c", str(cfg)], capture_output=True, text=True,
                          timeout=60)


def table_text(out: str) -> str:
    """The device table: after the setup section's blank line."""
    assert out.startswith("SETUP\n"), out
    return out.split("\n\n", 1)[1]


def table(out: str) -> dict[str, dict[str, str]]:
    lines = table_text(out).splitlines()
    header = lines[0].split()
    return {line.split()[0]: dict(zip(header, line.split(), strict=False)) for line in lines[1:]
            if line and not line.startswith((" ", "\t")) and len(line.split()) >= len(header) - 1}


def test_every_device_answers_exit_0_with_profile_counts_and_rtt(tmp_path: Path, sim: Service,
                                                                mosquitto: Service) -> None:
    cfg = config(tmp_path, [{"id": "wlc-1", "kind": "ap", "port": sim.port, "auth": "wlc"},
                            {"id": "sw-hall", "port": sim.port, "auth": "sw"}], mosquitto)
    started = time.time()
    proc = run_check(cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = table(proc.stdout)
    wlc, sw = rows["wlc-1"], rows["sw-hall"]
    assert (wlc["STATUS"], wlc["PROFILE"], wlc["SYSNAME"], wlc["IFS"]) == ("up", "cisco_wlc", "wlc-1", "2")
    expected = sum(r.clients_at(started) for r in WLC.radios())
    assert int(wlc["CLIENTS"]) == pytest.approx(expected, abs=len(WLC.radios()))
    assert (sw["STATUS"], sw["PROFILE"], sw["IFS"], sw["CLIENTS"]) == ("up", "generic_switch", "24", "-")
    assert 0 < float(sw["RTT_MS"]) < 100  # 127.0.0.1 answers pings
    assert "2 of 2 devices answered; setup ok" in proc.stdout
    assert "hint" not in proc.stdout


def test_failures_have_an_error_class_a_hint_and_exit_1(tmp_path: Path, sim: Service, black_hole: int,
                                                        mosquitto: Service) -> None:
    cfg = config(tmp_path, [
        {"id": "sw-hall", "port": sim.port, "auth": "sw"},
        {"id": "sw-mute", "port": black_hole, "auth": "sw", "icmp": False},
        # A profile whose tables the device does not have: the technician picked the wrong one.
        {"id": "sw-wrong", "port": sim.port, "auth": "sw", "profile": "poe"},
    ], mosquitto)
    proc = run_check(cfg)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = table(proc.stdout)
    assert rows["sw-hall"]["STATUS"] == "up"
    assert rows["sw-mute"]["STATUS"] == "timeout"
    assert rows["sw-wrong"]["STATUS"] == "no_such_object"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("sw-wrong"))
    assert "try another profile" in line
    hints = {x.split()[1]: x for x in proc.stdout.splitlines() if x.startswith("hint ")}
    assert set(hints) == {"sw-mute", "sw-wrong"}
    assert f"UDP {black_hole} is open" in hints["sw-mute"]
    assert "SNMP ACL allows this box (127.0.0.1)" in hints["sw-mute"]
    assert "no_such_object: the device lacks what profile poe reads" in hints["sw-wrong"]
    assert "1 of 3 devices answered; setup ok" in proc.stdout


def test_unknown_profile_is_a_config_error(tmp_path: Path, mosquitto: Service) -> None:
    cfg = config(tmp_path, [{"id": "sw-a", "port": 161, "auth": "sw", "profile": "hp_procurve"}], mosquitto)
    proc = run_check(cfg)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "wardwatch-agent: config error: devices[0].profile: unknown profile 'hp_procurve'")


def test_a_bad_user_profile_is_a_config_error_naming_its_file(tmp_path: Path, mosquitto: Service) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "acme.yaml").write_text("name: acme\ntables: [{name: t, oid: 1.3.6.1.4.1.99.1, "
                                        "measurement: wifi_radio, metrics: {stations: {col: 2}}}]\n")
    cfg = config(tmp_path, [{"id": "sw-a", "port": 161, "auth": "sw"}], mosquitto)
    proc = subprocess.run([str(BIN / "wardwatch-agent"), "check", "-c", str(cfg), "--profiles", str(profiles)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"{profiles / 'acme.yaml'}: tables[0].metrics.stations: unknown metric 'stations'" in proc.stderr


@pytest.fixture(scope="module")
def cameras(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``wardwatch-sim cameras``: cam-002 refuses RTSP credentials; cam-003 is switched off."""
    run = tmp_path_factory.mktemp("check-cams")
    listing = run / "cameras.json"
    sim = script("wardwatch-sim", ["cameras", "--count", "3", "--control-port", "0", "--output", str(listing),
                                   "--faults", json.dumps({"cam-002": {"rtsp": "401"}, "cam-003": {"offline": True}})],
                 run_dir=run / "sim")
    sim.start()
    try:
        doc: dict[str, Any] = wait_for(lambda: _listing(listing), timeout=20, interval=0.1,
                                       what=lambda: f"camera simulator listing\n{sim.log_tail()}")
        yield doc
    finally:
        sim.stop()


def _listing(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc
    except (OSError, ValueError):  # not written yet, or half written
        return None


def columns(out: str) -> dict[str, dict[str, str]]:
    """The table cut at its header's column starts (a camera's STATUS may hold a space)."""
    lines = table_text(out).splitlines()
    header = lines[0]
    names = header.split()
    starts = [header.index(n) for n in names]
    rows = {}
    for line in lines[1:]:
        if not line.strip() or line.startswith((" ", "\t")):
            break
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return rows


def test_cameras_show_their_reason_error_class_and_hint(tmp_path: Path, sim: Service, cameras: dict[str, Any],
                                                        mosquitto: Service) -> None:
    cams = {c["id"]: c for c in cameras["cameras"]}
    user, password = cams["cam-001"]["username"], cams["cam-001"]["password"]
    cfg = write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "check-test", "ward": "cam-pho"},
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"sw": {"snmp": {"version": "2c", "community": "sw"}},
                 "cam": {"onvif": {"username": user, "password": password}},
                 "cam-wrong": {"onvif": {"username": user, "password": "not-the-password"}}},
        "devices": [
            {"id": "sw-hall", "kind": "switch", "host": "127.0.0.1", "port": sim.port, "auth": "sw"},
            *({"id": cid, "kind": "camera", "host": c["host"], "port": c["onvif_port"], "auth": "cam",
               "interval": "10s", "timeout": "2s", "icmp": False} for cid, c in cams.items()),
            {"id": "cam-pw", "kind": "camera", "host": cams["cam-001"]["host"], "port": cams["cam-001"]["onvif_port"],
             "auth": "cam-wrong", "interval": "10s", "timeout": "2s", "icmp": False},
        ],
    })
    proc = run_check(cfg)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = columns(proc.stdout)
    assert rows["sw-hall"]["STATUS"] == "up"
    ok, r401, off, pw = rows["cam-001"], rows["cam-002"], rows["cam-003"], rows["cam-pw"]
    assert (ok["PROTO"], ok["STATUS"], ok["SYSNAME"]) == ("onvif", "up", "DS-2CD2143G2-I")
    assert float(ok["RTT_MS"]) >= 0
    assert r401["STATUS"] == "rtsp_401" and "401" in r401["DETAIL"]
    assert off["STATUS"] == "offline (refused)"
    assert pw["STATUS"] == "auth" and "Authorized" in pw["DETAIL"]
    hints = {x.split()[1]: x for x in proc.stdout.splitlines() if x.startswith("hint ")}
    assert set(hints) == {"cam-002", "cam-003", "cam-pw"}
    assert "rtsp_401: the stream refuses the ONVIF user" in hints["cam-002"]
    assert f"offline (refused): nothing listens on {cams['cam-003']['host']}:{cams['cam-003']['onvif_port']}" \
        in hints["cam-003"]  # fmt: skip
    assert "auth: the camera refuses the ONVIF user or password of auth.cam-wrong.onvif" in hints["cam-pw"]
    assert password not in proc.stdout
    assert "2 of 5 devices answered; setup ok" in proc.stdout
