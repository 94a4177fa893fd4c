"""The web dashboard (issue 11, docs/web.md): pages, JSON API and live push, served by the
collector process that runs the alert engine, whose subscription sees every reading of its
wards in order. Live state comes from that subscription; history from InfluxDB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from wardwatch.collector.alerts.service import AlertService


def attach(service: AlertService, *, influx: Any) -> list[web.RouteDef]:
    """Every route of the dashboard; registers its live state as an observer of ``service``."""
    return []
