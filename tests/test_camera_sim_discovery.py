"""WS-Discovery of the simulated cameras, only inside a network namespace this test creates
(loopback with multicast on); no real interface is touched."""

from __future__ import annotations

import json
import subprocess
import sys

from lxml import etree

from tests.util import BIN

PROBER = r"""
import json, socket, sys, time, uuid
types, scopes, want, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
mid = "urn:uuid:" + str(uuid.uuid4())
probe = (
    '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
    'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:MessageID>' + mid + '</a:MessageID>'
    '<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>'
    '<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header><s:Body><d:Probe>'
    '<d:Types>' + types + '</d:Types>' + ('<d:Scopes>' + scopes + '</d:Scopes>' if scopes else '') +
    '</d:Probe></s:Body></s:Envelope>')
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
s.sendto(probe.encode(), ("239.255.255.250", 3702))
replies, deadline = [], time.monotonic() + wait
while len(replies) < want and time.monotonic() < deadline:
    s.settimeout(max(deadline - time.monotonic(), 0.01))
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        break
    replies.append({"from": addr[0], "body": data.decode()})
print(json.dumps({"id": mid, "replies": replies}))
"""




def probe(ns: str, types: str, scopes: str = "", want: int = 99, wait: float = 3.0) -> tuple[str, list[dict[str, str]]]:
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBER, types, scopes, str(want), str(wait)],
                         capture_output=True, text=True, timeout=60, check=True)
    doc = json.loads(out.stdout)
    return doc["id"], doc["replies"]


def field(body: str, name: str) -> str:
    root = etree.fromstring(body.encode())
    return " ".join(root.xpath(f"//*[local-name()='{name}']/text()")).strip()


def test_probe_finds_every_camera_in_a_netns(netns: str) -> None:
    sim = subprocess.Popen(["ip", "netns", "exec", netns, str(BIN / "wardwatch-sim"), "cameras", "--count", "3",
                            "--discovery-interface", "127.0.0.1", "--control-port", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        assert line, sim.stderr.read() if sim.stderr else ""
        cams = json.loads(line)["cameras"]
        probe_id, replies = probe(netns, "dn:NetworkVideoTransmitter", want=3)
        assert len(replies) == 3
        by_xaddr = {field(r["body"], "XAddrs"): r["body"] for r in replies}
        assert set(by_xaddr) == {c["device_service"] for c in cams}
        for body in by_xaddr.values():
            assert field(body, "RelatesTo") == probe_id
            assert field(body, "Action") == "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches"
            assert "dn:NetworkVideoTransmitter" in field(body, "Types").split()
            scopes = field(body, "Scopes").split()
            assert any(s.startswith("onvif://www.onvif.org/hardware/") for s in scopes)
            assert any(s.startswith("onvif://www.onvif.org/name/") for s in scopes)
            assert field(body, "Address").startswith("urn:uuid:")
        assert len({field(b, "Address") for b in by_xaddr.values()}) == 3
        _, dahua = probe(netns, "dn:NetworkVideoTransmitter", "onvif://www.onvif.org/hardware/IPC-HFW2431S-S-S2",
                         wait=1.5)
        assert [field(r["body"], "XAddrs") for r in dahua] == [cams[1]["device_service"]]
        _, none = probe(netns, "dn:SomethingElse", wait=1.0)
        assert none == []
    finally:
        sim.terminate()
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait(10)
