"""Deliver one notice on one channel: bounded retries with backoff, every attempt recorded.

``deliver`` tries ``1 + cfg.retries`` times. Each try is bounded by ``cfg.timeout``; between
tries it waits ``cfg.backoff * 2**n`` (at most :data:`MAX_BACKOFF`), or longer when the far
end asked for it (a rate limit's ``retry_after``, within the same cap). A failure that
trying again cannot mend (a 4xx, refused credentials, no STARTTLS) stops at once. After
every try ``record`` gets an :class:`~wardwatch.collector.alerts.model.Attempt`.

A channel's failure never escapes: deliver returns False and logs one warning line naming
the channel. It runs per channel; the notifier runs the channels of a notice side by side,
so a dead webhook never delays the email.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from wardwatch import redact
from wardwatch.collector.alerts.channels import Channel
from wardwatch.collector.alerts.model import Attempt, DeliveryError, Notice

log = logging.getLogger(__name__)

MAX_BACKOFF: Final = 300.0


def backoff(base: float, n: int) -> float:
    """The wait after the ``n``-th failed try (0-based): ``base * 2**n``, at most 5 minutes."""
    return min(base * (2.0 ** min(n, 30)), MAX_BACKOFF)


async def deliver(
    channel: Channel,
    notice: Notice,
    *,
    record: Callable[[Attempt], None],
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> bool:
    """True once ``channel`` has delivered ``notice``; False when it gave up (or ``stop``
    was set before it could)."""
    cfg = channel.cfg
    tries = 1 + cfg.retries
    fingerprints = [na.alert.fingerprint for na in notice.alerts]
    for n in range(tries):
        if stop is not None and stop.is_set():
            return False
        error: DeliveryError | None = None
        try:
            async with asyncio.timeout(cfg.timeout):
                await channel.send(notice)
        except DeliveryError as exc:
            error = exc
        except TimeoutError:
            error = DeliveryError(f"no answer within {cfg.timeout:g} s", retry=True)
        record(
            Attempt(
                channel=channel.name,
                kind=notice.kind,
                group_key=notice.group_key,
                fingerprints=list(fingerprints),
                attempt=n + 1,
                ok=error is None,
                time_ms=int(clock() * 1000),
                error="" if error is None else redact.redact(str(error)),
                status=None if error is None else error.status,
            )
        )
        if error is None:
            if n:
                log.info("alerts channel %s: %s notice %s delivered on try %d", channel.name, notice.kind,
                         notice.group_key, n + 1)
            return True
        if not error.retry or n + 1 == tries:
            why = "not retryable" if not error.retry else f"gave up after {tries} tries"
            log.warning("alerts channel %s: %s notice %s not delivered (%s): %s", channel.name, notice.kind,
                        notice.group_key, why, error)
            return False
        wait = backoff(cfg.backoff, n)
        asked = getattr(error, "retry_after", None)
        if isinstance(asked, int | float) and asked > wait:
            wait = min(float(asked), MAX_BACKOFF)
        log.debug("alerts channel %s: try %d failed (%s); next in %.1f s", channel.name, n + 1, error, wait)
        if stop is None:
            await asyncio.sleep(wait)
        else:
            try:
                async with asyncio.timeout(wait):
                    await stop.wait()
            except TimeoutError:
                pass
            else:
                return False
    return False
