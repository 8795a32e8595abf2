"""Plumbing every controller shares: work queues, shared informers with indexes, work splitting.

* :class:`WorkQueue` is an asyncio take on client-go's rate-limited queue: a key is queued
  at most once, a key being processed that is added again is re-queued when its worker
  finishes (so two workers never sync the same object at once), ``add_after`` delays,
  and ``requeue_error`` backs off exponentially per key.
* The shared informers and their indexes (pods by namespace, by node, objects by
  controller uid) live in :mod:`ctl.client.informer`, so the scheduler, the controllers
  and the TUI use one implementation; controllers get them as a
  :class:`~ctl.client.informer.SharedInformers`.
* :class:`HashRange` filters objects by ``metadata.hashKey`` so several controller
  instances can split the work (DESIGN.md §4): each instance handles the objects whose
  hash key lies in its ``--hash-range LO-HI``.
* :class:`Controller` runs ``workers`` coroutines that pop keys and call ``sync``; a
  subclass wires itself to the shared informers in ``setup``. Conflicts and lost
  connections are retried with back-off; a sync that fails otherwise (a malformed object
  already in the store, a write the server refuses as invalid) is reported once, as one
  warning line and a ``FailedSync`` Warning Event on the object, and the key is left
  alone until the object changes (or :data:`PARKED_RETRY` seconds pass), so one bad
  object costs neither a traceback per retry nor a hot loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ctl.client import Client
from ctl.client.aio import ApiError
from ctl.client.events import EventRecorder
from ctl.client.informer import SharedInformer, SharedInformers
from ctl.client.reportonce import ReportOnce, describe
from ctl.types import meta
from ctl.types.meta import object_key
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.controllers")

MAX_HASH = (1 << 63) - 1
PARKED_RETRY = 300.0  # seconds before a sync that failed for good is tried again unprompted


def split_key(key: str) -> tuple[str, str, str]:
    tenant, namespace, name = key.split("/", 2)
    return tenant, namespace, name


class HashRange:
    """``LO-HI`` (inclusive, decimal or 0x-hex) over ``metadata.hashKey``; empty = everything."""

    def __init__(self, lo: int = 0, hi: int = MAX_HASH) -> None:
        self.lo, self.hi = lo, hi

    @classmethod
    def parse(cls, text: str | None) -> HashRange:
        if not text:
            return cls()
        lo_s, sep, hi_s = text.partition("-")
        if not sep:
            raise ValueError(f"--hash-range must be LO-HI, got {text!r}")
        try:
            lo, hi = int(lo_s, 0), int(hi_s, 0)
        except ValueError:
            raise ValueError(f"--hash-range bounds must be integers, got {text!r}") from None
        if lo < 0 or hi < lo:
            raise ValueError(f"--hash-range needs 0 <= LO <= HI, got {text!r}")
        return cls(lo, hi)

    @property
    def everything(self) -> bool:
        return self.lo == 0 and self.hi >= MAX_HASH

    def owns(self, obj: dict[str, Any]) -> bool:
        if self.everything:
            return True
        md = obj.get("metadata") or {}
        hk = md.get("hashKey")
        if hk is None:
            hk = meta.hash_key(md.get("uid") or "")
        return self.lo <= int(hk) <= self.hi


class WorkQueue:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def add(self, key: str) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        old = self._timers.get(key)
        when = loop.time() + delay
        if old is not None and old.when() <= when:
            return
        if old is not None:
            old.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def requeue_error(self, key: str) -> None:
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        self.add_after(key, min(0.05 * (2 ** min(n, 10)), 10.0))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        key = await self._queue.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return self._queue.qsize()


class Controller:
    """A named controller: a work queue plus ``workers`` coroutines calling :meth:`sync`.

    Every controller is built the same way (``cls(client, informers, recorder, hash_range,
    workers)``); a subclass takes the informers it reacts to, their indexes and handlers,
    and its own state in :meth:`setup`.
    """

    name = "controller"

    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        recorder: EventRecorder,
        hash_range: HashRange,
        workers: int = 2,
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.hash_range = hash_range
        self.queue = WorkQueue(self.name)
        self.workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self.failed = ReportOnce()  # key -> the failure reported for it (see _sync_failed)
        self.primary: SharedInformer | None = None  # the informer of the objects the keys name
        self.log = logging.getLogger(f"centaurus.controllers.{self.name}")
        self.setup(informers)

    def setup(self, informers: SharedInformers) -> None:
        """Take the informers this controller reacts to (indexes, handlers) and set up its state."""
        raise NotImplementedError

    def enqueue(self, obj: dict[str, Any]) -> None:
        """Queue ``obj``'s key if it falls in this instance's hash range (active-active split)."""
        if self.hash_range.owns(obj):
            self.queue.add(object_key(obj))

    async def sync(self, key: str) -> float | None:
        """Reconcile one key; return a delay to look again after, or None."""
        raise NotImplementedError

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            t0 = time.perf_counter()
            try:
                again = await self.sync(key)
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.code in (400, 422):  # the server refuses what this object makes us write
                    self._sync_failed(key, e)
                    continue
                if e.code == 409 or (e.code == 403 and "being terminated" in str(e)):
                    self.log.debug("sync %s: conflict, retrying", key)
                else:
                    self.log.warning("sync %s: %s (%s)", key, e, e.code)
                self.queue.requeue_error(key)
            except ConnectionError as e:
                self.log.warning("sync %s: %s", key, e)
                self.queue.requeue_error(key)
            except Exception as e:
                self._sync_failed(key, e)
                continue
            else:
                self.failed.forget(key)
            finally:
                self.queue.done(key)
            dt = time.perf_counter() - t0
            if dt > 1.0:
                self.log.info("sync %s took %.2fs", key, dt)

    def object_for(self, key: str) -> dict[str, Any] | None:
        """The object a work-queue key stands for (to record an Event on), if there is one."""
        return self.primary.get_key(key) if self.primary is not None else None

    def _sync_failed(self, key: str, e: Exception) -> None:
        """A sync failed in a way retrying cannot fix (a malformed object, a refused write):
        report it once (one warning line and a Warning Event), then look again only when the
        object changes (its informer event re-queues the key) or after :data:`PARKED_RETRY`."""
        what = describe(e)
        if self.failed.first(key, what):
            self.log.warning("sync %s failed: %s; not retrying until the object changes", key, what)
            self.log.debug("sync %s traceback", key, exc_info=e)
            obj = self.object_for(key)
            if obj is not None:
                try:
                    self.recorder.warning(
                        obj, "FailedSync", f"{self.name} controller cannot reconcile it: {what}"
                    )
                except Exception as e2:  # an object too malformed to name in an Event
                    self.log.debug("no event for %s: %s", key, describe(e2))
        else:
            self.log.debug("sync %s failed again: %s", key, what)
        self.queue.forget(key)
        self.queue.add_after(key, PARKED_RETRY)

    async def prepare(self) -> None:
        """Hook run after the informers synced and before the workers start."""

    def start(self) -> None:
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()


def is_conflict(e: Exception) -> bool:
    return isinstance(e, ApiError) and e.code == 409


def is_not_found(e: Exception) -> bool:
    return isinstance(e, ApiError) and e.code == 404
