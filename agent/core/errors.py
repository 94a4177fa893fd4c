"""The agent's few exception types. Library errors are translated into these at the edge."""

from __future__ import annotations


class DeviceError(Exception):
    """A device did not give a usable answer. ``reason`` is a short, stable class name
    that goes into ``device_status.reason`` and the ``check`` table."""

    reason = "error"


class DeviceTimeout(DeviceError):
    reason = "timeout"


class DeviceAuthError(DeviceError):
    reason = "auth"


class DeviceUnreachable(DeviceError):
    reason = "unreachable"


class DeviceProtocolError(DeviceError):
    """A garbage or unexpected answer: wrong types, errors in the PDU, missing objects."""

    reason = "protocol"


class DeviceNoSuchObject(DeviceError):
    """The device answers, but lacks the objects its profile reads (or sysUpTime)."""

    reason = "no_such_object"
