"""Cancelling background tasks and waiting until they have really stopped.

Every component keeps background tasks (informer loops, workers, pumps). Stopping one means
cancelling it and then awaiting it, so that its ``finally`` blocks run before the caller
closes what the task uses; an exception the task ended with is logged, not re-raised, because
a shutdown must go on. :func:`cancel_and_wait` is that sequence, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("centaurus.tasks")


async def cancel_and_wait(
    *tasks: asyncio.Future[Any] | None | Iterable[asyncio.Future[Any] | None],
) -> None:
    """Cancel the given tasks (None is skipped; iterables are flattened) and wait for all of them."""
    flat: list[asyncio.Future[Any]] = []
    for t in tasks:
        if t is None:
            continue
        if isinstance(t, asyncio.Future):
            flat.append(t)
        else:
            flat.extend(x for x in t if x is not None)
    for t in flat:
        t.cancel()
    if not flat:
        return
    results = await asyncio.gather(*flat, return_exceptions=True)
    for t, r in zip(flat, results, strict=True):
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
            log.warning("task %s ended with %r while stopping", getattr(t, "get_name", lambda: "?")(), r)
