"""Where the collector's points go: InfluxDB, or the local spool while InfluxDB is away.

- :meth:`Store.write` stores lines durably: it retries InfluxDB with a capped backoff for
  ``spool.after`` seconds, then commits them to the spool (collector/spool.py). While
  InfluxDB stays away, later writes go straight to the spool. If the spool is full or its
  disk fails, it keeps retrying InfluxDB, and the caller does not ack meanwhile.
- :meth:`Store.drain_spool` runs beside it and writes the spool back, oldest first,
  whenever InfluxDB answers. A chunk InfluxDB refuses is written line by line; the lines
  it refuses are dead-lettered.
- InfluxDB refusing the data itself (4xx) raises InfluxRejected to the caller, which finds
  the bad messages.
- The writer is either of open_influx's (collector/influx.py): v1, or v2 through
  influxdb-client. Both raise the same two errors for the same answers, so everything here
  works the same on either; a ``Retry-After`` stretches the backoff (up to BACKOFF_MAX).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

from wardwatch import redact
from wardwatch.aio import first_of
from wardwatch.collector import seqlog
from wardwatch.collector.influx import InfluxRejected, InfluxUnavailable, InfluxV1Writer
from wardwatch.collector.ledger import Counters, DeadLetter
from wardwatch.collector.spool import Spool, SpoolError

log = logging.getLogger(__name__)

BACKOFF_MIN: Final = 0.5
BACKOFF_MAX: Final = 30.0


def honour_retry_after(delay: float, exc: InfluxUnavailable) -> float:
    """The backoff's ``delay``, or longer when the server asked for it (``Retry-After``, a 429
    or 503 from InfluxDB Cloud or a proxy), never past BACKOFF_MAX."""
    if exc.retry_after is None:
        return delay
    return min(max(delay, exc.retry_after), BACKOFF_MAX)


class GaveUp(Exception):
    """A write was abandoned because the collector is shutting down."""


class SpoolIt(Exception):
    """InfluxDB has been away for ``spool.after``: the points go to the spool."""


class Store:
    def __init__(
        self,
        *,
        influx: InfluxV1Writer,
        spool: Spool,
        dead_letter: DeadLetter,
        counters: Counters,
        stop: asyncio.Event,
        spool_after: float,
    ) -> None:
        self.influx = influx
        self.spool = spool
        self.dead_letter = dead_letter
        self.counters = counters
        self.stop = stop
        self.spool_after = spool_after
        self.ok = False  # the last write or ping worked
        self._spooled = asyncio.Event()
        self._db_ready = False
        self._db_lock = asyncio.Lock()

    async def try_write(self, lines: list[bytes], what: str) -> bool:
        """One attempt, no retry and no spool: for derived points that are written again later."""
        try:
            await self.ensure_database()
            await self.influx.write(lines)
        except InfluxUnavailable as exc:
            if self.ok:
                log.warning("%s", exc)
            self.down()
            return False
        except InfluxRejected as exc:
            log.warning("InfluxDB refused %s: %s", what, exc)
            return False
        self.up()
        return True

    async def write(self, lines: list[bytes]) -> None:
        """Store ``lines`` durably: in InfluxDB, or in the spool while InfluxDB is away."""
        spool_after: float | None = self.spool_after
        if not self.ok and self.spool.points and self.spool.has_room():
            spool_after = 0.0  # InfluxDB is known to be away: don't make this batch wait too
        while True:
            try:
                await self.write_retrying(lines, spool_after=spool_after)
            except SpoolIt:
                try:
                    await asyncio.to_thread(self.spool.add, lines)
                except SpoolError as exc:
                    log.error("%s; keeping the points and retrying InfluxDB", exc)
                    spool_after = None
                    continue
                self.counters.spooled += seqlog.readings_in(lines)
                self._spooled.set()
                return
            self.counters.points_written += seqlog.readings_in(lines)
            self.counters.last_write_time = time.time()
            return

    async def write_retrying(self, lines: list[bytes], *, spool_after: float | None = None) -> None:
        """Write until it works; raise InfluxRejected, GaveUp when stopping, or SpoolIt
        once InfluxDB has been away for ``spool_after`` seconds and the spool has room."""
        delay = BACKOFF_MIN
        started = time.monotonic()
        while True:
            if spool_after == 0.0 and self.spool.has_room():
                raise SpoolIt
            try:
                await self.ensure_database()
                await self.influx.write(lines)
            except InfluxUnavailable as exc:
                self.counters.write_errors += 1
                self.down()
                if exc.status == 404:  # database not found: create it next time
                    self._db_ready = False
                if spool_after is not None and time.monotonic() - started >= spool_after and self.spool.has_room():
                    log.warning("%s; spooling %d points to %s until it is back", exc, len(lines), self.spool.path)
                    raise SpoolIt from None
                if self.stop.is_set():
                    log.warning("%s; not retrying: stopping", exc)
                    raise GaveUp from None
                wait = honour_retry_after(delay, exc)
                log.warning("%s; keeping %d points, retrying in %.1f s", exc, len(lines), wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), wait)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except InfluxRejected:
                self.counters.write_errors += 1
                self.up()
                raise
            self.up()
            return

    async def drain_spool(self) -> None:
        """Write the spool back to InfluxDB, oldest first, whenever it holds something."""
        delay = BACKOFF_MIN
        while not self.stop.is_set():
            chunk = await asyncio.to_thread(self.spool.oldest) if self.spool.points else None
            if chunk is None:
                self._spooled.clear()
                await first_of(self._spooled.wait(), self.stop.wait())
                continue
            chunk_id, lines = chunk
            try:
                await self.ensure_database()
                await self.influx.write(lines)
            except InfluxUnavailable as exc:
                self.down()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), honour_retry_after(delay, exc))
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except InfluxRejected as exc:
                log.warning("InfluxDB refused spooled points (%s); finding the bad lines", exc)
                try:
                    await self._write_lines_one_by_one(lines)
                except GaveUp:
                    # Stopping while InfluxDB is away: the chunk stays in the spool and is
                    # written again (harmlessly, for the lines already in) at the next start.
                    log.info("stopping: spooled chunk %d left in %s for the next start", chunk_id, self.spool.path)
                    await asyncio.to_thread(self.dead_letter.sync)
                    return
                await asyncio.to_thread(self.dead_letter.sync)
            else:
                self.counters.points_written += seqlog.readings_in(lines)
                self.counters.last_write_time = time.time()
                self.up()
            delay = BACKOFF_MIN
            await asyncio.to_thread(self.spool.delete, chunk_id)
            if not self.spool.points:
                log.info("spool %s is empty: everything it held is in InfluxDB", self.spool.path)

    async def _write_lines_one_by_one(self, lines: list[bytes]) -> None:
        """Spooled lines InfluxDB refused as a chunk: write the good ones, dead-letter the rest."""
        for line in lines:
            try:
                await self.write_retrying([line])
            except InfluxRejected as exc:
                self.counters.rejected += 1
                await asyncio.to_thread(
                    self.dead_letter.append,
                    topic="spool",
                    reason=redact.redact(f"rejected by InfluxDB: {exc}"),
                    payload=line,
                    now=time.time(),
                )
            else:
                self.counters.points_written += seqlog.readings_in([line])

    async def ensure_database(self) -> None:
        if self._db_ready:
            return
        async with self._db_lock:
            if self._db_ready:
                return
            try:
                await self.influx.ensure_database()
            except InfluxRejected as exc:
                log.warning("cannot create database %s (%s); assuming it exists", self.influx.database, exc)
            except InfluxUnavailable as exc:
                if exc.status not in (401, 403):
                    raise
                log.warning("not allowed to create database %s (%s); assuming it exists", self.influx.database, exc)
            self._db_ready = True

    def up(self) -> None:
        if not self.ok:
            log.info("InfluxDB %s is writable", self.influx.url)
        self.ok = True

    def down(self) -> None:
        self.ok = False
