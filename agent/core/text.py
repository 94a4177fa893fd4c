"""Text from devices, made safe at the edge.

Everything a device says that becomes a tag, a text field or an event goes through
:func:`clean`: control characters (newlines, tabs, NUL, escape sequences) are removed,
surrounding spaces and NULs stripped, and the length capped. A 10 kB ifName or a
sysName with a newline therefore cannot break a log line, a line-protocol record or a
dashboard cell. A registered secret of the config in it (a device quoting its community,
firmware writing ``admin:password@`` into a URI) becomes ``***`` and a URI's login is removed
(:mod:`wardwatch.redact`), before the cut.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from wardwatch import redact
from wardwatch.wire import Reading

MAX_TAG = 128  # tags: if_name, LLDP names, radio and SSID names
MAX_FIELD = 256  # text fields: reason, model, firmware, error detail
MAX_EVENT = 1024  # event data values
# Tags whose values wardwatch sets itself, from a profile or the config (never from what a
# device says): not redacted, so that a community that happens to be a vendor's name
# ("mikrotik", "cisco") does not turn every reading's vendor into ***.
OWN_TAGS = frozenset({"vendor"})
_BREAKS = re.compile(r"[\t\n\r\v\f]+")  # a line break or tab becomes one space


def clean(value: str | bytes, *, limit: int = MAX_TAG, redacting: bool = True) -> str:
    """Printable text of at most ``limit`` characters; bytes are read as UTF-8 (bad bytes replaced).
    ``redacting=False`` only for text wardwatch itself wrote (:data:`OWN_TAGS`)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)
    if not text.isprintable():
        text = "".join(ch for ch in _BREAKS.sub(" ", text) if ch.isprintable())
    if redacting and _leaks(text):  # before the cut, so that no part of a secret is left at the end
        text = redact.redact(text)
    text = text.strip(" \x00")
    if len(text) > limit:
        text = text[:limit]
    return text



def safe_readings(readings: Sequence[Reading]) -> tuple[list[Reading], int]:
    """The readings as the wire accepts them, and how many values had to go.

    The last guard before the outbox, whatever a poller missed: a field that is not a
    finite number or text is removed (a boolean becomes 0/1), text is cleaned and capped,
    an empty tag is removed, and a reading left with no fields is dropped. Text that holds
    a secret of the config (a community quoted in an error, a password in a URI) has it
    replaced by ``***`` (:mod:`wardwatch.redact`), and a URI's ``user:pass@`` is removed.
    Readings that need nothing (nearly all) are passed through as they are."""
    out: list[Reading] = []
    removed = 0
    for r in readings:
        if _fine(r):
            out.append(r)
            continue
        fields: dict[str, int | float | str] = {}
        for key, value in r.fields.items():
            if isinstance(value, bool):
                fields[key] = int(value)
            elif isinstance(value, int):
                fields[key] = value if -(2**63) <= value < 2**63 else float(value)
            elif isinstance(value, float) and math.isfinite(value):
                fields[key] = value
            elif isinstance(value, str):
                fields[key] = clean(redact.redact(value), limit=MAX_FIELD)
            else:
                removed += 1
        tags = {k: c for k, v in r.tags.items()
                if isinstance(v, str) and (c := clean(v, redacting=k not in OWN_TAGS))}
        removed += len(r.tags) - len(tags)
        if fields:
            out.append(Reading(device=r.device, kind=r.kind, measurement=r.measurement, time_ms=r.time_ms,
                               fields=fields, tags=tags))
    return out, removed


def _fine(r: Reading) -> bool:
    for value in r.fields.values():
        if type(value) is float:
            if not math.isfinite(value):
                return False
        elif type(value) is int:
            if not -(2**63) <= value < 2**63:
                return False
        elif type(value) is str:
            if len(value) > MAX_FIELD or not value.isprintable() or _leaks(value):
                return False
        else:
            return False
    return all(type(v) is str and 0 < len(v) <= MAX_TAG and v.isprintable() and (k in OWN_TAGS or not _leaks(v))
               for k, v in r.tags.items())


def _leaks(text: str) -> bool:
    """Whether redaction would change ``text``: a registered secret, or a URI with userinfo."""
    return redact.contains_secret(text) or ("@" in text and redact.strip_userinfo(text) != text)


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``####....``: how far a long job (a sweep) has got, for progress lines on stderr."""
    filled = width * done // max(total, 1)
    return "#" * filled + "." * (width - filled)
