"""SNMPv3 through pysnmp: imported only when a config has a v3 auth profile (issue 13).

pysnmp costs ~18 MB at import and ~0.4 ms of CPU per varbind (pyasn1 builds an object per
value); v1/v2c go through agent/snmp/udp.py instead. pysnmp's error indications are
translated here into the agent's exceptions, and its values into plain Python ones (the
same that agent/snmp/ber.py gives), so nothing above this module sees a pysnmp type.
MIB lookup is off (``lookupMib=False``): it costs 2-2.5x CPU and we only use numeric OIDs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]
from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.hlapi.v3arch.asyncio import (
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
from wardwatch.agent.core.errors import DeviceAuthError, DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from wardwatch.agent.snmp.ber import MISSING

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
SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"

Bind = tuple[str, Any, Any]  # (oid, a key that orders as the OID does, value)


def plain(value: Any) -> Any:
    """A pysnmp value as the plain Python value agent/snmp/ber.py would give."""
    if isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView):
        return MISSING
    if isinstance(value, _INTEGERS):
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    if isinstance(value, univ.Null):
        return b""
    if hasattr(value, "asOctets"):
        return bytes(value.asOctets())
    return value


def usm_data(auth: SnmpAuth) -> UsmUserData:
    return UsmUserData(
        auth.user,
        authKey=auth.auth_key.get_secret_value() if auth.auth_key else None,
        privKey=auth.priv_key.get_secret_value() if auth.priv_key else None,
        authProtocol=_AUTH[auth.auth_protocol] if auth.auth_protocol else usm.USM_AUTH_NONE,
        privProtocol=_PRIV[auth.priv_protocol] if auth.priv_protocol else usm.USM_PRIV_NONE,
    )


class V3Transport:
    """GET and GETBULK to one device with one SNMPv3 credential, through a pysnmp engine."""

    def __init__(self, *, engine: SnmpEngine, device: DeviceConfig, auth: SnmpAuth) -> None:
        self.device = device
        self._engine = engine
        self._auth = usm_data(auth)
        self._context = ContextData(contextName=auth.context)
        self._target: UdpTransportTarget | None = None

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

    async def request(self, oids: Sequence[str], *, bulk: tuple[int, int] | None = None) -> list[Bind]:
        """GET ``oids``, or with ``bulk=(non_repeaters, max_repetitions)`` GETBULK them."""
        target = await self._transport()
        binds = (ObjectType(ObjectIdentity(oid)) for oid in oids)
        try:
            if bulk is None:
                err_ind, err_status, err_index, var_binds = await get_cmd(
                    self._engine, self._auth, target, self._context, *binds, lookupMib=False)
            else:
                err_ind, err_status, err_index, var_binds = await bulk_cmd(
                    self._engine, self._auth, target, self._context, bulk[0], bulk[1], *binds, lookupMib=False)
        except DECODE_ERRORS as exc:
            raise DeviceProtocolError(f"garbage answer: {type(exc).__name__}: {exc}") from None
        self._raise_for(err_ind, err_status, err_index)
        return [(str(name), name.asTuple(), plain(value)) for name, value in var_binds]


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
