"""Bounded waiting for conditions that other processes (or tasks) make true.

Tests against real components cannot assume that one read shows the end state: a controller may
need two updates, a watch may lag. :func:`eventually` (async) and :func:`eventually_sync` poll
``fn`` every ``interval`` seconds until it returns something truthy and return that value; after
``timeout`` seconds they fail with an ``AssertionError`` naming ``what`` was awaited, the last
value ``fn`` returned (or the last exception it raised, when ``ignore`` lets exceptions count as
"not yet") and, if given, the text ``diag()`` returns (a log tail, a listing), so a timeout
explains itself. ``fn`` is called at least once, even with a zero timeout, and once more at the
deadline, so a condition that became true while the helper slept is not reported as a timeout.
The async variant accepts ``fn`` returning an awaitable or a plain value.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _Deadline:
    """The bookkeeping both variants share: when to give up, how long to sleep, what to report."""

    def __init__(self, timeout: float, interval: float, what: str, diag: Callable[[], str] | None) -> None:
        self.timeout, self.interval, self.what, self.diag = timeout, interval, what, diag
        self.end = time.monotonic() + timeout
        self.final = False

    def settled(self, value: Any) -> bool:
        """Record one attempt (taken before the deadline check) and say whether it succeeded."""
        self.final = time.monotonic() >= self.end
        self.last = value
        return bool(value) and not isinstance(value, BaseException)

    def pause(self) -> float:
        """Seconds to sleep before the next attempt; raises the timeout after the final one."""
        if self.final:
            raise self.failure()
        return max(0.0, min(self.interval, self.end - time.monotonic()))

    def failure(self) -> AssertionError:
        last = self.last
        shown = f"{type(last).__name__}: {last}" if isinstance(last, BaseException) else repr(last)
        if len(shown) > 2000:
            shown = shown[:2000] + "..."
        extra = ""
        if self.diag is not None:
            try:
                extra = "\n" + self.diag()
            except Exception as e:  # noqa: BLE001 - diagnostics must not hide the timeout
                extra = f"\n(diagnostics failed: {e})"
        return AssertionError(
            f"timed out after {self.timeout:g}s waiting for {self.what}; last value: {shown}{extra}"
        )


async def _attempt(fn: Callable[[], Any], ignore: tuple[type[BaseException], ...]) -> Any:
    try:
        value = fn()
        return (await value) if inspect.isawaitable(value) else value
    except ignore as e:
        return e


def _attempt_sync(fn: Callable[[], Any], ignore: tuple[type[BaseException], ...]) -> Any:
    try:
        return fn()
    except ignore as e:
        return e


async def eventually(
    fn: Callable[[], Awaitable[T] | T],
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
    *,
    diag: Callable[[], str] | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Await ``fn()`` until it is truthy and return it; fail after ``timeout`` seconds."""
    d = _Deadline(timeout, interval, what, diag)
    while not d.settled(value := await _attempt(fn, ignore)):
        await asyncio.sleep(d.pause())
    return value  # type: ignore[no-any-return]


def eventually_sync(
    fn: Callable[[], T],
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
    *,
    diag: Callable[[], str] | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``fn()`` until it is truthy and return it; fail after ``timeout`` seconds."""
    d = _Deadline(timeout, interval, what, diag)
    while not d.settled(value := _attempt_sync(fn, ignore)):
        time.sleep(d.pause())
    return value  # type: ignore[no-any-return]
