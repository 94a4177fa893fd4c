"""The web dashboard (issue 11, docs/web.md): pages, JSON API and live push, served by the
collector process that runs the alert engine, whose subscription sees every reading of its
wards in order. Live state comes from that subscription; history from InfluxDB.

Modules: live.py (the Fleet: live state, an observer of the alert service), api.py (JSON
API and ``/api/v1/events``), auth.py (login, session cookie, CSRF; the middleware is in
collector/http.py), reports.py (``/reports/...``), pages.py (the HTML pages and static files).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from wardwatch.collector.alerts.service import AlertService

log = logging.getLogger(__name__)


def attach(service: AlertService, *, influx: Any) -> list[web.RouteDef]:
    """Every route of the dashboard; registers its live state as an observer of ``service``.
    (``/login`` and ``/logout`` come with the HTTP server itself: collector/http.py.)"""
    from wardwatch.collector.web import api, reports
    from wardwatch.collector.web.live import Fleet

    cfg = service.cfg
    shown = None if service.acfg.wards == ["*"] else list(service.acfg.wards)
    fleet = Fleet(wards=cfg.wards, tz=service.tz, stale_after=cfg.stale_after, alerts=service.alerts,
                  shown=shown)
    uptime = api.CityUptime(influx, wards=shown)
    fleet.uptime = uptime.get
    fleet.tick_hooks.append(uptime.maybe_refresh)
    service.observers.append(fleet)
    routes = [*api.routes(api.Api(fleet, service, influx, uptime=uptime)), *reports.routes(cfg, influx)]
    if importlib.util.find_spec("wardwatch.collector.web.pages") is not None:
        from wardwatch.collector.web import pages  # the other half: HTML pages and /static/

        routes.extend(pages.routes(fleet, service, influx))
    else:
        log.info("web: no pages module; serving the JSON API only")
    return routes
