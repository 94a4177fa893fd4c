"""Vendor profiles: device knowledge as YAML data (``agent/profiles/*.yaml``).

A profile maps canonical metric names to OIDs. It is matched to a device by a
sysObjectID glob or by a probe OID that only that vendor answers; it may ``extends``
other profiles (IF-MIB, PoE, LLDP, ...). A table lists a GETBULK-walked entry OID, the
tags its rows carry (a column, part of the row index, a column of another table looked up
by part of the index, or a constant) and its metrics, each with an optional enum ``map``,
``transform`` steps and an ``aggregate`` across rows (``by`` some of the tags).

The loader rejects any metric or tag name that is not in :data:`METRICS` / :data:`TAGS`,
so a typo cannot create a new series. User profiles in extra directories override the
shipped ones of the same name. :func:`evaluate` (in ``agent/evaluate.py``) turns walked
rows into readings; nothing here does I/O except reading the YAML files.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wardwatch.config import format_loc

BUILTIN_DIR = Path(__file__).parent / "profiles"
OID = Annotated[str, Field(pattern=r"^[0-2](\.[0-9]+)+$", max_length=200)]
ProfileName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]

# Canonical metric names per measurement, and each one's type. The type is fixed because
# InfluxDB refuses a point whose field type differs from the one it already stores (a
# MikroTik's cpu_pct of 7.0 would lock out an Aruba's 11). For if_traffic the names are
# the raw interface columns the agent turns into rates (agent/rates.py).
INT, FLOAT, TEXT = "int", "float", "text"
METRICS: dict[str, dict[str, str]] = {
    "if_traffic": {
        "if_type": INT, "oper_status": INT, "in_octets32": INT, "out_octets32": INT, "in_octets64": INT,
        "out_octets64": INT, "in_errors": INT, "out_errors": INT, "in_discards": INT, "out_discards": INT,
        "high_speed": INT, "discontinuity": INT,
    },
    "poe": {"delivering": INT, "power_w": FLOAT, "budget_w": FLOAT, "consumption_w": FLOAT, "pse_up": INT},
    "wifi_radio": {"clients": INT, "channel": INT, "util_pct": FLOAT, "noise_dbm": FLOAT, "tx_power_dbm": FLOAT,
                   "freq_mhz": INT, "up": INT},
    "wifi_ssid": {"clients": INT},
    "lldp_link": {"remote_sysname": TEXT, "remote_port": TEXT, "remote_port_desc": TEXT, "remote_chassis": TEXT,
                  "neighbors": INT},
    "device_health": {"cpu_pct": FLOAT, "temp_c": FLOAT, "mem_pct": FLOAT, "aps_joined": INT, "aps_down": INT,
                      "clients": INT},
}
# The tags each measurement may carry: a fixed, small set, so series stay bounded.
TAGS: dict[str, frozenset[str]] = {
    "if_traffic": frozenset({"if_name"}),
    "poe": frozenset({"if_name", "pse"}),
    "wifi_radio": frozenset({"radio", "ap"}),
    "wifi_ssid": frozenset({"ssid", "ap"}),
    "lldp_link": frozenset({"if_name"}),
    "device_health": frozenset({"ap"}),
}
Measurement = Literal["if_traffic", "poe", "wifi_radio", "wifi_ssid", "lldp_link", "device_health"]
MAX_ROWS = 2048  # rows read per table per poll; a bound against a runaway table


class ProfileError(ValueError):
    """A profile that cannot be used; one line naming the file and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Scale(_Model):
    scale: float = Field(description="multiply by this")


class Mask(_Model):
    mask: int = Field(ge=1, description="bitwise AND, e.g. 255 to strip channel-width bits")


class PercentOf(_Model):
    percent_of: float = Field(gt=0, description="value x 100 / this, e.g. 255 for a 0-255 load")


class PercentOfCol(_Model):
    percent_of_col: int = Field(ge=1, description="value x 100 / this column of the same row")


Transform = (
    Literal["mw_to_w", "negate", "mhz_to_channel", "entity_sensor"] | Scale | Mask | PercentOf | PercentOfCol
)


class Source(_Model):
    """Where a value comes from, and how it is turned into a number or a label."""

    col: int | None = Field(None, ge=1, le=10_000, description="column under the table's entry OID")
    oid: OID | None = Field(None, description="full column OID of a table with the same index")
    index: list[Annotated[int, Field(ge=1, le=64)]] | None = Field(
        None, max_length=32, description="1-based parts of the row index (the value itself, or the lookup key)"
    )
    lookup: OID | None = Field(None, description="column OID read at the index parts given by `index`")
    value: str | None = Field(None, max_length=64, description="a constant")
    map: dict[int | str, int | float | str] | None = Field(None, description="enum map; unmapped values are dropped")
    transform: list[Transform] = Field(default_factory=list, max_length=8)
    format: Literal["text", "mac", "hex"] = Field("text", description="how an OCTET STRING becomes text")

    @model_validator(mode="after")
    def _one_source(self) -> Source:
        given = [k for k in ("col", "oid", "lookup", "value") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of col, oid, lookup, value; not {', '.join(given)}")
        if not given and self.index is None:
            raise ValueError("give one of col, oid, index, lookup, value")
        if self.lookup is not None and self.index is None:
            raise ValueError("lookup needs index: the parts of the row index to look up by")
        return self


class Metric(Source):
    measurement: Measurement | None = Field(None, description="defaults to the table's")
    aggregate: Literal["first", "sum", "avg", "max", "min", "count"] = Field(
        "first", description="how rows that share the `by` tags combine"
    )
    by: list[str] | None = Field(None, description="tags that group rows; default all the table's tags")


class Where(_Model):
    col: int = Field(ge=1, description="column of the table")
    equals: list[int | str] = Field(min_length=1, description="keep rows whose column has one of these values")


class Table(_Model):
    name: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    oid: OID = Field(description="the table's entry OID; columns are oid.COL")
    measurement: Measurement | None = Field(None, description="default measurement of its metrics")
    tags: dict[str, Source] = Field(default_factory=dict, max_length=4)
    metrics: dict[str, Metric] = Field(min_length=1, max_length=32)
    where: Where | None = None


class ScalarGroup(_Model):
    measurement: Measurement
    tags: dict[str, str] = Field(default_factory=dict, max_length=4, description="constant tags")
    metrics: dict[str, Source] = Field(min_length=1, max_length=32, description="each with `oid` (ending .0)")


class Match(_Model):
    sysobjectid: list[str] = Field(default_factory=list, description="globs, e.g. 1.3.6.1.4.1.14988.*")
    probe_oid: OID | None = Field(None, description="matches when the device answers this OID")


class Profile(_Model):
    name: ProfileName
    description: str = ""
    vendor: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    kind: Literal["switch", "ap"] | None = None
    match: Match | None = None
    fallback: bool = Field(False, description="used when nothing else matches")
    extends: list[ProfileName] = Field(default_factory=list)
    scalars: list[ScalarGroup] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)


def _check_names(p: Profile) -> list[str]:
    """Canonical metric and tag names, per measurement: (key path, problem)."""
    problems = []
    for i, g in enumerate(p.scalars):
        for name, src in g.metrics.items():
            if name not in METRICS[g.measurement]:
                problems.append(f"scalars[{i}].metrics.{name}: {_unknown(name, g.measurement)}")
            if src.oid is None:
                problems.append(f"scalars[{i}].metrics.{name}: a scalar needs oid")
        for tag in g.tags:
            if tag not in TAGS[g.measurement]:
                problems.append(f"scalars[{i}].tags.{tag}: {g.measurement} has no tag {tag!r}")
    for i, t in enumerate(p.tables):
        for key, m in t.metrics.items():
            where = f"tables[{i}].metrics.{key}"
            meas, name = metric_target(t, key, m)
            if meas not in METRICS:
                problems.append(f"{where}: no measurement {meas!r} (set it on the table or the metric)")
                continue
            if name not in METRICS[meas]:
                problems.append(f"{where}: {_unknown(name, meas)}")
            for tag in m.by if m.by is not None else t.tags:
                if tag not in t.tags:
                    problems.append(f"{where}.by: {tag!r} is not a tag of table {t.name}")
                elif tag not in TAGS[meas]:
                    problems.append(f"{where}: {meas} has no tag {tag!r} (allowed: {', '.join(sorted(TAGS[meas]))})")
    return problems


def metric_target(table: Table, key: str, metric: Metric) -> tuple[str, str]:
    """(measurement, canonical name) of a table metric. A key may name its measurement,
    ``wifi_ssid.clients``, so that one table can feed two measurements' ``clients``."""
    if "." in key:
        meas, _, name = key.partition(".")
        return meas, name
    return metric.measurement or table.measurement or "", key


def _unknown(name: str, measurement: str) -> str:
    return f"unknown metric {name!r} for {measurement} (known: {', '.join(sorted(METRICS[measurement]))})"


def load_file(path: Path) -> Profile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProfileError(f"{path}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: a profile is a mapping")
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "-" in p))]
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise ProfileError(f"{path}: {format_loc(loc)}: {msg}") from None
    problems = _check_names(profile)
    if problems:
        raise ProfileError(f"{path}: {problems[0]}")
    if profile.name != path.stem:
        raise ProfileError(f"{path}: name: {profile.name!r} differs from the file name {path.stem!r}")
    return profile


@dataclass(frozen=True)
class Resolved:
    """A profile with its ``extends`` chain flattened: what a poll uses."""

    name: str
    vendor: str | None
    kind: str | None
    scalars: tuple[ScalarGroup, ...]
    tables: tuple[Table, ...]
    chain: tuple[str, ...] = ()

    def interface_table(self) -> Table | None:
        return next((t for t in self.tables if t.measurement == "if_traffic"), None)

    def columns(self) -> list[str]:
        """Every column OID a poll walks: metrics, tags, lookups, filters (once each)."""
        out: dict[str, None] = {}
        for t in self.tables:
            for src in (*t.tags.values(), *t.metrics.values()):
                out.update(dict.fromkeys(source_columns(t, src)))
                if isinstance(src, Source):
                    for step in src.transform:
                        if isinstance(step, PercentOfCol):
                            out[f"{t.oid}.{step.percent_of_col}"] = None
                        elif step == "entity_sensor":
                            out.update(dict.fromkeys((f"{t.oid}.2", f"{t.oid}.3")))
            if t.where:
                out[f"{t.oid}.{t.where.col}"] = None
        return list(out)

    def metric_columns(self) -> list[str]:
        """The columns that carry values (not tags or lookups): a device with none of them
        lacks everything the profile measures."""
        return [c for t in self.tables for m in t.metrics.values() for c in source_columns(t, m) if not m.lookup]

    def scalar_oids(self) -> list[str]:
        return list(dict.fromkeys(s.oid for g in self.scalars for s in g.metrics.values() if s.oid))


def source_columns(table: Table, src: Source) -> list[str]:
    if src.col is not None:
        return [f"{table.oid}.{src.col}"]
    if src.oid is not None:
        return [src.oid]
    if src.lookup is not None:
        return [src.lookup]
    return []


@dataclass
class Catalog:
    """Every known profile, by name."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    origins: dict[str, Path] = field(default_factory=dict)

    def resolve(self, name: str, _seen: tuple[str, ...] = ()) -> Resolved:
        if name in _seen:
            raise ProfileError(f"{self.origins.get(name, name)}: extends: cycle {' -> '.join((*_seen, name))}")
        p = self.profiles.get(name)
        if p is None:
            where = self.origins.get(_seen[-1], _seen[-1]) if _seen else "profile"
            raise ProfileError(f"{where}: extends: unknown profile {name!r}")
        tables: dict[str, Table] = {}
        scalars: list[ScalarGroup] = []
        vendor: str | None = None
        kind: str | None = None
        chain: list[str] = []
        for parent in p.extends:
            r = self.resolve(parent, (*_seen, name))
            tables.update({t.name: t for t in r.tables})
            scalars.extend(r.scalars)
            vendor, kind = r.vendor or vendor, r.kind or kind
            chain.extend(c for c in r.chain if c not in chain)
        tables.update({t.name: t for t in p.tables})  # a child's table replaces a parent's of the same name
        scalars.extend(p.scalars)
        chain.append(name)
        return Resolved(name=name, vendor=p.vendor or vendor, kind=p.kind or kind, scalars=tuple(scalars),
                        tables=tuple(tables.values()), chain=tuple(chain))

    def probe_oids(self) -> list[str]:
        return sorted({p.match.probe_oid for p in self.profiles.values() if p.match and p.match.probe_oid})

    def match(self, sys_object_id: str, answered: Iterable[str] = ()) -> Resolved | None:
        """The profile for a device: the most specific sysObjectID glob, then a probe OID
        it answered, then the fallback profile."""
        best: tuple[int, str] | None = None
        for name, p in self.profiles.items():
            for pattern in p.match.sysobjectid if p.match else ():
                if sys_object_id and fnmatch.fnmatchcase(sys_object_id, pattern):
                    score = len(pattern.replace("*", ""))
                    if best is None or score > best[0]:
                        best = (score, name)
        if best:
            return self.resolve(best[1])
        got = set(answered)
        for name, p in sorted(self.profiles.items()):
            if p.match and p.match.probe_oid in got:
                return self.resolve(name)
        fallback = sorted(n for n, p in self.profiles.items() if p.fallback)
        return self.resolve(fallback[0]) if fallback else None


def load_catalog(extra_dirs: Sequence[Path] = ()) -> Catalog:
    """The shipped profiles, then each extra directory's (which override by name).
    Every profile's ``extends`` chain is checked here, so a bad one fails at start-up."""
    cat = Catalog()
    for d in (BUILTIN_DIR, *extra_dirs):
        if not d.is_dir():
            raise ProfileError(f"{d}: profile directory does not exist")
        for path in sorted(d.glob("*.yaml")):
            p = load_file(path)
            cat.profiles[p.name] = p
            cat.origins[p.name] = path
    for name in cat.profiles:
        cat.resolve(name)
    return cat


_builtin: Catalog | None = None


def builtin_catalog() -> Catalog:
    global _builtin
    if _builtin is None:
        _builtin = load_catalog()
    return _builtin
