"""SNMP sessions: one client interface, two engines behind it (issue 13).

- v1/v2c: agent/snmp/udp.py, one asyncio UDP socket for the whole agent and the few BER
  shapes SNMP needs (agent/snmp/ber.py): ~25x less CPU per varbind than pysnmp.
- v3: pysnmp (agent/snmp/v3.py), imported only when a config has a v3 auth profile.

Both give plain Python values (``int``, ``bytes``, ``str`` for an OID value,
:data:`~wardwatch.agent.snmp.ber.MISSING`) and raise only the agent's exceptions, so the
walk below, and everything above it, does not know which engine answered.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

from wardwatch.agent.core.config import DeviceConfig, SnmpAuth
from wardwatch.agent.core.errors import DeviceError, DeviceProtocolError, DeviceTimeout
from wardwatch.agent.snmp.ber import MISSING
from wardwatch.agent.snmp.profiles import MAX_ROWS
from wardwatch.agent.snmp.udp import ErrorStatus, UdpEngine, UdpTransport

if TYPE_CHECKING:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

# Leave room in a GETBULK answer: many agents (snmpsim among them) cap a reply at 64 varbinds.
MAX_VARBINDS = 60
SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"
NO_SUCH_NAME = 2  # SNMPv1's error-status for "no such OID" (and for the end of the MIB in a GETNEXT)

Value = Any  # int, bytes, str (an OID value); callers convert with evaluate.to_int / to_text
Table = dict[str, dict[str, Value]]  # column OID -> row index -> value
Times = dict[str, dict[str, float]]  # column OID -> row index -> monotonic arrival time
Bind = tuple[str, Any, Any]  # (oid, a key that orders as the OID does, value)


class Transport(Protocol):
    async def request(self, oids: Sequence[str], *, bulk: tuple[int, int] | None = None) -> list[Bind]: ...


class SnmpSession:
    """GET and column walks against one device. Not thread-safe; one per device.

    ``engine`` is the :class:`Engines`' ``default`` (v1/v2c) or, for SNMPv3, the pysnmp
    engine :meth:`Engines.for_auth` gave."""

    def __init__(self, *, engine: UdpEngine | SnmpEngine, device: DeviceConfig, auth: SnmpAuth) -> None:
        self.device = device
        self.version = auth.version
        self._v1 = auth.version == "1"
        self._udp: UdpTransport | None = None
        self._transport: Transport
        if isinstance(engine, UdpEngine):
            if auth.version == "3":
                raise ValueError("an SNMPv3 device needs the engine Engines.for_auth gives it")
            self._transport = self._udp = UdpTransport(engine=engine, device=device, auth=auth)
        else:
            from wardwatch.agent.snmp.v3 import V3Transport

            self._transport = V3Transport(engine=engine, device=device, auth=auth)
        # What the last walk_columns could not read: a column that did not end within
        # MAX_ROWS rows, or whose OIDs stopped increasing. The poll goes on with the rest.
        self.walk_problems: list[str] = []

    async def get(self, oids: Sequence[str]) -> dict[str, Value]:
        """GET scalars; an OID the device lacks maps to None."""
        var_binds = await self._transport.request(oids)
        if len(var_binds) != len(oids):
            raise DeviceProtocolError(f"asked for {len(oids)} values, got {len(var_binds)}")
        out: dict[str, Value] = {}
        for oid, (name, _key, value) in zip(oids, var_binds, strict=True):
            out[oid] = None if value is MISSING else value
            if name != oid:
                raise DeviceProtocolError(f"asked for {oid}, got {name}")
        return out

    async def _next_rows(self, head: list[str], cursors: list[str], reps: int) -> list[Bind]:
        """The next ``reps`` rows after ``cursors``, ``head`` (non-repeaters) first: one
        GETBULK, or for SNMPv1 (no GETBULK) one GETNEXT of one row."""
        if self._udp is None or not self._v1:
            return await self._transport.request([*head, *cursors], bulk=(len(head), reps))
        oids = [*head, *cursors]
        ended: set[int] = set()  # positions of oids that ran off the end of the MIB
        while True:
            asking = [i for i in range(len(oids)) if i not in ended]
            try:
                got = await self._udp.request([oids[i] for i in asking], next_=True) if asking else []
            except ErrorStatus as exc:
                # v1 says the end of the MIB with noSuchName at the column that ran off it.
                if exc.status != NO_SUCH_NAME or not len(head) < exc.index <= len(asking):
                    raise
                ended.add(asking[exc.index - 1])
                continue
            if len(got) != len(asking):
                raise DeviceProtocolError(f"asked for {len(asking)} values, got {len(got)}")
            answers = dict(zip(asking, got, strict=True))
            return [answers.get(i) or (oids[i], (), MISSING) for i in range(len(oids))]

    async def walk_columns(self, columns: Sequence[str], *, clock: str | None = None,
                           deadline: float | None = None) -> tuple[Table, Times]:
        """Walk several table columns at once with GETBULK.

        Returns ``{column: {index: value}}`` and, beside it, the time of the answer that
        carried each value, so that a rate is not skewed by how long the walk took or by
        network jitter. With ``clock`` (a TimeTicks scalar such as sysUpTime, given without
        its ``.0``) every request carries it as a non-repeater and the times are the
        device's own clock in seconds; otherwise they are our monotonic arrival times.
        Each request asks for the next rows of every column still in its subtree, so a
        24-port switch with 12 columns takes a handful of round trips, not one walk per column.
        With ``deadline`` (a ``time.monotonic()`` value), a walk that has read something and
        is still going at the deadline stops there and keeps what it read (a problem says
        so): a huge or endless table on a slow device still gives the poll its first rows.
        """
        result: Table = {c: {} for c in columns}
        times: Times = {c: {} for c in columns}
        cursor: dict[str, str | None] = {c: c for c in columns}  # column -> last OID seen
        prefixes = {c: c + "." for c in columns}
        last: dict[str, Any] = {}
        self.walk_problems = problems = []
        head = [clock] if clock else []
        # A bound: every answer moves each active column on by a row or ends it, and no
        # column is read past MAX_ROWS, so a walk is at most MAX_ROWS + 1 round trips.
        for _ in range(MAX_ROWS + 1):
            active = [c for c in columns if cursor[c] is not None]
            if not active:
                return result, times
            if deadline is not None and time.monotonic() >= deadline and any(result.values()):
                rows = max(len(v) for v in result.values())
                problems.append(f"walk stopped after {rows} rows: the poll's time budget ran out")
                return result, times
            reps = max(1, min(self.device.max_repetitions, (MAX_VARBINDS - 1) // len(active)))
            try:
                var_binds = await self._next_rows(head, [cursor[c] or c for c in active], reps)
            except DeviceTimeout as exc:
                if not any(result.values()):
                    raise
                # It answered this poll (the GET, the first pages) and then fell silent:
                # what it said is kept; the next poll tells whether it is gone.
                rows = max(len(v) for v in result.values())
                problems.append(f"walk stopped after {rows} rows: {exc}")
                return result, times
            arrived = time.monotonic()
            if clock:
                if not var_binds or var_binds[0][0] != f"{clock}.0":
                    raise DeviceProtocolError(f"no {clock}.0 at the head of the GETBULK answer")
                arrived = _ticks(var_binds[0][2], clock) / 100
                var_binds = var_binds[1:]
            if not var_binds:
                raise DeviceProtocolError("empty GETBULK answer")
            progressed = dict.fromkeys(active, False)
            n_active = len(active)
            for i, (oid, key, value) in enumerate(var_binds):
                column = active[i % n_active]
                if cursor[column] is None:
                    continue
                prefix = prefixes[column]
                if value is MISSING or not oid.startswith(prefix):
                    cursor[column] = None
                    continue
                if column in last and key <= last[column]:
                    problems.append(f"walk of {column}: OID {_short(oid)} does not increase; read "
                                    f"{len(result[column])} rows and stopped")
                    cursor[column] = None
                    continue
                if len(result[column]) >= MAX_ROWS:
                    problems.append(f"walk of {column}: more than {MAX_ROWS} rows; read the first {MAX_ROWS}")
                    cursor[column] = None
                    continue
                last[column] = key
                index = oid[len(prefix):]
                result[column][index] = value
                times[column][index] = arrived
                cursor[column] = oid
                progressed[column] = True
            for c, moved in progressed.items():
                if not moved:
                    cursor[c] = None
        raise DeviceProtocolError("table walk did not end; the device may return non-increasing OIDs")


def _ticks(value: Value, what: str) -> int:
    """A TimeTicks value from the device (sysUpTime), or DeviceProtocolError."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32:
        return value
    raise DeviceProtocolError(f"{what}.0 is {type(value).__name__}, not TimeTicks")


def _short(oid: str) -> str:
    return oid if len(oid) <= 80 else oid[:77] + "..."


class Engines:
    """The v1/v2c engine (``default``: one UDP socket for every such device), and for
    SNMPv3 one pysnmp engine per distinct credential, built on first use.

    pysnmp keeps one set of keys per v3 user name in an engine: two devices whose user is
    called ``mon`` but whose keys differ would share the first one's keys, and the second
    would fail with "Wrong SNMP PDU digest". Credentials with identical keys share an engine.
    """

    def __init__(self) -> None:
        self.default = UdpEngine()
        self._v3: dict[tuple[str | None, ...], SnmpEngine] = {}

    def for_auth(self, auth: SnmpAuth) -> UdpEngine | SnmpEngine:
        if auth.version != "3":
            return self.default
        key = (auth.user, auth.auth_protocol, _secret(auth.auth_key), auth.priv_protocol, _secret(auth.priv_key))
        if key not in self._v3:
            from wardwatch.agent.snmp.v3 import new_engine

            self._v3[key] = new_engine()
        return self._v3[key]

    def close(self) -> None:
        self.default.close()
        if self._v3:
            from wardwatch.agent.snmp.v3 import close_engine

            for engine in self._v3.values():
                close_engine(engine)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


__all__ = ["DeviceError", "Engines", "SnmpSession"]
