"""What the collector counts and keeps: counters, per-agent seq tracking, dead letters."""

from __future__ import annotations

import base64
import heapq
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Counters:
    messages: int = 0  # on readings topics
    statuses: int = 0  # on status topics
    points_written: int = 0
    invalid: int = 0
    rejected: int = 0
    write_errors: int = 0
    missing: int = 0  # seqs never stored, from the InfluxDB ledger (all collectors)
    duplicates: int = 0
    reordered: int = 0
    dropped: int = 0
    spooled: int = 0  # points that went to the spool while InfluxDB was away
    stored_sent: int = 0  # ``stored`` watermarks published to agents
    last_write_time: float | None = None

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["last_write_time"] = iso(self.last_write_time)
        return doc


@dataclass
class AgentSeq:
    ward: str
    last_seq: int
    last_seen: float
    reordered: int = 0
    duplicates: int = 0
    holes: set[int] = field(default_factory=set)  # seqs below last_seq not seen yet
    given_up: int = 0  # holes past MAX_HOLES that this tracker stopped waiting for (counted missing)


MAX_HOLES = 10_000


class SeqTracker:
    """What this collector saw of each agent's ``seq``: duplicates and reordering.

    In memory, for this process only. Whether anything is *missing* is not decided here:
    with a share group each collector sees only part of an agent's batches, so that comes
    from the ledger every collector writes to InfluxDB (collector/seqlog.py).
    """

    def __init__(self) -> None:
        self.agents: dict[str, AgentSeq] = {}
        self.given_up = 0  # holes dropped past MAX_HOLES, all agents

    def observe(self, *, ward: str, agent: str, seq: int, now: float) -> str:
        """Return ``"new"``, ``"reordered"`` (late, filling a hole) or ``"duplicate"``."""
        state = self.agents.get(agent)
        if state is None:
            self.agents[agent] = AgentSeq(ward=ward, last_seq=seq, last_seen=now)
            return "new"
        state.last_seen = now
        state.ward = ward
        if seq > state.last_seq:
            # Bounded: at most MAX_HOLES, the newest kept; the rest are given up, counted and
            # logged. A given-up seq arriving later counts as a duplicate, not reordering.
            start = max(state.last_seq + 1, seq - MAX_HOLES)
            given_up = start - state.last_seq - 1
            state.holes.update(range(start, seq))
            excess = len(state.holes) - MAX_HOLES
            if excess > 0:
                for old in heapq.nsmallest(excess, state.holes):
                    state.holes.discard(old)
                given_up += excess
            if given_up:
                state.given_up += given_up
                self.given_up += given_up
                log.warning(
                    "agent %s: %d seqs below %d not seen by this collector and no longer tracked (cap %d); "
                    "counted missing here (%d in all); the ledger in InfluxDB has the whole truth",
                    agent, given_up, seq, MAX_HOLES, state.given_up,
                )
            state.last_seq = seq
            return "new"
        if seq in state.holes:
            state.holes.discard(seq)
            state.reordered += 1
            return "reordered"
        state.duplicates += 1
        return "duplicate"

    def as_json(self) -> dict[str, Any]:
        return {
            agent: {
                "ward": s.ward,
                "last_seq": s.last_seq,
                "reordered": s.reordered,
                "duplicates": s.duplicates,
                "holes": len(s.holes),
                "given_up": s.given_up,
                "last_seen": iso(s.last_seen),
            }
            for agent, s in sorted(self.agents.items())
        }


class DeadLetter:
    """An append-only JSONL file, rotated to ``<path>.1`` before it would pass max_bytes.

    Each record has the time, topic, reason, size and the raw payload (base64), cut to
    ``MAX_KEPT`` bytes (``truncated`` says so) so that a flood of oversized payloads
    cannot fill the disk. Records are written at once and made durable by :meth:`sync`,
    which the collector calls before it acks the messages: one fsync per flush, not per
    record. Blocking file I/O: call both through ``asyncio.to_thread``.
    """

    MAX_KEPT = 256 * 1024

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._size = 0
        self._file: BinaryIO | None = None
        self._dirty = False
        self._lock = threading.Lock()

    def append(self, *, topic: str, reason: str, payload: bytes, now: float) -> None:
        record = {
            "time": iso(now),
            "topic": topic,
            "reason": reason,
            "size": len(payload),
            "truncated": len(payload) > self.MAX_KEPT,
            "payload_b64": base64.b64encode(payload[: self.MAX_KEPT]).decode("ascii"),
        }
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
                self._size = self._file.tell()
            if self._size > 0 and self._size + len(data) > self.max_bytes:
                self._sync()
                self._file.close()
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                self._file = self.path.open("ab")
                self._size = 0
            self._file.write(data)
            self._file.flush()  # visible to `tail -f` at once; durable at the next sync()
            self._size += len(data)
            self._dirty = True

    @property
    def dirty(self) -> bool:
        """Records appended since the last sync (a flush without any needs no thread)."""
        return self._dirty

    def sync(self) -> None:
        with self._lock:
            self._sync()

    def _sync(self) -> None:
        if self._file is not None and self._dirty:
            os.fsync(self._file.fileno())
            self._dirty = False

    def close(self) -> None:
        with self._lock:
            self._sync()
            if self._file is not None:
                self._file.close()
                self._file = None
