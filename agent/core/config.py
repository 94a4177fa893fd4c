"""The agent's config: strict, typed, loaded once (see configs/agent-example.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from wardwatch.config import Duration, MqttSection, Strict, bare_host, load
from wardwatch.wire import NAME_PATTERN as _NAME


class AgentSection(Strict):
    id: str = Field(pattern=_NAME, description="this agent's id, unique in the city; one per ward office")
    ward: str = Field(pattern=_NAME, description="the ward or commune this agent watches, e.g. cam-pho")


class OutboxSection(Strict):
    path: Path = Field(description="SQLite file that holds readings until the broker acknowledges them")
    max_mb: int = Field(
        1024, ge=1, le=1024 * 1024, description="bound on stored (compressed) readings; the oldest go first"
    )
    max_age: Duration = Field(14 * 86400.0, ge=60, description="readings older than this are dropped, and counted")
    drain_rate: float = Field(
        50.0, gt=0, le=100000, description="backlog batches per second sent after a reconnect (live ones go at once)"
    )


class AgentMqtt(MqttSection):
    """The shared ``mqtt:`` section plus what only the agent's publisher needs."""

    resend_after: Duration = Field(
        60.0,
        ge=1,
        le=86400,
        description=(
            "a batch the broker acknowledged but no collector reported stored within this is "
            "published again; while nothing gets stored the wait doubles, up to 1 h"
        ),
    )


SNMP_VERSION_NUMBERS = {1: "1", 2: "2c", 3: "3"}  # version: 2 in YAML means 2c


class SnmpAuth(Strict):
    version: Literal["1", "2c", "3"] = Field(
        description="SNMP version: '1', '2c' or '3', or the numbers 1, 2 (2c) and 3"
    )
    community: SecretStr | None = Field(None, description="v1/v2c community")
    user: str | None = Field(None, min_length=1, max_length=32, description="v3 user name")
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] | None = Field(
        None, description="v3 authentication protocol"
    )
    auth_key: SecretStr | None = Field(None, description="v3 authentication pass phrase (8+ chars)")
    priv_protocol: Literal["DES", "AES", "AES192", "AES256"] | None = Field(
        None, description="v3 privacy protocol"
    )
    priv_key: SecretStr | None = Field(None, description="v3 privacy pass phrase (8+ chars)")
    context: str = Field("", max_length=64, description="v3 context name")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        """YAML reads ``version: 3`` as a number: accept 1, 2 (meaning 2c) and 3 as well as
        the strings, and "2" as 2c; anything else is refused, naming what is allowed."""
        if isinstance(value, int) and not isinstance(value, bool) and value in SNMP_VERSION_NUMBERS:
            return SNMP_VERSION_NUMBERS[value]
        if value == "2":
            return "2c"
        if isinstance(value, str) and value in SNMP_VERSION_NUMBERS.values():
            return value
        raise ValueError(f"SNMP version {value!r} is not one of 1, 2c (or 2) and 3")

    @model_validator(mode="after")
    def _complete(self) -> SnmpAuth:
        if self.version in ("1", "2c"):
            if self.community is None:
                raise ValueError(f"SNMP v{self.version} needs a community")
            return self
        if not self.user:
            raise ValueError("SNMPv3 needs a user")
        if self.auth_protocol and not self.auth_key:
            raise ValueError("auth_protocol is set but auth_key is not")
        if self.priv_protocol and not (self.auth_protocol and self.priv_key):
            raise ValueError("privacy needs auth_protocol, auth_key and priv_key")
        for key in (self.auth_key, self.priv_key):
            if key is not None and len(key.get_secret_value()) < 8:
                raise ValueError("SNMPv3 keys must be at least 8 characters")
        return self


class OnvifAuth(Strict):
    username: str = Field(min_length=1, description="ONVIF user")
    password: SecretStr = Field(description="ONVIF password")
    allow_basic: bool = Field(
        False,
        description="answer a Basic challenge over plain http/rtsp (the password crosses the LAN in clear); "
        "off: only Digest, or Basic over TLS",
    )


class AuthProfile(Strict):
    snmp: SnmpAuth | None = Field(None, description="SNMP credentials")
    onvif: OnvifAuth | None = Field(None, description="ONVIF credentials")


class FeedRef(Strict):
    """The switch port that feeds a camera or AP: alerts and the camera OK state follow it."""

    switch: str = Field(pattern=_NAME, description="id of the switch device (in this agent's devices)")
    port: str = Field(min_length=1, max_length=64, description="the port's ifName on that switch, e.g. Gi0/5")


class CameraOptions(Strict):
    """Camera polling options (kind: camera); see docs/cameras.md."""

    frozen_after: int = Field(3, ge=2, le=100, description="same snapshot this many polls in a row = frozen image")
    snapshot: bool = Field(True, description="fetch a snapshot each poll (snapshot_ok, frozen detection)")
    events: bool = Field(True, description="subscribe to ONVIF events (PullPoint) after the first good poll")
    skew_window: Duration = Field(
        5.0, gt=0, le=86400, description="clock difference beyond which an auth failure is blamed on the clock"
    )
    inventory_every: int = Field(60, ge=1, le=100000, description="send manufacturer/model/firmware every N polls")
    tls_ca: Path | None = Field(
        None, description="CA bundle that rtsps and https snapshot certificates must chain to (host name checked); "
        "unset: TLS without certificate checks, as cameras ship self-signed certificates"
    )


class DeviceConfig(Strict):
    id: str = Field(pattern=_NAME, description="device id, unique within this agent")
    kind: Literal["switch", "ap", "camera"] = Field(description="what the device is")
    host: str = Field(min_length=1, max_length=253, description="address or host name")
    port: int | None = Field(None, ge=1, le=65535, description="SNMP port (161) or ONVIF port (80)")
    auth: str = Field(min_length=1, description="name of a profile under auth:")
    interval: Duration = Field(60.0, ge=1, le=86400, description="how often to poll")
    timeout: Duration = Field(2.0, gt=0, le=60, description="per-request timeout")
    retries: int = Field(1, ge=0, le=5, description="per-request retries after a timeout")
    max_repetitions: int = Field(10, ge=1, le=100, description="GETBULK max-repetitions")
    vendor: str | None = Field(None, pattern=_NAME, description="vendor tag, where known")
    profile: str | None = Field(None, pattern=_NAME, description="SNMP profile name; matched by sysObjectID if unset")
    feed: FeedRef | None = Field(None, description="the switch port feeding this device")
    uplink: str | None = Field(
        None, min_length=1, max_length=64,
        description="kind switch: the ifName of the port that is the ward's uplink to the city, e.g. Te1/0/24; "
        "its if_traffic readings carry uplink=1 (report capacity reads the ward's headroom from it)",
    )
    icmp: bool = Field(True, description="ping it too: rtt_ms, loss_pct, and up when SNMP fails but ICMP answers")
    camera: CameraOptions = Field(default_factory=CameraOptions, description="camera options (kind: camera)")

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        return bare_host(value, "put them in an auth profile (auth:)")

    @model_validator(mode="after")
    def _timeout_fits(self) -> DeviceConfig:
        if self.timeout * (self.retries + 1) > self.interval:
            raise ValueError(
                f"timeout {self.timeout:g}s x {self.retries + 1} tries is longer than the "
                f"interval {self.interval:g}s"
            )
        return self


class AgentConfig(Strict):
    agent: AgentSection
    mqtt: AgentMqtt = Field(default_factory=AgentMqtt)
    outbox: OutboxSection
    auth: dict[str, AuthProfile] = Field(default_factory=dict, description="named credentials")
    devices: list[DeviceConfig] = Field(default_factory=list, max_length=5000)
    self_interval: Duration = Field(30.0, ge=5, le=3600, description="how often to report agent self-metrics")


def check(cfg: AgentConfig) -> list[str]:
    """Cross-references: unique device ids, auth profiles that exist and fit the kind."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, dev in enumerate(cfg.devices):
        where = f"devices[{i}]"
        if dev.id in seen:
            problems.append(f"{where}.id: '{dev.id}' is already used by devices[{seen[dev.id]}]")
        seen.setdefault(dev.id, i)
        profile = cfg.auth.get(dev.auth)
        if profile is None:
            problems.append(f"{where}.auth: unknown auth profile '{dev.auth}'")
        elif dev.kind in ("switch", "ap") and profile.snmp is None:
            problems.append(f"{where}.auth: profile '{dev.auth}' has no snmp credentials")
        elif dev.kind == "camera" and profile.onvif is None:
            problems.append(f"{where}.auth: profile '{dev.auth}' has no onvif credentials")
        if dev.feed is not None:
            fed_by = next((d for d in cfg.devices if d.id == dev.feed.switch), None)
            if fed_by is None or fed_by.kind != "switch":
                problems.append(f"{where}.feed.switch: '{dev.feed.switch}' is not a switch in devices")
        if dev.uplink is not None and dev.kind != "switch":
            problems.append(f"{where}.uplink: only a switch has an uplink port, not an {dev.kind} "
                            "(set it on the ward's switch)")
        elif dev.uplink is not None:
            # One agent watches one ward office: one port is its uplink to the city.
            first = next(j for j, d in enumerate(cfg.devices) if d.uplink is not None and d.kind == "switch")
            if first != i:
                problems.append(f"{where}.uplink: the ward's uplink is already devices[{first}]'s port "
                                f"'{cfg.devices[first].uplink}' (one uplink per agent)")
    return problems


def load_config(path: Path, *, sources: dict[tuple[int | str, ...], str] | None = None) -> AgentConfig:
    """``sources`` is filled as :func:`wardwatch.config.load` does (for ``config --show``)."""
    return load(path, AgentConfig, check, sources=sources)
