"""Keeping secrets out of text: logs, command output, error details, readings.

A process registers the secrets of its config once, after loading it
(:func:`register_config`); from then on :func:`redact` replaces every registered value,
and its obvious encodings, with ``***``:

- the value itself, and as JSON or Python would escape it inside a string;
- percent-encoded (``quote`` and ``quote_plus``), as it would appear in a URL or a form;
- base64 of the value, and base64 of ``user:value`` for the sections that have a user
  (HTTP Basic, as the InfluxDB and SMTP clients send it).

:class:`RedactingFilter` does it to every log record (its message, its arguments, a
logged exception's traceback); both CLIs put it on the root logger's handlers with
:func:`install_log_filter`, which also redacts the traceback of an uncaught exception.
:func:`strip_userinfo` removes ``user:pass@`` from any URI in a text (a camera's RTSP or
snapshot URI), registered or not.

Values shorter than :data:`MIN_LENGTH` are not replaced (a one-letter community would
turn every log line into stars), nor the factory communities ``public`` and ``private``
(:data:`WELL_KNOWN`), which are no secret.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

MASK = "***"
MIN_LENGTH = 4
# Factory defaults everybody knows: not secret, and replacing them would star every "public"
# in a log line (and auth profiles named after them).
WELL_KNOWN = frozenset({"public", "private"})
# scheme://user[:pass]@ -> scheme://  (the userinfo ends at the last @ before the path: a
# password with an unencoded @ in it goes whole)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s?#]*@")
# Keys of a section whose SecretStr goes with it as user:secret (HTTP Basic, SMTP AUTH PLAIN).
_USER_KEYS = ("username", "user")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def variants(secret: str, *, user: str | None = None) -> set[str]:
    """The forms in which ``secret`` may show up in text."""
    out = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
           repr(secret)[1:-1], _b64(secret)}
    if user:
        out.add(_b64(f"{user}:{secret}"))
        out.add(_b64(f"\0{user}\0{secret}"))  # SMTP AUTH PLAIN
    return {v for v in out if len(v) >= MIN_LENGTH}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def register(secrets: Iterable[str], *, user: str | None = None) -> None:
    """Add secret values (and their encodings) to what :func:`redact` replaces."""
    global _pattern
    with _lock:
        before = len(_secrets)
        for secret in secrets:
            if secret and len(secret) >= MIN_LENGTH and secret not in WELL_KNOWN:
                _secrets.update(variants(secret, user=user))
        if len(_secrets) != before:
            # Longest first, so that a value inside another's encoding cannot leave a tail.
            alternatives = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(s) for s in alternatives))


def clear() -> None:
    """Forget every registered secret (tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def registered() -> bool:
    return _pattern is not None


def redact(text: str) -> str:
    """``text`` with every registered secret (and encoding) replaced by ``***``, and the
    userinfo of any URI in it removed."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "@" in text:
        text = strip_userinfo(text)
    return text


def contains_secret(text: str) -> bool:
    pattern = _pattern
    return pattern is not None and pattern.search(text) is not None


def strip_userinfo(text: str) -> str:
    """``rtsp://admin:pw@10.0.0.5/live`` -> ``rtsp://10.0.0.5/live``, for every URI in ``text``."""
    return _USERINFO.sub(r"\1", text)


def url_has_userinfo(url: str) -> bool:
    """Whether a URL (or a bare host written as one) carries ``user[:pass]@``."""
    head = url.split("://", 1)[-1]
    authority = re.split(r"[/?#]", head, maxsplit=1)[0]
    return "@" in authority


# Secrets of a config ----------------------------------------------------------------


def config_secrets(cfg: BaseModel) -> Iterator[tuple[tuple[int | str, ...], str, str | None]]:
    """(path, value, user) of every SecretStr set in a config; ``user`` is the section's
    ``username``/``user`` beside it, if any."""

    def walk(node: Any, loc: tuple[int | str, ...]) -> Iterator[tuple[tuple[int | str, ...], str, str | None]]:
        if isinstance(node, BaseModel):
            user = next((v for k in _USER_KEYS if isinstance(v := getattr(node, k, None), str)), None)
            for name in type(node).model_fields:
                value = getattr(node, name)
                if isinstance(value, SecretStr):
                    yield (*loc, name), value.get_secret_value(), user
                else:
                    yield from walk(value, (*loc, name))
        elif isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, (*loc, key))
        elif isinstance(node, list | tuple):
            for i, value in enumerate(node):
                yield from walk(value, (*loc, i))

    yield from walk(cfg, ())


def register_config(cfg: BaseModel) -> int:
    """Register every secret of a loaded config; how many values there were."""
    count = 0
    for _loc, value, user in config_secrets(cfg):
        register([value], user=user)
        count += 1
    return count


# Logging ---------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """Rewrites a record so that no registered secret (nor a URI's userinfo) is formatted:
    the message with its arguments merged, and a logged exception's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None and not _may_hold_userinfo(record):
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: let the handler report it as logging does
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _may_hold_userinfo(record: logging.LogRecord) -> bool:
    return "@" in str(record.msg) or bool(record.args) or bool(record.exc_info)


_FILTER = RedactingFilter()


def install_log_filter(logger: logging.Logger | None = None) -> RedactingFilter:
    """Put the filter on every handler of ``logger`` (the root logger by default): filters
    on handlers see records propagated from every other logger, filters on a logger do not.
    For the root logger, an uncaught exception's traceback (``sys.excepthook``, and
    ``threading.excepthook`` for a thread's) is redacted too."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    if logger is None:
        sys.excepthook = _excepthook
        threading.excepthook = _thread_excepthook
    return _FILTER


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact(f"Exception in thread {name}:\n{text}"))
