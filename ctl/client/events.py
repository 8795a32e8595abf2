"""Event recorder: v1 Events about what a component did, aggregated for repeats.

Every component that reports Events (scheduler, controllers, node agents) makes one
:class:`EventRecorder` with its ``source.component`` name and calls :meth:`EventRecorder.event`
(or :meth:`~EventRecorder.normal` / :meth:`~EventRecorder.warning`) with the object the
event is about. Recording never blocks and never fails the caller:

* events go to a bounded queue that ``workers`` background tasks drain; when more than
  ``max_pending`` are waiting, new ones are dropped and counted (:attr:`dropped`), as
  client-go does, so a burst of events never slows the component down;
* repeats of the same (object, type, reason, message) within ``aggregate_window`` seconds
  are aggregated into one Event whose ``count`` and ``lastTimestamp`` go up (client-go's
  event correlator), and repeats that arrive while the Event is still queued coalesce
  into a single write;
* :meth:`forget` drops the aggregation state of an object (the scheduler calls it once a
  pod is bound or deleted), so state never outlives the objects it is about.

The Event lives in the involved object's tenant and namespace; events about
cluster-scoped objects (Nodes) go to the ``default`` namespace of their tenant (the
system tenant when they have none), where Kubernetes puts them. :meth:`write` records
one event right away and returns the stored Event, for callers (and tests) that want it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ctl.client.aio import ApiError, Client
from ctl.types import meta
from ctl.types.kinds import SYSTEM_TENANT
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.events")

NORMAL, WARNING = "Normal", "Warning"


def involved_object(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``involvedObject`` reference for an event about ``obj``."""
    md = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion", "v1"),
        "kind": obj.get("kind", ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "resourceVersion": md.get("resourceVersion", ""),
    }
    if md.get("namespace"):
        ref["namespace"] = md["namespace"]
    if md.get("tenant"):
        ref["tenant"] = md["tenant"]
    return ref


@dataclass(slots=True)
class _Event:
    """One Event being aggregated: its body, where it lives and whether it exists yet."""

    tenant: str
    namespace: str
    uid: str
    body: dict[str, Any]
    seen: float  # monotonic time of the last record
    created: bool = False
    queued: bool = False

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


class EventRecorder:
    """Records Events for one component (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        component: str,
        host: str | None = None,
        *,
        workers: int = 1,
        max_pending: int = 10_000,
        aggregate_window: float = 600.0,
        max_tracked: int = 20_000,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.workers = max(1, workers)
        self.max_pending = max_pending
        self.aggregate_window = aggregate_window
        self.max_tracked = max_tracked
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._pending: deque[_Event] = deque()
        self._by_key: dict[tuple[str, ...], _Event] = {}
        self._by_uid: dict[str, list[tuple[str, ...]]] = {}
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0  # workers in the middle of a write

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._tasks:
            return
        self._wake = asyncio.Event()
        if self._pending:
            self._wake.set()
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"events-{self.component}-{i}"))

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Write what is queued (for at most ``drain_timeout`` seconds), then stop."""
        if not self._tasks:
            return
        deadline = time.monotonic() + drain_timeout
        while (self._pending or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await cancel_and_wait(self._tasks)
        self._tasks = []

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ recording
    def event(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        *,
        action: str = "",
        aggregate: bool = True,
    ) -> None:
        """Record an event about ``obj`` (fire and forget)."""
        ev = self._track(obj, type_, reason, message, action, aggregate)
        if ev is None:
            return
        if not self._tasks:
            try:
                self.start()
            except RuntimeError:  # no running loop: nothing can write it
                self.dropped += 1
                return
        if not ev.queued:
            ev.queued = True
            self._pending.append(ev)
            assert self._wake is not None
            self._wake.set()

    def normal(self, obj: dict[str, Any], reason: str, message: str, *, action: str = "") -> None:
        self.event(obj, NORMAL, reason, message, action=action)

    def warning(self, obj: dict[str, Any], reason: str, message: str, *, action: str = "") -> None:
        self.event(obj, WARNING, reason, message, action=action)

    async def write(
        self, obj: dict[str, Any], type_: str, reason: str, message: str, *, action: str = ""
    ) -> dict[str, Any] | None:
        """Record (or aggregate) one event now and return the stored Event."""
        ev = self._track(obj, type_, reason, message, action, True, bounded=False)
        assert ev is not None
        return await self._write(ev)

    def forget(self, uid: str) -> None:
        """Stop aggregating events about the object with this uid."""
        for key in self._by_uid.pop(uid, ()):
            self._by_key.pop(key, None)

    # ------------------------------------------------------------------ internals
    def _track(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        action: str,
        aggregate: bool,
        bounded: bool = True,
    ) -> _Event | None:
        ref = involved_object(obj)
        tenant = str(ref.get("tenant") or SYSTEM_TENANT)
        namespace = str(ref.get("namespace") or "default")
        now, mono = meta.now_rfc3339(), time.monotonic()
        key = (tenant, namespace, ref["kind"], ref["name"], ref["uid"], type_, reason, message)
        ev = self._by_key.get(key) if aggregate else None
        if ev is not None and mono - ev.seen < self.aggregate_window:
            ev.body["count"] += 1
            ev.body["lastTimestamp"] = now
            ev.seen = mono
            return ev
        if bounded and len(self._pending) >= self.max_pending:
            self.dropped += 1
            return None
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{ref['name']}.{time.time_ns():x}",
                "namespace": namespace,
                "tenant": tenant,
            },
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }
        if action:
            body["action"] = action
        ev = _Event(tenant, namespace, str(ref["uid"]), body, mono)
        if aggregate:
            if len(self._by_key) >= self.max_tracked:
                self._prune(mono)
            self._by_key[key] = ev
            self._by_uid.setdefault(ev.uid, []).append(key)
        return ev

    def _prune(self, mono: float) -> None:
        """Forget aggregation state older than the window (or the oldest half if none is)."""
        old = [k for k, e in self._by_key.items() if mono - e.seen >= self.aggregate_window]
        if not old:
            old = sorted(self._by_key, key=lambda k: self._by_key[k].seen)[: len(self._by_key) // 2]
        for k in old:
            ev = self._by_key.pop(k)
            keys = self._by_uid.get(ev.uid)
            if keys is not None:
                with contextlib.suppress(ValueError):
                    keys.remove(k)
                if not keys:
                    del self._by_uid[ev.uid]

    async def _worker(self) -> None:
        assert self._wake is not None
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            ev = self._pending.popleft()
            ev.queued = False
            self._busy += 1
            try:
                await self._write(ev)
            except asyncio.CancelledError:
                raise
            except (ApiError, ConnectionError, OSError) as e:
                self.failed += 1
                log.debug("event %s about %s not written: %s", ev.body["reason"], ev.name, e)
            except Exception:
                self.failed += 1
                log.exception("event %s not written", ev.body["reason"])
            finally:
                self._busy -= 1

    async def _write(self, ev: _Event) -> dict[str, Any] | None:
        """Create the Event, or bring an existing one's count and lastTimestamp up to date."""
        if ev.created:
            patch = {"count": ev.body["count"], "lastTimestamp": ev.body["lastTimestamp"]}
            try:
                out: dict[str, Any] = await self.client.patch(
                    "events", ev.name, patch, namespace=ev.namespace, tenant=ev.tenant
                )
                self.written += 1
                return out
            except ApiError as e:
                if e.code != 404:
                    raise  # deleted meanwhile (TTL, namespace gone): create it again
        ev.created = True
        try:
            out = await self.client.create(dict(ev.body), namespace=ev.namespace, tenant=ev.tenant)
        except ApiError as e:
            if e.code == 409:  # a retried create that had landed
                return None
            ev.created = False
            raise
        except BaseException:
            ev.created = False
            raise
        self.written += 1
        return out
