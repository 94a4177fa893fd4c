"""Debian's victoria-metrics as a real server for the influx api v2 writer: it takes
``/api/v2/write`` (influxdb-client's endpoint; org and bucket are ignored) and InfluxDB line
protocol, keeps each field as a ``{measurement}_{field}`` metric with the tags as labels
(strings become 0), and gives it back through ``/api/v1/export`` after a flush.

Its ``/query`` is not InfluxQL: it answers every statement with a SHOW DATABASES stub.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wardwatch.simulators.lab import LOOPBACK, Service, ServiceError, find_binary, free_port

FLUSH_SETTLE = 1.5  # after /internal/force_flush, until export sees the points (services.md)


def _ready(service: Service, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(f"http://{service.host}:{service.port}/ping", timeout=timeout) as resp:
            return int(resp.status) == 204
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class VictoriaService(Service):
    """One victoria-metrics process; ``stop()`` then ``start()`` brings it back with its data."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def flush(self) -> None:
        """Make everything written so far readable (about FLUSH_SETTLE s later)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as resp:
            resp.read()
        time.sleep(FLUSH_SETTLE)

    def export(self, match: str, *, flush: bool = True) -> list[dict[str, Any]]:
        """Every series matching the selector ``match`` (``{__name__=~"m_.*"}``), as
        ``{"metric": {labels}, "values": [...], "timestamps": [ms...]}``."""
        if flush:
            self.flush()
        q = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=30) as resp:
            body = resp.read().decode()
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def samples(self, match: str, *, flush: bool = True) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
        """``export`` as {sorted labels (with __name__): {timestamp ms: value}}."""
        out: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
        for series in self.export(match, flush=flush):
            key = tuple(sorted(series["metric"].items()))
            out.setdefault(key, {}).update(zip(series["timestamps"], series["values"], strict=True))
        return out


def start_victoria(run_dir: Path, *, attempts: int = 3) -> VictoriaService:
    """victoria-metrics on a free loopback port, its data under ``run_dir``, one day's retention."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        sdir = Path(run_dir).resolve() / f"victoria-{port}"
        sdir.mkdir(parents=True, exist_ok=True)
        svc = VictoriaService(
            name="victoria-metrics",
            argv=[find_binary("victoria-metrics"), f"-storageDataPath={sdir / 'data'}",
                  f"-httpListenAddr={LOOPBACK}:{port}", "-retentionPeriod=1d", "-search.latencyOffset=0s",
                  "-loggerLevel=ERROR"],
            host=LOOPBACK,
            port=port,
            run_dir=sdir,
            log_path=sdir / "victoria.log",
            ready=_ready,
        )
        try:
            svc.start()
        except ServiceError as exc:
            if attempt == attempts or "address already in use" not in str(exc).lower():
                raise
            continue
        return svc
    raise AssertionError("unreachable")
