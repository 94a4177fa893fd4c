"""The collector's spool: line protocol held on local disk while InfluxDB is away.

A batch goes here only after writing it to InfluxDB failed for ``spool.after`` seconds
(a 5xx, a timeout, a refused connection). Once it is committed here (SQLite, WAL,
``synchronous=FULL``) its MQTT messages are acknowledged, so the broker's queue does not
have to hold an InfluxDB outage. :meth:`Spool.oldest` and :meth:`Spool.delete` let the
collector drain it, oldest first, when InfluxDB answers again.

When the spool reaches ``max_bytes`` it refuses more (:meth:`Spool.has_room`); the
collector then stops acknowledging and the broker holds the rest. Nothing is dropped.
Chunks are zlib-compressed: line protocol shrinks about 10x.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from pathlib import Path

from wardwatch.sqlite import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    points INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""


class SpoolError(RuntimeError):
    """The spool file cannot be opened or written."""


class Spool(SqliteFile):
    """Blocking SQLite calls: use them through ``asyncio.to_thread``."""

    what = "spool"

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        super().__init__(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self.points = 0  # points held
        self.bytes = 0  # compressed bytes held

    def open(self) -> None:
        try:
            db = self._connect(_SCHEMA)
            points, size = db.execute(
                "SELECT coalesce(sum(points), 0), coalesce(sum(length(data)), 0) FROM chunks"
            ).fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"spool.path: cannot open {self.path}: {exc}") from None
        self._db, self.points, self.bytes = db, int(points), int(size)

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def has_room(self) -> bool:
        return self.bytes < self.max_bytes

    def add(self, lines: list[bytes]) -> None:
        """Commit ``lines`` durably; raise SpoolError if the disk refuses."""
        data = zlib.compress(b"\n".join(lines), 1)
        with self._lock:
            try:
                with self.db:
                    self.db.execute("BEGIN IMMEDIATE")
                    self.db.execute(
                        "INSERT INTO chunks (created_ms, points, data) VALUES (?, ?, ?)",
                        (int(time.time() * 1000), len(lines), data),
                    )
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot write spool {self.path}: {exc}") from None
            self.points += len(lines)
            self.bytes += len(data)

    def oldest(self) -> tuple[int, list[bytes]] | None:
        """The oldest chunk as (id, lines), or None when the spool is empty."""
        with self._lock:
            row = self.db.execute("SELECT id, data FROM chunks ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        return int(row[0]), zlib.decompress(row[1]).split(b"\n")

    def delete(self, chunk_id: int) -> None:
        with self._lock, self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(
                "DELETE FROM chunks WHERE id = ? RETURNING points, length(data)", (chunk_id,)
            ).fetchone()
        if row is not None:
            self.points -= int(row[0])
            self.bytes -= int(row[1])

    def oldest_age(self) -> float:
        with self._lock:
            (created,) = self.db.execute("SELECT min(created_ms) FROM chunks").fetchone()
        return 0.0 if created is None else max(0.0, time.time() - created / 1000)
