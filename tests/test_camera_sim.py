"""The camera simulator, checked by independent clients over real sockets: zeep with the ONVIF
WSDLs packaged in onvif-zeep-async (no network fetches), onvif-zeep-async's ONVIFCamera,
requests' HTTP Digest for the snapshot, and a hand-written RTSP client."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import onvif
import pytest
import requests
from lxml import etree
from requests.auth import HTTPDigestAuth
from zeep import Client, Settings
from zeep.exceptions import Fault, TransportError, XMLParseError
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from tests.util import BIN, wait_for
from wardwatch.simulators.camera import CameraFleet

T = TypeVar("T")
WSDL = Path(onvif.__file__).parent / "wsdl"
TDS = "{http://www.onvif.org/ver10/device/wsdl}DeviceBinding"
TRT = "{http://www.onvif.org/ver10/media/wsdl}MediaBinding"
TEV = "{http://www.onvif.org/ver10/events/wsdl}"
USER, PASSWORD = "admin", "Sim-pass-1"
JAVA_CHECK = """
import javax.imageio.ImageIO; import java.io.File;
public class JpegCheck { public static void main(String[] a) throws Exception {
  var im = ImageIO.read(new File(a[0])); System.out.println(im.getWidth() + "x" + im.getHeight()); } }
"""


class FleetThread:
    """A CameraFleet on its own event loop in a thread, so that blocking clients (zeep) can call it."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fleet = CameraFleet(username=USER, password=PASSWORD, control_port=0, **kwargs)
        self.run(self.fleet.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def apply(self, camera_id: str, changes: dict[str, Any]) -> None:
        self.run(self.fleet.apply(camera_id, changes))

    def cam(self, index: int) -> dict[str, Any]:
        return self.fleet.listing()[index]

    def close(self) -> None:
        self.run(self.fleet.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def fleet() -> Iterator[FleetThread]:
    ft = FleetThread(count=3, brand="mix")
    try:
        yield ft
    finally:
        ft.close()


@pytest.fixture(autouse=True)
def clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "fleet" in request.fixturenames:
        ft: FleetThread = request.getfixturevalue("fleet")
        ft.run(ft.fleet.apply_all({"offline": False, "slow": 0, "auth_fail": False, "clock_skew": 0,
                                   "bad_xml": False, "no_snapshot_uri": False, "rtsp": "ok", "frozen": False}))


def token(**kw: Any) -> UsernameToken:
    return UsernameToken(kw.pop("user", USER), kw.pop("password", PASSWORD), use_digest=True, **kw)


def device(cam: dict[str, Any], wsse: Any = None, timeout: float = 10) -> Any:
    client = Client(str(WSDL / "devicemgmt.wsdl"), wsse=token() if wsse is None else wsse,
                    transport=Transport(timeout=timeout, operation_timeout=timeout))
    return client.create_service(TDS, cam["device_service"])


def media(cam: dict[str, Any], wsse: Any = None) -> Any:
    xaddr = device(cam).GetCapabilities(Category="Media").Media.XAddr
    return Client(str(WSDL / "media.wsdl"), wsse=wsse or token()).create_service(TRT, xaddr)


def events_client() -> Client:
    return Client(str(WSDL / "events.wsdl"), wsse=token())


def subscribe(cam: dict[str, Any], termination: str = "PT60S") -> tuple[Any, Any]:
    """CreatePullPointSubscription; returns (result, a PullPointSubscription service at its address)."""
    xaddr = device(cam).GetCapabilities(Category="Events").Events.XAddr
    client = events_client()
    result = client.create_service(TEV + "EventBinding", xaddr).CreatePullPointSubscription(
        InitialTerminationTime=termination)
    address = result.SubscriptionReference.Address._value_1
    return result, client.create_service(TEV + "PullPointSubscriptionBinding", address)


def camera_time(reply: Any) -> dt.datetime:
    u = reply.UTCDateTime
    return dt.datetime(u.Date.Year, u.Date.Month, u.Date.Day, u.Time.Hour, u.Time.Minute, u.Time.Second,
                       tzinfo=dt.UTC)


def is_not_authorized(fault: Fault) -> bool:
    return fault.code is not None and "Sender" in fault.code and any(
        "NotAuthorized" in str(s) for s in (fault.subcodes or []))


def post_soap(url: str, body: str, header: str = "") -> tuple[int, str, bytes]:
    env = (f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>{header}</s:Header>'
           f"<s:Body>{body}</s:Body></s:Envelope>")
    r = requests.post(url, data=env.encode(), headers={"Content-Type": "application/soap+xml"}, timeout=10)
    return r.status_code, r.headers.get("Content-Type", ""), r.content


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# ------------------------------------------------------------------------------ device

def test_device_service_with_zeep(fleet: FleetThread) -> None:
    expected = {"hikvision": "HIKVISION", "dahua": "Dahua", "kbvision": "KBVISION"}
    for i in range(3):
        cam = fleet.cam(i)
        svc = device(cam, wsse=False)  # no UsernameToken at all: the spec lets this one through
        before = dt.datetime.now(dt.UTC)
        t = camera_time(svc.GetSystemDateAndTime())
        assert abs((t - before).total_seconds()) <= 2
        authed = device(cam)
        info = authed.GetDeviceInformation()
        assert info.Manufacturer == expected[cam["brand"]]
        assert info.Model and info.FirmwareVersion and info.SerialNumber
        caps = authed.GetCapabilities(Category="All")
        base = f"http://{cam['host']}:{cam['onvif_port']}/"
        assert caps.Device.XAddr == cam["device_service"]
        assert caps.Media.XAddr.startswith(base) and caps.Events.XAddr.startswith(base)
        assert caps.Events.WSPullPointSupport is True
        services = {s.Namespace: s.XAddr for s in authed.GetServices(IncludeCapability=False)}
        assert services["http://www.onvif.org/ver10/media/wsdl"] == caps.Media.XAddr
        assert services["http://www.onvif.org/ver10/events/wsdl"] == caps.Events.XAddr
        assert authed.GetNetworkInterfaces()[0].Info.HwAddress


def test_authenticated_operation_needs_a_token(fleet: FleetThread) -> None:
    with pytest.raises(Fault) as exc:
        device(fleet.cam(0), wsse=False).GetDeviceInformation()
    assert is_not_authorized(exc.value)
    with pytest.raises(Fault) as exc:
        device(fleet.cam(0), wsse=token(password="wrong")).GetDeviceInformation()
    assert is_not_authorized(exc.value)


def test_faults_and_content_type_on_the_wire(fleet: FleetThread) -> None:
    url = fleet.cam(0)["device_service"]
    status, ctype, body = post_soap(url, '<GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/>')
    assert status == 400 and ctype.startswith("application/soap+xml")
    root = etree.fromstring(body)
    ns = {"env": "http://www.w3.org/2003/05/soap-envelope"}
    assert root.findtext(".//env:Code/env:Value", namespaces=ns) == "env:Sender"
    assert root.findtext(".//env:Code/env:Subcode/env:Value", namespaces=ns) == "ter:NotAuthorized"
    status, ctype, _ = post_soap(url, "<unclosed>")
    assert status == 400 and ctype.startswith("application/soap+xml")
    status, _, body = post_soap(url, '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/>')
    assert status == 200 and b"UTCDateTime" in body
    r = requests.post(url, data=b"not xml at all", headers={"Content-Type": "application/soap+xml"}, timeout=10)
    assert r.status_code == 400


def test_nonce_replay_is_rejected(fleet: FleetThread) -> None:
    cam = fleet.cam(1)
    nonce = os.urandom(12).hex()
    created = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    assert device(cam, wsse=token(nonce=nonce, created=created)).GetDeviceInformation().Model
    with pytest.raises(Fault) as exc:
        device(cam, wsse=token(nonce=nonce, created=created)).GetDeviceInformation()
    assert is_not_authorized(exc.value)
    assert device(cam, wsse=token(nonce=os.urandom(12).hex(), created=created)).GetDeviceInformation().Model


def test_created_outside_the_window_is_rejected(fleet: FleetThread) -> None:
    cam = fleet.cam(0)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for offset in (-400, 400):
        with pytest.raises(Fault) as exc:
            device(cam, wsse=token(created=now + dt.timedelta(seconds=offset))).GetDeviceInformation()
        assert is_not_authorized(exc.value)
    assert device(cam, wsse=token(created=now - dt.timedelta(seconds=60))).GetDeviceInformation()


# ------------------------------------------------------------------------------- media

def test_media_service_with_zeep(fleet: FleetThread) -> None:
    for i in range(3):
        cam = fleet.cam(i)
        m = media(cam)
        profiles = m.GetProfiles()
        assert len(profiles) == 2
        main, sub = (p.VideoEncoderConfiguration for p in profiles)
        assert main.Encoding in ("H264", "H265") and sub.Encoding == "H264"
        assert (main.Resolution.Width, main.Resolution.Height) in ((2560, 1440), (1920, 1080))
        assert (sub.Resolution.Width, sub.Resolution.Height) in ((640, 480), (704, 576))
        assert (main.RateControl.FrameRateLimit, main.RateControl.BitrateLimit) == (25, 4096)
        assert (sub.RateControl.FrameRateLimit, sub.RateControl.BitrateLimit) == (15, 512)
        configs = m.GetVideoEncoderConfigurations()
        assert [c.token for c in configs] == [main.token, sub.token]
        assert m.GetVideoEncoderConfiguration(ConfigurationToken=sub.token).Resolution.Width == sub.Resolution.Width
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        uri = m.GetStreamUri(StreamSetup=setup, ProfileToken=profiles[0].token).Uri
        assert uri.startswith(f"rtsp://{cam['host']}:{cam['rtsp_port']}/")
        snap = m.GetSnapshotUri(ProfileToken=profiles[1].token).Uri
        assert snap.startswith(f"http://{cam['host']}:{cam['onvif_port']}/")
        with pytest.raises(Fault):
            m.GetStreamUri(StreamSetup=setup, ProfileToken="no-such-profile")
    hik = media(fleet.cam(0))
    assert hik.GetStreamUri(StreamSetup=setup, ProfileToken="Profile_1").Uri.endswith("/Streaming/Channels/101")
    assert hik.GetSnapshotUri(ProfileToken="Profile_1").Uri.endswith("/onvif-http/snapshot?Profile_1")
    dahua = media(fleet.cam(1))
    assert dahua.GetStreamUri(StreamSetup=setup, ProfileToken="MediaProfile00000").Uri.endswith(
        "/cam/realmonitor?channel=1&subtype=0")


def jpeg_dims(data: bytes) -> tuple[int, int]:
    """Walk the JPEG markers: SOI, segments up to SOS, EOI at the end; return (width, height) of SOF0."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    i, dims = 2, None
    while True:
        assert data[i] == 0xFF
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xC0:
            dims = (int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big"))
        if marker == 0xDA:
            break
        i += 2 + length
    assert dims is not None
    return dims


def snapshot_uri(fleet: FleetThread, index: int) -> str:
    m = media(fleet.cam(index))
    return str(m.GetSnapshotUri(ProfileToken=m.GetProfiles()[0].token).Uri)


def test_snapshot_digest_and_jpeg(fleet: FleetThread, tmp_path: Path) -> None:
    uri = snapshot_uri(fleet, 0)
    r = requests.get(uri, timeout=10)
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Digest ") and 'qop="auth"' in challenge and "algorithm=MD5" in challenge
    assert requests.get(uri, auth=HTTPDigestAuth(USER, "wrong"), timeout=10).status_code == 401
    first = requests.get(uri, auth=HTTPDigestAuth(USER, PASSWORD), timeout=10)
    second = requests.get(uri, auth=HTTPDigestAuth(USER, PASSWORD), timeout=10)
    assert first.status_code == second.status_code == 200
    assert first.headers["Content-Type"] == "image/jpeg"
    assert first.content != second.content
    assert jpeg_dims(first.content) == (160, 96)
    java = shutil.which("java")
    if java:  # an independent decoder, when the machine has one
        (tmp_path / "JpegCheck.java").write_text(JAVA_CHECK)
        (tmp_path / "snap.jpg").write_bytes(first.content)
        out = subprocess.run([java, str(tmp_path / "JpegCheck.java"), str(tmp_path / "snap.jpg")],
                             capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == "160x96", out.stderr


def test_frozen_snapshot_repeats_its_bytes(fleet: FleetThread) -> None:
    uri = snapshot_uri(fleet, 1)
    fleet.apply("cam-002", {"frozen": True})
    a, b, c = (requests.get(uri, auth=HTTPDigestAuth(USER, PASSWORD), timeout=10).content for _ in range(3))
    assert a == b == c and jpeg_dims(a)
    fleet.apply("cam-002", {"frozen": False})
    assert requests.get(uri, auth=HTTPDigestAuth(USER, PASSWORD), timeout=10).content != a


def test_no_snapshot_uri(fleet: FleetThread) -> None:
    uri = snapshot_uri(fleet, 2)
    fleet.apply("cam-003", {"no_snapshot_uri": True})
    m = media(fleet.cam(2))
    with pytest.raises(XMLParseError):  # MediaUri without its required Uri: a strict client refuses it
        m.GetSnapshotUri(ProfileToken=m.GetProfiles()[0].token)
    xaddr = device(fleet.cam(2)).GetCapabilities(Category="Media").Media.XAddr
    lenient = Client(str(WSDL / "media.wsdl"), wsse=token(), settings=Settings(strict=False))
    reply = lenient.create_service(TRT, xaddr).GetSnapshotUri(ProfileToken=m.GetProfiles()[0].token)
    assert reply.Uri is None
    assert requests.get(uri, auth=HTTPDigestAuth(USER, PASSWORD), timeout=10).status_code == 404


# -------------------------------------------------------------------------------- RTSP

def rtsp(host: str, port: int, requests_: list[tuple[str, str, dict[str, str]]], timeout: float = 5) -> list[str]:
    """Send requests on one connection; return each raw response (head and body)."""
    out = []
    with socket.create_connection((host, port), timeout=timeout) as s:
        f = s.makefile("rb")
        for cseq, (method, url, headers) in enumerate(requests_, start=1):
            lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", "User-Agent: test"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = f.readline()
                if not line:
                    raise ConnectionError("closed")
                head += line
            text = head.decode()
            length = next((int(x.split(":")[1]) for x in text.split("\r\n") if x.lower().startswith("content-length")),
                          0)
            out.append(text + f.read(length).decode())
    return out


def digest_header(challenge: str, method: str, uri: str, user: str = USER, password: str = PASSWORD) -> str:
    params = dict(p.strip().split("=", 1) for p in challenge[len("Digest "):].split(","))
    realm, nonce = params["realm"].strip('"'), params["nonce"].strip('"')
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    resp = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    return f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", response="{resp}"'


def stream_uri(fleet: FleetThread, index: int) -> str:
    m = media(fleet.cam(index))
    setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
    return str(m.GetStreamUri(StreamSetup=setup, ProfileToken=m.GetProfiles()[0].token).Uri)


def describe(fleet: FleetThread, index: int, password: str = PASSWORD) -> list[str]:
    cam = fleet.cam(index)
    url = stream_uri(fleet, index)
    first = rtsp(cam["host"], cam["rtsp_port"],
                 [("OPTIONS", url, {}), ("DESCRIBE", url, {"Accept": "application/sdp"})])
    if " 401 " not in first[1].split("\r\n")[0]:
        return first
    challenge = next(x.split(":", 1)[1].strip() for x in first[1].split("\r\n") if x.startswith("WWW-Authenticate"))
    auth = digest_header(challenge, "DESCRIBE", url, password=password)
    return first + rtsp(cam["host"], cam["rtsp_port"], [("DESCRIBE", url, {"Authorization": auth})])


def test_rtsp_options_describe_digest(fleet: FleetThread) -> None:
    options, challenge, ok = describe(fleet, 0)
    assert options.startswith("RTSP/1.0 200 OK\r\n") and "CSeq: 1\r\n" in options and "DESCRIBE" in options
    assert challenge.startswith("RTSP/1.0 401 ") and "CSeq: 2\r\n" in challenge and "Digest realm=" in challenge
    assert ok.startswith("RTSP/1.0 200 OK\r\n") and "CSeq: 1\r\n" in ok and "application/sdp" in ok
    sdp = ok.split("\r\n\r\n", 1)[1]
    assert "m=video 0 RTP/AVP 96" in sdp and "a=rtpmap:96 H264/90000" in sdp
    assert "a=framerate:25" in sdp and "a=x-dimensions:2560,1440" in sdp
    assert describe(fleet, 0, password="wrong")[2].startswith("RTSP/1.0 401 ")


def test_rtsp_fault_knobs(fleet: FleetThread) -> None:
    fleet.apply("cam-002", {"rtsp": "404"})
    assert describe(fleet, 1)[1].startswith("RTSP/1.0 404 ")
    fleet.apply("cam-002", {"rtsp": "401"})
    assert describe(fleet, 1)[2].startswith("RTSP/1.0 401 ")
    fleet.apply("cam-002", {"rtsp": "timeout"})
    cam = fleet.cam(1)
    with pytest.raises(TimeoutError):
        rtsp(cam["host"], cam["rtsp_port"], [("OPTIONS", stream_uri(fleet, 1), {})], timeout=1.0)
    fleet.apply("cam-002", {"rtsp": "ok"})
    assert describe(fleet, 1)[2].startswith("RTSP/1.0 200 ")


# ------------------------------------------------------------------------------ events

def test_pullpoint_events_with_zeep(fleet: FleetThread) -> None:
    cam = fleet.cam(0)
    xaddr = device(cam).GetCapabilities(Category="Events").Events.XAddr
    props = events_client().create_service(TEV + "EventBinding", xaddr).GetEventProperties()
    assert props.FixedTopicSet is True
    created, pull = subscribe(cam, "PT120S")
    lifetime = (created.TerminationTime - created.CurrentTime).total_seconds()
    assert 115 <= lifetime <= 125
    empty = pull.PullMessages(Timeout="PT0.5S", MessageLimit=10)
    assert not empty.NotificationMessage
    fleet.apply("cam-001", {"emit_event": ["tamper", "video_loss", "storage_failure"]})
    got = pull.PullMessages(Timeout="PT2S", MessageLimit=10)
    topics = [m.Topic._value_1 for m in got.NotificationMessage]
    assert topics == ["tns1:RuleEngine/TamperDetector/Tamper", "tns1:VideoSource/SignalLoss",
                      "tns1:Device/HardwareFailure/StorageFailure"]
    manager = events_client().create_service(TEV + "SubscriptionManagerBinding",
                                             created.SubscriptionReference.Address._value_1)
    renewed = manager.Renew(TerminationTime="PT300S")
    assert (renewed.TerminationTime - renewed.CurrentTime).total_seconds() >= 295
    manager.Unsubscribe()
    with pytest.raises(Fault):
        pull.PullMessages(Timeout="PT0S", MessageLimit=1)


def test_long_poll_wakes_on_event(fleet: FleetThread) -> None:
    _, pull = subscribe(fleet.cam(1))
    timer = threading.Timer(0.5, fleet.apply, ("cam-002", {"emit_event": "video_loss"}))
    timer.start()
    started = time.monotonic()
    got = pull.PullMessages(Timeout="PT10S", MessageLimit=10)
    timer.join()
    assert [m.Topic._value_1 for m in got.NotificationMessage] == ["tns1:VideoSource/SignalLoss"]
    assert time.monotonic() - started < 5


def test_subscription_expires_at_its_termination_time(fleet: FleetThread) -> None:
    _, pull = subscribe(fleet.cam(2), "PT1S")
    pull.PullMessages(Timeout="PT0S", MessageLimit=1)
    time.sleep(1.6)  # the subscription's own lifetime, not a readiness wait
    with pytest.raises(Fault):
        pull.PullMessages(Timeout="PT0S", MessageLimit=1)


def test_reboot_drops_subscriptions_and_resets_uptime(fleet: FleetThread) -> None:
    cam = fleet.cam(2)
    _, pull = subscribe(cam)
    pull.PullMessages(Timeout="PT0S", MessageLimit=1)
    time.sleep(1.2)  # let uptime grow past what a fresh boot shows
    control = fleet.fleet.control_url
    before = json.load(urllib.request.urlopen(f"{control}/cameras/cam-003", timeout=10))
    assert before["uptime_s"] >= 1.0 and before["subscriptions"] == 1
    fleet.apply("cam-003", {"reboot": 1.0})
    assert refused(cam["host"], cam["onvif_port"]) and refused(cam["host"], cam["rtsp_port"])
    wait_for(lambda: not refused(cam["host"], cam["onvif_port"]), timeout=10, what="camera back after reboot")
    after = json.load(urllib.request.urlopen(f"{control}/cameras/cam-003", timeout=10))
    assert after["uptime_s"] < before["uptime_s"] and after["reboots"] == before["reboots"] + 1
    assert after["subscriptions"] == 0
    with pytest.raises(Fault):
        pull.PullMessages(Timeout="PT0S", MessageLimit=1)
    _, again = subscribe(cam)
    assert not again.PullMessages(Timeout="PT0S", MessageLimit=1).NotificationMessage


# ------------------------------------------------------------------------- fault knobs

def test_clock_skew(fleet: FleetThread) -> None:
    cam = fleet.cam(1)
    fleet.apply("cam-002", {"clock_skew": 37})
    before = dt.datetime.now(dt.UTC)
    skew = (camera_time(device(cam, wsse=False).GetSystemDateAndTime()) - before).total_seconds()
    assert 36 <= skew <= 38
    assert device(cam).GetDeviceInformation()  # 37 s is inside the Created window
    fleet.apply("cam-002", {"clock_skew": -900})
    with pytest.raises(Fault) as exc:
        device(cam).GetDeviceInformation()
    assert is_not_authorized(exc.value)
    # A client that applies the offset it measured authenticates again (what onvif's adjust_time does).
    created = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=900)).replace(tzinfo=None)
    assert device(cam, wsse=token(created=created)).GetDeviceInformation()


def test_auth_fail(fleet: FleetThread) -> None:
    cam = fleet.cam(0)
    uri = snapshot_uri(fleet, 0)
    fleet.apply("cam-001", {"auth_fail": True})
    with pytest.raises(Fault) as exc:
        device(cam).GetDeviceInformation()
    assert is_not_authorized(exc.value)
    assert device(cam, wsse=False).GetSystemDateAndTime()
    assert requests.get(uri, auth=HTTPDigestAuth(USER, PASSWORD), timeout=10).status_code == 401


def test_bad_xml(fleet: FleetThread) -> None:
    cam = fleet.cam(2)
    fleet.apply("cam-003", {"bad_xml": True})
    with pytest.raises(TransportError, match="invalid XML"):
        device(cam).GetDeviceInformation()
    assert device(cam, wsse=False).GetSystemDateAndTime()


def test_slow(fleet: FleetThread) -> None:
    cam = fleet.cam(0)
    fleet.apply("cam-001", {"slow": 1.5})
    with pytest.raises((requests.exceptions.Timeout, TransportError)):
        device(cam, timeout=0.5).GetDeviceInformation()
    started = time.monotonic()
    device(cam, wsse=False).GetSystemDateAndTime()
    assert time.monotonic() - started >= 1.4


def test_offline_refuses_every_service(fleet: FleetThread) -> None:
    cam = fleet.cam(1)
    session = requests.Session()  # a kept-alive connection must not survive going offline either
    assert session.post(cam["device_service"], data=b"<x/>", timeout=5).status_code == 400
    fleet.apply("cam-002", {"offline": True})
    assert refused(cam["host"], cam["onvif_port"]) and refused(cam["host"], cam["rtsp_port"])
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(cam["device_service"], data=b"<x/>", timeout=5)
    fleet.apply("cam-002", {"offline": False})
    assert device(cam).GetDeviceInformation()


def test_offline_cuts_a_long_poll(fleet: FleetThread) -> None:
    _, pull = subscribe(fleet.cam(2))
    timer = threading.Timer(0.5, fleet.apply, ("cam-003", {"offline": True}))
    timer.start()
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        pull.PullMessages(Timeout="PT20S", MessageLimit=10)
    timer.join()
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------- control, CLI, onvif

def test_control_endpoint(fleet: FleetThread) -> None:
    control = fleet.fleet.control_url
    listing = json.load(urllib.request.urlopen(f"{control}/cameras", timeout=10))
    assert [c["id"] for c in listing] == ["cam-001", "cam-002", "cam-003"]
    assert listing[0]["onvif_port"] == fleet.cam(0)["onvif_port"]
    r = requests.post(f"{control}/cameras/cam-002/faults", json={"clock_skew": 5, "rtsp": "404"}, timeout=10)
    assert r.status_code == 200 and r.json()["faults"]["rtsp"] == "404" and r.json()["faults"]["clock_skew"] == 5
    assert requests.post(f"{control}/cameras/cam-002/faults", json={"warp": 1}, timeout=10).status_code == 400
    assert requests.post(f"{control}/cameras/cam-002/faults", json={"rtsp": "500"}, timeout=10).status_code == 400
    assert requests.post(f"{control}/cameras/cam-009/faults", json={}, timeout=10).status_code == 404
    assert requests.post(f"{control}/cameras/cam-002/faults", json={"emit_event": "nope"}, timeout=10
                         ).status_code == 400


async def test_onvif_zeep_async_client(fleet: FleetThread) -> None:
    from onvif import ONVIFCamera

    for i in range(3):
        c = fleet.cam(i)
        cam = ONVIFCamera(c["host"], c["onvif_port"], USER, PASSWORD, no_cache=True, adjust_time=False)
        try:
            await cam.update_xaddrs()
            info = await (await cam.create_devicemgmt_service()).GetDeviceInformation()
            assert info.Model
            profiles = await (await cam.create_media_service()).GetProfiles()
            jpeg = await cam.get_snapshot(profiles[0].token)
            assert jpeg is not None and jpeg_dims(jpeg)
            mgr = await cam.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None)
            await asyncio.to_thread(fleet.apply, c["id"], {"emit_event": "storage_failure"})
            msgs = await mgr.get_service().PullMessages({"MessageLimit": 10, "Timeout": dt.timedelta(seconds=2)})
            assert [m.Topic._value_1 for m in msgs.NotificationMessage] == [
                "tns1:Device/HardwareFailure/StorageFailure"]
            await mgr.shutdown()
        finally:
            await cam.close()


async def test_onvif_zeep_async_adjust_time_survives_large_skew(fleet: FleetThread) -> None:
    from onvif import ONVIFCamera

    await asyncio.to_thread(fleet.apply, "cam-001", {"clock_skew": 3600})
    c = fleet.cam(0)
    cam = ONVIFCamera(c["host"], c["onvif_port"], USER, PASSWORD, no_cache=True, adjust_time=True)
    try:
        await cam.update_xaddrs()
        assert (await (await cam.create_devicemgmt_service()).GetDeviceInformation()).Model
    finally:
        await cam.close()


def test_cli_prints_ports_and_serves(tmp_path: Path) -> None:
    listing_file = tmp_path / "cams.yaml"
    proc = subprocess.Popen([str(BIN / "wardwatch-sim"), "cameras", "--count", "3", "--brand", "dahua",
                             "--user", USER, "--password", PASSWORD, "--output", str(listing_file),
                             "--faults", json.dumps({"cam-002": {"clock_skew": 37}})],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        doc = json.loads(proc.stdout.readline())
        cams = doc["cameras"]
        assert [c["id"] for c in cams] == ["cam-001", "cam-002", "cam-003"]
        assert {c["brand"] for c in cams} == {"dahua"} and listing_file.exists()
        assert len({c["onvif_port"] for c in cams} | {c["rtsp_port"] for c in cams}) == 6
        t = camera_time(device(cams[1], wsse=False).GetSystemDateAndTime())
        assert 35 <= (t - dt.datetime.now(dt.UTC)).total_seconds() <= 39
        assert device(cams[0]).GetDeviceInformation().Manufacturer == "Dahua"
        assert requests.get(f"{doc['control_url']}/cameras", timeout=10).status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_cli_rejects_bad_faults() -> None:
    out = subprocess.run([str(BIN / "wardwatch-sim"), "cameras", "--faults", "[1]"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "--faults" in out.stderr
    out = subprocess.run([str(BIN / "wardwatch-sim"), "cameras", "--faults", '{"cam-001": {"warp": 1}}'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "warp" in out.stderr


def test_simulator_imports_only_itself() -> None:
    """tests/test_boundaries.py looks at simulators/*.py; the camera package is one level down."""
    import ast

    top = Path(__file__).parent.parent / "simulators" / "camera"
    for path in top.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith("wardwatch") or name.startswith("wardwatch.simulators.camera"), (
                    f"{path.name} imports {name}")


def test_password_digest_matches_spec_formula() -> None:
    """The digest the simulator checks is the one WS-Security defines (a known-answer check)."""
    from wardwatch.simulators.camera import soap

    nonce, created, password = b"0123456789abcdef", "2024-01-01T00:00:00Z", "secret"
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    env = (f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="{soap.NS["wsse"]}" '
           f'xmlns:wsu="{soap.NS["wsu"]}"><s:Header><wsse:Security><wsse:UsernameToken>'
           f'<wsse:Username>u</wsse:Username><wsse:Password Type="{soap.PASSWORD_DIGEST}">{digest}</wsse:Password>'
           f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
           "</wsse:UsernameToken></wsse:Security></s:Header><s:Body><x/></s:Body></s:Envelope>")
    req = soap.parse(env.encode())
    now = dt.datetime(2024, 1, 1, 0, 1, tzinfo=dt.UTC)
    soap.check_username_token(req, username="u", password=password, now=now, window_s=300,
                              nonces=soap.NonceCache())
    with pytest.raises(soap.SoapFault):
        soap.check_username_token(req, username="u", password="other", now=now, window_s=300,
                                  nonces=soap.NonceCache())


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
