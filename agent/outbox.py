"""The durable outbox: every batch is committed to SQLite before it is published, and
deleted only after the broker acknowledged it (PUBACK).

The next ``seq`` is stored in the same transaction as the batch, so seq has no gaps and
never repeats, even across a crash. SQLite runs in WAL mode with ``synchronous=FULL``
on one worker thread, off the event loop.

This is the walking-skeleton outbox: it is unbounded. Size and age bounds, drop
counting and drain rate limits come with the store-and-forward work (issue 5).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

from wardwatch import wire

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class OutboxError(RuntimeError):
    """The outbox file cannot be opened or used."""


class Outbox:
    def __init__(self, path: Path, *, agent: str, ward: str) -> None:
        self.path = Path(path)
        self.agent = agent
        self.ward = ward
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._next_seq = 0
        self.added = asyncio.Event()  # set whenever a batch is committed

    async def __aenter__(self) -> Self:
        try:
            await self._call(self._open)
        except (OSError, sqlite3.Error) as exc:
            self._pool.shutdown(wait=False)
            raise OutboxError(f"outbox.path: cannot open {self.path}: {exc}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._call(self._close)
        self._pool.shutdown(wait=True)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        top = db.execute("SELECT max(seq) FROM batches").fetchone()[0]
        self._next_seq = max(row[0] if row else 0, (top + 1) if top is not None else 0)
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is not open")
        return self._db

    async def put(self, readings: Sequence[wire.Reading]) -> int:
        """Commit one batch; return its seq."""
        seq: int = await self._call(self._put, list(readings))
        self.added.set()
        return seq

    def _put(self, readings: list[wire.Reading]) -> int:
        seq = self._next_seq
        payload = wire.encode(
            wire.Batch(schema=wire.SCHEMA, agent=self.agent, ward=self.ward, seq=seq, readings=readings)
        )
        with self.db:  # one transaction: the batch and the next seq together
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO batches (seq, created_ms, payload) VALUES (?, ?, ?)",
                (seq, int(time.time() * 1000), payload),
            )
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('next_seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (seq + 1,),
            )
        self._next_seq = seq + 1
        return seq

    async def pending(self, *, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Batches not yet acknowledged, oldest first, with seq greater than ``after``."""
        rows: list[tuple[int, bytes]] = await self._call(self._pending, after, limit)
        return rows

    def _pending(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self.db.execute(
            "SELECT seq, payload FROM batches WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        ).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    async def delete(self, seqs: Sequence[int]) -> None:
        if seqs:
            await self._call(self._delete, list(seqs))

    def _delete(self, seqs: list[int]) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM batches WHERE seq = ?", [(s,) for s in seqs])

    async def stats(self) -> tuple[int, float]:
        """(depth, age in seconds of the oldest unacknowledged batch)."""
        stats: tuple[int, float] = await self._call(self._stats)
        return stats

    def _stats(self) -> tuple[int, float]:
        count, oldest = self.db.execute("SELECT count(*), min(created_ms) FROM batches").fetchone()
        age = max(0.0, time.time() - oldest / 1000) if oldest is not None else 0.0
        return int(count), round(age, 3)
