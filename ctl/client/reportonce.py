"""Report a recurring failure once: the vocabulary for objects a component cannot handle.

A malformed object already in the store (written by an older version, or directly) makes
the same code fail the same way every time it looks at the object: on every watch event,
every relist and every retry. Components built on the client (informers, controllers,
the scheduler) report such a failure once, as one warning line, and go on with the other
objects. :class:`ReportOnce` remembers, per object key, the last failure reported; the
same failure again is not news, a different one (or the same after the key was
forgotten, because the object was fixed or deleted) is reported again.
"""

from __future__ import annotations


class ReportOnce:
    """Per-key memory of the last failure reported (bounded: it forgets all past ``limit`` keys)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._last: dict[str, str] = {}

    def first(self, key: str, failure: str) -> bool:
        """True if ``failure`` is news for ``key`` (and remember it), False if it was already reported."""
        if self._last.get(key) == failure:
            return False
        if len(self._last) >= self.limit:
            self._last.clear()
        self._last[key] = failure
        return True

    def forget(self, key: str) -> None:
        """``key`` works again (or is gone): its next failure is news."""
        self._last.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._last

    def __len__(self) -> int:
        return len(self._last)


def describe(e: BaseException) -> str:
    """One line naming an exception: ``TypeError: 'int' object is not iterable``."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
