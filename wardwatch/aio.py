"""Small asyncio helpers shared by the agent and the collector."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def first_of(*aws: Awaitable[Any], within: float | None = None) -> None:
    """Return when the first of ``aws`` completes, or after ``within`` seconds; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
