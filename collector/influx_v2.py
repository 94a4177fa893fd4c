"""Writing to InfluxDB's v2 API (``/api/v2/write`` with a token, an org and a bucket) through
the ``influxdb-client`` package's async API: InfluxDB 2.x, 3.x (Core, Enterprise), Cloud, and
anything else that speaks that endpoint (VictoriaMetrics, which the tests use).

Only the write goes through influxdb-client. Reads stay InfluxQL on ``/query``, the v1
compatibility endpoint 2.x (through a DBRP mapping), 3.x and Cloud keep, with the same token
in an ``Authorization: Token`` header: every report, the alerts' history and the web
dashboard query InfluxQL, so this writer inherits ``query()`` and ``ping()`` from the v1
writer and only swaps its session's credentials.

The errors are the v1 writer's, sorted the same way (collector/influx.py): a 5xx, timeout,
refused connection, 401/403 (a wrong or revoked token), 404 (no such bucket or org), 408 or
429 is InfluxUnavailable (kept and retried, spooled); a 400 (bad line protocol, a field type
conflict, also a partial write), 413 or 422 (points outside the bucket's retention) is
InfluxRejected, which makes the caller bisect the batch and dead-letter the bad lines.
``Retry-After`` travels as ``retry_after``.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, cast

import aiohttp

from wardwatch.collector.influx import (
    InfluxUnavailable,
    InfluxV1Writer,
    error_text,
    retry_after_seconds,
    write_error,
)

if TYPE_CHECKING:
    from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
    from influxdb_client.client.write_api_async import WriteApiAsync
    from influxdb_client.domain.write_precision import WritePrecision

_NETWORK_ERRORS: Final = (aiohttp.ClientError, TimeoutError, OSError)


class InfluxV2Writer(InfluxV1Writer):
    """An async context manager owning an influxdb-client async client (writes) and an aiohttp
    session with the token (``/query``, ``/ping``), both to one server."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        org: str,
        bucket: str,
        database: str,
        rp: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(url=url, database=database, rp=rp, timeout=timeout)
        self.org = org
        self.bucket = bucket
        self._token = token
        self._timeout_s = timeout
        self._client: InfluxDBClientAsync | None = None
        # WritePrecision.MS is this string; the client's annotation wants the class.
        self._precision = cast("WritePrecision", "ms")
        self._write_api: WriteApiAsync | None = None

    def __repr__(self) -> str:
        return f"InfluxV2Writer(url={self.url!r}, org={self.org!r}, bucket={self.bucket!r})"

    async def __aenter__(self) -> InfluxV2Writer:
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Token {self._token}"}, timeout=self._timeout, connector=self._connector()
        )
        # Its own aiohttp session inside, trusting what /query trusts; the timeout is in
        # milliseconds and bounds a whole request.
        tls: dict[str, Any] = {"ssl_context": ctx} if (ctx := self.tls_context()) is not None else {}
        self._client = InfluxDBClientAsync(
            url=self.url, token=self._token, org=self.org, timeout=int(self._timeout_s * 1000), **tls
        )
        self._write_api = self._client.write_api()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._client is not None:
                await self._client.close()  # type: ignore[no-untyped-call]
        finally:
            self._client = self._write_api = None
            await super().__aexit__(exc_type, exc, tb)

    async def write(self, lines: list[bytes]) -> None:
        """POST the lines in one request (precision ms); return once the server answered 2xx."""
        from influxdb_client.rest import ApiException

        if not lines:
            return
        if self._write_api is None:
            raise RuntimeError("InfluxV2Writer used outside 'async with'")
        body = b"\n".join(lines)  # one bytes record: the client adds nothing per line
        try:
            await self._write_api.write(bucket=self.bucket, org=self.org, record=body, write_precision=self._precision)
        except ApiException as exc:
            status = int(exc.status or 0)
            headers: Any = exc.headers or {}
            detail = error_text(_text(exc.body) or str(exc.reason or ""))
            what = f"InfluxDB {self.url} answered {status} to a write of {len(lines)} points: {detail}"
            raise write_error(status, what, retry_after_seconds(headers.get("Retry-After"))) from None
        except _NETWORK_ERRORS as exc:
            text = "timed out" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)[:500]
            raise InfluxUnavailable(f"InfluxDB {self.url}: {text}") from None

    async def ensure_database(self) -> None:
        """Nothing: a v2 bucket is made by its operator (a token that may write seldom may
        create buckets), and 3.x makes a database at its first write. A write to a bucket
        that is not there answers 404, which keeps the points and retries, and says so."""


def _text(body: object) -> str:
    if isinstance(body, bytes | bytearray):
        return bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        return body
    if body is None:
        return ""
    return json.dumps(body, default=str)
