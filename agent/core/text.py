"""Text from devices, made safe at the edge.

Everything a device says that becomes a tag, a text field or an event goes through
:func:`clean`: control characters (newlines, tabs, NUL, escape sequences) are removed,
surrounding spaces and NULs stripped, and the length capped. A 10 kB ifName or a
sysName with a newline therefore cannot break a log line, a line-protocol record or a
dashboard cell.
"""

from __future__ import annotations

MAX_TAG = 128  # tags: if_name, LLDP names, radio and SSID names
MAX_FIELD = 256  # text fields: reason, model, firmware, error detail
MAX_EVENT = 1024  # event data values


def clean(value: str | bytes, *, limit: int = MAX_TAG) -> str:
    """Printable text of at most ``limit`` characters; bytes are read as UTF-8 (bad bytes replaced)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else (" " if ch in "\t\n\r" else "") for ch in text)
    text = text.strip(" \x00")
    if len(text) > limit:
        text = text[:limit]
    return text

