"""Helpers shared by the tests: deadlines instead of sleeps, and our own processes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
BIN = Path(sys.executable).parent


def wait_for(
    check: Callable[[], T], *, timeout: float, interval: float = 0.25, what: str | Callable[[], str] = "condition"
) -> T:
    """Call ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` s.
    ``what`` may be a callable, to describe the state at the moment of failure."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g}s waiting for {said}; last value: {last!r}")
        time.sleep(interval)


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
