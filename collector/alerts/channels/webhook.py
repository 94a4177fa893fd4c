"""The Alertmanager-compatible webhook: Alertmanager's webhook payload, version "4".

Every receiver written for Alertmanager reads it unchanged: ``version``, ``groupKey``,
``truncatedAlerts``, ``status``, ``receiver``, ``groupLabels``, ``commonLabels``,
``commonAnnotations``, ``externalURL`` and ``alerts[]`` (``status``, ``labels``,
``annotations``, ``startsAt``, ``endsAt``, ``generatorURL``, ``fingerprint``). wardwatch's
extras go under one more top-level key, ``wardwatch``, which such receivers ignore.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from wardwatch.collector.alerts import text
from wardwatch.collector.alerts.channels import (
    HttpSender,
    RateLimited,
    retry_after_header,
    retryable_status,
    snippet,
)
from wardwatch.collector.alerts.config import WebhookChannel
from wardwatch.collector.alerts.model import DeliveryError, Notice, NoticeAlert

VERSION: Final = "4"
# Go's zero time.Time, which Alertmanager sends as endsAt while an alert fires.
ZERO_TIME: Final = "0001-01-01T00:00:00Z"


def rfc3339(ms: int | None) -> str:
    """RFC 3339 in UTC with milliseconds (``2026-12-02T07:05:00.000Z``); Go's zero time for None."""
    if ms is None:
        return ZERO_TIME
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_url(notice: Notice, fingerprint: str) -> str:
    """The alert's page on the collector (Alertmanager's ``generatorURL``)."""
    base = notice.external_url.rstrip("/")
    return f"{base}/alerts/{fingerprint}" if base else ""


def alert_object(na: NoticeAlert, notice: Notice) -> dict[str, Any]:
    """One entry of ``alerts[]``, exactly Alertmanager's shape."""
    a = na.alert
    return {
        "status": na.status,
        "labels": dict(a.labels),
        "annotations": {
            "summary": text.summary(a, notice.language),
            "description": text.description(na, notice),
        },
        "startsAt": rfc3339(a.started_ms),
        "endsAt": rfc3339(a.ended_ms if na.status == "resolved" else None),
        "generatorURL": alert_url(notice, a.fingerprint),
        "fingerprint": a.fingerprint,
    }


def alert_extras(na: NoticeAlert) -> dict[str, Any]:
    """wardwatch's facts about one alert beyond Alertmanager's fields."""
    a = na.alert
    return {
        "reason": a.reason,
        "feed": a.feed,
        "suppressed": [{"device": b.device, "kind": b.kind} for b in a.behind],
        "suppressed_count": len(a.behind),
        "ack_url": na.ack_url if na.status == "firing" else "",
        "acknowledged_by": a.acked_by,
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def payload(notice: Notice, *, receiver: str, max_alerts: int = 0) -> dict[str, Any]:
    """The webhook body for ``notice``; ``max_alerts`` > 0 keeps that many (firing first)
    and counts the rest in ``truncatedAlerts``, as Alertmanager does."""
    alerts = text.ordered(notice.alerts)
    truncated = 0
    if max_alerts and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    objects = [alert_object(na, notice) for na in alerts]
    return {
        "version": VERSION,
        "groupKey": notice.group_key,
        "truncatedAlerts": truncated,
        "status": notice.status,
        "receiver": receiver,
        "groupLabels": {"ward": notice.ward},
        "commonLabels": _common([o["labels"] for o in objects]),
        "commonAnnotations": _common([o["annotations"] for o in objects]),
        "externalURL": notice.external_url,
        "alerts": objects,
        "wardwatch": {
            "ward_name": notice.ward_name,
            "kind": notice.kind,
            "alerts": {na.alert.fingerprint: alert_extras(na) for na in alerts},
        },
    }


class WebhookSender(HttpSender):
    """POSTs the payload; 2xx is delivered, 5xx/429/408 and network errors may be retried,
    any other status is not."""

    def __init__(self, name: str, cfg: WebhookChannel) -> None:
        token = cfg.bearer_token.get_secret_value() if cfg.bearer_token else ""
        super().__init__(name, timeout=cfg.timeout, redact=(token,))
        self.cfg = cfg
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def send(self, notice: Notice) -> None:
        body = json.dumps(
            payload(notice, receiver=self.name, max_alerts=self.cfg.max_alerts), ensure_ascii=False
        ).encode()
        status, headers, data = await self.post_json(self.cfg.url, body, headers=self._headers)
        if 200 <= status < 300:
            return
        message = f"HTTP {status}: {snippet(data)}" if data.strip() else f"HTTP {status}"
        if status == 429:
            wait = retry_after_header(headers)
            if wait is not None:
                raise RateLimited(message, retry_after=wait)
        raise DeliveryError(self._scrub(message), retry=retryable_status(status), status=status)
