"""SNMP transport: one pysnmp engine for the whole agent, a session per device.

pysnmp's error indications are translated here into the agent's exceptions, so the
pollers above never see a pysnmp type. MIB lookup is off (``lookupMib=False``): it costs
2-2.5x CPU and we only use numeric OIDs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]
from pydantic import SecretStr
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import auth as usm
from pysnmp.hlapi.varbinds import CommandGeneratorVarBinds
from pysnmp.proto import errind, rfc1902
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject
from pysnmp.smi.error import PySnmpError

from wardwatch.agent.core.config import DeviceConfig, SnmpAuth
from wardwatch.agent.core.errors import (
    DeviceAuthError,
    DeviceError,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
)
from wardwatch.agent.snmp.profiles import MAX_ROWS

log = logging.getLogger(__name__)

_AUTH = {
    "MD5": usm.USM_AUTH_HMAC96_MD5,
    "SHA": usm.USM_AUTH_HMAC96_SHA,
    "SHA224": usm.USM_AUTH_HMAC128_SHA224,
    "SHA256": usm.USM_AUTH_HMAC192_SHA256,
    "SHA384": usm.USM_AUTH_HMAC256_SHA384,
    "SHA512": usm.USM_AUTH_HMAC384_SHA512,
}
_PRIV = {
    "DES": usm.USM_PRIV_CBC56_DES,
    "AES": usm.USM_PRIV_CFB128_AES,
    "AES192": usm.USM_PRIV_CFB192_AES,
    "AES256": usm.USM_PRIV_CFB256_AES,
}
_AUTH_ERRORS = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.AuthenticationFailure,
    errind.DecryptionError,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
)
# What pysnmp raises into our call when an answer cannot be used (observed with
# simulators/garbage_snmp.py); anything it cannot decode at all it drops, and we time out.
DECODE_ERRORS = (PySnmpError, PyAsn1Error)
_INTEGERS = (rfc1902.TimeTicks, rfc1902.Integer32, rfc1902.Counter32, rfc1902.Gauge32, rfc1902.Unsigned32,
             rfc1902.Counter64)
# Leave room in a GETBULK answer: many agents (snmpsim among them) cap a reply at 64 varbinds.
MAX_VARBINDS = 60
SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"

Value = Any  # a pysnmp value; callers convert with int() / str()
Table = dict[str, dict[str, Value]]  # column OID -> row index -> value
Times = dict[str, dict[str, float]]  # column OID -> row index -> monotonic arrival time


def auth_data(auth: SnmpAuth) -> CommunityData | UsmUserData:
    if auth.version in ("1", "2c"):
        assert auth.community is not None  # the config validator guarantees it
        return CommunityData(auth.community.get_secret_value(), mpModel=0 if auth.version == "1" else 1)
    return UsmUserData(
        auth.user,
        authKey=auth.auth_key.get_secret_value() if auth.auth_key else None,
        privKey=auth.priv_key.get_secret_value() if auth.priv_key else None,
        authProtocol=_AUTH[auth.auth_protocol] if auth.auth_protocol else usm.USM_AUTH_NONE,
        privProtocol=_PRIV[auth.priv_protocol] if auth.priv_protocol else usm.USM_PRIV_NONE,
    )


def _missing(value: Value) -> bool:
    return isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView)


class SnmpSession:
    """GET and column walks against one device. Not thread-safe; one per device."""

    def __init__(self, *, engine: SnmpEngine, device: DeviceConfig, auth: SnmpAuth) -> None:
        self.device = device
        self.version = auth.version
        self._engine = engine
        self._auth = auth_data(auth)
        self._context = ContextData(contextName=auth.context)
        self._target: UdpTransportTarget | None = None
        # What the last walk_columns could not read: a column that did not end within
        # MAX_ROWS rows, or whose OIDs stopped increasing. The poll goes on with the rest.
        self.walk_problems: list[str] = []

    async def _transport(self) -> UdpTransportTarget:
        if self._target is None:
            try:
                self._target = await UdpTransportTarget.create(
                    (self.device.host, self.device.port or 161),
                    timeout=self.device.timeout,
                    retries=self.device.retries,
                )
            except PySnmpError as exc:
                raise DeviceUnreachable(f"cannot resolve {self.device.host}: {exc}") from None
        return self._target

    def _raise_for(self, error_indication: Any, error_status: Any, error_index: Any) -> None:
        if error_indication:
            text = str(error_indication)
            if isinstance(error_indication, errind.RequestTimedOut):
                raise DeviceTimeout(f"no answer after {self.device.retries + 1} tries of {self.device.timeout:g}s")
            if isinstance(error_indication, _AUTH_ERRORS):
                raise DeviceAuthError(text)
            raise DeviceUnreachable(text)
        if error_status:
            raise DeviceProtocolError(f"{error_status.prettyPrint()} at varbind {int(error_index)}")

    async def get(self, oids: Sequence[str]) -> dict[str, Value]:
        """GET scalars; an OID the device lacks maps to None."""
        target = await self._transport()
        try:
            err_ind, err_status, err_index, var_binds = await get_cmd(
                self._engine, self._auth, target, self._context,
                *(ObjectType(ObjectIdentity(oid)) for oid in oids), lookupMib=False,
            )
        except DECODE_ERRORS as exc:
            raise DeviceProtocolError(f"garbage answer: {type(exc).__name__}: {exc}") from None
        self._raise_for(err_ind, err_status, err_index)
        if len(var_binds) != len(oids):
            raise DeviceProtocolError(f"asked for {len(oids)} values, got {len(var_binds)}")
        out: dict[str, Value] = {}
        for oid, (name, value) in zip(oids, var_binds, strict=True):
            out[oid] = None if _missing(value) else value
            if str(name) != oid:
                raise DeviceProtocolError(f"asked for {oid}, got {name}")
        return out

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
        target = await self._transport()
        result: Table = {c: {} for c in columns}
        times: Times = {c: {} for c in columns}
        cursor: dict[str, str | None] = {c: c for c in columns}  # column -> last OID seen
        last: dict[str, tuple[int, ...]] = {}
        self.walk_problems = problems = []
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
            head = [ObjectType(ObjectIdentity(clock))] if clock else []
            try:
                err_ind, err_status, err_index, var_binds = await bulk_cmd(
                    self._engine, self._auth, target, self._context, len(head), reps,
                    *head, *(ObjectType(ObjectIdentity(cursor[c])) for c in active), lookupMib=False,
                )
            except DECODE_ERRORS as exc:
                raise DeviceProtocolError(f"garbage answer: {type(exc).__name__}: {exc}") from None
            arrived = time.monotonic()
            try:
                self._raise_for(err_ind, err_status, err_index)
            except DeviceTimeout as exc:
                if not any(result.values()):
                    raise
                # It answered this poll (the GET, the first pages) and then fell silent:
                # what it said is kept; the next poll tells whether it is gone.
                rows = max(len(v) for v in result.values())
                problems.append(f"walk stopped after {rows} rows: {exc}")
                return result, times
            if clock:
                if not var_binds or str(var_binds[0][0]) != f"{clock}.0":
                    raise DeviceProtocolError(f"no {clock}.0 at the head of the GETBULK answer")
                arrived = _ticks(var_binds[0][1], clock) / 100
                var_binds = var_binds[1:]
            if not var_binds:
                raise DeviceProtocolError("empty GETBULK answer")
            progressed = {c: False for c in active}
            for i, (name, value) in enumerate(var_binds):
                column = active[i % len(active)]
                if cursor[column] is None:
                    continue
                oid = str(name)
                prefix = column + "."
                if _missing(value) or not oid.startswith(prefix):
                    cursor[column] = None
                    continue
                if name.asTuple() <= last.get(column, ()):
                    problems.append(f"walk of {column}: OID {_short(oid)} does not increase; read "
                                    f"{len(result[column])} rows and stopped")
                    cursor[column] = None
                    continue
                if len(result[column]) >= MAX_ROWS:
                    problems.append(f"walk of {column}: more than {MAX_ROWS} rows; read the first {MAX_ROWS}")
                    cursor[column] = None
                    continue
                last[column] = name.asTuple()
                result[column][oid[len(prefix):]] = value
                times[column][oid[len(prefix):]] = arrived
                cursor[column] = oid
                progressed[column] = True
            for c, moved in progressed.items():
                if not moved:
                    cursor[c] = None
        raise DeviceProtocolError("table walk did not end; the device may return non-increasing OIDs")


def _ticks(value: Value, what: str) -> int:
    """A TimeTicks value from the device (sysUpTime), or DeviceProtocolError."""
    if isinstance(value, _INTEGERS) and 0 <= int(value) < 2**32:
        return int(value)
    raise DeviceProtocolError(f"{what}.0 is {type(value).__name__}, not TimeTicks")


def _short(oid: str) -> str:
    return oid if len(oid) <= 80 else oid[:77] + "..."


class Engines:
    """One SnmpEngine for every v1/v2c device, and one more per distinct SNMPv3 credential.

    pysnmp keeps one set of keys per v3 user name in an engine: two devices whose user is
    called ``mon`` but whose keys differ would share the first one's keys, and the second
    would fail with "Wrong SNMP PDU digest". Credentials with identical keys share an engine.
    """

    def __init__(self) -> None:
        self.default = new_engine()
        self._v3: dict[tuple[str | None, ...], SnmpEngine] = {}

    def for_auth(self, auth: SnmpAuth) -> SnmpEngine:
        if auth.version != "3":
            return self.default
        key = (auth.user, auth.auth_protocol, _secret(auth.auth_key), auth.priv_protocol, _secret(auth.priv_key))
        if key not in self._v3:
            # The first v3 credential can use the default engine: no other user name clashes there.
            self._v3[key] = self.default if not self._v3 else new_engine()
        return self._v3[key]

    def close(self) -> None:
        for engine in {id(e): e for e in (self.default, *self._v3.values())}.values():
            close_engine(engine)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def new_engine() -> SnmpEngine:
    """Build an engine; reuse it for every device and close it at shutdown.

    pysnmp loads its MIB view on the first request, which holds the event loop for ~0.6 s
    and would delay every poll in flight; so it is loaded here, before any polling."""
    engine = SnmpEngine()
    CommandGeneratorVarBinds().make_varbinds(engine.cache, (ObjectType(ObjectIdentity(SYS_UPTIME_OID)),))
    return engine


def close_engine(engine: SnmpEngine) -> None:
    try:
        engine.close_dispatcher()
    except (PySnmpError, RuntimeError) as exc:  # closing twice, or a loop already gone
        log.debug("closing the SNMP engine: %s", exc)


__all__ = ["DeviceError", "Engines", "SnmpSession", "close_engine", "new_engine"]
