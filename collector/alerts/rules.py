"""Alert rules as data: a strict YAML file (``alerts.rules``), or the shipped ``rules.yaml``.

Three types of rule:

- ``threshold`` (the default): a reading's ``field`` in ``series`` meets ``when`` (and every
  ``where``) for ``for`` seconds; it clears when ``clear`` (default: not ``when``) has held
  for ``clear_for`` and nothing met ``when`` for ``keep_firing_for``. ``per`` names a tag
  (``if_name``, ``radio``) that makes one alert per port or radio.
- ``agent_offline``: an agent whose status went ``offline`` or who sent nothing for the
  collector's ``stale_after``; its devices are unknown while it is away.
- ``flapping``: a device whose ``watch`` rules changed state more than ``changes`` times in
  ``window``; its watched alerts are held back until it has been stable for ``stable_for``.

A rule with ``root: true`` (``device_down``) suppresses the alerts of every device behind
the device it fires for (the topology of docs/alerts.md).
"""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from wardwatch import wire
from wardwatch.collector.alerts.config import SEVERITIES
from wardwatch.config import ConfigError, Duration, Strict, _first_error, parse_yaml

SHIPPED: Final = "rules.yaml"
Value = float | str


class Condition(Strict):
    """Exactly one test, e.g. ``{above: 80}``, ``{equals: 0}``, ``{abs_above: 5}``,
    ``{not_in: [poe_lost, port_down]}``."""

    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None
    abs_above: float | None = None
    abs_at_most: float | None = None
    equals: Value | None = None
    not_equals: Value | None = None
    in_: list[Value] | None = Field(None, alias="in", max_length=100)
    not_in: list[Value] | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            tests = "above, at_least, below, at_most, abs_above, abs_at_most, equals, not_equals, in, not_in"
            raise ValueError(f"give exactly one test ({tests})")
        return self

    def test(self, value: Value) -> bool:
        """Whether ``value`` meets the condition; a string never meets a numeric test."""
        if self.equals is not None:
            return _same(value, self.equals)
        if self.not_equals is not None:
            return not _same(value, self.not_equals)
        if self.in_ is not None:
            return any(_same(value, v) for v in self.in_)
        if self.not_in is not None:
            return not any(_same(value, v) for v in self.not_in)
        if isinstance(value, str) or not math.isfinite(value):
            return False
        if self.above is not None:
            return value > self.above
        if self.at_least is not None:
            return value >= self.at_least
        if self.below is not None:
            return value < self.below
        if self.at_most is not None:
            return value <= self.at_most
        if self.abs_above is not None:
            return abs(value) > self.abs_above
        assert self.abs_at_most is not None
        return abs(value) <= self.abs_at_most

    def describe(self) -> str:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is not None:
                return f"{name.rstrip('_')} {value}"
        return ""


def _same(a: Value, b: Value) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return float(a) == float(b)


class Scope(Strict):
    kinds: list[Literal["switch", "ap", "camera", "agent"]] = Field(
        default_factory=list, description="device kinds; empty is every kind"
    )
    wards: list[str] = Field(default_factory=list, description="ward ids (globs); empty is every ward")
    devices: str = Field("*", min_length=1, max_length=256, description="glob on device ids")

    def matches(self, *, kind: str, ward: str, device: str) -> bool:
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.wards or any(fnmatchcase(ward, w) for w in self.wards))
            and fnmatchcase(device, self.devices)
        )


class Text(Strict):
    vi: str = Field(min_length=1, max_length=500)
    en: str = Field(min_length=1, max_length=500)


def _text(value: Any) -> Any:
    return {"vi": value, "en": value} if isinstance(value, str) else value


class _Rule(Strict):
    name: str = Field(pattern=wire.NAME_PATTERN, description="the alertname label")
    severity: Literal["critical", "warning", "info"] = "warning"
    scope: Scope = Field(default_factory=Scope)
    summary: Text = Field(description="message template: {device} {ward} {kind} {value} {reason} {if_name} ...")
    description: str = Field("", max_length=2000, description="what it means and what to do, for docs/alerts.md")

    _to_text = field_validator("summary", mode="before")(_text)


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ThresholdRule(_Rule):
    type: Literal["threshold"] = "threshold"
    series: wire.Measurement = Field(description="the InfluxDB measurement the readings are in")
    field: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    when: Condition
    where: dict[str, Condition] = Field(default_factory=dict, max_length=8, description="other fields that must match")
    tags: dict[str, str] = Field(default_factory=dict, max_length=8, description="only readings with these tags")
    per: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]] = Field(
        default_factory=list, max_length=4,
        description="one alert per value of these tags (e.g. if_name; [ap, radio] for a controller's APs); "
        "a reading carrying none of them is not this rule's",
    )
    for_: Duration = Field(0.0, alias="for", ge=0, le=7 * 86400)
    clear: Condition | None = Field(None, description="when the alert clears; not `when` if unset (no hysteresis)")
    clear_for: Duration = Field(0.0, ge=0, le=7 * 86400)
    keep_firing_for: Duration = Field(0.0, ge=0, le=7 * 86400)
    root: bool = Field(False, description="a firing alert suppresses the alerts of every device behind this one")

    _per_list = field_validator("per", mode="before")(_listed)

    def active(self, fields: dict[str, Value]) -> bool | None:
        """True when the reading meets ``when`` and ``where``; None when it lacks the field."""
        value = fields.get(self.field)
        if value is None:
            return None
        for name, cond in self.where.items():
            other = fields.get(name)
            if other is None or not cond.test(other):
                return False
        return self.when.test(value)

    def cleared(self, fields: dict[str, Value]) -> bool:
        value = fields.get(self.field)
        if value is None:
            return False
        if self.clear is None:
            return self.active(fields) is False
        return self.clear.test(value)


class AgentOfflineRule(_Rule):
    type: Literal["agent_offline"]
    for_: Duration = Field(0.0, alias="for", ge=0, le=7 * 86400)


class FlappingRule(_Rule):
    type: Literal["flapping"]
    watch: list[str] = Field(min_length=1, max_length=50, description="rules whose state changes are counted")
    changes: int = Field(3, ge=2, le=1000, description="more than this many changes in window is flapping")
    window: Duration = Field(3600.0, gt=0, le=7 * 86400)
    stable_for: Duration = Field(900.0, gt=0, le=7 * 86400, description="no change this long ends it")


Rule = Annotated[ThresholdRule | AgentOfflineRule | FlappingRule, Field(discriminator="type")]


class RuleFile(Strict):
    rules: list[Rule] = Field(min_length=1, max_length=1000)

    @field_validator("rules", mode="before")
    @classmethod
    def _default_type(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"type": "threshold", **r} if isinstance(r, dict) and "type" not in r else r for r in value]
        return value

    @model_validator(mode="after")
    def _names(self) -> RuleFile:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.name in seen:
                raise ValueError(f"rules[{i}].name: {rule.name!r} is defined twice")
            seen.add(rule.name)
        for i, rule in enumerate(self.rules):
            if isinstance(rule, FlappingRule):
                for name in rule.watch:
                    if name not in seen:
                        raise ValueError(f"rules[{i}].watch: unknown rule {name!r}")
        return self


def load_rules(path: Path | None) -> list[Rule]:
    """The rules of ``path``, or the shipped ones; ConfigError naming the key otherwise."""
    if path is None:
        where, text = f"shipped {SHIPPED}", files(__package__).joinpath(SHIPPED).read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"alerts.rules: cannot read {path}: {exc.strerror}") from None
    raw = parse_yaml(text, where, top="a mapping with a 'rules:' list")
    try:
        return _ADAPTER.validate_python(raw).rules
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_first_error(exc).removeprefix('(top level): ')}") from None


_ADAPTER: Final = TypeAdapter(RuleFile)
assert set(SEVERITIES) == {"critical", "warning", "info"}
