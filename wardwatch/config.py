"""Config loading shared by the agent and the collector.

A config is YAML, validated once by a pydantic model with ``extra="forbid"``. Before
validation the loader:

- replaces ``${VAR}`` in strings with the environment variable (a missing one is an
  error naming the key, never an empty string);
- replaces ``KEY_file: PATH`` with ``KEY: <contents of PATH>`` where ``KEY`` is a secret
  field of the model (a ``SecretStr``), for secrets kept in files. Other ``*_file`` keys,
  such as ``tls.ca_file``, are plain paths and are left alone.

Every failure becomes :class:`ConfigError`, whose message is one line naming the key's
path, e.g. ``devices[3].auth: unknown auth profile 'ward7'``. Secret values never
appear in these messages.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

# ${VAR}, or ${VAR:-default} when VAR is unset or empty (as the shell has it): systemd units
# give $CREDENTIALS_DIRECTORY, and the same file read by hand falls back to the default path.
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the offending key."""


class Strict(BaseModel):
    """Base for every config section: unknown keys fail, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a duration like '500ms', '30s', '5m', '1h'")
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return value


Duration = Annotated[float, BeforeValidator(_parse_duration)]
"""Seconds, written in YAML as ``30``, ``"30s"``, ``"5m"``, ``"1h"`` or ``"500ms"``."""


def format_loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def parse_yaml(text: str, where: str, *, top: str = "a mapping of sections") -> dict[str, Any]:
    """A YAML document whose top level is a mapping; ConfigError naming ``where`` and the line."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{where}: not valid YAML{line}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be {top}")
    return raw


def load(path: Path, model: type[M], check: Callable[[M], list[str]] | None = None,
         *, sources: dict[tuple[int | str, ...], str] | None = None) -> M:
    """Read, expand and validate a config file; raise ConfigError with one line.

    ``sources``, when given, is filled with where each expanded value came from: the key's
    path -> ``password_file`` (a ``*_file`` key) or ``${VAR}`` (the environment)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    raw = parse_yaml(text, str(path))
    raw = _expand(raw, (), base=Path(path).parent, secrets=secret_fields(model),
                  sources=sources if sources is not None else {})
    try:
        cfg = model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, raw)) from None
    problems = check(cfg) if check else []
    if problems:
        raise ConfigError(problems[0])
    return cfg


def _first_error(exc: ValidationError, raw: Any = None) -> str:
    """One line: the key's path and what is wrong, never the value given (secrets)."""
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = _input_path(list(err["loc"]), raw)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    msg = msg.removeprefix("Value error, ")
    return f"{format_loc(loc)}: {msg}"


def _input_path(loc: list[int | str], raw: Any) -> list[int | str]:
    """The error's path as the file spells it: tagged unions and function validators add
    their own names (``webhook``, ``function-after[...]``) between the keys; drop them, by
    following the path through the input, where a part that is not there is such a name."""
    out: list[int | str] = []
    node = raw
    for i, part in enumerate(loc):
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        if isinstance(node, dict):
            if part in node:
                out.append(part)
                node = node[part]
                continue
            if node.get("type") == part or (i + 1 < len(loc) and loc[i + 1] in node):  # a union's tag
                continue
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
            continue
        out.append(part)  # a missing key, or past the input: as pydantic says
        node = None
    return out


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of the SecretStr fields anywhere in a config model."""
    names: set[str] = set()
    seen: set[type] = set()

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in seen:
                return
            seen.add(tp)
            for name, info in tp.model_fields.items():
                if SecretStr in (info.annotation, *get_args(info.annotation)):
                    names.add(name)
                visit(info.annotation)
        for arg in get_args(tp):
            visit(arg)

    visit(model)
    return frozenset(names)


def _expand(node: Any, loc: tuple[int | str, ...], *, base: Path, secrets: frozenset[str],
            sources: dict[tuple[int | str, ...], str]) -> Any:
    if isinstance(node, dict):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            here = (*loc, key)
            target = key.removesuffix("_file") if isinstance(key, str) else None
            if target in secrets and key != target and isinstance(value, str):
                if target in node:
                    raise ConfigError(f"{format_loc(here)}: give either {target} or {key}, not both")
                path = _expand(value, here, base=base, secrets=secrets, sources={})
                out[target] = _read_secret(path, here, base)
                sources[(*loc, target)] = key
            else:
                out[key] = _expand(value, here, base=base, secrets=secrets, sources=sources)
        return out
    if isinstance(node, list):
        return [_expand(v, (*loc, i), base=base, secrets=secrets, sources=sources) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        names = [m.group(1) for m in _ENV.finditer(node)]
        if names:
            sources[loc] = ", ".join(f"${{{n}}}" for n in names)
        return _ENV.sub(lambda m: _env(m.group(1), loc, m.group(2)), node)
    return node


def _env(name: str, loc: tuple[int | str, ...], default: str | None = None) -> str:
    value = os.environ.get(name)
    if default is not None and not value:
        return default
    if value is None:
        raise ConfigError(f"{format_loc(loc)}: environment variable {name} is not set")
    return value


def _read_secret(path: str, loc: tuple[int | str, ...], base: Path) -> str:
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    try:
        return p.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{format_loc(loc)}: cannot read {p}: {exc.strerror}") from None


def refuse_credentials(url: str, pointer: str) -> None:
    """Raise (a validator's ValueError) when ``url`` carries ``user[:pass]@``; ``pointer``
    says where credentials go instead. The message never repeats the URL."""
    from wardwatch.redact import url_has_userinfo

    if url_has_userinfo(url):
        raise ValueError(f"credentials in the URL are not allowed; {pointer}")


def bare_host(host: str, login: str) -> str:
    """``host`` when it is a host name or address only (a validator's ValueError else);
    ``login`` says where the credentials go. The message never repeats the value."""
    if "@" in host:
        raise ValueError(f"credentials in the host are not allowed; {login}")
    if "://" in host or "/" in host:
        raise ValueError("a host name or address only, not a URL")
    return host


def show(cfg: BaseModel, sources: dict[tuple[int | str, ...], str] | None = None) -> str:
    """The effective config (defaults filled in) as YAML, every secret ``***`` with where
    it came from: ``*** (from password_file)``, ``*** (from ${VAR})`` or
    ``*** (written in the config)``."""
    sources = sources or {}

    def conv(node: Any, loc: tuple[int | str, ...]) -> Any:
        if isinstance(node, BaseModel):
            out: dict[str, Any] = {}
            for name, info in type(node).model_fields.items():
                key = info.alias or name
                out[key] = conv(getattr(node, name), (*loc, key))
            return out
        if isinstance(node, SecretStr):
            where = sources.get(loc)
            return f"*** (from {where})" if where else "*** (written in the config)"
        if isinstance(node, dict):
            return {str(k): conv(v, (*loc, k)) for k, v in node.items()}
        if isinstance(node, list | tuple | set | frozenset):
            return [conv(v, (*loc, i)) for i, v in enumerate(node)]
        if isinstance(node, Path):
            return str(node)
        if node is None or isinstance(node, bool | int | float | str):
            return node
        return str(node)

    return yaml.safe_dump(conv(cfg, ()), sort_keys=False, allow_unicode=True, default_flow_style=False)


# Sections that both sides share ---------------------------------------------------


class TlsSection(Strict):
    ca_file: Path | None = Field(None, description="CA bundle that signed the broker's certificate")
    cert_file: Path | None = Field(None, description="client certificate, for brokers that require one")
    key_file: Path | None = Field(None, description="client private key")
    insecure: bool = Field(False, description="skip hostname checks; for lab use only")


class MqttSection(Strict):
    host: str = Field("127.0.0.1", min_length=1, description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 for TLS)")
    username: str | None = Field(None, min_length=1, description="per-agent or per-collector user")
    password: SecretStr | None = Field(None, description="its password; ${ENV} or password_file")
    tls: TlsSection | Literal[False] | None = Field(
        None,
        validate_default=True,
        description="connect over TLS (verifying the broker against ca_file); required for a broker not on "
        "this machine, where only an explicit `tls: false` sends in clear (and is warned about)",
    )
    keepalive: Duration = Field(30.0, ge=5, le=600, description="MQTT keepalive")
    client_id: str | None = Field(
        None, min_length=1, max_length=128, description="stable client id; derived from the config if unset"
    )

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        return bare_host(value, "use mqtt.username and mqtt.password (or password_file)")

    @field_validator("tls")
    @classmethod
    def _tls_off_loopback(cls, value: TlsSection | Literal[False] | None, info: ValidationInfo) -> Any:
        host = info.data.get("host")  # absent when the host itself was refused
        if value is None and isinstance(host, str) and not is_loopback(host):
            raise ValueError(
                f"the broker {host} is not on this machine; set tls: {{ca_file: ...}}, or tls: false to send in clear"
            )
        return value


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine, decided from the text alone (never resolved):
    ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
