"""The durable outbox: every batch is committed to SQLite before it is published, and
deleted only once a collector reports it durably stored (the retained ``stored``
watermark, docs/reliability.md), not on the broker's PUBACK: a broker that discards an
expired session's queue, or a share-group member that dies with its share, cannot lose it.

The next ``seq`` is stored in the same transaction as the batch, so seq has no gaps and
never repeats, even across a crash. SQLite runs in WAL mode with ``synchronous=FULL``
on one worker thread, off the event loop.

Payloads are stored zlib-compressed (JSON batches shrink 8-15x), which is what lets the
default bounds hold more than a week of a ward's readings (docs/reliability.md).

Bounds: when a commit takes the stored payload bytes over ``max_bytes``, or the oldest
batch is older than ``max_age``, the oldest batches are deleted in the same transaction
and counted (``dropped_batches``/``dropped_readings`` in the meta table, so the count
survives restarts). Readings are never dropped for any other reason.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from wardwatch import wire
from wardwatch.sqlite import SqliteFile

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    readings INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class OutboxError(RuntimeError):
    """The outbox file cannot be opened or used."""


def unpack(payload: bytes) -> bytes:
    """The JSON batch of a stored payload (zlib-compressed, or plain from before compression)."""
    return payload if payload[:1] == b"{" else zlib.decompress(payload)


class Outbox(SqliteFile):
    what = "outbox"

    def __init__(
        self,
        path: Path,
        *,
        agent: str,
        ward: str,
        max_bytes: int = 1 << 30,
        max_age: float = 14 * 86400.0,
    ) -> None:
        super().__init__(path)
        self.agent = agent
        self.ward = ward
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._next_seq = 0
        self._bytes = 0  # stored payload bytes
        self.dropped_batches = 0  # since the file was created
        self.dropped_readings = 0
        self.added = asyncio.Event()  # set whenever a batch is committed

    async def __aenter__(self) -> Self:
        try:
            await self._call(self._open)
        except (OSError, sqlite3.Error) as exc:
            self._pool.shutdown(wait=False)
            raise OutboxError(f"outbox.path: cannot open {self.path}: {exc}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._call(self._disconnect)
        self._pool.shutdown(wait=True)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _open(self) -> None:
        db = self._connect(_SCHEMA)
        columns = {r[1] for r in db.execute("PRAGMA table_info(batches)")}
        if "readings" not in columns:  # a file from before the bounds
            db.execute("ALTER TABLE batches ADD COLUMN readings INTEGER NOT NULL DEFAULT 0")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        top, size = db.execute("SELECT max(seq), coalesce(sum(length(payload)), 0) FROM batches").fetchone()
        self._next_seq = max(meta.get("next_seq", 0), (top + 1) if top is not None else 0)
        self._bytes = int(size)
        self.dropped_batches = meta.get("dropped_batches", 0)
        self.dropped_readings = meta.get("dropped_readings", 0)
        self._db = db

    async def put(self, readings: Sequence[wire.Reading]) -> int:
        """Commit one batch; return its seq."""
        seq: int = await self._call(self._put, list(readings))
        self.added.set()
        return seq

    @property
    def next_seq(self) -> int:
        """The seq the next committed batch gets."""
        return self._next_seq

    def _put(self, readings: list[wire.Reading]) -> int:
        seq = self._next_seq
        now_ms = int(time.time() * 1000)
        with self.db:  # one transaction: the batch, the next seq and any drops together
            self.db.execute("BEGIN IMMEDIATE")
            (oldest,) = self.db.execute("SELECT min(seq) FROM batches").fetchone()
            batch = wire.Batch(
                schema=wire.SCHEMA,
                agent=self.agent,
                ward=self.ward,
                seq=seq,
                readings=readings,
                pending_from=seq if oldest is None else min(oldest, seq),
                dropped=self.dropped_batches,
            )
            payload = zlib.compress(wire.encode(batch), 1)
            self.db.execute(
                "INSERT INTO batches (seq, created_ms, readings, payload) VALUES (?, ?, ?, ?)",
                (seq, now_ms, len(readings), payload),
            )
            self._set_meta("next_seq", seq + 1)
            self._bytes += len(payload)
            self._enforce_bounds(now_ms, keep=seq)
        self._next_seq = seq + 1
        return seq

    def _set_meta(self, key: str, value: int) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def _enforce_bounds(self, now_ms: int, *, keep: int) -> None:
        """Delete the oldest batches (never ``keep``) while over max_bytes or max_age."""
        too_old = now_ms - int(self.max_age * 1000)
        if self._bytes <= self.max_bytes:
            row = self.db.execute("SELECT created_ms FROM batches ORDER BY seq LIMIT 1").fetchone()
            if row is None or row[0] >= too_old:
                return  # the common case: within both bounds
        batches = readings = 0
        while True:
            rows = self.db.execute(
                "SELECT seq, created_ms, readings, length(payload) FROM batches WHERE seq != ? ORDER BY seq LIMIT 256",
                (keep,),
            ).fetchall()
            gone = []
            for seq, created_ms, count, size in rows:
                if self._bytes <= self.max_bytes and created_ms >= too_old:
                    break
                gone.append(seq)
                self._bytes -= size
                batches += 1
                readings += count
            if gone:
                self.db.executemany("DELETE FROM batches WHERE seq = ?", [(s,) for s in gone])
            if len(gone) < 256:
                break
        if batches:
            self.dropped_batches += batches
            self.dropped_readings += readings
            self._set_meta("dropped_batches", self.dropped_batches)
            self._set_meta("dropped_readings", self.dropped_readings)
            log.warning(
                "outbox %s: full or too old; dropped the %d oldest batches (%d readings); %d dropped in all",
                self.path,
                batches,
                readings,
                self.dropped_readings,
            )

    async def pending(self, *, after: int, limit: int, below: int | None = None) -> list[tuple[int, bytes]]:
        """Batches not yet acknowledged, oldest first, with ``after < seq < below``, as JSON."""
        rows: list[tuple[int, bytes]] = await self._call(self._pending, after, limit, below)
        return rows

    def _pending(self, after: int, limit: int, below: int | None) -> list[tuple[int, bytes]]:
        rows = self.db.execute(
            "SELECT seq, payload FROM batches WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
            (after, below if below is not None else 2**63 - 1, limit),
        ).fetchall()
        return [(int(s), unpack(bytes(p))) for s, p in rows]

    async def delete(self, seqs: Sequence[int]) -> None:
        if seqs:
            await self._call(self._delete, list(seqs))

    def _delete(self, seqs: list[int]) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for s in seqs:
                row = self.db.execute("DELETE FROM batches WHERE seq = ? RETURNING length(payload)", (s,)).fetchone()
                if row is not None:
                    self._bytes -= row[0]

    async def confirm(self, below: int, ranges: Sequence[tuple[int, int]] = ()) -> int:
        """Delete the batches a ``stored`` message covers: every seq below ``below`` and
        those in the inclusive ``ranges``; return how many were deleted."""
        deleted: int = await self._call(self._confirm, below, list(ranges))
        return deleted

    def _confirm(self, below: int, ranges: list[tuple[int, int]]) -> int:
        count = 0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            spans = [(-1, below - 1), *ranges]
            for first, last in spans:
                if last < first:
                    continue
                rows = self.db.execute(
                    "DELETE FROM batches WHERE seq >= ? AND seq <= ? RETURNING length(payload)", (first, last)
                ).fetchall()
                count += len(rows)
                self._bytes -= sum(int(r[0]) for r in rows)
        return count

    async def present(self, first: int, last: int) -> set[int]:
        """The seqs from ``first`` to ``last`` (inclusive) still in the outbox."""
        seqs: set[int] = await self._call(self._present, first, last)
        return seqs

    def _present(self, first: int, last: int) -> set[int]:
        rows = self.db.execute("SELECT seq FROM batches WHERE seq >= ? AND seq <= ?", (first, last)).fetchall()
        return {int(r[0]) for r in rows}

    async def stats(self) -> OutboxStats:
        stats: OutboxStats = await self._call(self._stats)
        return stats

    def _stats(self) -> OutboxStats:
        count, oldest = self.db.execute("SELECT count(*), min(created_ms) FROM batches").fetchone()
        age = max(0.0, time.time() - oldest / 1000) if oldest is not None else 0.0
        return OutboxStats(
            depth=int(count),
            oldest_s=round(age, 3),
            bytes=self._bytes,
            dropped_batches=self.dropped_batches,
            dropped_readings=self.dropped_readings,
        )


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int  # batches not yet reported stored by a collector
    oldest_s: float  # age of the oldest of them
    bytes: int  # stored (compressed) payload bytes
    dropped_batches: int  # deleted by the bounds, since the file was created
    dropped_readings: int
