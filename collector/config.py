"""The collector's config file: its shape, bounds and cross-field rules.

Loaded once by :func:`load_config` through :func:`wardwatch.config.load`, so that a bad
file fails with one line naming the key (``influx.batch_points: Input should be greater than or equal to 1``).
Later issues add sections (``alerts:``, ``spool:``) beside these; unknown keys fail until
they exist.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from wardwatch import wire
from wardwatch.collector.alerts.config import AlertsSection
from wardwatch.config import Duration, MqttSection, Strict, is_loopback, load, refuse_credentials

_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
log = logging.getLogger(__name__)


class CollectorMqtt(MqttSection):
    """The shared ``mqtt:`` section plus what only a subscriber needs."""

    share_group: str | None = Field(
        None,
        pattern=_NAME,
        description="MQTT 5 shared-subscription group; collectors in one group split the readings",
    )
    session_expiry: Duration = Field(
        3600.0,
        ge=0,
        le=7 * 86400,
        description=(
            "how long the broker keeps this collector's session (its subscription and unacknowledged "
            "messages) while it is away, so that a restart or crash loses nothing; 0 discards it"
        ),
    )
    receive_maximum: int = Field(
        10_000,
        ge=1,
        le=65_535,
        description=(
            "MQTT 5 Receive Maximum: how many unacknowledged messages the broker may send us; "
            "messages are acknowledged only after their batch is written, so this bounds a batch"
        ),
    )


class InfluxSection(Strict):
    api: Literal["v1", "v2"] = Field(
        "v1",
        description="InfluxDB HTTP API: v1 (/write, /query with username/password: InfluxDB 1.x) or v2 "
        "(/api/v2/write with token, org and bucket: InfluxDB 2.x, 3.x, Cloud; reads stay InfluxQL on /query)",
    )
    insecure_http: bool = Field(
        False,
        description="allow an http:// url to an InfluxDB not on this machine: its credentials and every reading "
        "cross the network in clear (warned about at start); use https:// instead",
    )
    url: str = Field(
        "http://127.0.0.1:8086",
        pattern=r"^https?://[^/\s?#]+(/[^\s?#]*)?$",
        max_length=2048,
        description="base URL of the InfluxDB HTTP API",
    )
    database: str = Field("wardwatch", pattern=_NAME, description="database the readings are written to")
    rp: str | None = Field(None, pattern=_NAME, description="retention policy; the database's default if unset")
    username: str | None = Field(None, min_length=1, max_length=256, description="InfluxDB user, when auth is on")
    password: SecretStr | None = Field(None, description="its password; ${ENV} or password_file")
    token: SecretStr | None = Field(None, description="api v2: the API token; ${ENV} or token_file")
    org: str | None = Field(None, min_length=1, max_length=256, description="api v2: the organisation")
    bucket: str | None = Field(
        None, min_length=1, max_length=256, description="api v2: the bucket written to (database/rp when unset)"
    )
    timeout: Duration = Field(10.0, ge=0.1, le=300, description="bound on one HTTP request to InfluxDB")
    batch_points: int = Field(5000, ge=1, le=100_000, description="write once this many points are pending")
    flush_interval: Duration = Field(1.0, ge=0.01, le=60, description="write pending points at least this often")

    @field_validator("url", mode="before")
    @classmethod
    def _no_credentials(cls, value: object) -> object:
        if isinstance(value, str):
            refuse_credentials(value, "use influx.username and influx.password (or password_file), "
                               "or influx.token (or token_file) with api: v2")
        return value

    @field_validator("url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("url")
    @classmethod
    def _https_off_loopback(cls, value: str, info: ValidationInfo) -> str:
        host = urlsplit(value).hostname or ""
        if value.startswith("http://") and not info.data.get("insecure_http") and not is_loopback(host):
            raise ValueError(
                f"http:// to {host}, which is not on this machine; use https://, "
                "or set influx.insecure_http: true to send in clear"
            )
        return value

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> InfluxSection:
        if (self.username is None) != (self.password is None):
            given, missing = ("username", "password") if self.username else ("password", "username")
            raise ValueError(f"{given} is set but {missing} is not; give both or neither")
        if self.api == "v1" and (self.token or self.org or self.bucket):
            raise ValueError("token, org and bucket are for api: v2; api v1 takes username and password")
        if self.api == "v2" and (self.token is None or self.org is None):
            raise ValueError("api: v2 needs token and org (and bucket, or database as the bucket)")
        return self


class HttpSection(Strict):
    host: str = Field("127.0.0.1", min_length=1, max_length=255, description="address the HTTP API listens on")
    port: int = Field(8080, ge=1, le=65535, description="port the HTTP API listens on")
    token: SecretStr | None = Field(
        None, description="bearer token the API requires; required unless host is a loopback address"
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain) to serve HTTPS with; needs tls_key")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")

    external_url: str | None = Field(
        None, pattern=r"^https?://[^/\s?#@]+(/[^\s?#]*)?$", max_length=2048,
        description="the URL technicians reach this server at, for links in alert messages "
        "(acknowledge); http://HOST:PORT when unset",
    )

    @field_validator("external_url", mode="before")
    @classmethod
    def _no_credentials(cls, value: object) -> object:
        if isinstance(value, str):
            refuse_credentials(value, "the links it makes are sent to people; the API's own login is http.token")
        return value

    @field_validator("external_url")
    @classmethod
    def _no_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("token")
    @classmethod
    def _token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _tls_in_pairs(self) -> HttpSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together; give both or neither")
        return self

    @model_validator(mode="after")
    def _token_off_loopback(self) -> HttpSection:
        if self.token is None and not _is_loopback(self.host):
            raise ValueError(f"token is required when host is {self.host!r}, which is not a loopback address")
        return self


class DeadLetterSection(Strict):
    path: Path = Field(
        Path("dead-letter.jsonl"),
        description="JSONL file for messages that could not be stored; relative to the config file",
    )
    max_bytes: int = Field(
        50_000_000,
        ge=4096,
        le=10 * 1024**3,
        description="rotate the file to <path>.1 when it would grow past this size",
    )


class SpoolSection(Strict):
    path: Path = Field(
        Path("spool.db"),
        description="SQLite file holding points while InfluxDB is away; relative to the config file",
    )
    max_mb: int = Field(
        4096, ge=1, le=1024 * 1024, description="when the spool is this full, stop acking: the broker holds the rest"
    )
    after: Duration = Field(
        5.0, ge=0, le=3600, description="how long a write keeps retrying before its points go to the spool"
    )


class CollectorConfig(Strict):
    mqtt: CollectorMqtt = Field(default_factory=CollectorMqtt, description="the broker the agents publish to")
    influx: InfluxSection = Field(default_factory=InfluxSection, description="where readings are stored")
    http: HttpSection = Field(default_factory=HttpSection, description="health and JSON API")
    dead_letter: DeadLetterSection = Field(
        default_factory=DeadLetterSection, description="where invalid or rejected messages go"
    )
    spool: SpoolSection = Field(default_factory=SpoolSection, description="durable store while InfluxDB is away")
    stale_after: Duration = Field(
        90.0, ge=1, le=86400, description="an agent with no batch stored for this long is stale: its devices unknown"
    )
    reconcile_interval: Duration = Field(
        30.0, ge=0.1, le=3600, description="how often to count missing seqs from the ledger in InfluxDB"
    )
    reconcile_window: Duration = Field(
        86400.0,
        ge=60,
        le=3650 * 86400,
        description=(
            "how far back the first reconcile after a start reads an agent's ledger; later ones read "
            "only what came after the last (a checkpoint), so the cost does not grow with history"
        ),
    )
    timezone: str = Field(
        "Asia/Ho_Chi_Minh",
        min_length=1,
        max_length=64,
        description="the deployment's IANA time zone: local hours in reports, maintenance windows",
    )
    wards: dict[str, str] = Field(
        default_factory=dict,
        max_length=10_000,
        description="ward id -> display name, with its diacritics (e.g. cam-pho: Cẩm Phô)",
    )
    alerts: AlertsSection | None = Field(
        None, description="the alert engine (docs/alerts.md); it runs in this collector when the section is present"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. Asia/Ho_Chi_Minh") from None
        return value

    @field_validator("wards")
    @classmethod
    def _ward_names(cls, value: dict[str, str]) -> dict[str, str]:
        for ward, name in value.items():
            if not wire.NAME_RE.match(ward):
                raise ValueError(f"{ward!r} is not a ward id (letters, digits, '_', '.', '-')")
            if not name.strip() or len(name) > 200:
                raise ValueError(f"{ward}: the display name must be 1-200 characters")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _is_loopback(host: str) -> bool:
    """Decided from the text alone: validators never resolve names."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: Path | str, *, sources: dict[tuple[int | str, ...], str] | None = None) -> CollectorConfig:
    """Read and validate a collector config; raise ConfigError with one line naming the key.

    Relative ``dead_letter.path``, ``spool.path``, ``alerts.state`` and ``alerts.rules`` are taken
    relative to the config file's directory. ``sources`` is filled as :func:`wardwatch.config.load` does.
    """
    path = Path(path)
    cfg = load(path, CollectorConfig, sources=sources)
    base = path.resolve().parent
    for name in ("dead_letter", "spool"):
        section = getattr(cfg, name)
        if not section.path.is_absolute():
            section = section.model_copy(update={"path": base / section.path})
            cfg = cfg.model_copy(update={name: section})
    if cfg.alerts is not None:
        update = {key: base / value for key in ("state", "rules")
                  if (value := getattr(cfg.alerts, key)) is not None and not value.is_absolute()}
        if update:
            cfg = cfg.model_copy(update={"alerts": cfg.alerts.model_copy(update=update)})
    host = urlsplit(cfg.influx.url).hostname or ""
    if cfg.influx.url.startswith("http://") and not is_loopback(host):  # allowed by influx.insecure_http
        log.warning("influx.insecure_http is true: the readings and InfluxDB credentials go to %s in clear", host)
    return cfg


def default_client_id(config_path: Path | str) -> str:
    """A client id that is stable across restarts of the same collector.

    Stable matters: the broker keeps the session (and redelivers unacknowledged
    messages) under this id. It is derived from the host name and the config file's
    absolute path, so two collectors started from one file on one host must set
    ``mqtt.client_id`` themselves.
    """
    digest = hashlib.sha256(str(Path(config_path).resolve()).encode()).hexdigest()[:8]
    host = socket.gethostname().split(".")[0] or "host"
    return f"wardwatch-collector-{host}-{digest}"
