"""The camera family's :class:`~wardwatch.agent.core.poller.Poller`: ONVIF, RTSP and snapshot.

A thin adapter over :class:`wardwatch.agent.camera.poll.CameraPoller`, which owns the
shared HTTP session and one ONVIF client per camera. The core imports this module only
when the config has cameras: the ONVIF stack costs tens of MB of RSS that a
switches-only agent on a small box should not pay.

Events: a poll's PullPoint messages are counted in the ``camera_event`` reading (the
durable record). Those worth a live message become :class:`LiveEvent`\\ s, which the
supervisor sends on the ``events`` topic after the readings are committed. Motion is
counted but not sent one by one: a busy street makes thousands a day, and nobody acts
on each.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from wardwatch.agent.camera.events import CameraEvent
from wardwatch.agent.camera.poll import CameraPoller, CameraPollResult, CameraSession
from wardwatch.agent.core.config import DeviceConfig
from wardwatch.agent.core.poller import CheckRow, Context, LiveEvent, PollResult, failed_status
from wardwatch.wire import Reading

# Classes sent live on the events topic.
LIVE_CLASSES = frozenset({"tamper", "video_loss", "storage_failure", "other"})


def live(ev: CameraEvent) -> bool:
    """An event worth a live message: a new one (not a state going back to normal, not the
    state the camera reports at subscription time) of a class people act on."""
    return ev.cls in LIVE_CLASSES and ev.active and ev.operation != "Initialized"


class OnvifPoller:
    """Polls every camera of the agent."""

    def __init__(self, ctx: Context) -> None:
        icmp = ctx.pinger.ping if ctx.pinger.available else None
        self.cameras = CameraPoller(ctx.cfg, ports=ctx.ports, icmp=icmp)
        self._sessions: dict[str, CameraSession] = {}

    async def __aenter__(self) -> Self:
        await self.cameras.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.cameras.__aexit__(exc_type, exc, tb)

    def add(self, device: DeviceConfig) -> None:
        self._sessions[device.id] = self.cameras.session(device)

    async def poll(self, device: DeviceConfig) -> PollResult:
        r = await self.cameras.poll(self._sessions[device.id])
        return PollResult(device, r.readings, ok=r.ok, answered=r.answered, reason=r.reason, detail=r.detail,
                          events=[LiveEvent(topic=e.topic, cls=e.cls, utc_time=e.utc_time, data=dict(e.data))
                                  for e in r.events if live(e)],
                          row=check_row(r))

    def failed(self, device: DeviceConfig, *, reason: str, detail: str, poll_ms: float,
               up: int | None) -> PollResult:
        """A poll that did not finish (``timeout``) or failed inside wardwatch: the camera is
        not OK this time, and ``camera_health`` says why."""
        status = failed_status(device, reason=reason, poll_ms=poll_ms, up=up)
        fields: dict[str, int | float | str] = {"ok": 0, "reason": "offline" if reason == "timeout" else reason,
                                                "error": reason, "poll_ms": round(poll_ms, 1)}
        if reason == "timeout":
            fields["online"] = 0
        health = Reading(device=device.id, kind="camera", measurement="camera_health", time_ms=status.time_ms,
                         tags=status.tags, fields=fields)
        return PollResult(device, [health, status], ok=False, answered=bool(up), reason=reason, detail=detail,
                          row=CheckRow(protocol="onvif", status=reason, poll_ms=poll_ms, detail=detail))


def check_row(r: CameraPollResult) -> CheckRow:
    """STATUS is ``up`` or the reason, with the error class in brackets where it says more
    (``offline (refused)``); the name column shows the model."""
    status = "up" if r.ok else r.reason
    if r.error_class and r.error_class != r.reason:
        status = f"{status} ({r.error_class})"
    model = r.inventory.model if r.inventory and r.inventory.model else "-"
    fields = next((x.fields for x in r.readings if x.measurement == "device_status"), {})
    rtt = fields.get("rtt_ms")
    return CheckRow(protocol="onvif", status=status, name=model.replace(" ", "_"),
                    rtt_ms=float(rtt) if isinstance(rtt, int | float) else None, poll_ms=r.poll_ms, detail=r.detail)


