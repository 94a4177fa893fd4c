"""The dashboard's JSON API and its live push (docs/web.md, "API" and "Live updates").

- ``GET /api/v1/wards``: every ward's summary and the city's uptime (24 h, 30 d);
- ``GET /api/v1/wards/{ward}``: a ward's devices and active alerts;
- ``GET /api/v1/devices/{ward}/{device}``: one device;
- ``GET /api/v1/devices/{ward}/{device}/series?range=24h|7d|30d[&port=]``: its history
  from InfluxDB, ``GROUP BY time(step)`` with at most :data:`MAX_POINTS` steps;
- ``GET /api/v1/events``: server-sent events of every change the Fleet sees.

The live parts answer from memory (live.py); only the series and the uptime read InfluxDB,
the uptime from a cache refreshed in the background (:class:`CityUptime`), so the overview
never waits on a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from aiohttp import web

from wardwatch import wire
from wardwatch.collector.alerts.api import alert_json
from wardwatch.collector.http import STOPPING
from wardwatch.collector.influx import InfluxError
from wardwatch.collector.web.live import Fleet, iso_local

log = logging.getLogger(__name__)

RANGES: Final = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
MAX_POINTS: Final = 500
STEPS: Final = (60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
BUSIEST: Final = 4  # switch ports charted when no ?port= is given
PORT_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,63}$")
QUERY_TIMEOUT_S: Final = 10.0
UPTIME_EVERY_S: Final = 60.0
UPTIME_FULL_EVERY_S: Final = 3600.0
UPTIME_RECENT_H: Final = 3  # hours re-read on every refresh (late and backfilled readings)
PING_S: Final = 15.0
CLIENT_QUEUE: Final = 1000
MAX_CLIENTS: Final = 200
RETRY_MS: Final = 2000
_SEVERITY_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}


class Queryable(Protocol):
    async def query(self, q: str, *, epoch: str | None = None) -> list[dict[str, Any]]: ...


class Backend(Protocol):
    """What the API needs of the alert service (collector/alerts/service.py)."""

    def alerts(self) -> list[Any]: ...
    def timezone(self) -> Any: ...
    def ward_name(self, ward: str) -> str: ...


def choose_step(range_s: int, *, least: float = 60) -> int:
    """The smallest of :data:`STEPS` giving at most :data:`MAX_POINTS` steps over
    ``range_s`` and not shorter than ``least`` (the device's poll interval)."""
    for step in STEPS:
        if step >= least and math.ceil(range_s / step) <= MAX_POINTS:
            return step
    return STEPS[-1]


def _q(text: str) -> str:
    """A tag value inside InfluxQL single quotes."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _rows(result: dict[str, Any]) -> list[tuple[dict[str, str], list[str], list[list[Any]]]]:
    return [(s.get("tags") or {}, s["columns"], s["values"]) for s in result.get("series", [])]


def _num(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return round(float(value), 3)
    return None


# City uptime --------------------------------------------------------------------------


class CityUptime:
    """mean(device_status.up) over the last 24 h and 30 d, from hourly sums and counts.

    Unknown time has no readings and so is left out, as in ``report uptime``; unlike it,
    each reading weighs the same (a device polled every 60 s counts five times one polled
    every 300 s) and maintenance windows are not taken out. Refreshed in the background:
    the last :data:`UPTIME_RECENT_H` hours every minute, all 30 days every hour.
    """

    def __init__(self, influx: Queryable, *, wards: list[str] | None) -> None:
        self.influx = influx
        self.wards = wards  # None: all
        self.hours: dict[int, tuple[float, int]] = {}  # hour start (ms) -> (sum(up), count(up))
        self.value: dict[str, float | None] = {"24h": None, "30d": None}
        self.refreshed = 0.0
        self.full = 0.0
        self.last_query_s: float | None = None
        self._task: asyncio.Task[None] | None = None

    def get(self) -> dict[str, float | None]:
        return self.value

    def maybe_refresh(self, now_ms: int) -> None:
        """From the Fleet's tick (on the loop): start a refresh when due, never wait for it."""
        if self._task is not None and not self._task.done():
            return
        if time.monotonic() - self.refreshed < UPTIME_EVERY_S and self.refreshed:
            return
        self._task = asyncio.get_running_loop().create_task(self.refresh(now_ms), name="web-uptime")

    async def refresh(self, now_ms: int) -> None:
        mono = time.monotonic()
        full = not self.full or mono - self.full >= UPTIME_FULL_EVERY_S
        hour = 3_600_000
        end = now_ms // hour * hour + hour
        start = end - (30 * 24 + 1) * hour if full else end - UPTIME_RECENT_H * hour
        where = ""
        if self.wards:
            where = " AND (" + " OR ".join(f"ward = '{_q(w)}'" for w in self.wards) + ")"
        q = (f"SELECT sum(up), count(up) FROM device_status WHERE time >= {start}ms AND time < {end}ms{where} "
             f"GROUP BY time(1h)")
        try:
            t0 = time.monotonic()
            results = await asyncio.wait_for(self.influx.query(q, epoch="ms"), timeout=60.0)
            self.last_query_s = time.monotonic() - t0
        except (InfluxError, TimeoutError) as exc:
            log.warning("web: city uptime not refreshed: %s", exc)
            self.refreshed = mono  # try again in a minute, not every second
            return
        fresh: dict[int, tuple[float, int]] = {}
        for result in results:
            for _tags, cols, values in _rows(result):
                i_sum, i_count = cols.index("sum"), cols.index("count")
                for row in values:
                    if row[i_count]:
                        fresh[int(row[0])] = (float(row[i_sum] or 0), int(row[i_count]))
        for t in [t for t in self.hours if t >= start]:
            del self.hours[t]
        self.hours.update(fresh)
        for t in [t for t in self.hours if t < end - 31 * 24 * hour]:
            del self.hours[t]
        self.value = {"24h": self._pct(now_ms - 86_400_000), "30d": self._pct(now_ms - 30 * 86_400_000)}
        self.refreshed = mono
        if full:
            self.full = mono

    def _pct(self, since_ms: int) -> float | None:
        s = n = 0.0
        for t, (up, count) in self.hours.items():
            if t >= since_ms - 3_599_999:  # the hour the window starts in counts whole
                s += up
                n += count
        return round(100 * s / n, 3) if n else None


# Live push ------------------------------------------------------------------------------


class Hub:
    """Fan-out of the Fleet's changes to every ``/api/v1/events`` client: one bounded queue
    each; a client that falls :data:`CLIENT_QUEUE` events behind is dropped (its browser
    reconnects and fetches the state afresh)."""

    def __init__(self, fleet: Fleet) -> None:
        self.clients: set[asyncio.Queue[bytes | None]] = set()
        self.dropped = 0
        fleet.listeners.append(self.publish)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        if not self.clients:
            return
        message = f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()
        for q in list(self.clients):
            try:
                q.put_nowait(message)
            except asyncio.QueueFull:
                self.drop(q)

    def drop(self, q: asyncio.Queue[bytes | None]) -> None:
        self.clients.discard(q)
        self.dropped += 1
        while not q.empty():
            q.get_nowait()
        q.put_nowait(None)


# The documents (the pages render from the same functions: STYLE 13) ----------------------


def ward_alerts(backend: Backend, ward: str) -> list[dict[str, Any]]:
    """A ward's pending and firing alerts, firing first, then by severity, newest first."""
    found = [a for a in backend.alerts() if a.state in ("firing", "pending") and a.labels.get("ward") == ward]
    found.sort(key=lambda a: (a.state != "firing", _SEVERITY_ORDER.get(a.severity, 9), -a.started_ms))
    return [alert_json(a, backend) for a in found]  # type: ignore[arg-type]


def wards_doc(fleet: Fleet, backend: Backend) -> dict[str, Any]:
    """``GET /api/v1/wards``."""
    return fleet.wards_json()


def ward_doc(fleet: Fleet, backend: Backend, ward: str) -> dict[str, Any] | None:
    """``GET /api/v1/wards/{ward}``; None for a ward it does not know."""
    body = fleet.ward_json(ward)
    if body is None:
        return None
    body["alerts_firing"] = body["alerts"]  # the count; the list replaces it
    body["alerts"] = ward_alerts(backend, ward)
    return body


def device_doc(fleet: Fleet, backend: Backend, ward: str, device: str) -> dict[str, Any] | None:
    """``GET /api/v1/devices/{ward}/{device}``; None for a device it does not know."""
    return fleet.device_json(ward, device)


# Handlers -------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _json(body: Any) -> web.Response:
    return web.json_response(body, dumps=_dumps, headers={"Cache-Control": "no-store"})


class Api:
    def __init__(self, fleet: Fleet, backend: Backend, influx: Queryable, *, uptime: CityUptime) -> None:
        self.fleet = fleet
        self.b = backend
        self.influx = influx
        self.uptime = uptime
        self.hub = Hub(fleet)
        self._watcher: asyncio.Task[None] | None = None

    async def _end_on(self, stopping: asyncio.Event) -> None:
        """At shutdown, end every stream now (the server would wait for them)."""
        await stopping.wait()
        for q in list(self.hub.clients):
            self.hub.drop(q)

    async def wards(self, request: web.Request) -> web.StreamResponse:
        return _json(wards_doc(self.fleet, self.b))

    async def ward(self, request: web.Request) -> web.StreamResponse:
        ward = request.match_info["ward"]
        body = ward_doc(self.fleet, self.b, ward)
        if body is None:
            return _error(404, f"no ward {ward!r}")
        return _json(body)

    async def device(self, request: web.Request) -> web.StreamResponse:
        ward, device = request.match_info["ward"], request.match_info["device"]
        body = device_doc(self.fleet, self.b, ward, device)
        if body is None:
            return _error(404, f"no device {device!r} in ward {ward!r}")
        return _json(body)

    async def series(self, request: web.Request) -> web.StreamResponse:
        ward, device = request.match_info["ward"], request.match_info["device"]
        dev = self.fleet.device(ward, device)
        if dev is None or not wire.NAME_RE.match(ward) or not wire.NAME_RE.match(device):
            return _error(404, f"no device {device!r} in ward {ward!r}")
        rng = request.query.get("range", "24h")
        if rng not in RANGES:
            return _error(400, f"range: one of {', '.join(RANGES)}")
        port = request.query.get("port") or None
        if port is not None and not PORT_RE.match(port):
            return _error(400, "port: not a port name")
        range_s = RANGES[rng]
        step = choose_step(range_s, least=min(dev.interval_s, 3600))
        end_ms = (int(time.time()) // step + 1) * step * 1000
        start_ms = end_ms - math.ceil(range_s / step) * step * 1000
        try:
            body = await asyncio.wait_for(
                self._series(dev.kind, ward, device, start_ms=start_ms, end_ms=end_ms, step=step, port=port),
                QUERY_TIMEOUT_S)
        except (InfluxError, TimeoutError) as exc:
            log.warning("web: series of %s/%s not read: %s", ward, device, exc or "timed out")
            return _error(503, f"InfluxDB did not answer: {exc or 'timed out'}")
        return _json({"range": rng, "step_s": step, "kind": dev.kind, "from_ms": start_ms, "to_ms": end_ms,
                      "from": iso_local(start_ms, self.fleet.tz), "to": iso_local(end_ms, self.fleet.tz), **body})

    async def _series(self, kind: str, ward: str, device: str, *, start_ms: int, end_ms: int, step: int,
                      port: str | None) -> dict[str, Any]:  # fmt: skip
        where = f"ward = '{ward}' AND device = '{device}' AND time >= {start_ms}ms AND time < {end_ms}ms"
        by = f"GROUP BY time({step}s)"
        out: dict[str, Any] = {}
        series: dict[str, dict[str, Any]] = {}
        stmts = [f"SELECT mean(rtt_ms) AS rtt_ms, mean(loss_pct) AS loss_pct FROM device_status "
                 f"WHERE {where} {by} fill(null)"]
        if kind == "switch":
            recent = f"ward = '{ward}' AND device = '{device}' AND time > now() - 1h"
            busy = await self.influx.query(
                f"SELECT mean(in_bps) AS i, mean(out_bps) AS o FROM if_traffic WHERE {recent} GROUP BY if_name",
                epoch="ms")
            load = []
            for tags, _cols, values in _rows(busy[0] if busy else {}):
                total = sum(v for v in values[0][1:] if isinstance(v, (int, float))) if values else 0
                load.append((-total, tags.get("if_name", "")))
            ports = [p for _, p in sorted(load)]
            out["ports"] = ports
            chosen = [port] if port else ports[:BUSIEST]
            if chosen:
                which = " OR ".join(f"if_name = '{_q(p)}'" for p in chosen)
                stmts.append(f"SELECT mean(in_bps) AS in_bps, mean(out_bps) AS out_bps FROM if_traffic "
                             f"WHERE {where} AND ({which}) {by}, if_name fill(null)")
        elif kind == "ap":
            stmts.append(f"SELECT mean(clients) AS clients, mean(util_pct) AS util_pct FROM wifi_radio "
                         f"WHERE {where} {by}, radio fill(null)")
        elif kind == "camera":
            stmts.append(f"SELECT mean(clock_skew_s) AS clock_skew_s, mean(bitrate_kbps) AS bitrate_kbps "
                         f"FROM camera_health WHERE {where} {by} fill(null)")
            stmts.append(f"SELECT min(ok) AS ok, online, reason FROM camera_health WHERE {where} {by} fill(null)")
        results = await self.influx.query(";".join(stmts), epoch="ms")
        units = {"rtt_ms": ("ms", "RTT"), "loss_pct": ("%", "loss"), "in_bps": ("bps", "in"),
                 "out_bps": ("bps", "out"), "clients": ("clients", "clients"), "util_pct": ("%", "util"),
                 "clock_skew_s": ("s", "clock skew"), "bitrate_kbps": ("kbps", "bitrate")}
        ap_total: dict[int, float] = {}
        ap_times: list[int] = []
        for index, result in enumerate(results):
            is_timeline = kind == "camera" and index == 2
            for tags, cols, values in _rows(result):
                if is_timeline:
                    out["timeline"] = _timeline(cols, values)
                    continue
                tag = tags.get("if_name") or tags.get("radio") or ""
                for c_i, col in enumerate(cols[1:], start=1):
                    unit, label = units.get(col, ("", col))
                    key = f"{col}:{tag}" if tag else col
                    points: list[list[Any]] = [[int(row[0]), _num(row[c_i])] for row in values]
                    series[key] = {"unit": unit, "label": f"{label} {tag}".strip(), "points": points}
                    if kind == "ap" and col == "clients":
                        if not ap_times:
                            ap_times = [p[0] for p in points]
                        for t, v in points:
                            if v is not None:
                                ap_total[int(t)] = ap_total.get(int(t), 0.0) + float(v)
        if kind == "ap":
            series = {"clients": {"unit": "clients", "label": "clients",
                                  "points": [[t, round(ap_total[t], 3) if t in ap_total else None] for t in ap_times]},
                      **series}
        if kind == "camera":
            out.setdefault("timeline", [])
        out["series"] = series
        return out

    async def events(self, request: web.Request) -> web.StreamResponse:
        if len(self.hub.clients) >= MAX_CLIENTS:
            return _error(503, f"at most {MAX_CLIENTS} live clients")
        q: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=CLIENT_QUEUE)
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache, no-store, no-transform",
            "X-Accel-Buffering": "no",  # a reverse proxy (nginx) must not hold the stream
            "Connection": "keep-alive",
        })
        await resp.prepare(request)
        self.hub.clients.add(q)
        stopping = request.app.get(STOPPING)
        if stopping is not None and self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._end_on(stopping), name="web-events-stop")
        try:
            hello = _dumps({"generated": iso_local(int(time.time() * 1000), self.fleet.tz)})
            await resp.write(f"retry: {RETRY_MS}\nevent: hello\ndata: {hello}\n\n".encode())
            while stopping is None or not stopping.is_set():
                try:
                    message = await asyncio.wait_for(q.get(), PING_S)
                except TimeoutError:
                    message = b": ping\n\n"
                if message is None:  # dropped: too far behind
                    break
                await resp.write(message)  # write drains the transport: no buffering here
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.hub.clients.discard(q)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp


def _timeline(cols: list[str], values: list[list[Any]]) -> list[list[Any]]:
    """``[t_ms, state, reason]`` at each change of (state, reason); state ok, degraded
    (answering but not ok), down (not answering) or unknown (no reading in the step)."""
    i_ok, i_online, i_reason = cols.index("ok"), cols.index("online"), cols.index("reason")
    out: list[list[Any]] = []
    last: tuple[str, str] | None = None
    for row in values:
        ok, online, reason = row[i_ok], row[i_online], row[i_reason]
        if ok is None:
            state, why = "unknown", ""
        elif ok >= 1:
            state, why = "ok", ""
        elif online == 0:
            state, why = "down", reason or "offline"
        else:
            state, why = "degraded", reason or ""
        if (state, why) != last:
            out.append([int(row[0]), state, why])
            last = (state, why)
    return out


def routes(api: Api) -> list[web.RouteDef]:
    return [
        web.get("/api/v1/wards", api.wards),
        web.get("/api/v1/wards/{ward}", api.ward),
        web.get("/api/v1/devices/{ward}/{device}", api.device),
        web.get("/api/v1/devices/{ward}/{device}/series", api.series),
        web.get("/api/v1/events", api.events),
    ]
