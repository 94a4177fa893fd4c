"""The dashboard's pages (docs/web.md, Pages): the city overview, a ward, a device, the
alerts and the reports, and the static files they load.

A page's first paint is rendered here from the same functions that answer its JSON API
(collector/web/api.py ``wards_doc``, ``ward_doc``, ``device_doc``), so the two cannot
disagree; static/app.js then keeps it current from the event stream (``/api/v1/events``)
and the JSON API, without a reload. Templates are jinja2 with autoescaping on; every
visible string comes from i18n.STRINGS in the language of the ``ww_lang`` cookie.
"""

from __future__ import annotations

import importlib
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from wardwatch.collector.web import i18n

if TYPE_CHECKING:
    from wardwatch.collector.alerts.service import AlertService

log = logging.getLogger(__name__)

HERE: Final = Path(__file__).resolve().parent
STATIC: Final = HERE / "static"
TEMPLATES: Final = HERE / "templates"
REPORT_FORMATS: Final = ("html", "csv", "json")
STATE_ICONS: Final = {"ok": "✓", "degraded": "▲", "down": "✕", "unknown": "?"}
TIME_FORMAT: Final = "%H:%M:%S %d/%m/%Y"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _backend(name: str) -> Any:
    """A function of the backend's modules (api.py, auth.py), or None while it is not there."""
    module, _, attr = name.rpartition(".")
    try:
        mod = importlib.import_module(f"wardwatch.collector.web.{module}")
    except ImportError:
        return None
    return getattr(mod, attr, None)


def lang_of(request: web.Request) -> str:
    return i18n.pick_lang(request.cookies.get(i18n.LANG_COOKIE))


def csrf_of(request: web.Request) -> str:
    fn = _backend("auth.csrf_token")
    if fn is None:
        return ""
    token: str = fn(request)
    return token


def local_time(ms: int | None, tz: ZoneInfo) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz).strftime(TIME_FORMAT)


def _ms_of(doc: dict[str, Any], name: str) -> int | None:
    """``{name}_ms`` of an API document, or its ISO ``{name}`` parsed."""
    ms = doc.get(f"{name}_ms")
    if isinstance(ms, int | float):
        return int(ms) or None  # 0: never
    iso = doc.get(name)
    if isinstance(iso, str) and iso:
        try:
            return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return None
    return None


def pct(value: object) -> str:
    if not isinstance(value, int | float):
        return "\u2013"
    return f"{value:.2f} %" if value < 99.995 else "100 %"


class Pages:
    """The page handlers over one Fleet (live state) and the alert service."""

    def __init__(self, fleet: Any, service: AlertService, influx: Any) -> None:
        self.fleet = fleet
        self.service = service
        self.influx = influx
        self.tz: ZoneInfo = service.tz

    # rendering

    def render(self, request: web.Request, template: str, *, page: str, status: int = 200,
               **context: Any) -> web.Response:  # fmt: skip
        lang = lang_of(request)

        def t(key: str, **values: object) -> str:
            return i18n.text(key, lang, **values)

        boot = {
            "page": page,
            "lang": lang,
            "tz": self.tz.key,
            "strings": i18n.strings_for(lang),
            "icons": STATE_ICONS,
            **context.pop("boot", {}),
        }
        html = _env.get_template(template).render(
            t=t,
            lang=lang,
            page=page,
            csrf=csrf_of(request),
            tz=self.tz.key,
            icons=STATE_ICONS,
            reason=lambda code: i18n.reason_words(code, lang),
            when=lambda doc, name="since": local_time(_ms_of(doc, name), self.tz),
            pct=pct,
            kinds=i18n.KINDS,
            boot=boot,
            auth_on=self.service.cfg.http.token is not None,
            **context,
        )
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")  # fmt: skip

    def _doc(self, name: str, *args: str) -> tuple[bool, dict[str, Any] | None]:
        """(backend present, its document): the API function ``name`` of api.py."""
        fn = _backend(f"api.{name}")
        if fn is None:
            return False, None
        doc: dict[str, Any] | None = fn(self.fleet, self.service, *args)
        return True, doc

    # pages

    async def overview(self, request: web.Request) -> web.StreamResponse:
        _, doc = self._doc("wards_doc")
        wards = (doc or {}).get("wards") or []
        up = total = 0
        for w in wards:
            for c in (w.get("counts") or {}).values():
                up += int(c.get("up", 0))
                total += int(c.get("total", 0))
        return self.render(request, "overview.html", page="overview", doc=doc, wards=wards,
                           devices_up=up, devices_total=total,
                           alerts_total=sum(int(w.get("alerts", 0)) for w in wards),
                           generated=local_time(_ms_of(doc or {}, "generated"), self.tz),
                           boot={"doc": doc})  # fmt: skip

    async def ward(self, request: web.Request) -> web.StreamResponse:
        ward = request.match_info["ward"]
        present, doc = self._doc("ward_doc", ward)
        known = ward in self.service.cfg.wards
        if doc is None and (present or not known):
            return self.render(request, "missing.html", page="missing", status=404, what="ward.not_found")
        name = (doc or {}).get("name") or self.service.ward_name(ward)
        devices = sorted((doc or {}).get("devices") or [], key=_device_order)
        return self.render(request, "ward.html", page="ward", ward=ward, name=name, doc=doc, devices=devices,
                           boot={"ward": ward, "doc": doc})  # fmt: skip

    async def device(self, request: web.Request) -> web.StreamResponse:
        ward, device = request.match_info["ward"], request.match_info["device"]
        present, doc = self._doc("device_doc", ward, device)
        if doc is None and (present or ward not in self.service.cfg.wards):
            return self.render(request, "missing.html", page="missing", status=404, what="device.not_found")
        rng = request.query.get("range", "24h")
        if rng not in i18n.RANGES:
            rng = "24h"
        return self.render(request, "device.html", page="device", ward=ward, device=device,
                           ward_name=self.service.ward_name(ward), doc=doc, range=rng, ranges=i18n.RANGES,
                           boot={"ward": ward, "device": device, "doc": doc, "range": rng})  # fmt: skip

    async def alerts(self, request: web.Request) -> web.StreamResponse:
        return self.render(request, "alerts.html", page="alerts", durations=("1h", "4h", "24h"))

    async def reports(self, request: web.Request) -> web.StreamResponse:
        month = request.query.get("month", "")
        if not _is_month(month):
            month = datetime.now(self.tz).strftime("%Y-%m")
        links = [
            {"kind": kind, "formats": [(fmt, f"/reports/{kind}.{fmt}?month={month}") for fmt in REPORT_FORMATS]}
            for kind in i18n.REPORT_KINDS
        ]
        return self.render(request, "reports.html", page="reports", month=month, links=links)

    # static files

    async def static(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        path = (STATIC / rel).resolve()
        if not path.is_relative_to(STATIC) or not path.is_file() or path.name.startswith("."):
            raise web.HTTPNotFound()
        ctype, _ = mimetypes.guess_type(path.name)
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if ctype is not None:
            headers["Content-Type"] = ctype + ("; charset=utf-8" if ctype.startswith("text/") or
                                               ctype.endswith("javascript") else "")  # fmt: skip
        return web.FileResponse(path, headers=headers)


def _is_month(text: str) -> bool:
    if len(text) != 7 or text[4] != "-":
        return False
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError:
        return False
    return True


_STATE_RANK: Final = {"down": 0, "degraded": 1, "unknown": 2, "ok": 3}
_KIND_RANK: Final = {"switch": 0, "ap": 1, "camera": 2}


def _device_order(d: dict[str, Any]) -> tuple[int, int, str]:
    """Problems first, then switches, APs, cameras, by id."""
    return _STATE_RANK.get(str(d.get("state")), 9), _KIND_RANK.get(str(d.get("kind")), 9), str(d.get("id"))


def render_login(request: web.Request, *, next: str = "/", error: str = "", status: int = 200) -> web.Response:
    """The login form (auth.py shows it on GET /login and after a failed POST)."""
    lang = lang_of(request)

    def t(key: str, **values: object) -> str:
        return i18n.text(key, lang, **values)

    html = _env.get_template("login.html").render(
        t=t, lang=lang, next=next if next.startswith("/") and not next.startswith("//") else "/",
        error=error if error in ("bad_token", "rate_limited") else "", csrf="",
    )  # fmt: skip
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def routes(fleet: Any, service: AlertService, influx: Any) -> list[web.RouteDef]:
    """The pages and ``/static/``; attach() puts them behind the session auth (static is open)."""
    p = Pages(fleet, service, influx)
    return [
        web.get("/", p.overview),
        web.get("/ward/{ward}", p.ward),
        web.get("/device/{ward}/{device}", p.device),
        web.get("/alerts", p.alerts),
        web.get("/reports", p.reports),
        web.get("/static/{path:.+}", p.static, allow_head=True),
    ]
