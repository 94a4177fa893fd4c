"""Pure parts of the camera poller: Digest answers, SDP, clock skew, frozen images, event topics,
the switch-port state and the composite camera OK reason. No sockets here; the poller's
behaviour against a camera is in test_camera_poller.py."""

from __future__ import annotations

import datetime as dt
import hashlib
from types import SimpleNamespace

import pytest

from wardwatch.agent.camera.digest import Challenge, DigestError, authorization, parse_challenges, pick
from wardwatch.agent.camera.events import CameraEvent, EventCounts, classify, parse_message
from wardwatch.agent.camera.onvif import parse_clock, parse_profiles
from wardwatch.agent.camera.rtsp import parse_sdp, split_url
from wardwatch.agent.camera.state import Facts, FrozenDetector, assess
from wardwatch.agent.core.config import AgentConfig, check
from wardwatch.agent.core.ports import PortStates
from wardwatch.wire import Reading


def _response(header: str) -> str:
    return header.split('response="')[1].split('"')[0]


def test_digest_answers_rfc2617_md5_example() -> None:
    [ch] = parse_challenges(['Digest realm="testrealm@host.com", qop="auth,auth-int", '
                             'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'])
    header = authorization(ch, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle Of Life",
                           cnonce="0a4f113b")
    assert _response(header) == "6629fae49393a05397450978507c4ef1"
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header and "nc=00000001" in header


def test_digest_answers_rfc7616_sha256_example_and_prefers_it() -> None:
    challenges = parse_challenges([
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
        'Basic realm="x"',
    ])
    chosen = pick(challenges)
    assert chosen is not None and chosen.params["algorithm"] == "SHA-256"
    kw = {"method": "GET", "uri": "/dir/index.html", "username": "Mufasa", "password": "Circle of Life",
          "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"}
    assert _response(authorization(chosen, **kw)) == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert _response(authorization(challenges[0], **kw)) == "8ca523f5e9506fed4657c9700eebdbec"


def test_digest_without_qop_as_rtsp_servers_send_it() -> None:
    # RFC 2069 style: response = MD5(HA1:nonce:HA2), no nc/cnonce; the uri is the full RTSP URL
    ch = Challenge("digest", {"realm": "IP Camera(12345)", "nonce": "abc"})
    header = authorization(ch, method="DESCRIBE", uri="rtsp://127.0.0.1:554/Streaming/Channels/101",
                           username="admin", password="pw")
    assert "qop" not in header and "nc=" not in header
    ha1 = hashlib.md5(b"admin:IP Camera(12345):pw").hexdigest()
    ha2 = hashlib.md5(b"DESCRIBE:rtsp://127.0.0.1:554/Streaming/Channels/101").hexdigest()
    assert _response(header) == hashlib.md5(f"{ha1}:abc:{ha2}".encode()).hexdigest()


def test_basic_only_and_unknown_algorithms() -> None:
    basic = pick(parse_challenges(['Basic realm="cam"']))
    assert basic is not None
    assert authorization(basic, method="GET", uri="/", username="a", password="b") == "Basic YTpi"
    assert pick(parse_challenges(['Digest realm="r", nonce="n", algorithm=SHA-512-256'])) is None
    with pytest.raises(DigestError):
        authorization(Challenge("digest", {"realm": "r"}), method="GET", uri="/", username="a", password="b")


def test_sdp_tracks_codecs_and_control() -> None:
    sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Media Presentation\r\nt=0 0\r\n"
           "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\na=framerate:25\r\n"
           "m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=control:trackID=2\r\n"
           "m=video 0 RTP/AVP 26\r\n")
    video, audio, mjpeg = parse_sdp(sdp)
    assert (video.kind, video.codec, video.clock_rate, video.control, video.fps) == ("video", "H264", 90000,
                                                                                      "trackID=1", 25.0)
    assert (audio.kind, audio.codec) == ("audio", "PCMA")
    assert mjpeg.codec == "JPEG"  # static payload type 26
    assert [m.kind for m in parse_sdp("garbage\nm=\na=rtpmap:x\n")] == [""]  # junk never raises


def test_rtsp_url_credentials_are_split_off() -> None:
    clean, host, port, user, pw = split_url("rtsp://admin:p%40ss@127.0.0.1/cam/realmonitor?channel=1&subtype=0")
    assert (clean, host, port, user, pw) == ("rtsp://127.0.0.1/cam/realmonitor?channel=1&subtype=0", "127.0.0.1",
                                             554, "admin", "p@ss")
    with pytest.raises(ValueError):
        split_url("http://127.0.0.1/")


def _clock(when: dt.datetime) -> SimpleNamespace:
    date = SimpleNamespace(Year=when.year, Month=when.month, Day=when.day)
    tod = SimpleNamespace(Hour=when.hour, Minute=when.minute, Second=when.second)
    return SimpleNamespace(UTCDateTime=SimpleNamespace(Date=date, Time=tod))


def test_clock_skew_sign_and_size() -> None:
    agent = dt.datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=dt.UTC).timestamp()
    ahead = parse_clock(_clock(dt.datetime(2026, 1, 2, 3, 4, 42, tzinfo=dt.UTC)), sent=agent - 0.01,
                        received=agent + 0.01)
    assert ahead.skew_s == pytest.approx(37, abs=0.5) and ahead.skew_s > 0  # camera ahead = positive
    assert ahead.rtt_ms == pytest.approx(20, abs=0.1)
    behind = parse_clock(_clock(dt.datetime(2026, 1, 2, 2, 4, 5, tzinfo=dt.UTC)), sent=agent, received=agent)
    assert behind.skew_s == pytest.approx(-3600, abs=0.5)
    assert parse_clock(SimpleNamespace(UTCDateTime=None), sent=agent, received=agent).skew_s is None


def test_profiles_give_resolution_fps_and_bitrate() -> None:
    vec = SimpleNamespace(Encoding="H265", Resolution=SimpleNamespace(Width=2688, Height=1520),
                          RateControl=SimpleNamespace(FrameRateLimit=20, BitrateLimit=6144))
    [main, sub] = parse_profiles([SimpleNamespace(token="Profile_1", Name="mainStream", VideoEncoderConfiguration=vec),
                                  SimpleNamespace(token="Profile_2", Name="subStream", VideoEncoderConfiguration=None)])
    assert (main.encoding, main.width, main.height, main.fps, main.bitrate_kbps) == ("H265", 2688, 1520, 20.0, 6144)
    assert (sub.token, sub.bitrate_kbps) == ("Profile_2", 0)


def test_frozen_after_n_same_snapshots_and_a_failure_breaks_the_run() -> None:
    f = FrozenDetector(3)
    assert [f.update(h) for h in ("a", "b", "b", "b", "b")] == [False, False, False, True, True]
    assert f.update(None) is False and f.update("b") is False  # a failed snapshot starts over
    with pytest.raises(ValueError):
        FrozenDetector(1)


@pytest.mark.parametrize(("topic", "cls"), [
    ("tns1:RuleEngine/TamperDetector/Tamper", "tamper"),
    ("tns1:VideoSource/GlobalSceneChange/ImagingService", "tamper"),
    ("tns1:VideoSource/SignalLoss", "video_loss"),
    ("tns1:Device/HardwareFailure/StorageFailure", "storage_failure"),
    ("tns1:RuleEngine/CellMotionDetector/Motion", "motion"),
    ("tns1:VideoSource/MotionAlarm", "motion"),
    ("tns1:Device/Trigger/DigitalInput", "other"),
])
def test_event_topics_are_classified(topic: str, cls: str) -> None:
    assert classify(topic) == cls


def test_event_messages_count_only_what_happened() -> None:
    def msg(topic: str, value: str, op: str = "Changed") -> SimpleNamespace:
        data = SimpleNamespace(SimpleItem=[SimpleNamespace(Name="State", Value=value)])
        body = SimpleNamespace(UtcTime=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), PropertyOperation=op,
                               Source=None, Data=data)
        return SimpleNamespace(Topic=SimpleNamespace(_value_1=topic), Message=SimpleNamespace(_value_1=body))

    counts = EventCounts()
    for m in (msg("tns1:VideoSource/SignalLoss", "true"), msg("tns1:VideoSource/SignalLoss", "false"),
              msg("tns1:VideoSource/SignalLoss", "true", op="Initialized")):
        ev = parse_message(m)
        assert isinstance(ev, CameraEvent)
        counts.add(ev)
    assert counts.take()["video_loss"] == 1  # the return to normal and the initial state are not losses
    assert counts.messages == 3 and counts.last_topic == "tns1:VideoSource/SignalLoss"
    assert counts.take()["video_loss"] == 0


def _r(measurement: str, fields: dict[str, int | float | str], if_name: str = "Gi0/5") -> Reading:
    return Reading(device="sw-1", kind="switch", measurement=measurement, time_ms=1, fields=fields,  # type: ignore[arg-type]
                   tags={"if_name": if_name})


def test_port_states_take_switch_readings_and_forget_stale_ones() -> None:
    ports = PortStates(max_age=100)
    ports.ingest([_r("if_traffic", {"oper_up": 1, "in_bps": 5.0}), _r("poe", {"delivering": 0, "power_w": 0.0}),
                  _r("device_status", {"up": 1})], now=1000)
    st = ports.get("sw-1", "Gi0/5", now=1050)
    assert (st.oper_up, st.poe_delivering) == (True, False)
    assert ports.get("sw-1", "Gi0/6", now=1050).oper_up is None
    assert ports.get("sw-1", "Gi0/5", now=1200).oper_up is None  # stale is unknown


@pytest.mark.parametrize(("facts", "reason"), [
    (Facts(online=False, poe_delivering=False, port_up=False), "poe_lost"),
    (Facts(online=False, port_up=False), "port_down"),
    (Facts(online=False, onvif_error="timeout", icmp_ok=True), "offline"),
    (Facts(online=True, onvif_error="auth"), "auth"),
    (Facts(online=True, skew_auth=True, rtsp_reason="rtsp_401"), "clock_skew_auth"),
    (Facts(online=True, onvif_error="bad_xml"), "bad_xml"),
    (Facts(online=True, rtsp_reason="rtsp_404", snapshot_ok=False), "rtsp_404"),
    (Facts(online=True, rtsp_reason="rtsp_refused"), "rtsp_error"),
    (Facts(online=True, rtsp_reason="ok", snapshot_uri=False), "no_snapshot_uri"),
    (Facts(online=True, rtsp_reason="ok", snapshot_ok=False, frozen=False), "snapshot_failed"),
    (Facts(online=True, rtsp_reason="ok", snapshot_ok=True, frozen=True), "frozen"),
    (Facts(online=True, rtsp_reason="ok", snapshot_ok=True, port_up=False, poe_delivering=False), "ok"),
])
def test_composite_reason_is_the_root_cause(facts: Facts, reason: str) -> None:
    ok, got = assess(facts)
    assert (ok, got) == (reason == "ok", reason)


def test_camera_config_needs_onvif_credentials() -> None:
    cfg = AgentConfig.model_validate({
        "agent": {"id": "a", "ward": "w"}, "outbox": {"path": "o.db"},
        "auth": {"snmp-only": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": [{"id": "cam-1", "kind": "camera", "host": "127.0.0.1", "auth": "snmp-only",
                     "camera": {"frozen_after": 5, "skew_window": "10s"}}],
    })
    assert check(cfg) == ["devices[0].auth: profile 'snmp-only' has no onvif credentials"]
    assert (cfg.devices[0].camera.frozen_after, cfg.devices[0].camera.skew_window) == (5, 10.0)


# --- garbage at the edge (issue 9) ---------------------------------------------------------

@pytest.mark.parametrize("header", [
    "Digest", "Digest ,,,,", 'Digest realm="unterminated', "Digest realm=, nonce=", "Basic", "Bogus x=y",
    'Digest realm="r", nonce="n\r\nX-Injected: 1"', 'Digest realm="r", nonce="' + "n" * 5000 + '"',
    'Digest realm="r", nonce="n", qop="auth-int"', 'Digest realm="r", nonce="n", algorithm=SHA-512-256',
    "Digest " + "a=b, " * 2000, 'Digest realm="\x00", nonce="n"', "\u202eDigest realm=x",
])
def test_malformed_digest_challenges_are_refused_or_answered_never_raised_otherwise(header: str) -> None:
    challenges = parse_challenges([header])
    ch = pick(challenges)
    if ch is None:
        return
    try:
        value = authorization(ch, method="DESCRIBE", uri="rtsp://h/x", username="u", password="p")
    except DigestError:
        return
    assert value.isprintable() and "\n" not in value


def _reader(data: bytes, limit: int) -> object:
    import asyncio

    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


@pytest.mark.parametrize(("reply", "error"), [
    (b"RTSP/1.0 200 OK\r\nX-Pad: " + b"a" * 1024 * 1024 + b"\r\n\r\n", "longer than 8192 bytes"),
    (b"RTSP/1.0 200 " + b"b" * 100_000 + b"\r\n\r\n", "longer than 8192 bytes"),
    (b"RTSP/1.0 200 OK\r\n" + b"X-A: " + b"c" * 8000 + b"\r\n" * 1 + (b"X-B: " + b"c" * 8000 + b"\r\n") * 5
     + b"\r\n", "head longer than"),
    (b"RTSP/1.0 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", "too many header lines"),
    (b"RTSP/1.0 \xb2\xb2\xb2 OK\r\n\r\n", "not an RTSP status line"),
    (b"RTSP/1.0 200 OK\r\nContent-Length: 1_0\r\n\r\n", "bad Content-Length"),
    (b"RTSP/1.0 200 OK\r\nContent-Length: 999999999\r\n\r\n", "out of range"),
    (b"HTTP/1.1 200 OK\r\n\r\n", "not an RTSP status line"),
])
async def test_rtsp_replies_over_the_caps_are_protocol_errors(reply: bytes, error: str) -> None:
    from wardwatch.agent.camera import rtsp

    with pytest.raises(rtsp.RtspProtocolError, match=error):
        await rtsp._read_reply(_reader(reply, rtsp.MAX_LINE))  # type: ignore[arg-type]


def test_sdp_garbage_gives_no_nonsense() -> None:
    media = parse_sdp("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264\n\x1b[31m/²²²\r\na=framerate:nan\r\n"
                      "a=control:" + "z" * 5000 + "\r\nm=\r\nm=audio\r\n")
    video = media[0]
    assert video.kind == "video" and video.fps is None and video.clock_rate == 0
    assert video.codec.isprintable() and len(video.control) <= 256


@pytest.mark.parametrize("url", ["rtsp://h:99999/x", "rtsp://h/x\r\nCSeq: 9", "rtsp://h/" + "x" * 5000, "rtsp://",
                                 "http://h/x", "rtsp://[::1/x"])
def test_unusable_stream_uris_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        split_url(url)


def test_profile_numbers_that_are_not_numbers_are_zero() -> None:
    vec = SimpleNamespace(Encoding="H264\n\x85evil", Resolution=SimpleNamespace(Width="nan", Height="1e999"),
                          RateControl=SimpleNamespace(FrameRateLimit="inf", BitrateLimit="9" * 5000))
    [p] = parse_profiles([SimpleNamespace(token="p1", Name="x" * 10_000, VideoEncoderConfiguration=vec)])
    assert (p.width, p.height, p.fps, p.bitrate_kbps) == (0, 0, 0.0, 0)
    assert p.encoding.isprintable() and p.encoding.startswith("H264")
    assert len(p.name) <= 256


def test_clock_with_an_infinite_year_is_bad_xml() -> None:
    from wardwatch.agent.camera.onvif import BadXml

    answer = SimpleNamespace(UTCDateTime=SimpleNamespace(Date=SimpleNamespace(Year=float("inf"), Month=1, Day=1),
                                                         Time=SimpleNamespace(Hour=0, Minute=0, Second=0)))
    with pytest.raises(BadXml):
        parse_clock(answer, sent=0.0, received=0.0)


@pytest.mark.parametrize("msg", [
    SimpleNamespace(),
    SimpleNamespace(Topic=SimpleNamespace(_value_1=["a", "b"])),
    SimpleNamespace(Topic="tns1:VideoSource/SignalLoss", Message="text only"),
    SimpleNamespace(Topic="tns1:VideoSource/SignalLoss", Message=SimpleNamespace(_value_1=[1, 2])),
    SimpleNamespace(Topic="tns1:X\n\t\u202e" + "y" * 5000, Message=SimpleNamespace(_value_1=SimpleNamespace(
        UtcTime=object(), PropertyOperation=["x"],
        Data=SimpleNamespace(SimpleItem=[SimpleNamespace(Name=None, Value="v"),
                                         SimpleNamespace(Name="State", Value="true\n" * 3000),
                                         *[SimpleNamespace(Name=f"k{i}", Value="1") for i in range(100)]]),
        Source=SimpleNamespace(SimpleItem=SimpleNamespace(Name="one", Value="not a list")),
    ))),
])
def test_odd_event_messages_are_read_cleaned_and_capped(msg: object) -> None:
    ev = parse_message(msg)
    if ev is None:
        return
    assert ev.topic.isprintable() and len(ev.topic) <= 256
    assert len(ev.data) <= 32 and all(k.isprintable() and v.isprintable() and len(v) <= 1024
                                      for k, v in ev.data.items())
    assert isinstance(ev.operation, str) and isinstance(ev.utc_time, str)


def test_soap_answers_with_a_dtd_are_refused_and_never_expanded() -> None:
    """The poll's and discover's SOAP path (agent/camera/soap.py): a billion-laughs answer is
    refused unparsed; in UTF-16, where no ``<!DOCTYPE`` bytes show, lxml reads it without
    expanding an entity (10^9 "lol"s would be 3 GB and minutes)."""
    import time

    from wardwatch.agent.camera.onvif import BadXml, _text
    from wardwatch.agent.camera.soap import Node, parse_answer
    from wardwatch.simulators.camera import soap
    from wardwatch.simulators.camera.garbage import billion_laughs, laughs_document

    info = ("<tds:GetDeviceInformationResponse><tds:Manufacturer>HIK&lol9;</tds:Manufacturer>"
            "<tds:Model>M</tds:Model></tds:GetDeviceInformationResponse>")
    with pytest.raises(BadXml, match="DTD, entities or external references"):
        parse_answer(200, billion_laughs(info), "GetDeviceInformation")
    utf16 = laughs_document(soap.envelope(info.replace("&lol9;", "")), root="env:Envelope", utf16=True)
    doc = utf16.decode("utf-16").replace("HIK", "HIK&lol9;", 1).encode("utf-16")
    assert b"<!DOCTYPE" not in doc and doc.count("&lol9;".encode("utf-16-le")) == 2
    started = time.monotonic()
    try:
        answer = parse_answer(200, doc, "GetDeviceInformation")
    except BadXml:
        return  # refused: as good
    assert time.monotonic() - started < 1.0
    texts = list(answer.itertext())
    assert sum(len(t) for t in texts) < 1000 and not any("lol" in t for t in texts)
    assert _text(Node(answer), "Manufacturer") == "HIK"


@pytest.mark.parametrize(("size", "declared", "reason"), [
    (300_000, True, "ok"), (300_000, False, "ok"), (17 * 2**20, True, "snapshot_too_large"),
    (17 * 2**20, False, "snapshot_too_large"),
])
async def test_snapshot_is_hashed_while_streaming_and_capped(size: int, declared: bool, reason: str) -> None:
    """A real HTTP server (loopback): the streamed hash is the whole image's; over 16 MiB,
    declared or not, the GET stops with snapshot_too_large."""
    from aiohttp import web

    from wardwatch.agent.camera.http import HttpClient
    from wardwatch.agent.camera.snapshot import fetch, fingerprint

    body = b"\xff\xd8" + bytes(range(256)) * (size // 256)

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        if declared:
            resp.content_length = len(body)
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(body), 100_000):
            await resp.write(body[i:i + 100_000])
        return resp

    app = web.Application()
    app.router.add_get("/snap.jpg", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        client = HttpClient()
        try:
            result = await fetch(client, f"http://127.0.0.1:{port}/snap.jpg", username=None, password=None,
                                 time_limit=5)
        finally:
            await client.aclose()
    finally:
        await runner.cleanup()
    assert result.reason == reason, result.detail
    if reason == "ok":
        assert (result.digest, result.size) == (fingerprint(body), len(body))
    else:
        assert result.digest is None and "too large" in result.detail
