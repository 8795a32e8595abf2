"""Events the scheduler records about pods: ``FailedScheduling`` (Warning) and ``Scheduled`` (Normal).

Events are v1 Events in the pod's tenant and namespace, with ``involvedObject`` naming
the pod, ``source.component`` / ``reportingComponent`` ``default-scheduler``, ``count``,
``firstTimestamp`` and ``lastTimestamp``. A repeated FailedScheduling with the same
message for the same pod is aggregated into one Event whose ``count`` goes up (as
client-go's event correlator does) instead of creating a new object each retry.

Writing events never slows scheduling down: :meth:`EventRecorder.record` only queues,
a few worker tasks write in the background, repeated records of one event coalesce
while queued, and when the backlog exceeds ``max_pending`` new events are dropped
(counted in :attr:`EventRecorder.dropped`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ctl.client.aio import ApiError, Client
from ctl.types import meta
from ctl.types.kinds import SYSTEM_TENANT

log = logging.getLogger("centaurus.scheduler.events")

COMPONENT = "default-scheduler"


@dataclass(slots=True)
class _Ev:
    tenant: str
    namespace: str
    name: str
    body: dict[str, Any]
    count: int = 1
    created: bool = False
    queued: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class EventRecorder:
    def __init__(
        self, client: Client, workers: int = 4, max_pending: int = 20_000, component: str = COMPONENT
    ) -> None:
        self.client = client
        self.workers = workers
        self.max_pending = max_pending
        self.component = component
        self._pending: deque[_Ev] = deque()
        self._by_key: dict[tuple[str, str, str], _Ev] = {}
        self._by_uid: dict[str, list[tuple[str, str, str]]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.written = 0
        self.dropped = 0
        self.failed = 0

    def start(self) -> None:
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"events-{i}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass

    def record(
        self, pod: dict[str, Any], type_: str, reason: str, action: str, message: str, aggregate: bool = True
    ) -> None:
        md = pod.get("metadata") or {}
        uid = str(md.get("uid", ""))
        now = meta.now_rfc3339()
        key = (uid, reason, message)
        ev = self._by_key.get(key) if aggregate else None
        if ev is not None:
            ev.count += 1
            ev.body["count"] = ev.count
            ev.body["lastTimestamp"] = now
            self._enqueue(ev)
            return
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        name = f"{md.get('name', '')}.{time.time_ns():x}"
        tenant = str(md.get("tenant") or SYSTEM_TENANT)
        ns = str(md.get("namespace") or "default")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns, "tenant": tenant},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": md.get("name"),
                "namespace": ns,
                "tenant": tenant,
                "uid": uid,
                "resourceVersion": md.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "action": action,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
        }
        ev = _Ev(tenant, ns, name, body)
        if aggregate:
            self._by_key[key] = ev
            self._by_uid.setdefault(uid, []).append(key)
        self._enqueue(ev)

    def forget(self, uid: str) -> None:
        """The pod was scheduled or deleted: stop aggregating its events."""
        for key in self._by_uid.pop(uid, ()):
            self._by_key.pop(key, None)

    def _enqueue(self, ev: _Ev) -> None:
        if not ev.queued:
            ev.queued = True
            self._pending.append(ev)
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _worker(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            ev = self._pending.popleft()
            ev.queued = False
            try:
                await self._write(ev)
                self.written += 1
            except asyncio.CancelledError:
                raise
            except (ApiError, ConnectionError, OSError) as e:
                self.failed += 1
                log.debug("event %s/%s not written: %s", ev.namespace, ev.name, e)

    async def _write(self, ev: _Ev) -> None:
        if ev.created:
            try:
                await self.client.patch(
                    "events",
                    ev.name,
                    {
                        "count": ev.body["count"],
                        "lastTimestamp": ev.body["lastTimestamp"],
                        "message": ev.body["message"],
                    },
                    namespace=ev.namespace,
                    tenant=ev.tenant,
                )
                return
            except ApiError as e:
                if e.code != 404:
                    raise
        ev.created = True
        try:
            await self.client.create(dict(ev.body), namespace=ev.namespace, tenant=ev.tenant)
        except ApiError as e:
            if e.code == 409:  # a retry of a create that landed
                return
            ev.created = False
            raise
