"""Brand profiles: what Hikvision, Dahua and KBVision (a Dahua OEM) cameras say about themselves.

Device knowledge is data: names, firmware strings, URL shapes and encoder settings as these
cameras report them over ONVIF. Every brand keeps the device service at ``/onvif/device_service``
(ONVIF clients assume it), the rest of the paths differ as they do on real units.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Stream:
    """One media profile: its token, name and video encoder settings."""

    token: str
    name: str
    encoder_token: str
    encoding: str  # H264 or H265
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    gov_length: int
    quality: float


@dataclass(frozen=True, slots=True)
class Brand:
    """What one brand of camera looks like over ONVIF, HTTP and RTSP."""

    key: str
    manufacturer: str
    model: str
    firmware: str
    hardware_id: str
    serial_prefix: str
    media_path: str
    events_path: str
    subscription_path: str  # formatted with idx
    snapshot_path: str  # formatted with channel (1-based) and profile index (1-based)
    rtsp_path: str  # formatted with channel and subtype (0 main, 1 sub) / stream (101, 102)
    realm: str  # HTTP digest realm
    rtsp_realm: str
    server_header: str
    streams: tuple[Stream, ...]


HIKVISION = Brand(
    key="hikvision",
    manufacturer="HIKVISION",
    model="DS-2CD2143G2-I",
    firmware="V5.7.3 build 220112",
    hardware_id="88",
    serial_prefix="DS-2CD2143G2-I20220315AAWRJ",
    media_path="/onvif/Media",
    events_path="/onvif/Events",
    subscription_path="/onvif/Events/PullSubManager_{idx}",
    snapshot_path="/onvif-http/snapshot?Profile_{profile}",
    rtsp_path="/Streaming/Channels/{stream}",
    realm="IP Camera(C6420)",
    rtsp_realm="IP Camera(C6420)",
    server_header="App-webs/",
    streams=(
        Stream(token="Profile_1", name="mainStream", encoder_token="VideoEncoderToken_1", encoding="H264",
               width=2560, height=1440, fps=25, bitrate_kbps=4096, gov_length=50, quality=3.0),
        Stream(token="Profile_2", name="subStream", encoder_token="VideoEncoderToken_2", encoding="H264",
               width=640, height=480, fps=15, bitrate_kbps=512, gov_length=50, quality=3.0),
    ),
)

DAHUA = Brand(
    key="dahua",
    manufacturer="Dahua",
    model="IPC-HFW2431S-S-S2",
    firmware="2.800.0000000.31.R, Build Date 2021-08-14",
    hardware_id="1.00",
    serial_prefix="6J0A5B2PAZ",
    media_path="/onvif/media_service",
    events_path="/onvif/event_service",
    subscription_path="/onvif/Subscription?Idx={idx}",
    snapshot_path="/onvif/snapshot?channel={channel}&subtype={subtype}",
    rtsp_path="/cam/realmonitor?channel={channel}&subtype={subtype}",
    realm="Login to 6J0A5B2PAZ",
    rtsp_realm="Login to 6J0A5B2PAZ",
    server_header="",
    streams=(
        Stream(token="MediaProfile00000", name="MediaProfile_Channel1_MainStream", encoder_token="00000",
               encoding="H264", width=1920, height=1080, fps=25, bitrate_kbps=4096, gov_length=50, quality=4.0),
        Stream(token="MediaProfile00001", name="MediaProfile_Channel1_SubStream1", encoder_token="00001",
               encoding="H264", width=704, height=576, fps=15, bitrate_kbps=512, gov_length=30, quality=4.0),
    ),
)

KBVISION = Brand(
    key="kbvision",
    manufacturer="KBVISION",
    model="KX-C2012S5",
    firmware="2.622.0000000.18.R, Build Date 2020-11-02",
    hardware_id="1.00",
    serial_prefix="7C0D2E1PAG",
    media_path="/onvif/media_service",
    events_path="/onvif/event_service",
    subscription_path="/onvif/Subscription?Idx={idx}",
    snapshot_path="/onvif/snapshot?channel={channel}&subtype={subtype}",
    rtsp_path="/cam/realmonitor?channel={channel}&subtype={subtype}",
    realm="Login to 7C0D2E1PAG",
    rtsp_realm="Login to 7C0D2E1PAG",
    server_header="",
    streams=(
        Stream(token="MediaProfile00000", name="MediaProfile_Channel1_MainStream", encoder_token="00000",
               encoding="H265", width=1920, height=1080, fps=25, bitrate_kbps=4096, gov_length=50, quality=4.0),
        Stream(token="MediaProfile00001", name="MediaProfile_Channel1_SubStream1", encoder_token="00001",
               encoding="H264", width=640, height=480, fps=15, bitrate_kbps=512, gov_length=30, quality=4.0),
    ),
)

BRANDS: dict[str, Brand] = {b.key: b for b in (HIKVISION, DAHUA, KBVISION)}


def brand_for(name: str, index: int) -> Brand:
    """``name`` is a brand key or ``mix``; ``mix`` cycles through the brands by camera index."""
    if name == "mix":
        keys = list(BRANDS)
        return BRANDS[keys[index % len(keys)]]
    try:
        return BRANDS[name]
    except KeyError:
        raise ValueError(f"unknown brand {name!r}; one of {', '.join([*BRANDS, 'mix'])}") from None


def snapshot_path(brand: Brand, profile_index: int) -> str:
    """The snapshot URL path (with query) for the 0-based profile index."""
    return brand.snapshot_path.format(channel=1, profile=profile_index + 1, subtype=profile_index)


def rtsp_path(brand: Brand, profile_index: int) -> str:
    """The RTSP URL path (with query) for the 0-based profile index."""
    return brand.rtsp_path.format(channel=1, subtype=profile_index, stream=101 + profile_index)
