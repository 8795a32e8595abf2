"""The scheduling queue: active, back-off and unschedulable pods (kube-scheduler's design).

* *active*: pods ready to be tried, highest ``spec.priority`` first, then oldest;
* *back-off*: pods that failed recently and wait ``initial * 2^(attempts-1)`` seconds
  (capped at ``max``) before their next try;
* *unschedulable*: pods no node could take. They stay parked until the cluster changes in
  a way that could help -- :meth:`SchedulingQueue.move_all` on a node added or changed,
  or a bound pod deleted (resources freed) -- and then go to back-off (or straight to
  active if their back-off has already expired). A pod parked longer than
  ``unschedulable_timeout`` is retried anyway, as a safety net.

A move request that arrives while a pod is being scheduled is remembered by cycle
number, so a pod whose attempt failed on stale information goes to back-off instead of
being parked until the next change (kube-scheduler's ``moveRequestCycle``).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from dataclasses import dataclass
from typing import Any

from ctl.scheduler.podinfo import PodInfo

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "inflight"


@dataclass(slots=True)
class Entry:
    info: PodInfo
    state: str
    seq: int
    attempts: int = 0
    backoff_until: float = 0.0
    parked_at: float = 0.0
    cycle: int = 0
    updated: bool = False  # the pod changed while it was being scheduled


class SchedulingQueue:
    def __init__(
        self, initial_backoff: float = 1.0, max_backoff: float = 10.0, unschedulable_timeout: float = 60.0
    ) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self.entries: dict[str, Entry] = {}
        self._active: list[tuple[int, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, Entry] = {}
        self._seq = 0
        self.cycle = 0
        self.move_request_cycle = -1
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ internals
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _push_active(self, e: Entry) -> None:
        e.state = ACTIVE
        e.seq = self._next_seq()
        heapq.heappush(self._active, (-e.info.priority, e.seq, e.info.key))
        self._wake.set()

    def _push_backoff(self, e: Entry) -> None:
        e.state = BACKOFF
        e.seq = self._next_seq()
        heapq.heappush(self._backoff, (e.backoff_until, e.seq, e.info.key))

    def backoff_duration(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return min(self.initial_backoff * (2 ** min(attempts - 1, 30)), self.max_backoff)

    # ------------------------------------------------------------------ API
    def __len__(self) -> int:
        return len(self.entries)

    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, IN_FLIGHT: 0}
        for e in self.entries.values():
            out[e.state] += 1
        return out

    def add(self, pod: dict[str, Any]) -> None:
        """A pod that wants scheduling was added or changed."""
        info = PodInfo.from_pod(pod)
        e = self.entries.get(info.key)
        if e is None:
            e = Entry(info, ACTIVE, 0)
            self.entries[info.key] = e
            self._push_active(e)
            return
        if e.info.uid != info.uid:  # deleted and recreated under the same name
            self.delete(info.key)
            self.add(pod)
            return
        info.attempts = e.attempts
        e.info = info
        if e.state == IN_FLIGHT:
            e.updated = True
        elif e.state == UNSCHEDULABLE:
            # An update may make it schedulable (kube: moves on pod update).
            self._unschedulable.pop(info.key, None)
            self._requeue_after_move(e, time.monotonic())

    def delete(self, key: str) -> None:
        e = self.entries.pop(key, None)
        if e is not None:
            self._unschedulable.pop(key, None)
            e.state = "deleted"

    def contains(self, key: str) -> bool:
        return key in self.entries

    async def pop(self) -> PodInfo:
        while True:
            while self._active:
                _, seq, key = heapq.heappop(self._active)
                e = self.entries.get(key)
                if e is None or e.state != ACTIVE or e.seq != seq:
                    continue  # stale heap item
                e.state = IN_FLIGHT
                e.updated = False
                self.cycle += 1
                e.cycle = self.cycle
                return e.info
            self._wake.clear()
            await self._wake.wait()

    def pop_nowait(self) -> PodInfo | None:
        while self._active:
            _, seq, key = heapq.heappop(self._active)
            e = self.entries.get(key)
            if e is None or e.state != ACTIVE or e.seq != seq:
                continue
            e.state = IN_FLIGHT
            e.updated = False
            self.cycle += 1
            e.cycle = self.cycle
            return e.info
        return None

    def done(self, key: str) -> None:
        """The pod was assumed on a node (binding in progress): it leaves the queue."""
        e = self.entries.get(key)
        if e is not None and e.state == IN_FLIGHT:
            del self.entries[key]

    def requeue_unschedulable(self, key: str) -> None:
        e = self.entries.get(key)
        if e is None or e.state != IN_FLIGHT:
            return
        e.attempts += 1
        now = time.monotonic()
        e.backoff_until = now + self.backoff_duration(e.attempts)
        if e.updated or self.move_request_cycle >= e.cycle:
            self._push_backoff(e)
        else:
            e.state = UNSCHEDULABLE
            e.parked_at = now
            self._unschedulable[key] = e

    def requeue_error(self, info: PodInfo) -> None:
        """Binding or an API call failed: try again after back-off."""
        e = self.entries.get(info.key)
        if e is None:
            e = Entry(info, IN_FLIGHT, 0, attempts=info.attempts)
            self.entries[info.key] = e
        if e.state not in (IN_FLIGHT,):
            return
        e.attempts += 1
        e.backoff_until = time.monotonic() + self.backoff_duration(e.attempts)
        self._push_backoff(e)

    def _requeue_after_move(self, e: Entry, now: float) -> None:
        if e.backoff_until <= now:
            self._push_active(e)
        else:
            self._push_backoff(e)

    def move_all(self) -> int:
        """The cluster changed: unschedulable pods get another chance. Returns how many moved."""
        self.move_request_cycle = self.cycle
        if not self._unschedulable:
            return 0
        now = time.monotonic()
        moved = list(self._unschedulable.values())
        self._unschedulable.clear()
        for e in moved:
            self._requeue_after_move(e, now)
        return len(moved)

    def flush(self) -> float:
        """Move due back-off pods (and long-parked unschedulable ones) to active.

        Returns seconds until the next back-off expires (capped at 1 s).
        """
        now = time.monotonic()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            e = self.entries.get(key)
            if e is not None and e.state == BACKOFF and e.seq == seq:
                self._push_active(e)
        if self._unschedulable and self.unschedulable_timeout > 0:
            stale = [
                e for e in self._unschedulable.values() if now - e.parked_at >= self.unschedulable_timeout
            ]
            for e in stale:
                del self._unschedulable[e.info.key]
                self._requeue_after_move(e, now)
        if self._backoff:
            return max(0.01, min(1.0, self._backoff[0][0] - now))
        return 1.0

    async def run_flusher(self) -> None:
        while True:
            await asyncio.sleep(min(self.flush(), 0.1))
