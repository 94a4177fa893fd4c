"""The camera poller (kind: camera): ONVIF, RTSP, snapshot, events, and one "camera OK" state.

One :class:`CameraPoller` per agent (it owns the shared HTTP session for snapshots and the
switch-port state); one :class:`CameraSession` per camera (it owns the camera's ONVIF
client, created once and reused, and what the poller remembers between polls).

A poll, in order, each step only when the previous ones allow it:

1. ``GetSystemDateAndTime`` without auth: online, ``rtt_ms``, ``clock_skew_s``;
2. ``GetDeviceInformation``: ``auth_ok`` and inventory. When auth fails while the clock is
   off by more than ``camera.skew_window``, the request is retried once with the offset
   applied to wsu:Created; success there is ``clock_skew_auth`` (reported, and the offset
   kept for later polls so that a camera that locks out after failed logins is not hammered);
3. ``GetProfiles`` (the first profile is the main stream): resolution, fps and bitrate limits;
4. ``GetStreamUri`` + RTSP OPTIONS/DESCRIBE, and ``GetSnapshotUri`` + HTTP GET, concurrently;
5. frozen detection on the snapshot hash;
6. events (PullPoint), from the poll after the first one that answered.

Readings: ``camera_health`` (always, with ``ok`` and ``reason``), ``device_status`` (``up`` is
"ONVIF answered"), and ``camera_event`` once events run. See docs/cameras.md.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from wardwatch.agent.camera import rtsp, snapshot
from wardwatch.agent.camera.events import CLASSES, CameraEvent, EventCounts, PullPoint
from wardwatch.agent.camera.http import HttpClient
from wardwatch.agent.camera.onvif import DeviceInfo, NoSnapshotUri, ProfileInfo
from wardwatch.agent.camera.soap import SoapClient
from wardwatch.agent.camera.state import Facts, FrozenDetector, assess
from wardwatch.agent.core.config import AgentConfig, CameraOptions, DeviceConfig
from wardwatch.agent.core.errors import DeviceAuthError, DeviceError, DeviceTimeout, DeviceUnreachable
from wardwatch.agent.core.ports import PortStates
from wardwatch.agent.core.text import MAX_FIELD, clean
from wardwatch.wire import Reading

log = logging.getLogger(__name__)

DEFAULT_PORT = 80


class PingLike(Protocol):
    """What an ICMP probe answers (agent/icmp.py's ``PingResult`` has this shape)."""

    @property
    def reachable(self) -> bool: ...

    @property
    def rtt_ms(self) -> float | None: ...


# ICMP hook: host -> ping result; ``Pinger(...).ping`` of agent/icmp.py fits as is.
IcmpProbe = Callable[[str], Awaitable[PingLike]]
Fields = dict[str, int | float | str]


@dataclass(slots=True)
class CameraState:
    """What the poller remembers about one camera between polls."""

    frozen: FrozenDetector
    polls: int = 0
    answered_polls: int = 0  # polls where ONVIF answered and accepted the credentials
    skew_auth: bool = False  # auth works only with the clock offset applied (sticky)
    inventory: DeviceInfo | None = None
    inventory_sent: int = 0  # poll number when inventory was last sent
    profiles: list[ProfileInfo] = field(default_factory=list)
    events: PullPoint | None = None
    counts: EventCounts = field(default_factory=EventCounts)
    reason: str = ""  # last composite reason
    error_class: str = ""


@dataclass(slots=True)
class CameraPollResult:
    device: DeviceConfig
    readings: list[Reading]
    ok: bool  # the composite "camera OK"
    answered: bool  # ONVIF answered (device_status.up)
    reason: str  # composite reason: ok, offline, auth, clock_skew_auth, rtsp_401, frozen, poe_lost, ...
    error_class: str  # class of the first failing step: timeout, refused, auth, bad_xml, ... or ""
    detail: str
    events: list[CameraEvent] = field(default_factory=list)
    poll_ms: float = 0.0
    inventory: DeviceInfo | None = None


def _tls_context(dev: DeviceConfig) -> ssl.SSLContext:
    """TLS for rtsps and https snapshots: verified against ``camera.tls_ca`` when set, else
    encrypted without certificate checks (cameras ship self-signed certificates). A CA
    file that cannot be read fails closed: the system CAs, which a camera's certificate
    will not chain to, so the failure shows as ``rtsp_error`` with the TLS reason."""
    ca = dev.camera.tls_ca
    try:
        return rtsp.tls_context(str(ca) if ca is not None else None)
    except (OSError, ssl.SSLError) as exc:
        log.error("camera %s: camera.tls_ca %s: %s; certificates will not verify", dev.id, ca, exc)
        return ssl.create_default_context()


class CameraSession:
    """One camera: its config, credentials, ONVIF client and state. ``http`` gives the
    poller's shared HTTP session (the ONVIF calls go over it, agent/camera/soap.py)."""

    def __init__(self, *, device: DeviceConfig, username: str, password: str,
                 http: Callable[[], HttpClient], allow_basic: bool = False) -> None:
        self.device = device
        self.options: CameraOptions = device.camera
        self.username, self.password = username, password
        self.allow_basic = allow_basic  # the auth profile's onvif.allow_basic (agent/camera/trust.py)
        self.client = SoapClient(host=device.host, port=device.port or DEFAULT_PORT, username=username,
                                 password=password, time_limit=device.timeout, http=http)
        self.state = CameraState(frozen=FrozenDetector(self.options.frozen_after))
        self.tls = _tls_context(device)  # rtsps and https snapshots

    async def close(self) -> None:
        if self.state.events is not None:
            await self.state.events.close()
        await self.client.close()


class CameraPoller:
    """Polls cameras; one per agent. An async context manager (closes every camera's client).

    ``ports`` is the switch-port state the agent feeds with its switch readings
    (:meth:`PortStates.ingest`); ``icmp`` is an optional ping hook.
    """

    def __init__(self, cfg: AgentConfig, *, ports: PortStates | None = None, icmp: IcmpProbe | None = None) -> None:
        self.cfg = cfg
        self.ports = ports if ports is not None else PortStates()
        self.icmp = icmp
        self.polls_ok = 0
        self.polls_failed = 0
        self._http: HttpClient | None = None
        self._sessions: list[CameraSession] = []

    def session(self, dev: DeviceConfig) -> CameraSession:
        profile = self.cfg.auth[dev.auth].onvif
        assert profile is not None  # config.check() guarantees it
        cam = CameraSession(device=dev, username=profile.username, password=profile.password.get_secret_value(),
                            http=self.http, allow_basic=profile.allow_basic)
        self._sessions.append(cam)
        return cam

    def http(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient()
        return self._http

    async def poll(self, cam: CameraSession) -> CameraPollResult:
        result = await poll_camera(cam, http=self.http(), ports=self.ports, icmp=self.icmp)
        if result.ok:
            self.polls_ok += 1
        else:
            self.polls_failed += 1
        return result

    async def aclose(self) -> None:
        """Unsubscribe and close every camera at once: one by one, 50 cameras took seconds
        each to stop."""
        sessions, self._sessions = self._sessions, []
        results = await asyncio.gather(*(cam.close() for cam in sessions), return_exceptions=True)
        for cam, result in zip(sessions, results, strict=True):
            if isinstance(result, Exception):
                log.debug("camera %s: close: %s", cam.device.id, result)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> CameraPoller:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


@dataclass(slots=True)
class _MediaFacts:
    rtsp_reason: str | None = None
    snapshot_uri: bool | None = None
    snapshot_ok: bool | None = None
    snapshot_reason: str | None = None
    frozen: bool = False


async def _icmp(icmp: IcmpProbe, host: str) -> PingLike | None:
    try:
        return await icmp(host)
    except OSError as exc:
        log.debug("icmp %s: %s", host, exc)
        return None


async def _ping_result(ping: asyncio.Task[PingLike | None] | None, limit: float) -> PingLike | None:
    if ping is None:
        return None
    try:
        async with asyncio.timeout(limit):
            return await ping
    except TimeoutError:
        ping.cancel()
        return None


async def poll_camera(cam: CameraSession, *, http: HttpClient, ports: PortStates | None = None,
                      icmp: IcmpProbe | None = None) -> CameraPollResult:
    """Poll one camera once. Never raises for the camera's faults: they are the reason."""
    dev, opt, st, client = cam.device, cam.options, cam.state, cam.client
    started = time.monotonic()
    st.polls += 1
    if not dev.icmp:
        icmp = None  # icmp: false in the device's config
    ping = asyncio.create_task(_icmp(icmp, dev.host)) if icmp is not None else None
    health: Fields = {}
    events: list[CameraEvent] = []
    facts = _MediaFacts()
    error_class = detail = ""
    online = authed = False
    try:
        # 1. clock, unauthenticated
        skew: float | None = None
        try:
            clock = await client.clock()
            online = True
            skew = clock.skew_s
            health["rtt_ms"] = clock.rtt_ms
            if skew is not None:
                health["clock_skew_s"] = skew
        except DeviceError as exc:
            online = not isinstance(exc, DeviceTimeout | DeviceUnreachable)
            error_class, detail = exc.reason, str(exc)

        # 2. auth and inventory
        if online and not error_class:
            authed, error_class, detail = await _authenticate(cam, skew)
            health["auth_ok"] = int(authed)
            health["clock_skew_auth"] = int(st.skew_auth)
            health["time_offset_applied"] = int(client.offset_s is not None)
            if authed and st.inventory is not None and (
                st.inventory_sent == 0 or st.polls - st.inventory_sent >= opt.inventory_every
            ):
                health.update(_inventory_fields(st.inventory))
                st.inventory_sent = st.polls

        # 3-5. media, stream, snapshot
        if authed and st.reason in ("offline", "poe_lost", "port_down"):
            client.xaddrs_ok = False  # back after an outage, perhaps a reboot: ask for the addresses again
        if authed:
            error_class, detail = await _media(cam, http, health, facts)
            if not error_class:
                st.answered_polls += 1

        health_done = time.monotonic()
        # 6. events, from the poll after the first good one
        events_ms: float | None = None
        if authed and opt.events and st.answered_polls > 1 and client.has_events:
            if st.events is None:
                wait = min(1.0, dev.timeout / 2)
                st.events = PullPoint(client, lifetime_s=max(60.0, 3 * dev.interval), pull_wait_s=wait,
                                      device=dev.id)
            events = await st.events.step()
            events_ms = round((time.monotonic() - health_done) * 1000, 1)
            for ev in events:
                st.counts.add(ev)
    except BaseException:
        if ping is not None:
            ping.cancel()
        raise
    pong = await _ping_result(ping, dev.timeout)
    icmp_ok = None if icmp is None else pong is not None and pong.reachable

    # the feeding switch port
    port_up = poe = None
    if dev.feed is not None and ports is not None:
        port = ports.get(dev.feed.switch, dev.feed.port)
        port_up, poe = port.oper_up, port.poe_delivering
        if port_up is not None:
            health["feed_oper_up"] = int(port_up)
        if poe is not None:
            health["feed_poe_delivering"] = int(poe)
    if icmp_ok is not None:
        health["icmp_ok"] = int(icmp_ok)
        if pong is not None and pong.rtt_ms is not None:
            health["icmp_rtt_ms"] = round(pong.rtt_ms, 3)

    detail = clean(detail, limit=MAX_FIELD)
    ok, reason = assess(Facts(
        online=online, onvif_error=error_class, skew_auth=st.skew_auth and authed,
        rtsp_reason=facts.rtsp_reason, snapshot_uri=facts.snapshot_uri, snapshot_ok=facts.snapshot_ok,
        snapshot_reason=facts.snapshot_reason, frozen=facts.frozen, icmp_ok=icmp_ok,
        port_up=port_up, poe_delivering=poe,
    ))
    # poll_ms leaves out the PullMessages wait (events_ms), which is the camera holding the request
    poll_ms = round((health_done - started) * 1000, 1)
    health.update({"online": int(online), "ok": int(ok), "reason": reason, "poll_ms": poll_ms})
    if error_class:
        health["error"] = error_class
    if reason != st.reason:
        if ok:
            log.info("camera %s (%s): ok", dev.id, dev.host)
        else:
            log.warning("camera %s (%s): %s%s", dev.id, dev.host, reason, f": {detail}" if detail else "")
    st.reason, st.error_class = reason, error_class

    now_ms = int(time.time() * 1000)
    tags = {"vendor": dev.vendor} if dev.vendor else {}
    # device_status as for switches (agent/icmp.py combine()): up when ONVIF or ICMP answered;
    # alive to ping only, the reason names the ONVIF error (onvif_timeout, onvif_refused, ...).
    status: Fields = {"up": int(online), "poll_ms": poll_ms, "reason": error_class or "ok"}
    if "rtt_ms" in health:
        status["rtt_ms"] = health["rtt_ms"]
    if icmp_ok is not None:
        status["icmp_up"] = int(icmp_ok)
        if pong is not None and pong.rtt_ms is not None:
            status["rtt_ms"] = round(pong.rtt_ms, 3)
        if not online and icmp_ok:
            status["up"], status["reason"] = 1, f"onvif_{error_class}"
    if status["up"] == 0 and reason in ("poe_lost", "port_down"):
        # Dark behind a port that lost PoE or link: that is the cause, as for an AP
        # (agent/snmp/poller.py), so the poe_lost rule and device_down's exclusion see it.
        status["reason"] = reason
    readings = [
        Reading(device=dev.id, kind="camera", measurement="camera_health", time_ms=now_ms, fields=health, tags=tags),
        Reading(device=dev.id, kind="camera", measurement="device_status", time_ms=now_ms, fields=status, tags=tags),
    ]
    if st.events is not None:
        readings.append(Reading(device=dev.id, kind="camera", measurement="camera_event", time_ms=now_ms,
                                fields=_event_fields(st, events_ms), tags=tags))
    return CameraPollResult(device=dev, readings=readings, ok=ok, answered=online and authed, reason=reason,
                            error_class=error_class, detail=detail, events=events, poll_ms=poll_ms,
                            inventory=st.inventory)


async def _authenticate(cam: CameraSession, skew: float | None) -> tuple[bool, str, str]:
    """GetDeviceInformation, with the once-only retry at the camera's clock. -> (authed, error, detail)."""
    st, client, opt = cam.state, cam.client, cam.options
    off = skew is not None and abs(skew) > opt.skew_window
    if not off:
        st.skew_auth = False
        client.set_time_offset(None)
    elif st.skew_auth and st.polls % opt.inventory_every != 0:
        client.set_time_offset(skew)  # known to need it; re-tested without it every inventory_every polls
    else:
        client.set_time_offset(None)
    try:
        st.inventory = await client.device_info()
        if client.offset_s is None:
            st.skew_auth = False
        return True, "", ""
    except DeviceAuthError as exc:
        if not off or client.offset_s is not None:
            st.skew_auth = False
            client.set_time_offset(None)
            return False, exc.reason, str(exc)
        first = exc
    except DeviceError as exc:
        return False, exc.reason, str(exc)
    # auth failed while the clock is off: once more, at the camera's time
    client.set_time_offset(skew)
    try:
        st.inventory = await client.device_info()
    except DeviceAuthError:
        client.set_time_offset(None)
        st.skew_auth = False
        return False, "auth", f"{first} (also with the clock offset of {skew:+.1f}s applied)"
    except DeviceError as exc:
        return False, exc.reason, str(exc)
    st.skew_auth = True
    log.info("camera %s: auth works only with the camera's clock (%+.1fs off)", cam.device.id, skew)
    return True, "", f"auth failed until the clock offset {skew:+.1f}s was applied"


async def _media(cam: CameraSession, http: HttpClient, health: Fields,
                 facts: _MediaFacts) -> tuple[str, str]:
    """Profiles, stream and snapshot. Fills ``health`` and ``facts``; -> (error class, detail)."""
    st, client, opt, dev = cam.state, cam.client, cam.options, cam.device
    try:
        if not client.xaddrs_ok:
            await client.discover()
        profiles = await client.profiles()
        st.profiles = profiles
        if not profiles:
            return "no_profiles", "GetProfiles: no media profiles"
        main = profiles[0]
        health.update({
            "bitrate_kbps": main.bitrate_kbps, "fps": main.fps, "width": main.width, "height": main.height,
            "profiles": len(profiles), "bitrate_total_kbps": sum(p.bitrate_kbps for p in profiles),
        })
        if main.encoding:
            health["encoding"] = main.encoding
        stream_uri = await client.stream_uri(main.token)
        snap_uri: str | None = None
        if opt.snapshot:
            try:
                snap_uri = await client.snapshot_uri(main.token)
                facts.snapshot_uri = True
            except NoSnapshotUri as exc:
                facts.snapshot_uri = False
                health["snapshot_ok"] = 0
                st.frozen.update(None)
                log.debug("camera %s: %s", dev.id, exc)
    except DeviceError as exc:
        return exc.reason, str(exc)

    # Stream and snapshot URIs on another host than the configured one are not followed with
    # the camera's credentials, and Basic goes only over TLS unless allowed (agent/camera/trust.py).
    rtsp_task = rtsp.probe(stream_uri, username=cam.username, password=cam.password, time_limit=dev.timeout,
                           tls=cam.tls, camera_host=dev.host, allow_basic=cam.allow_basic)
    if snap_uri is not None:
        snap_task = snapshot.fetch(http, snap_uri, username=cam.username, password=cam.password,
                                   time_limit=dev.timeout, tls=cam.tls, camera_host=dev.host,
                                   allow_basic=cam.allow_basic)
        rtsp_res, snap_res = await asyncio.gather(rtsp_task, snap_task)
    else:
        rtsp_res, snap_res = await rtsp_task, None

    facts.rtsp_reason = rtsp_res.reason
    health.update({"rtsp_ok": int(rtsp_res.ok), "rtsp_ms": rtsp_res.ms, "rtsp_status": rtsp_res.status})
    if rtsp_res.video is not None and rtsp_res.video.codec:
        health["rtsp_codec"] = rtsp_res.video.codec  # cleaned by rtsp.parse_sdp
    if not rtsp_res.ok:
        health["rtsp_error"] = rtsp_res.reason
    detail = "" if rtsp_res.ok else f"rtsp: {rtsp_res.detail}"
    if snap_res is not None:
        facts.snapshot_ok, facts.snapshot_reason = snap_res.ok, snap_res.reason
        health.update({"snapshot_ok": int(snap_res.ok), "snapshot_bytes": snap_res.size, "snapshot_ms": snap_res.ms,
                       "snapshot_status": snap_res.status})
        if not snap_res.ok:
            health["snapshot_error"] = snap_res.reason
            detail = detail or f"snapshot: {snap_res.detail}"
        facts.frozen = st.frozen.update(snap_res.digest)
        health["frozen"] = int(st.frozen.frozen)
        health["same_snapshots"] = st.frozen.run
    return "", detail


def _inventory_fields(inv: DeviceInfo) -> Fields:
    out: Fields = {}
    for key, value in (("manufacturer", inv.manufacturer), ("model", inv.model), ("firmware", inv.firmware),
                       ("serial", inv.serial), ("hardware_id", inv.hardware_id)):
        if value:
            out[key] = value
    return out


def _event_fields(st: CameraState, events_ms: float | None) -> Fields:
    assert st.events is not None
    pp = st.events
    fields: Fields = {**st.counts.take(), "messages": st.counts.messages, "subscribed": int(pp.subscribed),
                      "subscriptions": pp.created, "resubscriptions": pp.recreated, "renewals": pp.renewed}
    if events_ms is not None:
        fields["events_ms"] = events_ms
    if pp.last_error:
        fields["error"] = clean(pp.last_error, limit=MAX_FIELD)
    if pp.skipped:
        fields["skipped"] = pp.skipped
    st.counts.messages = 0
    if st.counts.last_topic:
        fields["last_topic"] = st.counts.last_topic
    if pp.unsupported:
        fields["unsupported"] = 1
    return fields


__all__ = ["CLASSES", "CameraPollResult", "CameraPoller", "CameraSession", "CameraState", "IcmpProbe",
           "PortStates", "poll_camera"]
