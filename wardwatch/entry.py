"""The console scripts. Every install gets all three (a wheel cannot leave one out), but each
side's libraries come with its extra: ``wardwatch-collector`` in an ``[agent]`` install finds
no aiohttp. That is said in one line naming the extra, not with a traceback."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import cast

EXTRAS = {"wardwatch-agent": "agent", "wardwatch-collector": "collector", "wardwatch-sim": "sim"}


def _main(prog: str, module: str) -> Callable[[], int]:
    try:
        return cast("Callable[[], int]", importlib.import_module(module).main)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] == "wardwatch":
            raise  # a module of ours missing is a broken install or a bug: the traceback says which
        extra = EXTRAS[prog]
        sys.exit(f"{prog}: the {exc.name} library is not installed here; {prog} comes with "
                 f"pip install 'wardwatch[{extra}]'")


def agent() -> int:
    return _main("wardwatch-agent", "wardwatch.agent.core.cli")()


def collector() -> int:
    return _main("wardwatch-collector", "wardwatch.collector.cli")()


def sim() -> int:
    return _main("wardwatch-sim", "wardwatch.simulators.cli")()
