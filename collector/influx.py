"""Writing line protocol to InfluxDB's v1 HTTP API (``/write``, ``/query``, ``/ping``).

aiohttp errors stop here: callers see only

- :class:`InfluxUnavailable`: try again later, the data is fine (connection refused,
  timeout, 5xx, and also 401/403/404, where the server's set-up rather than the data is
  wrong: keeping the data until an operator fixes it beats throwing it away);
- :class:`InfluxRejected`: InfluxDB refused the data itself (400 bad line protocol or a
  field type conflict, 413 too large); retrying the same bytes cannot succeed. Its
  message carries InfluxDB's own error text.

Both carry the HTTP status, when there was one, and :attr:`InfluxError.retry_after`, the
seconds of a ``Retry-After`` header (a 429 or 503 from InfluxDB Cloud or a proxy), which
the Store's backoff honours.

:func:`open_influx` at the bottom picks the writer: this module's v1 writer, or the v2
writer in collector/influx_v2.py (``influx.api: v2``).

Credentials go in an ``Authorization: Basic`` header, never the URL, so that no error
message or log line can carry them.
"""

from __future__ import annotations

import json
import logging
import ssl
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import aiohttp

if TYPE_CHECKING:
    from wardwatch.collector.config import InfluxSection

log = logging.getLogger(__name__)

_ERROR_TEXT_MAX: Final = 500
# Not the data's fault: keep it and retry.
_RETRYABLE_4XX: Final = frozenset({401, 403, 404, 408, 429})


class InfluxError(Exception):
    """Base of the writer's errors."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class InfluxUnavailable(InfluxError):
    """InfluxDB could not take the write now; the same data may succeed later."""


class InfluxRejected(InfluxError):
    """InfluxDB refused the data itself; retrying the same bytes will not help."""


_NETWORK_ERRORS: Final = (aiohttp.ClientError, TimeoutError, OSError)


class InfluxV1Writer:
    """An async context manager owning one aiohttp session to one InfluxDB."""

    def __init__(
        self,
        *,
        url: str,
        database: str,
        rp: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.rp = rp
        self._auth = aiohttp.BasicAuth(username, password or "") if username else None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"InfluxV1Writer(url={self.url!r}, database={self.database!r}, rp={self.rp!r})"

    async def __aenter__(self) -> InfluxV1Writer:
        self._session = aiohttp.ClientSession(auth=self._auth, timeout=self._timeout, connector=self._connector())
        return self

    def tls_context(self) -> ssl.SSLContext | None:
        """For an https:// url, the system's trust store (``SSL_CERT_FILE`` and
        ``SSL_CERT_DIR`` honoured), read when the writer opens; None for http://."""
        return ssl.create_default_context() if self.url.startswith("https://") else None

    def _connector(self) -> aiohttp.TCPConnector | None:
        tls = self.tls_context()
        return aiohttp.TCPConnector(ssl=tls) if tls is not None else None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("InfluxV1Writer used outside 'async with'")
        return self._session

    async def write(self, lines: list[bytes]) -> None:
        """POST the lines in one request; return once InfluxDB answered 204."""
        if not lines:
            return
        params = {"db": self.database, "precision": "ms"}
        if self.rp:
            params["rp"] = self.rp
        body = b"\n".join(lines)
        status, text, retry_after = await self._request(
            "POST", "/write", params=params, data=body, headers={"Content-Type": "text/plain; charset=utf-8"}
        )
        if status == 204:
            return
        what = f"InfluxDB {self.url} answered {status} to a write of {len(lines)} points: {error_text(text)}"
        raise write_error(status, what, retry_after)

    async def ping(self) -> str:
        """Return the server's version once ``/ping`` answers 204."""
        try:
            async with self.session.get(f"{self.url}/ping") as resp:
                await resp.read()
                if resp.status != 204:
                    raise InfluxUnavailable(f"InfluxDB {self.url}/ping answered {resp.status}", status=resp.status)
                return resp.headers.get("X-Influxdb-Version", "unknown")
        except _NETWORK_ERRORS as exc:
            raise InfluxUnavailable(f"InfluxDB {self.url}: {_describe(exc)}") from None

    async def ensure_database(self) -> None:
        """``CREATE DATABASE``, which is a no-op when it exists."""
        quoted = self.database.replace("\\", "\\\\").replace('"', '\\"')
        await self.query(f'CREATE DATABASE "{quoted}"')

    async def query(self, q: str, *, epoch: str | None = None) -> list[dict[str, Any]]:
        """Run one InfluxQL statement via POST /query; return its ``results``.

        An error inside a 200 answer (InfluxQL reports most errors that way) raises
        InfluxRejected; transport trouble raises InfluxUnavailable.
        """
        form = self._query_form(q)
        if epoch is not None:  # times as integers in this unit, not RFC 3339 text
            form["epoch"] = epoch
        status, text, retry_after = await self._request("POST", "/query", data=form)
        if status >= 500 or status in _RETRYABLE_4XX:
            raise InfluxUnavailable(
                f"InfluxDB {self.url} answered {status} to a query: {error_text(text)}",
                status=status,
                retry_after=retry_after,
            )
        if status != 200:
            raise InfluxRejected(
                f"InfluxDB {self.url} answered {status} to a query: {error_text(text)}", status=status
            )
        try:
            doc = json.loads(text)
        except ValueError:
            raise InfluxUnavailable(f"InfluxDB {self.url} sent a query answer that is not JSON") from None
        results: list[dict[str, Any]] = doc.get("results", []) if isinstance(doc, dict) else []
        for result in results:
            if "error" in result:
                raise InfluxRejected(f"InfluxDB {self.url}: {str(result['error'])[:_ERROR_TEXT_MAX]}", status=status)
        return results

    def _query_form(self, q: str) -> dict[str, str]:
        """The ``/query`` form: the statement, its database and, when set, the retention
        policy the points are written to (without ``rp`` InfluxQL reads the database's
        default RP, where points written to another are not). 2.x maps db/rp to a bucket
        through its DBRP mapping; 3.x to the database ``db`` (or ``db/rp``)."""
        form = {"q": q, "db": self.database}
        if self.rp:
            form["rp"] = self.rp
        return form

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, str, float | None]:
        try:
            async with self.session.request(method, f"{self.url}{path}", **kwargs) as resp:
                text = await resp.text(errors="replace")
                return resp.status, text, retry_after_seconds(resp.headers.get("Retry-After"))
        except _NETWORK_ERRORS as exc:
            raise InfluxUnavailable(f"InfluxDB {self.url}: {_describe(exc)}") from None


def write_error(status: int, what: str, retry_after: float | None = None) -> InfluxError:
    """The error for a write InfluxDB answered with ``status`` (not 2xx), by whose fault it is.
    The v1 and v2 writers share it, so that both sort the same answers the same way."""
    if status >= 500 or status in _RETRYABLE_4XX:
        return InfluxUnavailable(what, status=status, retry_after=retry_after)
    if 400 <= status < 500:
        return InfluxRejected(what, status=status, retry_after=retry_after)
    return InfluxUnavailable(what, status=status, retry_after=retry_after)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (its delay-seconds form; an HTTP date counts as absent)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text[:_ERROR_TEXT_MAX]


def error_text(body: str) -> str:
    """InfluxDB's ``{"error": "..."}`` (1.x, 3.x) or ``{"code": ..., "message": "..."}`` (2.x,
    Cloud), or the start of whatever it sent."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    text = body.strip()
    if isinstance(doc, dict):
        text = next((v for k in ("error", "message") if isinstance(v := doc.get(k), str)), text)
    text = text or "(no error text)"
    return text[:_ERROR_TEXT_MAX]


def open_influx(icfg: InfluxSection) -> InfluxV1Writer:
    """The writer the ``influx:`` section asks for, to use as ``async with open_influx(cfg.influx)``.
    Every process of the collector (the pipeline, the lone alert engine, the reports) opens
    InfluxDB through this one place. ``api: v2`` gives the influxdb-client writer
    (collector/influx_v2.py), which shares this writer's ``/query``, ``/ping`` and errors."""
    if icfg.api == "v2":
        from wardwatch.collector.influx_v2 import InfluxV2Writer  # influxdb-client: imported only when used

        assert icfg.token is not None and icfg.org is not None  # the config requires both for v2
        return InfluxV2Writer(
            url=icfg.url,
            token=icfg.token.get_secret_value(),
            org=icfg.org,
            bucket=icfg.bucket or (f"{icfg.database}/{icfg.rp}" if icfg.rp else icfg.database),
            database=icfg.database,
            rp=icfg.rp,
            timeout=icfg.timeout,
        )
    password = icfg.password.get_secret_value() if icfg.password else None
    return InfluxV1Writer(url=icfg.url, database=icfg.database, rp=icfg.rp, username=icfg.username,
                          password=password, timeout=icfg.timeout)
