"""The ``alerts:`` section of the collector config: rules file, state, channels, routes,
maintenance windows (docs/alerts.md).

Strict like the rest of the config: an unknown key or a bad value fails the load with one
line naming the key, and the collector exits 2.
"""

from __future__ import annotations

import re
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Final, Literal

from dateutil.rrule import rrule, rruleset, rrulestr
from pydantic import Field, SecretStr, field_validator, model_validator

from wardwatch import wire
from wardwatch.config import Duration, Strict, bare_host, refuse_credentials

_CHANNEL = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
_URL = r"^https?://[^/\s?#@]+(/[^\s?#]*)?$"  # no user:pass@: credentials have their own keys
LABELS: Final = ("alertname", "ward", "device", "kind", "severity", "agent", "if_name", "ap", "radio")
SEVERITIES: Final = ("critical", "warning", "info")

# A maintenance rrule without DTSTART is anchored here (local time in ``timezone``): its
# BYMINUTE/BYSECOND default to 0, and a WEEKLY rule without BYDAY falls on Saturdays.
RRULE_ANCHOR: Final = datetime(2000, 1, 1)


def parse_rrule(text: str) -> rrule | rruleset:
    """An RFC 5545 recurrence (``FREQ=WEEKLY;BYDAY=SU;BYHOUR=2``) with naive local times,
    anchored at :data:`RRULE_ANCHOR` unless it carries its own ``DTSTART``."""
    return rrulestr(text, dtstart=RRULE_ANCHOR, ignoretz=True, forceset=False)


def _ward_ids(value: list[str]) -> list[str]:
    for ward in value:
        if ward != "*" and not wire.NAME_RE.match(ward):
            raise ValueError(f"{ward!r} is not a ward id")
    return value


class MaintenanceWindow(Strict):
    """A recurring window in the deployment's time zone during which the matching devices are
    in maintenance: alerts are recorded but not sent, and uptime reports show the time apart
    (neither up nor down)."""

    wards: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="ward ids the window applies to; empty (the default) means every ward",
    )
    devices: str = Field(
        "*", min_length=1, max_length=256, description="glob (fnmatch) on device ids, e.g. 'cam-*'; '*' is all"
    )
    rules: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="alert rule names muted by the window; empty (the default) means all rules",
    )
    rrule: str = Field(
        min_length=6,
        max_length=1000,
        description="RFC 5545 recurrence of the window's start, in local time, e.g. 'FREQ=WEEKLY;BYDAY=SU;BYHOUR=2'",
    )
    duration: Duration = Field(gt=0, le=31 * 86400, description="how long each window lasts, e.g. '2h'")

    @field_validator("wards")
    @classmethod
    def _wards(cls, value: list[str]) -> list[str]:
        return _ward_ids(value)

    @field_validator("rules")
    @classmethod
    def _rule_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not wire.NAME_RE.match(name):
                raise ValueError(f"{name!r} is not a rule name")
        return value

    @field_validator("rrule")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            rule = parse_rrule(value)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"{value!r} is not an RFC 5545 recurrence: {exc}") from None
        if rule.after(RRULE_ANCHOR, inc=True) is None:
            raise ValueError(f"{value!r} never occurs")
        return value

    def applies_to(self, ward: str, device: str, rule: str = "device_down") -> bool:
        return (
            (not self.wards or ward in self.wards)
            and fnmatchcase(device, self.devices)
            and (not self.rules or rule in self.rules)
        )


# Channels -------------------------------------------------------------------------


class _Channel(Strict):
    timeout: Duration = Field(10.0, gt=0, le=120, description="bound on one delivery attempt")
    retries: int = Field(4, ge=0, le=20, description="attempts after the first, with backoff, before giving up")
    backoff: Duration = Field(2.0, gt=0, le=600, description="wait before the first retry; doubles each time")


class WebhookChannel(_Channel):
    """Alertmanager's webhook payload, version "4"; any receiver written for Alertmanager works."""

    type: Literal["webhook"]
    url: str = Field(pattern=_URL, max_length=2048, description="where the JSON is POSTed")
    bearer_token: SecretStr | None = Field(None, description="sent as Authorization: Bearer, when set")
    max_alerts: int = Field(0, ge=0, le=10_000, description="alerts per message; 0 is no limit (like Alertmanager)")

    @field_validator("url", mode="before")
    @classmethod
    def _no_credentials(cls, value: object) -> object:
        if isinstance(value, str):
            refuse_credentials(value, "use the channel's bearer_token (or bearer_token_file), sent as "
                               "Authorization: Bearer; the webhook channel has no basic auth")
        return value


class TelegramChannel(_Channel):
    """Telegram Bot API ``sendMessage`` (4,096 characters a message)."""

    type: Literal["telegram"]
    token: SecretStr = Field(description="the bot token from @BotFather; ${ENV} or token_file")
    chat_id: str = Field(min_length=1, max_length=64, description="chat, group or channel id (e.g. -1001234567890)")
    base_url: str = Field("https://api.telegram.org", pattern=_URL, description="the Bot API's base URL")

    @field_validator("base_url", mode="before")
    @classmethod
    def _no_credentials(cls, value: object) -> object:
        return _bot_base_url(value)


class ZaloChannel(_Channel):
    """Zalo Bot API ``sendMessage`` (2,000 characters a message)."""

    type: Literal["zalo"]
    token: SecretStr = Field(description="the Zalo bot token; ${ENV} or token_file")
    chat_id: str = Field(min_length=1, max_length=128, description="the chat (user or group) id")
    base_url: str = Field(
        "https://bot-api.zaloplatforms.com", pattern=_URL, description="the Zalo Bot Platform API's base URL"
    )

    @field_validator("base_url", mode="before")
    @classmethod
    def _no_credentials(cls, value: object) -> object:
        return _bot_base_url(value)


_BOT_PATH = re.compile(r"/bot[^/]*\d+:[^/]+")  # https://api.telegram.org/bot123456:ABC...


def _bot_base_url(value: object) -> object:
    """A bot API's base URL carries neither a login nor the bot token (the channel adds it)."""
    if isinstance(value, str):
        refuse_credentials(value, "the bot token goes in token (or token_file)")
        if _BOT_PATH.search(value):
            raise ValueError("the bot token goes in token (or token_file), not in base_url")
    return value


class EmailChannel(_Channel):
    """Plain-text email over SMTP (aiosmtplib), with STARTTLS and auth."""

    type: Literal["email"]
    host: str = Field(min_length=1, max_length=253, description="SMTP server")
    port: int = Field(587, ge=1, le=65535, description="SMTP port: 587 (STARTTLS), 465 (tls: true), 25")
    starttls: bool = Field(True, description="upgrade with STARTTLS; refused to send if the server cannot")
    tls: bool = Field(False, description="TLS from the first byte (port 465)")
    ca_file: Path | None = Field(None, description="CA bundle for the server's certificate; the system's if unset")
    username: str | None = Field(None, min_length=1, max_length=256, description="SMTP auth user")
    password: SecretStr | None = Field(None, description="SMTP auth password; ${ENV} or password_file")
    sender: str = Field(alias="from", min_length=3, max_length=256, description="From: address")
    to: list[Annotated[str, Field(min_length=3, max_length=256)]] = Field(min_length=1, max_length=100)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        return bare_host(value, "use the channel's username and password (or password_file)")

    @model_validator(mode="after")
    def _pairs(self) -> EmailChannel:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.tls and self.starttls:
            raise ValueError("tls: true is TLS from the start; set starttls: false with it")
        return self


class MqttChannel(_Channel):
    """The collector's own broker connection, topic ``wardwatch/v1/alerts/{ward}/{severity}``."""

    type: Literal["mqtt"]
    retain: bool = Field(False, description="retain each ward/severity topic's last message")


Channel = Annotated[
    WebhookChannel | TelegramChannel | ZaloChannel | EmailChannel | MqttChannel, Field(discriminator="type")
]


# Routes ---------------------------------------------------------------------------


class Escalation(Strict):
    after: Duration = Field(gt=0, le=7 * 86400, description="unacknowledged this long after the first notice")
    channels: list[str] = Field(min_length=1, max_length=20, description="where the escalation goes")


class Route(Strict):
    """Alerts whose labels match go to ``channels``; the first matching route wins unless
    ``continue`` is set. Notices are grouped per ward."""

    match: dict[str, str] = Field(
        default_factory=dict, max_length=16, description="label -> glob (fnmatch); empty matches every alert"
    )
    channels: list[str] = Field(min_length=1, max_length=20, description="channel names under alerts.channels")
    group_wait: Duration = Field(10.0, ge=0, le=3600, description="gather a ward's alerts this long into one notice")
    repeat: Duration = Field(4 * 3600.0, ge=60, le=30 * 86400, description="send a still-firing alert again after")
    escalate: Escalation | None = Field(None, description="a second route for alerts nobody acknowledges")
    continue_: bool = Field(False, alias="continue", description="also try the routes after this one")

    @field_validator("match")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for label in value:
            if label not in LABELS:
                raise ValueError(f"unknown label {label!r}; one of {', '.join(LABELS)}")
        return value


class AlertsSection(Strict):
    """``alerts:``: the alert engine. It runs inside ``wardwatch-collector run`` when present,
    or alone as ``wardwatch-collector alerts -c FILE``."""

    rules: Path | None = Field(None, description="rules file (YAML); the shipped rules when unset")
    state: Path = Field(
        Path("alerts.db"), description="SQLite file: active alerts, acks, silences, deliveries; relative to the config"
    )
    wards: list[str] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=10_000,
        description="ward ids this engine watches; ['*'] is every ward. Two engines on one ward notify twice",
    )
    language: Literal["vi", "en"] = Field("vi", description="language of the messages")
    ack_secret: SecretStr | None = Field(
        None, description="key that signs acknowledgement links; a random one kept in the state file when unset"
    )
    live_lag: Duration = Field(
        120.0, ge=10, le=86400,
        description="a reading older than this when it arrives is backfill: recorded in history, never notified",
    )
    channels: dict[str, Channel] = Field(default_factory=dict, max_length=100, description="name -> channel")
    routes: list[Route] = Field(
        default_factory=list, max_length=100,
        description="label matches -> channels; with none, every alert goes to every channel",
    )
    maintenance: list[MaintenanceWindow] = Field(
        default_factory=list, max_length=1000, description="recurring maintenance windows"
    )

    @field_validator("wards")
    @classmethod
    def _wards(cls, value: list[str]) -> list[str]:
        if "*" in value and len(value) > 1:
            raise ValueError("'*' is every ward; list ward ids or '*', not both")
        return _ward_ids(value)

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            if not re.match(_CHANNEL, name):
                raise ValueError(f"{name!r} is not a channel name (letters, digits, '_', '.', '-')")
        return value

    @model_validator(mode="after")
    def _routes_name_channels(self) -> AlertsSection:
        for i, route in enumerate(self.routes):
            names = [*route.channels, *(route.escalate.channels if route.escalate else [])]
            for name in names:
                if name not in self.channels:
                    known = ", ".join(sorted(self.channels)) or "none defined"
                    raise ValueError(f"routes[{i}]: unknown channel {name!r} (channels: {known})")
        return self

    def effective_routes(self) -> list[Route]:
        """The routes, or one route to every channel when none are given."""
        if self.routes or not self.channels:
            return list(self.routes)
        return [Route(channels=list(self.channels))]
