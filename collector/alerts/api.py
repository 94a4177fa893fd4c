"""The alerts' JSON API under ``/api/v1`` and the signed acknowledgement page ``/ack/{token}``.

The API sits behind the collector's bearer token (collector/app.py). ``/ack/{token}`` does
not: the token is the permission, good for one alert until it expires (links.py).
``GET /ack/{token}`` only shows the alert and a form, because chat apps fetch links to
preview them; ``POST`` acknowledges.

Times are given twice: ``*_at`` in UTC (``...Z``) and ``*_local`` in the deployment's zone
with its offset. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field, ValidationError, field_validator, model_validator

from wardwatch.collector.alerts import links, maintenance
from wardwatch.collector.alerts.config import LABELS, MaintenanceWindow
from wardwatch.collector.alerts.model import Alert, Attempt, Silence
from wardwatch.collector.alerts.store import AlertStore, StoreError
from wardwatch.config import Duration, Strict, format_loc

MAX_SILENCE_S: Final = 90 * 86400
HISTORY_MAX_LIMIT: Final = 5000
DELIVERIES_MAX_LIMIT: Final = 2000
UPCOMING_DAYS: Final = 7
_SEVERITY_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}
_STATE_ORDER: Final = {"firing": 0, "pending": 1}


class AlertsBackend(Protocol):
    """What the API needs of the alert service."""

    store: AlertStore

    def alerts(self) -> list[Alert]:
        """The engine's current alerts: pending, firing and resolved ones not yet paired."""
        ...

    def acknowledge(self, fingerprint: str, *, by: str, comment: str) -> Alert | None:
        """Acknowledge (stopping escalation and repeats); None if the alert is unknown."""
        ...

    def maintenance(self) -> list[MaintenanceWindow]: ...

    def timezone(self) -> ZoneInfo: ...

    def ward_name(self, ward: str) -> str: ...

    def secret(self) -> bytes: ...

    def now_ms(self) -> int: ...


# JSON shapes ------------------------------------------------------------------------


def iso_utc(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_local(ms: int | None, tz: ZoneInfo) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")


def _times(name: str, ms: int | None, tz: ZoneInfo) -> dict[str, Any]:
    return {f"{name}_at": iso_utc(ms), f"{name}_local": iso_local(ms, tz)}


def alert_json(alert: Alert, backend: AlertsBackend) -> dict[str, Any]:
    tz = backend.timezone()
    muted = []
    if alert.suppressed_by is not None:
        muted.append({"reason": "suppressed", "by": alert.suppressed_by})
    if alert.silenced_by is not None:
        muted.append({"reason": "silenced", "by": alert.silenced_by})
    ward = alert.labels.get("ward", "")
    return {
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "alertname": alert.labels.get("alertname", alert.rule),
        "state": alert.state,
        "labels": dict(alert.labels),
        "ward": ward,
        "ward_name": backend.ward_name(ward) if ward else "",
        "device": alert.labels.get("device", ""),
        "kind": alert.labels.get("kind", ""),
        "severity": alert.severity,
        "summary": dict(alert.summary),
        "reason": alert.reason,
        "value": alert.value,
        "live": alert.live,
        **_times("started", alert.started_ms, tz),
        **_times("fired", alert.fired_ms, tz),
        **_times("updated", alert.updated_ms, tz),
        **_times("ended", alert.ended_ms, tz),
        "muted": bool(muted),
        "muted_reasons": muted,
        "suppressed_by": alert.suppressed_by,
        "silenced_by": alert.silenced_by,
        "behind": [{"device": b.device, "kind": b.kind} for b in alert.behind],
        "suppressed_count": len(alert.behind),
        "acked": alert.acked_by is not None,
        "acked_by": alert.acked_by,
        **_times("acked", alert.acked_ms, tz),
        "ack_comment": alert.ack_comment,
    }


def silence_json(silence: Silence, *, now_ms: int, tz: ZoneInfo) -> dict[str, Any]:
    state = "active" if silence.active(now_ms) else "pending" if now_ms < silence.starts_ms else "expired"
    return {
        "id": silence.id,
        "matchers": dict(silence.matchers),
        "state": state,
        **_times("starts", silence.starts_ms, tz),
        **_times("ends", silence.ends_ms, tz),
        "created_by": silence.created_by,
        "comment": silence.comment,
        **_times("created", silence.created_ms, tz),
    }


def attempt_json(attempt: Attempt, tz: ZoneInfo) -> dict[str, Any]:
    return {
        **_times("time", attempt.time_ms, tz),
        "channel": attempt.channel,
        "kind": attempt.kind,
        "group_key": attempt.group_key,
        "fingerprints": list(attempt.fingerprints),
        "attempt": attempt.attempt,
        "ok": attempt.ok,
        "error": attempt.error,
        "status": attempt.status,
    }


# Requests ---------------------------------------------------------------------------


class SilenceRequest(Strict):
    """``POST /api/v1/silences``."""

    matchers: dict[str, str] = Field(min_length=1, max_length=len(LABELS), description="label -> glob (fnmatch)")
    duration: Duration | None = Field(None, gt=0, le=MAX_SILENCE_S, description="from starts_at; e.g. '2h'")
    ends_at: datetime | None = Field(None, description="ISO 8601; local time in the deployment's zone if naive")
    starts_at: datetime | None = Field(None, description="ISO 8601; now when unset")
    created_by: str = Field(min_length=1, max_length=100)
    comment: str = Field("", max_length=1000)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: dict[str, str]) -> dict[str, str]:
        for label, glob in value.items():
            if label not in LABELS:
                raise ValueError(f"unknown label {label!r}; one of {', '.join(LABELS)}")
            if not glob or len(glob) > 256:
                raise ValueError(f"{label}: the glob must be 1-256 characters")
        if all(set(glob) <= {"*"} for glob in value.values()):
            raise ValueError("at least one matcher must narrow the silence (not only '*')")
        return value

    @field_validator("created_by")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say who creates the silence")
        return value.strip()

    @model_validator(mode="after")
    def _one_end(self) -> SilenceRequest:
        if (self.duration is None) == (self.ends_at is None):
            raise ValueError("give either duration or ends_at")
        return self


class AckRequest(Strict):
    """``POST /api/v1/alerts/{fingerprint}/ack``."""

    by: str = Field(min_length=1, max_length=100)
    comment: str = Field("", max_length=1000)

    @field_validator("by")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say who acknowledges")
        return value.strip()


class BadRequest(Exception):
    """A request the API refuses with 400 and this message."""


def _validation_message(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required"
    return f"{format_loc(loc)}: {msg}" if loc else msg


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _aware(value: datetime, tz: ZoneInfo) -> datetime:
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _time_param(request: web.Request, name: str, tz: ZoneInfo) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if text.isdigit():
        return int(text)  # epoch ms
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: {text!r} is not an ISO 8601 time (or epoch ms)") from None
    return int(_aware(when, tz).timestamp() * 1000)


def _int_param(request: web.Request, name: str, default: int, most: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name}: {text!r} is not a whole number") from None
    if not 1 <= value <= most:
        raise BadRequest(f"{name}: must be between 1 and {most}")
    return value


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        except StoreError as exc:
            return _error(503, str(exc))

    return wrapped


# The signed link's page -------------------------------------------------------------

_PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
}
_STYLE: Final = (
    "body{font-family:'Noto Sans',system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5;color:#222}h1{font-size:1.3rem}.en{color:#555}dt{font-weight:600}dd{margin:0 0 .5rem}"
    "input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.2rem 0 .8rem}"
    "button{font:inherit;padding:.5rem 1.2rem}.ok{color:#16621f}.err{color:#a31515}"
)
_BAD_LINK: Final = "Liên kết không hợp lệ hoặc đã hết hạn.\nThis link is invalid or has expired.\n"
_SEVERITIES: Final = {
    "critical": ("nghiêm trọng", "critical"),
    "warning": ("cảnh báo", "warning"),
    "info": ("thông tin", "info"),
}
_STATES: Final = {
    "pending": ("đang chờ", "pending"),
    "firing": ("đang báo", "firing"),
    "resolved": ("đã hết", "resolved"),
}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _both(vi: str, en: str) -> str:
    return f'{_e(vi)} <span class="en" lang="en">/ {_e(en)}</span>'


def _human_time(ms: int | None, tz: ZoneInfo) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%H:%M:%S %d/%m/%Y") + f" ({tz.key})"


def _page(title_vi: str, title_en: str, body: str, *, status: int = 200) -> web.Response:
    text = (
        '<!doctype html>\n<html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{_e(title_vi)} / {_e(title_en)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_both(title_vi, title_en)}</h1>{body}</body></html>\n"
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)


def _alert_facts(alert: Alert, backend: AlertsBackend) -> str:
    tz = backend.timezone()
    vi = alert.summary.get("vi") or alert.summary.get("en") or alert.rule
    en = alert.summary.get("en") or vi
    state_vi, state_en = _STATES.get(alert.state, (alert.state, alert.state))
    ward = alert.labels.get("ward", "")
    rows = [
        (("Cảnh báo", "Alert"), f'<span lang="vi">{_e(vi)}</span>'
         + (f'<br><span class="en" lang="en">{_e(en)}</span>' if en != vi else "")),
        (("Phường, xã", "Ward"), _e(backend.ward_name(ward) if ward else "")),
        (("Thiết bị", "Device"), _e(alert.labels.get("device", ""))),
        (("Mức độ", "Severity"), _both(*_SEVERITIES.get(alert.severity, (alert.severity, alert.severity)))),
        (("Trạng thái", "State"), _both(state_vi, state_en)),
        (("Từ lúc", "Since"), _e(_human_time(alert.started_ms, tz))),
    ]  # fmt: skip
    if alert.reason:
        rows.append((("Nguyên nhân", "Reason"), _e(alert.reason)))
    if alert.behind:
        rows.append((("Thiết bị bị ảnh hưởng", "Devices behind it"), _e(len(alert.behind))))
    if alert.acked_by is not None:
        when = _human_time(alert.acked_ms, tz)
        rows.append((("Đã xác nhận", "Acknowledged"), f"{_e(alert.acked_by)}, {_e(when)}"
                     + (f"<br>{_e(alert.ack_comment)}" if alert.ack_comment else "")))  # fmt: skip
    items = "".join(f"<dt>{_both(vi_label, en_label)}</dt><dd>{value}</dd>" for (vi_label, en_label), value in rows)
    return f"<dl>{items}</dl>"


def _ack_form(*, by: str = "", comment: str = "") -> str:
    # No action: the form posts back to the URL it was shown at, whatever prefix a proxy adds.
    return (
        '<form method="post">'
        f'<label for="by">{_both("Tên người xác nhận", "Your name")}</label>'
        f'<input id="by" name="by" required maxlength="100" autocomplete="name" value="{_e(by)}">'
        f'<label for="comment">{_both("Ghi chú (không bắt buộc)", "Comment (optional)")}</label>'
        f'<input id="comment" name="comment" maxlength="1000" value="{_e(comment)}">'
        f'<button type="submit">{_both("Xác nhận", "Acknowledge")}</button></form>'
    )


def _gone() -> web.Response:
    return _page(
        "Không tìm thấy cảnh báo",
        "Alert not found",
        "<p>"
        + _both("Cảnh báo này đã hết hoặc không còn được theo dõi.", "This alert has ended or is no longer tracked.")
        + "</p>",
        status=404,
    )


# Handlers ---------------------------------------------------------------------------


class _Api:
    def __init__(self, backend: AlertsBackend) -> None:
        self.b = backend

    def _find(self, fingerprint: str) -> Alert | None:
        return next((a for a in self.b.alerts() if a.fingerprint == fingerprint), None)

    async def alerts(self, request: web.Request) -> web.StreamResponse:
        ward = request.query.get("ward") or None
        active = [a for a in self.b.alerts() if a.state in _STATE_ORDER and (ward is None or a.ward == ward)]
        active.sort(key=lambda a: (_STATE_ORDER[a.state], _SEVERITY_ORDER.get(a.severity, 9), -a.started_ms))
        return web.json_response({"alerts": [alert_json(a, self.b) for a in active]})

    async def history(self, request: web.Request) -> web.StreamResponse:
        tz = self.b.timezone()
        since = _time_param(request, "since", tz)
        until = _time_param(request, "until", tz)
        limit = _int_param(request, "limit", 500, HISTORY_MAX_LIMIT)
        ward = request.query.get("ward") or None
        rows = self.b.store.history(ward=ward, since_ms=since, until_ms=until, limit=limit)
        out = []
        for row in rows:
            ms = row.pop("time")
            out.append({"time_ms": ms, **_times("time", ms, tz), "ward_name": self.b.ward_name(row["ward"]), **row})
        return web.json_response({"history": out})

    async def ack(self, request: web.Request) -> web.StreamResponse:
        fingerprint = request.match_info["fingerprint"]
        try:
            req = AckRequest.model_validate(await _body(request))
        except ValidationError as exc:
            raise BadRequest(_validation_message(exc)) from None
        alert = self.b.acknowledge(fingerprint, by=req.by, comment=req.comment)
        if alert is None:
            return _error(404, f"no active alert {fingerprint!r}")
        return web.json_response(alert_json(alert, self.b))

    async def silences(self, request: web.Request) -> web.StreamResponse:
        now, tz = self.b.now_ms(), self.b.timezone()
        found = sorted(self.b.store.silences(), key=lambda s: (-s.ends_ms, s.id))
        return web.json_response({"silences": [silence_json(s, now_ms=now, tz=tz) for s in found]})

    async def add_silence(self, request: web.Request) -> web.StreamResponse:
        now, tz = self.b.now_ms(), self.b.timezone()
        try:
            req = SilenceRequest.model_validate(await _body(request))
        except ValidationError as exc:
            raise BadRequest(_validation_message(exc)) from None
        starts_ms = now if req.starts_at is None else int(_aware(req.starts_at, tz).timestamp() * 1000)
        if req.ends_at is not None:
            ends_ms = int(_aware(req.ends_at, tz).timestamp() * 1000)
        else:
            assert req.duration is not None  # _one_end
            ends_ms = starts_ms + int(req.duration * 1000)
        if ends_ms <= now:
            raise BadRequest("ends_at: the silence would already be over")
        if ends_ms <= starts_ms:
            raise BadRequest("ends_at: must be after starts_at")
        if ends_ms - max(starts_ms, now) > MAX_SILENCE_S * 1000:
            raise BadRequest("a silence lasts at most 90 days")
        if starts_ms - now > MAX_SILENCE_S * 1000:
            raise BadRequest("starts_at: at most 90 days ahead")
        silence = Silence(
            id=str(uuid.uuid4()),
            matchers=dict(req.matchers),
            starts_ms=starts_ms,
            ends_ms=ends_ms,
            created_by=req.created_by,
            comment=req.comment,
            created_ms=now,
        )
        self.b.store.add_silence(silence)
        return web.json_response(
            silence_json(silence, now_ms=now, tz=tz), status=201, headers={"Location": f"/api/v1/silences/{silence.id}"}
        )

    async def expire_silence(self, request: web.Request) -> web.StreamResponse:
        silence_id = request.match_info["id"]
        now, tz = self.b.now_ms(), self.b.timezone()
        self.b.store.expire_silence(silence_id, now)  # False when already over: expiring is idempotent
        found = next((s for s in self.b.store.silences() if s.id == silence_id), None)
        if found is None:
            return _error(404, f"no silence {silence_id!r}")
        return web.json_response(silence_json(found, now_ms=now, tz=tz))

    async def maintenance(self, request: web.Request) -> web.StreamResponse:
        tz = self.b.timezone()
        now_ms = self.b.now_ms()
        now = datetime.fromtimestamp(now_ms / 1000, tz)
        windows = self.b.maintenance()
        out = []
        for index, window in enumerate(windows):
            open_now = maintenance.covering(window, now_ms=now_ms, tz=tz)
            out.append(
                {
                    "index": index,
                    "wards": list(window.wards),
                    "ward_names": [self.b.ward_name(w) for w in window.wards],
                    "devices": window.devices,
                    "rules": list(window.rules),
                    "rrule": window.rrule,
                    "duration_s": window.duration,
                    "active": open_now is not None,
                    "active_until": iso_local(open_now[1], tz) if open_now else None,
                }
            )
        coming = maintenance.upcoming(windows, now=now, tz=tz, until=now + timedelta(days=UPCOMING_DAYS))
        return web.json_response(
            {
                "timezone": tz.key,
                "now": now.isoformat(timespec="seconds"),
                "windows": out,
                "active": [w["index"] for w in out if w["active"]],
                "upcoming": coming,
            }
        )

    async def deliveries(self, request: web.Request) -> web.StreamResponse:
        tz = self.b.timezone()
        limit = _int_param(request, "limit", 200, DELIVERIES_MAX_LIMIT)
        channel = request.query.get("channel") or None
        found = self.b.store.attempts(limit=limit, channel=channel)
        return web.json_response({"deliveries": [attempt_json(a, tz) for a in found]})

    # /ack/{token} ---------------------------------------------------------------

    def _token(self, request: web.Request) -> str | None:
        return links.verify(self.b.secret(), request.match_info["token"], now_ms=self.b.now_ms())

    async def ack_page(self, request: web.Request) -> web.StreamResponse:
        fingerprint = self._token(request)
        if fingerprint is None:
            return web.Response(text=_BAD_LINK, status=403, headers=_PAGE_HEADERS)
        alert = self._find(fingerprint)
        if alert is None:
            return _gone()
        body = _alert_facts(alert, self.b)
        if alert.acked_by is None:
            body += _ack_form()
        return _page("Xác nhận cảnh báo", "Acknowledge alert", body)

    async def ack_post(self, request: web.Request) -> web.StreamResponse:
        fingerprint = self._token(request)
        if fingerprint is None:
            return web.Response(text=_BAD_LINK, status=403, headers=_PAGE_HEADERS)
        form = await request.post()
        by = str(form.get("by", "")).strip()
        comment = str(form.get("comment", "")).strip()
        if not by or len(by) > 100 or len(comment) > 1000:
            alert = self._find(fingerprint)
            if alert is None:
                return _gone()
            message = _both("Hãy nhập tên (tối đa 100 ký tự).", "Enter your name (at most 100 characters).")
            body = f'<p class="err">{message}</p>' + _alert_facts(alert, self.b)
            body += _ack_form(by=by[:100], comment=comment[:1000])
            return _page("Xác nhận cảnh báo", "Acknowledge alert", body, status=400)
        acked = self.b.acknowledge(fingerprint, by=by, comment=comment)
        if acked is None:
            return _gone()
        body = f'<p class="ok">{_both("Đã xác nhận. Cảm ơn!", "Acknowledged. Thank you!")}</p>'
        return _page("Đã xác nhận cảnh báo", "Alert acknowledged", body + _alert_facts(acked, self.b))


def routes(backend: AlertsBackend) -> list[web.RouteDef]:
    """The API's routes (mount behind the bearer token) and ``/ack/{token}`` (exempt it)."""
    api = _Api(backend)
    return [
        web.get("/api/v1/alerts", _json_errors(api.alerts)),
        web.get("/api/v1/alerts/history", _json_errors(api.history)),
        web.get("/api/v1/alerts/deliveries", _json_errors(api.deliveries)),
        web.post("/api/v1/alerts/{fingerprint}/ack", _json_errors(api.ack)),
        web.get("/api/v1/silences", _json_errors(api.silences)),
        web.post("/api/v1/silences", _json_errors(api.add_silence)),
        web.delete("/api/v1/silences/{id}", _json_errors(api.expire_silence)),
        web.get("/api/v1/maintenance", _json_errors(api.maintenance)),
        web.get("/ack/{token}", api.ack_page),
        web.post("/ack/{token}", api.ack_post),
    ]
