"""The alert engine's state file: active alerts, their history, the pairing ledger, the
delivery log, silences and the key that signs acknowledgement links.

SQLite through :class:`wardwatch.sqlite.SqliteFile` (WAL, ``synchronous=FULL``): a write
that returned is on disk, so a collector restarted mid-outage finds every alert, every
firing notice it sent (and owes a resolved notice for) and every silence, and sends no
duplicate.

Every write is one prepared statement in its own transaction (sqlite3 caches the prepared
statements by their text); the engine calls them from the event loop. A lock makes the
calls safe from ``asyncio.to_thread`` as well.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final

from wardwatch.collector.alerts.model import HISTORY_STATES, Alert, Attempt, Behind, Sent, Silence
from wardwatch.sqlite import SqliteFile

SCHEMA_VERSION: Final = 1
SILENCE_KEEP_MS: Final = 7 * 86400 * 1000  # expired silences stay listed this long
HISTORY_MAX_ROWS: Final = 500_000  # a bound on history and on the delivery log, besides keep_days

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    state TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    fired_ms INTEGER,
    ended_ms INTEGER,
    summary TEXT NOT NULL,
    reason TEXT NOT NULL,
    value TEXT NOT NULL,
    suppressed_by TEXT,
    silenced_by TEXT,
    behind TEXT NOT NULL,
    acked_by TEXT,
    acked_ms INTEGER,
    ack_comment TEXT NOT NULL,
    live INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    ward TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    reason TEXT NOT NULL,
    suppressed_count INTEGER NOT NULL,
    silenced_by TEXT,
    suppressed_by TEXT
);
CREATE INDEX IF NOT EXISTS history_time ON history (time_ms);
CREATE INDEX IF NOT EXISTS history_ward_time ON history (ward, time_ms);
CREATE TABLE IF NOT EXISTS sent (
    fingerprint TEXT NOT NULL,
    channel TEXT NOT NULL,
    firing_ms INTEGER,
    last_ms INTEGER,
    resolved_ms INTEGER,
    escalation INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, channel)
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    group_key TEXT NOT NULL,
    fingerprints TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    error TEXT NOT NULL,
    status INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_time ON attempts (time_ms);
CREATE INDEX IF NOT EXISTS attempts_channel ON attempts (channel, time_ms);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_ms INTEGER NOT NULL,
    ends_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""

_ALERT_COLUMNS: Final = (
    "fingerprint, rule, labels, state, started_ms, updated_ms, fired_ms, ended_ms, summary, reason, value, "
    "suppressed_by, silenced_by, behind, acked_by, acked_ms, ack_comment, live"
)
_UPSERT_ALERT: Final = (
    f"INSERT OR REPLACE INTO alerts ({_ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_HISTORY_COLUMNS: Final = (
    "time_ms, state, fingerprint, alertname, ward, device, kind, severity, summary, reason, suppressed_count, "
    "silenced_by, suppressed_by"
)
_ATTEMPT_COLUMNS: Final = "channel, kind, group_key, fingerprints, attempt, ok, time_ms, error, status"


class StoreError(RuntimeError):
    """The state file cannot be opened, read or written; the message names the file."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class AlertStore(SqliteFile):
    what = "alert state"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._lock = threading.Lock()
        self._secret: bytes | None = None

    # lifecycle --------------------------------------------------------------------

    def open(self) -> None:
        try:
            db = self._connect(_SCHEMA)
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                db.close()
                raise StoreError(
                    f"alerts.state: {self.path} was written by a newer wardwatch (schema {version}, "
                    f"this one reads {SCHEMA_VERSION})"
                )
            if version < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"alerts.state: cannot open {self.path}: {exc}") from None
        self._db = db

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self.db.execute(sql, params)  # autocommit: one statement, one transaction
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write {self.what} {self.path}: {exc}") from None

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self.db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read {self.what} {self.path}: {exc}") from None

    # active alerts ----------------------------------------------------------------

    def load_alerts(self) -> list[Alert]:
        rows = self._read(f"SELECT {_ALERT_COLUMNS} FROM alerts ORDER BY started_ms, fingerprint")
        return [_alert(row) for row in rows]

    def save_alert(self, alert: Alert) -> None:
        """Insert or replace the alert with this fingerprint."""
        self._write(
            _UPSERT_ALERT,
            (
                alert.fingerprint,
                alert.rule,
                _dumps(alert.labels),
                alert.state,
                alert.started_ms,
                alert.updated_ms,
                alert.fired_ms,
                alert.ended_ms,
                _dumps(alert.summary),
                alert.reason,
                _dumps(alert.value),
                alert.suppressed_by,
                alert.silenced_by,
                _dumps([[b.device, b.kind] for b in alert.behind]),
                alert.acked_by,
                alert.acked_ms,
                alert.ack_comment,
                int(alert.live),
            ),
        )

    def delete_alert(self, fingerprint: str) -> None:
        """Forget the alert and its pairing ledger (its resolved notices are all delivered)."""
        with self._lock:
            try:
                with self.db:
                    self.db.execute("BEGIN IMMEDIATE")
                    self.db.execute("DELETE FROM alerts WHERE fingerprint = ?", (fingerprint,))
                    self.db.execute("DELETE FROM sent WHERE fingerprint = ?", (fingerprint,))
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write {self.what} {self.path}: {exc}") from None

    # history ----------------------------------------------------------------------

    def add_history(self, alert: Alert, state: str, time_ms: int) -> None:
        if state not in HISTORY_STATES:
            raise ValueError(f"history state {state!r} is not one of {', '.join(HISTORY_STATES)}")
        labels = alert.labels
        self._write(
            f"INSERT INTO history ({_HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time_ms,
                state,
                alert.fingerprint,
                labels.get("alertname", alert.rule),
                labels.get("ward", ""),
                labels.get("device", ""),
                labels.get("kind", ""),
                alert.severity,
                _dumps(alert.summary),
                alert.reason,
                len(alert.behind),
                alert.silenced_by,
                alert.suppressed_by,
            ),
        )

    def history(
        self, *, ward: str | None = None, since_ms: int | None = None, until_ms: int | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Transitions, newest first; ``since_ms`` inclusive, ``until_ms`` exclusive."""
        where: list[str] = []
        params: list[Any] = []
        if ward is not None:
            where.append("ward = ?")
            params.append(ward)
        if since_ms is not None:
            where.append("time_ms >= ?")
            params.append(since_ms)
        if until_ms is not None:
            where.append("time_ms < ?")
            params.append(until_ms)
        sql = f"SELECT {_HISTORY_COLUMNS} FROM history"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time_ms DESC, id DESC LIMIT ?"
        rows = self._read(sql, (*params, max(0, limit)))
        return [
            {
                "time": row[0],
                "state": row[1],
                "fingerprint": row[2],
                "alertname": row[3],
                "ward": row[4],
                "device": row[5],
                "kind": row[6],
                "severity": row[7],
                "summary": json.loads(row[8]),
                "reason": row[9],
                "suppressed_count": row[10],
                "silenced_by": row[11],
                "suppressed_by": row[12],
            }
            for row in rows
        ]

    # the pairing ledger -----------------------------------------------------------

    def sent(self) -> dict[tuple[str, str], Sent]:
        rows = self._read("SELECT fingerprint, channel, firing_ms, last_ms, resolved_ms, escalation FROM sent")
        return {
            (row[0], row[1]): Sent(
                fingerprint=row[0],
                channel=row[1],
                firing_ms=row[2],
                last_ms=row[3],
                resolved_ms=row[4],
                escalation=bool(row[5]),
            )
            for row in rows
        }

    def save_sent(self, sent: Sent) -> None:
        self._write(
            "INSERT OR REPLACE INTO sent (fingerprint, channel, firing_ms, last_ms, resolved_ms, escalation) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (sent.fingerprint, sent.channel, sent.firing_ms, sent.last_ms, sent.resolved_ms, int(sent.escalation)),
        )

    # the delivery log -------------------------------------------------------------

    def log_attempt(self, attempt: Attempt) -> None:
        self._write(
            f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                attempt.channel,
                attempt.kind,
                attempt.group_key,
                _dumps(attempt.fingerprints),
                attempt.attempt,
                int(attempt.ok),
                attempt.time_ms,
                attempt.error,
                attempt.status,
            ),
        )

    def attempts(self, *, limit: int = 200, channel: str | None = None) -> list[Attempt]:
        """Delivery attempts, newest first."""
        sql = f"SELECT {_ATTEMPT_COLUMNS} FROM attempts"
        params: tuple[Any, ...] = ()
        if channel is not None:
            sql += " WHERE channel = ?"
            params = (channel,)
        rows = self._read(sql + " ORDER BY time_ms DESC, id DESC LIMIT ?", (*params, max(0, limit)))
        return [
            Attempt(
                channel=row[0],
                kind=row[1],
                group_key=row[2],
                fingerprints=json.loads(row[3]),
                attempt=row[4],
                ok=bool(row[5]),
                time_ms=row[6],
                error=row[7],
                status=row[8],
            )
            for row in rows
        ]

    # silences ---------------------------------------------------------------------

    def add_silence(self, silence: Silence) -> None:
        self._write(
            "INSERT INTO silences (id, matchers, starts_ms, ends_ms, created_by, comment, created_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                silence.id,
                _dumps(silence.matchers),
                silence.starts_ms,
                silence.ends_ms,
                silence.created_by,
                silence.comment,
                silence.created_ms,
            ),
        )

    def silences(self) -> list[Silence]:
        """Every stored silence, oldest first: the active, the future and those that ended in
        the last 7 days (:meth:`prune` removes older ones)."""
        rows = self._read(
            "SELECT id, matchers, starts_ms, ends_ms, created_by, comment, created_ms FROM silences "
            "ORDER BY created_ms, id"
        )
        return [
            Silence(
                id=row[0],
                matchers=json.loads(row[1]),
                starts_ms=row[2],
                ends_ms=row[3],
                created_by=row[4],
                comment=row[5],
                created_ms=row[6],
            )
            for row in rows
        ]

    def expire_silence(self, silence_id: str, now_ms: int) -> bool:
        """End the silence now; False when it is unknown or already over."""
        cur = self._write("UPDATE silences SET ends_ms = ? WHERE id = ? AND ends_ms > ?", (now_ms, silence_id, now_ms))
        return cur.rowcount > 0

    # the link key -----------------------------------------------------------------

    def secret(self) -> bytes:
        """The key that signs acknowledgement links: made once, kept in the file, so links
        sent before a restart still work after it."""
        if self._secret is None:
            self._write("INSERT OR IGNORE INTO meta (key, value) VALUES ('ack_secret', ?)", (secrets.token_bytes(32),))
            (row,) = self._read("SELECT value FROM meta WHERE key = 'ack_secret'")
            self._secret = bytes(row[0])
        return self._secret

    # bounds -----------------------------------------------------------------------

    def prune(self, *, now_ms: int, keep_days: float = 90, max_rows: int = HISTORY_MAX_ROWS) -> None:
        """Drop history and delivery attempts older than ``keep_days`` (and beyond the newest
        ``max_rows`` of each), and silences that ended more than 7 days ago."""
        cutoff = now_ms - int(keep_days * 86400 * 1000)
        with self._lock:
            try:
                with self.db:
                    self.db.execute("BEGIN IMMEDIATE")
                    for table in ("history", "attempts"):
                        self.db.execute(f"DELETE FROM {table} WHERE time_ms < ?", (cutoff,))
                        self.db.execute(
                            f"DELETE FROM {table} WHERE id <= "
                            f"(SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?)",
                            (max_rows,),
                        )
                    self.db.execute("DELETE FROM silences WHERE ends_ms < ?", (now_ms - SILENCE_KEEP_MS,))
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write {self.what} {self.path}: {exc}") from None


def _alert(row: tuple[Any, ...]) -> Alert:
    return Alert(
        fingerprint=row[0],
        rule=row[1],
        labels=json.loads(row[2]),
        state=row[3],
        started_ms=row[4],
        updated_ms=row[5],
        fired_ms=row[6],
        ended_ms=row[7],
        summary=json.loads(row[8]),
        reason=row[9],
        value=json.loads(row[10]),
        suppressed_by=row[11],
        silenced_by=row[12],
        behind=[Behind(device=device, kind=kind) for device, kind in json.loads(row[13])],
        acked_by=row[14],
        acked_ms=row[15],
        ack_comment=row[16],
        live=bool(row[17]),
    )
