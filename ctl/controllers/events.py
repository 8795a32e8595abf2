"""Event recorder: v1 Events about what a component did, aggregated for repeats.

Any component (controllers, scheduler, agents) makes one :class:`EventRecorder` with its
``source.component`` name and calls :meth:`EventRecorder.event` with the object the event
is about. Recording never blocks and never fails the caller: events go through a bounded
queue to a background task that writes them; when the queue is full, events are dropped
(and counted), as client-go does.

Repeats of the same (object, type, reason, message, source) within ``aggregate_window``
seconds bump ``count`` and ``lastTimestamp`` of the existing Event instead of creating a
new one. Events about cluster-scoped objects (Nodes) go to the ``default`` namespace of
the system tenant, as Kubernetes puts them in ``default``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ctl.client import Client
from ctl.client.aio import ApiError
from ctl.types import meta
from ctl.types.kinds import SYSTEM_TENANT

log = logging.getLogger("centaurus.events")

NORMAL, WARNING = "Normal", "Warning"


def involved_object(obj: dict[str, Any]) -> dict[str, Any]:
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


class EventRecorder:
    def __init__(
        self,
        client: Client,
        component: str,
        host: str | None = None,
        queue_size: int = 1000,
        aggregate_window: float = 600.0,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.aggregate_window = aggregate_window
        self.queue: asyncio.Queue[tuple[dict[str, Any], str, str, str]] | None = None
        self.queue_size = queue_size
        self.dropped = 0
        self.written = 0
        # aggregation key -> (tenant, namespace, event name, count, last write monotonic time)
        self._seen: dict[tuple[str, ...], tuple[str, str, str, int, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self.queue = asyncio.Queue(self.queue_size)
            self._task = asyncio.create_task(self._run(), name=f"events-{self.component}")

    async def stop(self, drain_timeout: float = 2.0) -> None:
        if self._task is None:
            return
        if self.queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), drain_timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an event about ``obj`` (fire and forget)."""
        if self._task is None:
            try:
                self.start()
            except RuntimeError:  # no running loop
                return
        assert self.queue is not None
        try:
            self.queue.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1

    def normal(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

    async def _run(self) -> None:
        assert self.queue is not None
        while True:
            obj, type_, reason, message = await self.queue.get()
            try:
                await self.write(obj, type_, reason, message)
            except asyncio.CancelledError:
                raise
            except (ApiError, ConnectionError) as e:
                log.debug(
                    "event %s on %s not recorded: %s", reason, (obj.get("metadata") or {}).get("name"), e
                )
            except Exception:
                log.exception("event %s not recorded", reason)
            finally:
                self.queue.task_done()

    async def write(
        self, obj: dict[str, Any], type_: str, reason: str, message: str
    ) -> dict[str, Any] | None:
        """Create (or aggregate into) the Event now; returns the stored Event."""
        ref = involved_object(obj)
        tenant = ref.get("tenant") or SYSTEM_TENANT
        namespace = ref.get("namespace") or "default"
        key = (
            tenant,
            namespace,
            ref["kind"],
            ref["name"],
            ref["uid"],
            type_,
            reason,
            message,
            self.component,
        )
        now = meta.now_rfc3339()
        mono = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and mono - seen[4] < self.aggregate_window:
            _, _, name, count, _ = seen
            try:
                ev = await self.client.patch(
                    "events",
                    name,
                    {"count": count + 1, "lastTimestamp": now},
                    namespace=namespace,
                    tenant=tenant,
                )
                self._seen[key] = (tenant, namespace, name, count + 1, mono)
                self.written += 1
                return ev
            except ApiError as e:
                if e.code != 404:
                    raise
        name = f"{ref['name']}.{time.time_ns():x}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component,
            "reportingInstance": self.host or "",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        ev = await self.client.create(body, namespace=namespace, tenant=tenant)
        self._seen[key] = (tenant, namespace, name, 1, mono)
        if len(self._seen) > 4096:
            cutoff = mono - self.aggregate_window
            self._seen = {k: v for k, v in self._seen.items() if v[4] >= cutoff}
        self.written += 1
        return ev
