"""``GET /reports/{kind}.{html|csv|json}?month=YYYY-MM[&ward=ID]``: a report of one local
month (the deployment's zone), built by the same code as ``wardwatch-collector report``
(collector/reports/, docs/reports.md) with each report's default options.

At most :data:`CONCURRENT` reports are built at once (a month of capacity reads many
series); another request meanwhile gets 503 and may try again.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from wardwatch import wire
from wardwatch.collector.config import CollectorConfig
from wardwatch.collector.influx import InfluxError
from wardwatch.collector.reports import formats
from wardwatch.collector.reports.model import Period

log = logging.getLogger(__name__)

KINDS: Final = ("uptime", "coverage", "capacity")
FORMATS: Final = {"html": "text/html", "csv": "text/csv", "json": "application/json"}
MONTH_RE: Final = re.compile(r"^(\d{4})-(\d{2})$")
CONCURRENT: Final = 2
TIMEOUT_S: Final = 300.0
OLDEST_YEAR: Final = 2000


def month_period(text: str, tz: Any, *, now: datetime | None = None) -> Period:
    """``YYYY-MM`` as [first day 00:00, next month's first day 00:00) local time, cut at
    now (the next whole minute) for the month under way: the month so far, not empty steps
    to come. ValueError for a malformed month or one that has not begun."""
    m = MONTH_RE.match(text)
    if m is None:
        raise ValueError("month: YYYY-MM, e.g. 2026-11")
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12 or year < OLDEST_YEAR:
        raise ValueError(f"month: {text!r} is not a month")
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    now = now or datetime.now(tz)
    if start > now:
        raise ValueError(f"month: {text} has not begun")
    end_ms = min(int(end.timestamp() * 1000), (int(now.timestamp()) // 60 + 1) * 60_000)
    return Period(start_ms=int(start.timestamp() * 1000), end_ms=end_ms, tz=tz)


def _options(kind: str) -> dict[str, Any]:
    from wardwatch.collector.cli import REPORT_OPTIONS

    return dict(REPORT_OPTIONS[kind])


class Reports:
    def __init__(self, cfg: CollectorConfig, influx: Any) -> None:
        self.cfg = cfg
        self.influx = influx
        self.busy = asyncio.Semaphore(CONCURRENT)

    async def report(self, request: web.Request) -> web.StreamResponse:
        kind, fmt = request.match_info["kind"], request.match_info["fmt"]
        if kind not in KINDS or fmt not in FORMATS:
            return web.json_response({"error": f"no report {kind}.{fmt}; kinds {', '.join(KINDS)}, formats "
                                      f"{', '.join(FORMATS)}"}, status=404)
        ward = request.query.get("ward") or None
        if ward is not None and not wire.NAME_RE.match(ward):
            return web.json_response({"error": "ward: not a ward id"}, status=400)
        tz = self.cfg.tz
        try:
            period = month_period(request.query.get("month") or datetime.now(tz).strftime("%Y-%m"), tz)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if self.busy.locked():
            return web.json_response({"error": "reports are being built; try again shortly"}, status=503,
                                     headers={"Retry-After": "10"})
        build = importlib.import_module(f"wardwatch.collector.reports.{kind}").build
        async with self.busy:
            try:
                result = await asyncio.wait_for(
                    build(self.influx, period=period, wards=[ward] if ward else [], cfg=self.cfg,
                          options=_options(kind)), TIMEOUT_S)
            except (InfluxError, TimeoutError) as exc:
                log.warning("web: report %s for %s not built: %s", kind, request.query.get("month"), exc)
                return web.json_response({"error": f"InfluxDB did not answer: {exc or 'timed out'}"}, status=503)
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
        body = formats.render(result, fmt)
        month = datetime.fromtimestamp(period.start_ms / 1000, tz).strftime("%Y-%m")
        name = f"{kind}-{month}{'-' + ward if ward else ''}.{fmt}"
        disposition = "inline" if fmt != "csv" else "attachment"
        return web.Response(body=body, content_type=FORMATS[fmt], charset="utf-8", headers={
            "Content-Disposition": f'{disposition}; filename="{name}"', "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})


def routes(cfg: CollectorConfig, influx: Any) -> list[web.RouteDef]:
    r = Reports(cfg, influx)
    return [web.get(r"/reports/{kind:[a-z]+}.{fmt:[a-z]+}", r.report)]
