"""Restart back-off for crashing containers, with kubelet's semantics.

Kubelet keeps one entry per (pod, container). When a container exits and the restart policy says
to restart it, the restart is allowed immediately if there is no entry (or the entry is stale),
and the entry is then set to the initial delay (10 s); a later exit less than the current delay after
the previous one keeps the container waiting in ``CrashLoopBackOff`` until the delay has passed since
it finished, and the following restart doubles the delay up to the maximum (5 min). An entry whose last
update is older than twice the maximum counts as stale, so a container that ran fine for a long time
starts over at the initial delay.

The base and the cap are parameters so tests can run the same logic at sub-second scale. Entries can be
exported and restored so that a restarted agent keeps crash-looping containers backed off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    backoff: float
    last_update: float


class BackOff:
    """Per-key exponential back-off; times are epoch seconds (floats)."""

    def __init__(
        self, initial: float = 10.0, maximum: float = 300.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def _expired(self, event_time: float, last_update: float) -> bool:
        return event_time - last_update > 2 * self.maximum

    def remaining(self, key: str, event_time: float) -> float:
        """Seconds left before a container that finished at ``event_time`` may restart (0 = now)."""
        e = self._entries.get(key)
        if e is None or self._expired(event_time, e.last_update):
            return 0.0
        return max(0.0, e.backoff - (self.clock() - event_time))

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        return self.remaining(key, event_time) > 0

    def current(self, key: str) -> float:
        """The delay that applies to the next restart of ``key`` (for messages)."""
        e = self._entries.get(key)
        return e.backoff if e is not None else 0.0

    def next(self, key: str, event_time: float) -> None:
        """Record a restart of ``key`` for an exit at ``event_time``: start or double the delay."""
        e = self._entries.get(key)
        if e is None or self._expired(event_time, e.last_update):
            self._entries[key] = _Entry(self.initial, event_time)
        else:
            e.backoff = min(e.backoff * 2, self.maximum)
            e.last_update = event_time

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for k in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[k]

    def export(self, prefix: str = "") -> dict[str, list[float]]:
        return {k: [e.backoff, e.last_update] for k, e in self._entries.items() if k.startswith(prefix)}

    def restore(self, data: dict[str, list[float]]) -> None:
        for k, (b, t) in data.items():
            self._entries.setdefault(k, _Entry(float(b), float(t)))
