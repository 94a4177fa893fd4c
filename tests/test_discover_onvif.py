"""``wardwatch-agent discover --onvif`` finds the simulated cameras by WS-Discovery and writes
entries the agent accepts as they are.

The end-to-end tests run inside a network namespace the test creates (loopback with
multicast on, a route for 224.0.0.0/4 on lo): the simulator, the garbage sender, discover and
check. No real interface sees a multicast packet. Processes are stopped by their PID.

GetDeviceInformation with each ``--auth`` profile in turn (agent/camera/discover.py's
``device_info``, over the poll's SOAP client) is tested in-process against the ONVIF camera
simulator on loopback sockets: the wrong password then the right one, cameras that answer
garbage or a billion-laughs document, a slow camera and a silent one, each bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.util import BIN, write_yaml
from wardwatch.agent.camera.discover import device_info
from wardwatch.agent.camera.http import HttpClient
from wardwatch.agent.core.config import AgentConfig, load_config
from wardwatch.simulators.camera import CameraFleet

PASSWORD = "Cam12345"

# Answers every Probe on 239.255.255.250:3702 with garbage, then with one hostile but
# well-formed camera (a name scope that tries to break out of a YAML comment), twice.
GARBAGE = r"""
import socket, struct, sys, xml.etree.ElementTree as ET
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
def env(relates, body):
    return ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="' + WSA + '" '
            'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Header><a:RelatesTo>' + relates +
            '</a:RelatesTo></s:Header><s:Body>' + body + '</s:Body></s:Envelope>').encode()
def match(addr, scopes, xaddrs):
    return ('<d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>' + addr + '</a:Address>'
            '</a:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>' + scopes +
            '</d:Scopes><d:XAddrs>' + xaddrs + '</d:XAddrs></d:ProbeMatch></d:ProbeMatches>')
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("239.255.255.250", 3702))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton("127.0.0.1")))
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.bind(("127.0.0.1", 0))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(65535)
    try:
        mid = ET.fromstring(data).find(".//{" + WSA + "}MessageID").text
    except Exception:
        continue
    lol = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><l>&b;</l>'
    for junk in (b"\x00\xff\xfe not xml at all", b"<s:Envelope", b"<" + b"A" * 40000 + b"/>", lol,
                 b"\xff\xfe<\x00x\x00/\x00>\x00", env(mid, "<d:Hello/>"), b"<html><body>hi</body></html>",
                 env("urn:uuid:someone-else", match("urn:uuid:ghost", "", "http://127.0.0.1:9/onvif/device_service")),
                 env(mid, match("urn:uuid:no-http", "", "ftp://127.0.0.1/x")),
                 env(mid, match("", "", ""))):
        out.sendto(junk, addr)
    rogue = match("urn:uuid:rogue", "onvif://www.onvif.org/name/evil%0Adevices:%20[]%0A-%20x onvif://www.onvif.org/"
                  "hardware/X%0D%0A#", "http://127.0.0.1:1/onvif/device_service")
    out.sendto(env(mid, rogue), addr)
    out.sendto(env(mid, rogue), addr)
"""




def start(ns: str, *cmd: str) -> tuple[subprocess.Popen[str], str]:
    """A process in the namespace, and its first stdout line (it prints one when ready)."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise AssertionError(proc.stderr.read() if proc.stderr else "no output")
    return proc, line


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()  # by PID: `ip netns exec` execs the command, so this is the process itself
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def cameras(netns: str) -> Iterator[list[dict[str, Any]]]:
    sim, line = start(netns, str(BIN / "wardwatch-sim"), "cameras", "--count", "3", "--brand", "mix",
                      "--discovery-interface", "127.0.0.1", "--control-port", "0", "--password", PASSWORD)
    try:
        yield list(json.loads(line)["cameras"])
    finally:
        stop(sim)


def agent_config(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "disc", "ward": "cam-pho"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}},
                 "old-pass": {"onvif": {"username": "admin", "password": "not-it"}},
                 "cam-admin": {"onvif": {"username": "admin", "password": PASSWORD}}},
        "devices": [],
    })


def discover(ns: str, cfg: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, str(BIN / "wardwatch-agent"), "discover", "-c", str(cfg),
                           "-o", str(out), *args], capture_output=True, text=True, timeout=120)


def test_finds_every_camera_once_and_check_accepts_the_entries(tmp_path: Path, netns: str,
                                                               cameras: list[dict[str, Any]]) -> None:
    cfg, out = agent_config(tmp_path), tmp_path / "found.yaml"
    # With a CIDR too (nothing answers SNMP in the namespace), and the wrong camera password first.
    proc = discover(netns, cfg, out, "--onvif", "--onvif-wait", "1.5", "--cidr", "127.0.0.0/30", "--auth", "v2c",
                    "--auth", "old-pass", "--auth", "cam-admin", "--timeout", "2")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    found = yaml.safe_load(text)["devices"]
    # Each camera once (the probe goes out twice and every camera answers both), at its ONVIF port.
    assert sorted(d["port"] for d in found) == sorted(c["onvif_port"] for c in cameras)
    assert {d["kind"] for d in found} == {"camera"}
    assert {d["host"] for d in found} == {"127.0.0.1"}
    assert {d["auth"] for d in found} == {"cam-admin"}  # the profile the cameras accepted
    by_port = {d["port"]: d for d in found}
    for cam in cameras:
        dev = by_port[cam["onvif_port"]]
        assert dev["vendor"] == cam["brand"]  # hikvision, dahua, kbvision
        assert dev["id"].endswith(cam["id"])  # from the name scope
    # GetDeviceInformation's answer is in a comment above each entry.
    assert re.search(r"# HIKVISION DS-2CD2143G2-I; firmware V5\.7\.3.*serial ", text), text
    assert "# Dahua IPC-HFW2431S-S-S2" in text and "# KBVISION KX-C2012S5" in text
    assert "3/3 cameras asked, 3 answered" in proc.stderr  # progress on stderr
    assert "2/2 addresses, 0 found" in proc.stderr  # the SNMP sweep ran beside it

    # Pasted into the config as they are, the entries load and check polls them, in the namespace.
    full = yaml.safe_load(cfg.read_text())
    full["devices"] = found
    load_config(write_yaml(tmp_path / "full.yaml", full))
    check = subprocess.run(["ip", "netns", "exec", netns, str(BIN / "wardwatch-agent"), "check", "-c",
                            str(tmp_path / "full.yaml")], capture_output=True, text=True, timeout=120)
    # Every entry polls (the setup steps, the broker's among them, are not discover's business).
    assert f"{len(found)} of {len(found)} devices answered" in check.stdout, check.stdout + check.stderr
    for dev in found:
        assert re.search(rf"^{re.escape(dev['id'])} +camera .* onvif +up ", check.stdout, re.M), check.stdout


def test_garbage_and_hostile_answers_do_not_break_discovery(tmp_path: Path, netns: str,
                                                            cameras: list[dict[str, Any]]) -> None:
    junk, _ = start(netns, sys.executable, "-c", GARBAGE)
    try:
        cfg, out = agent_config(tmp_path), tmp_path / "found.yaml"
        proc = discover(netns, cfg, out, "--onvif", "--onvif-wait", "1.5", "--auth", "cam-admin", "--timeout", "1",
                        "--log-level", "DEBUG")
    finally:
        stop(junk)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    found = yaml.safe_load(out.read_text())["devices"]
    real = {c["onvif_port"] for c in cameras}
    assert {d["port"] for d in found if d["port"] in real} == real
    # The one well-formed stranger is there once; the answer to another probe and the
    # non-http one are not; the name that tried to inject YAML is an id, and a comment says
    # the camera refused GetDeviceInformation.
    strangers = [d for d in found if d["port"] not in real]
    assert strangers == [{"id": "evil-devices:---x", "kind": "camera", "host": "127.0.0.1", "port": 1,
                          "auth": "cam-admin"}], strangers
    assert "GetDeviceInformation failed: refused" in out.read_text()
    assert "urn:uuid:no-http" in proc.stderr and "no usable http XAddr" in proc.stderr
    dropped = re.search(r"ws-discovery: 5 cameras \((\d+) datagrams, (\d+) dropped\)", proc.stderr)
    assert dropped, proc.stderr
    assert int(dropped.group(2)) >= 2 * 8  # each Probe copy: 8 garbage datagrams
    assert "answers another probe" in proc.stderr and "carries a DTD" in proc.stderr  # debug lines say why
    full = yaml.safe_load(cfg.read_text())
    full["devices"] = found
    assert len(load_config(write_yaml(tmp_path / "full.yaml", full)).devices) == 4


def test_arguments_are_checked(tmp_path: Path) -> None:
    cfg = agent_config(tmp_path)
    cases = {
        ("--onvif", "--auth", "v2c"): "--auth v2c: the profile has no onvif: credentials",
        ("--onvif", "--cidr", "127.0.0.0/30", "--auth", "v2c"): "--onvif needs an --auth profile with onvif:",
        ("--auth", "cam-admin"): "discover needs --cidr (SNMP sweep), --onvif (camera discovery), or both",
        ("--onvif", "--auth", "nope"): "--auth nope: no ONVIF auth profile of that name",
        ("--onvif", "--auth", "cam-admin", "--onvif-wait", "0"): "--onvif-wait 0: 0..60 s",
        ("--cidr", "127.0.0.0/30", "--auth", "cam-admin"): "--auth cam-admin: the profile has no snmp: credentials",
    }
    for args, message in cases.items():
        proc = subprocess.run([str(BIN / "wardwatch-agent"), "discover", "-c", str(cfg), *args],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)


# GetDeviceInformation, profile by profile (in-process, loopback) ----------------------------

ROLES: dict[str, dict[str, Any]] = {"ok": {}, "bad_xml": {"bad_xml": True}, "laughs": {"billion_laughs": True},
                                    "garbage": {"soap_garbage": True}, "slow": {"slow": 3.0},
                                    "auth_fail": {"auth_fail": True}}


@pytest.fixture
async def fleet() -> AsyncIterator[dict[str, int]]:
    """role -> the ONVIF port of a simulated Hikvision camera with that role's faults."""
    faults = {f"cam-{i + 1:03d}": knobs for i, knobs in enumerate(ROLES.values()) if knobs}
    async with CameraFleet(count=len(ROLES), brand="hikvision", password=PASSWORD, faults=faults) as f:
        yield {role: cam["onvif_port"] for role, cam in zip(ROLES, f.listing(), strict=True)}


def _cfg(tmp_path: Path) -> AgentConfig:
    return load_config(agent_config(tmp_path))


async def test_the_wrong_password_moves_on_to_the_next_profile(tmp_path: Path, fleet: dict[str, int]) -> None:
    cfg = _cfg(tmp_path)
    http = HttpClient()
    try:
        auth, info, err = await device_info("127.0.0.1", fleet["ok"], cfg=cfg, auths=["old-pass", "cam-admin"],
                                            request_timeout=2, http=http)
        assert (auth, err) == ("cam-admin", None)
        assert info is not None and (info.manufacturer, info.model) == ("HIKVISION", "DS-2CD2143G2-I")
        assert info.serial and info.firmware.startswith("V5.")
        # Both tries went over one keep-alive connection, which stays the caller's.
        assert sum(len(c) for c in http._idle.values()) == 1
        # No profile accepted: the first is named, with the auth failure.
        assert await device_info("127.0.0.1", fleet["ok"], cfg=cfg, auths=["old-pass"], request_timeout=2,
                                 http=http) == ("old-pass", None, "auth")
        assert await device_info("127.0.0.1", fleet["auth_fail"], cfg=cfg, auths=["old-pass", "cam-admin"],
                                 request_timeout=2, http=http) == ("old-pass", None, "auth")
    finally:
        await http.aclose()


async def test_garbage_answers_are_an_error_class_and_stop_at_the_first_profile(
        tmp_path: Path, fleet: dict[str, int]) -> None:
    cfg = _cfg(tmp_path)
    auths = ["cam-admin", "old-pass"]  # the right password first: a second profile would not help
    for role in ("bad_xml", "laughs"):
        started = time.monotonic()
        result = await device_info("127.0.0.1", fleet[role], cfg=cfg, auths=auths, request_timeout=2)
        assert result == ("cam-admin", None, "bad_xml"), role
        assert time.monotonic() - started < 1.5, role  # nothing expanded, nothing retried
    # Every kind of SOAP garbage the simulator has (random bytes, cut, HTML, empty, 50 000 deep,
    # no namespace, bad UTF-8, a well-formed answer of the wrong shape): an error class that is
    # not auth, or, for the wrong shape, an inventory with nothing in it. Never an exception.
    seen = set()
    for _ in range(8):
        auth, info, err = await device_info("127.0.0.1", fleet["garbage"], cfg=cfg, auths=auths,
                                            request_timeout=2)
        assert auth == "cam-admin"
        if info is not None:
            assert err is None and (info.manufacturer, info.model, info.serial) == ("", "", "")
        else:
            assert err in {"bad_xml", "bad_http", "protocol", "disconnected"}, err
        seen.add(err)
    assert "bad_xml" in seen and None in seen


async def test_a_slow_or_silent_camera_costs_one_timeout_not_one_per_profile(
        tmp_path: Path, fleet: dict[str, int]) -> None:
    cfg = _cfg(tmp_path)
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.append(w)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        for name, target in (("slow", fleet["slow"]), ("silent", port)):
            started = time.monotonic()
            result = await device_info("127.0.0.1", target, cfg=cfg, auths=["old-pass", "cam-admin"],
                                       request_timeout=0.5)
            elapsed = time.monotonic() - started
            assert result == ("old-pass", None, "timeout"), name
            assert 0.45 < elapsed < 0.95, (name, elapsed)  # one timeout: the second profile is not tried
        assert len(accepted) == 1
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()
