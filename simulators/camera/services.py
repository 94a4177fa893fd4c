"""ONVIF Device, Media and Events operations: each takes the camera and the parsed request and
returns the response body's XML. Auth, faults and HTTP are the server's business."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from xml.sax.saxutils import escape, quoteattr

from wardwatch.simulators.camera.brands import Stream, rtsp_path, snapshot_path
from wardwatch.simulators.camera.soap import (
    NS,
    Request,
    SoapFault,
    action_not_supported,
    invalid_arg,
    parse_duration,
    parse_duration_or_time,
    xs_datetime,
)
from wardwatch.simulators.camera.state import MAX_SUBSCRIPTIONS, Camera, Subscription

Handler = Callable[[Camera, Request, str], Awaitable[str]]
PRE_AUTH = frozenset({"GetSystemDateAndTime"})
DEFAULT_TERMINATION_S = 60.0
MAX_TERMINATION_S = 86400.0
MAX_PULL_WAIT_S = 60.0
TOPIC_DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
EVENTS_ACTION = "http://www.onvif.org/ver10/events/wsdl/"


def _b(v: bool) -> str:
    return "true" if v else "false"


def _datetime_xml(tag: str, t: dt.datetime) -> str:
    return (f"<tt:{tag}><tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute>"
            f"<tt:Second>{t.second}</tt:Second></tt:Time><tt:Date><tt:Year>{t.year}</tt:Year>"
            f"<tt:Month>{t.month}</tt:Month><tt:Day>{t.day}</tt:Day></tt:Date></tt:{tag}>")


def _xaddr(cam: Camera, path: str) -> str:
    netloc = cam.faults.xaddr_host or f"{cam.host}:{cam.onvif_port}"  # hostile: another host's
    return f"http://{netloc}{path}"


# ---------------------------------------------------------------------------------- device

async def get_system_date_and_time(cam: Camera, req: Request, base: str) -> str:
    utc = cam.now()
    local = utc + dt.timedelta(hours=7)
    tz = "CST-7:00:00" if cam.brand.key == "hikvision" else "GMT-07:00"
    return ("<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            f"<tt:TimeZone><tt:TZ>{tz}</tt:TZ></tt:TimeZone>{_datetime_xml('UTCDateTime', utc)}"
            f"{_datetime_xml('LocalDateTime', local)}</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")


async def get_device_information(cam: Camera, req: Request, base: str) -> str:
    b = cam.brand
    return (f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{escape(b.manufacturer)}</tds:Manufacturer>"
            f"<tds:Model>{escape(b.model)}</tds:Model><tds:FirmwareVersion>{escape(b.firmware)}</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{escape(cam.serial)}</tds:SerialNumber>"
            f"<tds:HardwareId>{escape(b.hardware_id)}</tds:HardwareId></tds:GetDeviceInformationResponse>")


def _device_caps(cam: Camera) -> str:
    return (f"<tt:Device><tt:XAddr>{_xaddr(cam, '/onvif/device_service')}</tt:XAddr>"
            "<tt:Network><tt:IPFilter>true</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration>"
            "<tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>true</tt:DynDNS></tt:Network>"
            "<tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve><tt:DiscoveryBye>true</tt:DiscoveryBye>"
            "<tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup>"
            "<tt:SystemLogging>true</tt:SystemLogging><tt:FirmwareUpgrade>true</tt:FirmwareUpgrade>"
            "<tt:SupportedVersions><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tt:SupportedVersions>"
            "</tt:System></tt:Device>")


def _events_caps(cam: Camera) -> str:
    return (f"<tt:Events><tt:XAddr>{_xaddr(cam, cam.brand.events_path)}</tt:XAddr>"
            "<tt:WSSubscriptionPolicySupport>true</tt:WSSubscriptionPolicySupport>"
            "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
            "<tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport>"
            "</tt:Events>")


def _media_caps(cam: Camera) -> str:
    return (f"<tt:Media><tt:XAddr>{_xaddr(cam, cam.brand.media_path)}</tt:XAddr><tt:StreamingCapabilities>"
            "<tt:RTPMulticast>true</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
            "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>")


async def get_capabilities(cam: Camera, req: Request, base: str) -> str:
    categories = {c.text.strip() for c in req.body.xpath("./*[local-name()='Category']") if c.text} or {"All"}
    parts = []
    if categories & {"All", "Device"}:
        parts.append(_device_caps(cam))
    if categories & {"All", "Events"}:
        parts.append(_events_caps(cam))
    if categories & {"All", "Media"}:
        parts.append(_media_caps(cam))
    if not parts:
        raise SoapFault("Receiver", ("ter:ActionNotSupported", "ter:NoSuchService"), "no such service")
    caps = "".join(parts)
    return f"<tds:GetCapabilitiesResponse><tds:Capabilities>{caps}</tds:Capabilities></tds:GetCapabilitiesResponse>"


def _service_caps(cam: Camera, ns: str) -> str:
    if ns == NS["tds"]:
        return ('<tds:Capabilities><tds:Network IPFilter="true" ZeroConfiguration="false" IPVersion6="false" '
                'DynDNS="true"/><tds:Security UsernameToken="true" HttpDigest="true"/>'
                '<tds:System DiscoveryResolve="false" DiscoveryBye="true" RemoteDiscovery="false" '
                'SystemBackup="false" SystemLogging="true" FirmwareUpgrade="true"/></tds:Capabilities>')
    if ns == NS["trt"]:
        return ('<trt:Capabilities SnapshotUri="true" Rotation="false"><trt:ProfileCapabilities '
                'MaximumNumberOfProfiles="2"/><trt:StreamingCapabilities RTPMulticast="true" RTP_TCP="true" '
                'RTP_RTSP_TCP="true"/></trt:Capabilities>')
    return (f'<tev:Capabilities WSSubscriptionPolicySupport="true" WSPullPointSupport="true" '
            f'WSPausableSubscriptionManagerInterfaceSupport="false" MaxNotificationProducers="{MAX_SUBSCRIPTIONS}" '
            f'MaxPullPoints="{MAX_SUBSCRIPTIONS}"/>')


async def get_services(cam: Camera, req: Request, base: str) -> str:
    include = (req.text("IncludeCapability") or "false").lower() == "true"
    out = []
    for ns, path, minor in ((NS["tds"], "/onvif/device_service", 60), (NS["trt"], cam.brand.media_path, 60),
                            (NS["tev"], cam.brand.events_path, 60)):
        caps = f"<tds:Capabilities>{_service_caps(cam, ns)}</tds:Capabilities>" if include else ""
        out.append(f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{_xaddr(cam, path)}</tds:XAddr>"
                   f"{caps}<tds:Version><tt:Major>2</tt:Major><tt:Minor>{minor}</tt:Minor></tds:Version></tds:Service>")
    return f"<tds:GetServicesResponse>{''.join(out)}</tds:GetServicesResponse>"


async def get_service_capabilities(cam: Camera, req: Request, base: str) -> str:
    prefix = {NS["tds"]: "tds", NS["trt"]: "trt", NS["tev"]: "tev"}.get(req.namespace)
    if prefix is None:
        raise action_not_supported(req.operation)
    tag = f"{prefix}:GetServiceCapabilitiesResponse"
    return f"<{tag}>{_service_caps(cam, req.namespace)}</{tag}>"


async def get_network_interfaces(cam: Camera, req: Request, base: str) -> str:
    return ('<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>'
            f"<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>{cam.mac}</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>"
            "<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual><tt:Address>"
            f"{cam.host}</tt:Address><tt:PrefixLength>8</tt:PrefixLength></tt:Manual><tt:DHCP>false</tt:DHCP>"
            "</tt:Config></tt:IPv4></tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>")


async def get_hostname(cam: Camera, req: Request, base: str) -> str:
    return ("<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP>"
            f"<tt:Name>{escape(cam.id)}</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>")


def scopes(cam: Camera) -> list[str]:
    hw = cam.brand.model.replace(" ", "_")
    return [
        "onvif://www.onvif.org/type/video_encoder",
        "onvif://www.onvif.org/Profile/Streaming",
        f"onvif://www.onvif.org/hardware/{hw}",
        f"onvif://www.onvif.org/name/{cam.brand.manufacturer}_{cam.id}",
        "onvif://www.onvif.org/location/city/HoiAn",
    ]


async def get_scopes(cam: Camera, req: Request, base: str) -> str:
    items = "".join(f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{escape(s)}</tt:ScopeItem></tds:Scopes>"
                    for s in scopes(cam))
    return f"<tds:GetScopesResponse>{items}</tds:GetScopesResponse>"


# ----------------------------------------------------------------------------------- media

def _encoder_xml(tag: str, s: Stream) -> str:
    codec = (f"<tt:H264><tt:GovLength>{s.gov_length}</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>"
             if s.encoding == "H264" else "")
    return (f"<{tag} token={quoteattr(s.encoder_token)}><tt:Name>{escape(s.encoder_token)}</tt:Name>"
            f"<tt:UseCount>1</tt:UseCount><tt:Encoding>{s.encoding}</tt:Encoding>"
            f"<tt:Resolution><tt:Width>{s.width}</tt:Width><tt:Height>{s.height}</tt:Height></tt:Resolution>"
            f"<tt:Quality>{s.quality:g}</tt:Quality><tt:RateControl><tt:FrameRateLimit>{s.fps}</tt:FrameRateLimit>"
            f"<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>{s.bitrate_kbps}</tt:BitrateLimit>"
            f"</tt:RateControl>{codec}<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type>"
            "<tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>8600</tt:Port><tt:TTL>128</tt:TTL>"
            f"<tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT5S</tt:SessionTimeout></{tag}>")


def _profile_xml(cam: Camera, tag: str, s: Stream) -> str:
    main = cam.brand.streams[0]
    return (f'<{tag} token={quoteattr(s.token)} fixed="true"><tt:Name>{escape(s.name)}</tt:Name>'
            '<tt:VideoSourceConfiguration token="VideoSourceToken"><tt:Name>VideoSourceConfig</tt:Name>'
            f"<tt:UseCount>{len(cam.brand.streams)}</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken>"
            f'<tt:Bounds x="0" y="0" width="{main.width}" height="{main.height}"/></tt:VideoSourceConfiguration>'
            f"{_encoder_xml('tt:VideoEncoderConfiguration', s)}</{tag}>")


def _profile(cam: Camera, req: Request) -> tuple[int, Stream]:
    token = req.text("ProfileToken")
    for i, s in enumerate(cam.brand.streams):
        if s.token == token:
            return i, s
    raise invalid_arg(f"no profile {token!r}", "ter:NoProfile")


async def get_profiles(cam: Camera, req: Request, base: str) -> str:
    body = "".join(_profile_xml(cam, "trt:Profiles", s) for s in cam.brand.streams)
    return f"<trt:GetProfilesResponse>{body}</trt:GetProfilesResponse>"


async def get_profile(cam: Camera, req: Request, base: str) -> str:
    _, s = _profile(cam, req)
    return f"<trt:GetProfileResponse>{_profile_xml(cam, 'trt:Profile', s)}</trt:GetProfileResponse>"


async def get_video_encoder_configurations(cam: Camera, req: Request, base: str) -> str:
    body = "".join(_encoder_xml("trt:Configurations", s) for s in cam.brand.streams)
    return f"<trt:GetVideoEncoderConfigurationsResponse>{body}</trt:GetVideoEncoderConfigurationsResponse>"


async def get_video_encoder_configuration(cam: Camera, req: Request, base: str) -> str:
    token = req.text("ConfigurationToken")
    for s in cam.brand.streams:
        if s.encoder_token == token:
            return (f"<trt:GetVideoEncoderConfigurationResponse>{_encoder_xml('trt:Configuration', s)}"
                    "</trt:GetVideoEncoderConfigurationResponse>")
    raise invalid_arg(f"no video encoder configuration {token!r}", "ter:NoConfig")


async def get_video_sources(cam: Camera, req: Request, base: str) -> str:
    main = cam.brand.streams[0]
    return (f'<trt:GetVideoSourcesResponse><trt:VideoSources token="VideoSource_1"><tt:Framerate>{main.fps}'
            f"</tt:Framerate><tt:Resolution><tt:Width>{main.width}</tt:Width><tt:Height>{main.height}</tt:Height>"
            "</tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>")


def _media_uri(uri: str | None) -> str:
    u = f"<tt:Uri>{escape(uri)}</tt:Uri>" if uri is not None else ""
    return (f"<trt:MediaUri>{u}<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT60S</tt:Timeout></trt:MediaUri>")


async def get_stream_uri(cam: Camera, req: Request, base: str) -> str:
    i, _ = _profile(cam, req)
    protocol = req.text("StreamSetup/Transport/Protocol") or "RTSP"
    if protocol not in ("RTSP", "UDP", "TCP", "HTTP"):
        raise invalid_arg(f"unsupported transport {protocol!r}", "ter:InvalidStreamSetup")
    uri = cam.faults.stream_uri or f"{cam.rtsp_scheme}://{cam.host}:{cam.rtsp_port}{rtsp_path(cam.brand, i)}"
    return f"<trt:GetStreamUriResponse>{_media_uri(uri)}</trt:GetStreamUriResponse>"


async def get_snapshot_uri(cam: Camera, req: Request, base: str) -> str:
    i, _ = _profile(cam, req)
    uri = None if cam.faults.no_snapshot_uri else (
        cam.faults.snapshot_uri or f"http://{cam.host}:{cam.onvif_port}{snapshot_path(cam.brand, i)}")
    return f"<trt:GetSnapshotUriResponse>{_media_uri(uri)}</trt:GetSnapshotUriResponse>"


# ---------------------------------------------------------------------------------- events

_TOPIC_SET = (
    "<tns1:VideoSource wstop:topic=\"false\"><SignalLoss wstop:topic=\"true\">{simple}</SignalLoss>"
    "<MotionAlarm wstop:topic=\"true\">{simple}</MotionAlarm>"
    "<GlobalSceneChange><ImagingService wstop:topic=\"true\">{simple}</ImagingService></GlobalSceneChange>"
    "</tns1:VideoSource>"
    "<tns1:RuleEngine><TamperDetector><Tamper wstop:topic=\"true\">{tamper}</Tamper></TamperDetector>"
    "</tns1:RuleEngine>"
    "<tns1:Device><HardwareFailure><StorageFailure wstop:topic=\"true\">{storage}</StorageFailure>"
    "</HardwareFailure></tns1:Device>"
)


def _description(source: str, data: str) -> str:
    return ('<tt:MessageDescription IsProperty="true"><tt:Source>'
            f'<tt:SimpleItemDescription Name="{source}" Type="tt:ReferenceToken"/></tt:Source><tt:Data>'
            f'<tt:SimpleItemDescription Name="{data}" Type="xs:boolean"/></tt:Data></tt:MessageDescription>')


async def get_event_properties(cam: Camera, req: Request, base: str) -> str:
    topics = _TOPIC_SET.format(simple=_description("Source", "State"), tamper=_description("Rule", "IsTamper"),
                               storage=_description("Token", "Failed"))
    return ("<tev:GetEventPropertiesResponse>"
            "<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation>"
            "<wsnt:FixedTopicSet>true</wsnt:FixedTopicSet>"
            f'<wstop:TopicSet xmlns:xs="http://www.w3.org/2001/XMLSchema">{topics}</wstop:TopicSet>'
            f"<wsnt:TopicExpressionDialect>{TOPIC_DIALECT}</wsnt:TopicExpressionDialect>"
            "<wsnt:TopicExpressionDialect>http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete</wsnt:TopicExpressionDialect>"
            "<tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter</tev:MessageContentFilterDialect>"
            "<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd</tev:MessageContentSchemaLocation>"
            "</tev:GetEventPropertiesResponse>")


def _termination(cam: Camera, text: str | None) -> dt.datetime:
    now = cam.now()
    if not text:
        return now + dt.timedelta(seconds=DEFAULT_TERMINATION_S)
    try:
        at = parse_duration_or_time(text, now)
    except ValueError:
        raise invalid_arg(f"invalid termination time {text!r}", "ter:InvalidTerminationTime") from None
    if at <= now:
        raise invalid_arg("termination time in the past", "ter:InvalidTerminationTime")
    return min(at, now + dt.timedelta(seconds=MAX_TERMINATION_S))


async def create_pull_point_subscription(cam: Camera, req: Request, base: str) -> str:
    cam.expire()
    if len(cam.subscriptions) >= MAX_SUBSCRIPTIONS:
        raise SoapFault("Receiver", ("ter:Action", "ter:TooManySubscriptions"), "too many subscriptions")
    terminates = _termination(cam, req.text("InitialTerminationTime"))
    idx = cam.next_subscription
    cam.next_subscription += 1
    path = cam.brand.subscription_path.format(idx=idx)
    cam.subscriptions[path] = Subscription(idx=idx, path=path, terminates=terminates)
    return ("<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa5:Address>{escape(_xaddr(cam, path))}</wsa5:Address></tev:SubscriptionReference>"
            f"<wsnt:CurrentTime>{xs_datetime(cam.now())}</wsnt:CurrentTime>"
            f"<wsnt:TerminationTime>{xs_datetime(terminates)}</wsnt:TerminationTime>"
            "</tev:CreatePullPointSubscriptionResponse>")


def resource_unknown(cam: Camera) -> SoapFault:
    return SoapFault("Sender", ("wsrf-rw:ResourceUnknownFault",), "subscription unknown or expired",
                     detail=("<wsrf-rw:ResourceUnknownFault><wsrf-bf:Timestamp>"
                             f"{xs_datetime(cam.now())}</wsrf-bf:Timestamp></wsrf-rw:ResourceUnknownFault>"))


def subscription_for(cam: Camera, path_qs: str) -> Subscription:
    cam.expire()
    sub = cam.subscriptions.get(path_qs)
    if sub is None:
        raise resource_unknown(cam)
    return sub


def _notification(cam: Camera, sub: Subscription) -> str:
    out = []
    while sub.queue:
        ev = sub.queue.popleft()
        src = "".join(f"<tt:SimpleItem Name={quoteattr(k)} Value={quoteattr(v)}/>" for k, v in ev.kind.source)
        data = "".join(f"<tt:SimpleItem Name={quoteattr(k)} Value={quoteattr(v)}/>" for k, v in ev.kind.data)
        out.append("<wsnt:NotificationMessage><wsnt:SubscriptionReference>"
                   f"<wsa5:Address>{escape(_xaddr(cam, sub.path))}</wsa5:Address></wsnt:SubscriptionReference>"
                   f'<wsnt:Topic Dialect="{TOPIC_DIALECT}">{escape(ev.kind.topic)}</wsnt:Topic>'
                   f'<wsnt:Message><tt:Message UtcTime="{xs_datetime(ev.at)}" PropertyOperation="Changed">'
                   f"<tt:Source>{src}</tt:Source><tt:Data>{data}</tt:Data></tt:Message></wsnt:Message>"
                   "</wsnt:NotificationMessage>")
    return "".join(out)


async def pull_messages(cam: Camera, req: Request, path_qs: str) -> str:
    sub = subscription_for(cam, path_qs)
    try:
        timeout = min(parse_duration(req.text("Timeout") or "PT0S"), MAX_PULL_WAIT_S)
        limit = int(req.text("MessageLimit") or "1")
    except ValueError:
        raise invalid_arg("bad Timeout or MessageLimit") from None
    if not sub.queue and timeout > 0:
        sub.wake.clear()
        try:
            await asyncio.wait_for(sub.wake.wait(), timeout)
        except TimeoutError:
            pass
        if cam.subscriptions.get(path_qs) is not sub:
            raise resource_unknown(cam)
    kept = list(sub.queue)[max(limit, 1):]
    for _ in kept:
        sub.queue.pop()
    body = _notification(cam, sub)
    sub.queue.extend(kept)
    return (f"<tev:PullMessagesResponse><tev:CurrentTime>{xs_datetime(cam.now())}</tev:CurrentTime>"
            f"<tev:TerminationTime>{xs_datetime(sub.terminates)}</tev:TerminationTime>{body}"
            "</tev:PullMessagesResponse>")


async def renew(cam: Camera, req: Request, path_qs: str) -> str:
    sub = subscription_for(cam, path_qs)
    sub.terminates = _termination(cam, req.text("TerminationTime"))
    return (f"<wsnt:RenewResponse><wsnt:TerminationTime>{xs_datetime(sub.terminates)}</wsnt:TerminationTime>"
            f"<wsnt:CurrentTime>{xs_datetime(cam.now())}</wsnt:CurrentTime></wsnt:RenewResponse>")


async def unsubscribe(cam: Camera, req: Request, path_qs: str) -> str:
    sub = subscription_for(cam, path_qs)
    cam.subscriptions.pop(sub.path, None)
    sub.wake.set()
    return "<wsnt:UnsubscribeResponse/>"


async def set_synchronization_point(cam: Camera, req: Request, path_qs: str) -> str:
    subscription_for(cam, path_qs)
    return "<tev:SetSynchronizationPointResponse/>"


OPERATIONS: dict[str, Handler] = {
    "GetSystemDateAndTime": get_system_date_and_time,
    "GetDeviceInformation": get_device_information,
    "GetCapabilities": get_capabilities,
    "GetServices": get_services,
    "GetServiceCapabilities": get_service_capabilities,
    "GetNetworkInterfaces": get_network_interfaces,
    "GetHostname": get_hostname,
    "GetScopes": get_scopes,
    "GetProfiles": get_profiles,
    "GetProfile": get_profile,
    "GetVideoEncoderConfigurations": get_video_encoder_configurations,
    "GetVideoEncoderConfiguration": get_video_encoder_configuration,
    "GetVideoSources": get_video_sources,
    "GetStreamUri": get_stream_uri,
    "GetSnapshotUri": get_snapshot_uri,
    "GetEventProperties": get_event_properties,
    "CreatePullPointSubscription": create_pull_point_subscription,
}
# Operations addressed to a subscription's own URL; the third argument is that URL's path and query.
SUBSCRIPTION_OPERATIONS: dict[str, Handler] = {
    "PullMessages": pull_messages,
    "Renew": renew,
    "Unsubscribe": unsubscribe,
    "SetSynchronizationPoint": set_synchronization_point,
}
# wsa:Action of each response, for the operations whose WSDL declares one (events).
ACTIONS = {
    "GetEventProperties": EVENTS_ACTION + "EventPortType/GetEventPropertiesResponse",
    "CreatePullPointSubscription": EVENTS_ACTION + "EventPortType/CreatePullPointSubscriptionResponse",
    "PullMessages": EVENTS_ACTION + "PullPointSubscription/PullMessagesResponse",
    "Renew": "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewResponse",
    "Unsubscribe": "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeResponse",
    "SetSynchronizationPoint": EVENTS_ACTION + "PullPointSubscription/SetSynchronizationPointResponse",
}
