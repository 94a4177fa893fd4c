"""Log output for both commands: one line per event, in one of three forms (docs/deploy.md, Logs).

- ``text``: ``2026-12-02 05:41:55,123 WARNING wardwatch.agent.core.supervisor: device sw-a3
  (10.0.3.2): timeout: ...``, for a terminal;
- ``journal``: the same without the time (journald stamps every line) and with the syslog
  priority as a ``<N>`` prefix, which journald reads (``journalctl -p warning`` works);
- ``json``: one object per line for log shippers (Loki, Elasticsearch, Vector): ``ts`` (UTC,
  ISO 8601), ``level``, ``logger``, ``msg``, and ``device`` or ``agent`` when the line is about
  one, ``exc`` for a traceback, plus the fields given to :func:`tag` (the agent's id and ward).

``auto`` (the default) is ``journal`` when stderr is journald's stream (systemd sets
``$JOURNAL_STREAM`` to its device and inode) and ``text`` otherwise.

A line about a device starts ``device <id>`` or ``camera <id>`` (``agent <id>`` about an
agent), the convention every module keeps; the JSON form lifts that id into its own field. A message or traceback
with line breaks stays one line: they are written as ``\\n``.

Secrets: the handler carries :mod:`wardwatch.redact`'s filter (installed by the commands after
:func:`setup`); the fields lifted here are redacted too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from typing import Any, Final, TextIO

import msgspec

from wardwatch import redact

FORMATS: Final = ("auto", "text", "journal", "json")
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"
# syslog(3) priorities, as journald reads them from a "<N>" prefix
PRIORITY: Final = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
# a line's first word -> the JSON field its id goes in (a camera is a device)
_SUBJECTS: Final = {"device": "device", "camera": "device", "agent": "agent"}
_encoder = msgspec.json.Encoder()


def under_journald(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (stderr) is the journal's own stream, not merely a child of a
    service whose stderr was redirected (``$JOURNAL_STREAM`` is ``device:inode``)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = expected.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", "\\n")


def subject(record: logging.LogRecord) -> tuple[str, str] | None:
    """("device", id) for a line that starts ``device <id>`` or ``camera <id>``, ("agent", id)
    for ``agent <id>``."""
    msg = record.msg if isinstance(record.msg, str) else ""
    for word, field in _SUBJECTS.items():
        if msg.startswith(word + " %s") and isinstance(record.args, tuple) and record.args:
            return field, str(record.args[0])
        if msg.startswith(word + " ") and not record.args:  # already merged (e.g. by the redaction filter)
            value = msg[len(word) + 1:].split(" ", 1)[0].rstrip(":,")
            if value:
                return field, value
    return None


class _Subject(logging.Filter):
    """Remembers a line's device or agent id before the redaction filter merges its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = subject(record)
        if found is not None:
            setattr(record, "ww_" + found[0], found[1])
        return True


class TextFormatter(logging.Formatter):
    def __init__(self, fmt: str, *, priority: bool = False) -> None:
        super().__init__(fmt)
        self.priority = priority

    def format(self, record: logging.LogRecord) -> str:
        text = one_line(super().format(record))
        if self.priority:
            return f"<{PRIORITY.get(record.levelno, 6)}>{text}"
        return text


class JsonFormatter(logging.Formatter):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {"ts": ts.replace("+00:00", "Z"), "level": record.levelname, "logger": record.name,
                               "msg": record.getMessage()}
        for kind in ("device", "agent"):
            value = getattr(record, "ww_" + kind, None)
            if value is not None:
                out[kind] = redact.redact(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        for key, value in self.fields.items():
            out.setdefault(key, value)
        return _encoder.encode(out).decode()


_handler: logging.Handler | None = None
_fields: dict[str, str] = {}


def setup(level: str = "INFO", fmt: str = "auto", *, stream: TextIO | None = None) -> str:
    """Send every log record to stderr (or ``stream``) in ``fmt``; the form chosen."""
    global _handler
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "journal" if under_journald(out) else "text"
    handler = logging.StreamHandler(out)
    handler.addFilter(_Subject())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(_fields))
    else:
        handler.setFormatter(TextFormatter(JOURNAL_FORMAT if fmt == "journal" else TEXT_FORMAT,
                                           priority=fmt == "journal"))
    root = logging.getLogger()
    if _handler is not None and _handler in root.handlers:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
    return fmt


def tag(**fields: str) -> None:
    """Fields every JSON line carries from now on (the agent's id and ward, say)."""
    _fields.update({k: redact.redact(v) for k, v in fields.items()})
