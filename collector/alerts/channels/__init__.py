"""The notification channels: one module per kind, one small contract between them.

A channel sends one :class:`~wardwatch.collector.alerts.model.Notice` per call and says
how it failed with a :class:`~wardwatch.collector.alerts.model.DeliveryError` (``retry``
tells whether trying again may help). It neither retries nor waits on its own: that is
:func:`wardwatch.collector.alerts.deliver.deliver`'s job, which bounds every attempt by the
channel's ``timeout``. Each channel owns its connections and frees them in :meth:`close`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

import aiohttp

from wardwatch import redact
from wardwatch.collector.alerts.config import (
    EmailChannel,
    MqttChannel,
    TelegramChannel,
    WebhookChannel,
    ZaloChannel,
)
from wardwatch.collector.alerts.model import DeliveryError, Notice

ChannelConfig = WebhookChannel | TelegramChannel | ZaloChannel | EmailChannel | MqttChannel
Publish = Callable[[str, bytes], bool]
"""The collector's MQTT publish: (topic, payload) -> False when it is not connected."""

USER_AGENT: Final = "wardwatch-alerts"
# A rate limit's Retry-After is honoured up to this many seconds (deliver caps it too).
MAX_RETRY_AFTER: Final = 300.0
_NETWORK_ERRORS: Final = (aiohttp.ClientError, OSError)


class Channel(Protocol):
    name: str

    @property
    def cfg(self) -> ChannelConfig: ...  # the channel's config model

    async def send(self, notice: Notice) -> None: ...

    async def close(self) -> None: ...


class RateLimited(DeliveryError):
    """The far end asked us to wait ``retry_after`` seconds (HTTP 429, Telegram's
    ``parameters.retry_after``); deliver waits at least that long before the next try."""

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, retry=True, status=status)
        self.retry_after = min(max(retry_after, 0.0), MAX_RETRY_AFTER)


def open_channel(name: str, cfg: ChannelConfig, *, publish: Publish | None = None) -> Channel:
    """The channel for one ``alerts.channels`` entry. ``publish`` is needed by ``mqtt``."""
    if isinstance(cfg, WebhookChannel):
        from wardwatch.collector.alerts.channels.webhook import WebhookSender

        return WebhookSender(name, cfg)
    if isinstance(cfg, TelegramChannel):
        from wardwatch.collector.alerts.channels.telegram import TelegramSender

        return TelegramSender(name, cfg)
    if isinstance(cfg, ZaloChannel):
        from wardwatch.collector.alerts.channels.zalo import ZaloSender

        return ZaloSender(name, cfg)
    if isinstance(cfg, EmailChannel):
        from wardwatch.collector.alerts.channels.email import EmailSender

        return EmailSender(name, cfg)
    if isinstance(cfg, MqttChannel):
        from wardwatch.collector.alerts.channels.mqtt import MqttSender

        if publish is None:
            raise ValueError(f"channel {name!r}: an mqtt channel needs the collector's MQTT publish")
        return MqttSender(name, cfg, publish)
    raise TypeError(f"channel {name!r}: unknown channel config {type(cfg).__name__}")


# Shared by the HTTP channels ---------------------------------------------------------


def retryable_status(status: int) -> bool:
    """5xx, 429 and 408 may pass; any other 4xx will not (Alertmanager's rule, plus 408)."""
    return status >= 500 or status in (408, 429)


class HttpSender:
    """An aiohttp session opened on first use (inside the running loop) and closed by
    :meth:`close`. ``_redact`` strings (tokens in URLs) never appear in an error."""

    def __init__(self, name: str, *, timeout: float, redact: tuple[str, ...] = ()) -> None:
        self.name = name
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._redact = tuple(r for r in redact if r)

    def _scrub(self, text: str) -> str:
        for secret in self._redact:
            text = text.replace(secret, "***")
        return redact.redact(text)  # and every other secret of the config, in its encodings

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers={"User-Agent": USER_AGENT})
        return self._session

    async def post_json(
        self, url: str, body: bytes, *, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """POST ``body`` (JSON); (status, headers, body) or a retryable DeliveryError for
        a network failure or timeout."""
        hdrs = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        try:
            async with self.session().post(url, data=body, headers=hdrs, allow_redirects=False) as resp:
                data = await resp.read()
                return resp.status, dict(resp.headers), data
        except TimeoutError:
            raise DeliveryError(f"no answer within {self._timeout.total:g} s", retry=True) from None
        except _NETWORK_ERRORS as exc:
            raise DeliveryError(self._scrub(f"{type(exc).__name__}: {exc}"), retry=True) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def retry_after_header(headers: dict[str, str]) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by the APIs we talk to)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def snippet(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
