"""The one way wardwatch keeps data on local disk: SQLite in WAL mode with
``synchronous=FULL``, so that a committed transaction survives a crash or a power cut.
Used by the agent's outbox and the collector's spool."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class SqliteFile:
    what = "file"  # for messages: "outbox", "spool"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def _connect(self, schema: str) -> sqlite3.Connection:
        """Open (creating the directory and tables if needed); raises OSError or sqlite3.Error."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
        return db

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"{self.what} {self.path} is not open")
        return self._db
