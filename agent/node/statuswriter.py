"""Writing pods' status to the API: kubelet's status manager.

A pod worker only records the status it wants (``PodWorker.desired``); :func:`send_status` PATCHes
the pod's ``status`` subresource with the merge patch from the pod as last seen to that desired
status, and adopts the answer as the pod's new copy. :class:`StatusWriter` is a pool of writers
shared by every node of a process: a worker enqueues its pod once, and a writer computes the patch
only when it actually sends. Under a burst the queue therefore coalesces: a Pending status that
was overtaken by Running is never sent. All writes go through the process's write limit.
"""

from __future__ import annotations

import asyncio
import logging

from agent.node.podstatus import merge_patch
from agent.node.podworker import PodWorker, pod_rv
from ctl.client.aio import ApiError
from ctl.types.kinds import SYSTEM_TENANT
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.agent")


async def send_status(w: PodWorker, write_limit: asyncio.Semaphore) -> None:
    """PATCH the pod's status subresource with the difference to the latest desired status."""
    status = w.desired
    if status is None or w.gone:
        return
    patch = merge_patch(w.pod.get("status") or {}, status)
    if not patch:
        return
    md = w.pod["metadata"]
    try:
        async with write_limit:
            updated = await w.client.patch(
                "pods",
                md["name"],
                {"status": patch},
                md.get("namespace"),
                md.get("tenant") or SYSTEM_TENANT,
                subresource="status",
            )
    except ApiError as e:
        if e.code == 404:
            return  # deleted meanwhile; the DELETED event follows
        raise
    if (updated.get("metadata") or {}).get("uid") == w.uid and pod_rv(updated) >= pod_rv(w.pod):
        w.pod = updated
    if w.desired is status:
        w.desired = None


class StatusWriter:
    """A pool of ``concurrency`` writers sending each queued pod's *latest* desired status."""

    def __init__(self, concurrency: int) -> None:
        self.queue: asyncio.Queue[tuple[PodWorker, asyncio.Semaphore]] = asyncio.Queue()
        self.concurrency = concurrency
        self.tasks: list[asyncio.Task[None]] = []
        self.writes = 0

    def start(self) -> None:
        if not self.tasks:
            self.tasks = [
                asyncio.create_task(self._run(), name=f"status-writer-{i}") for i in range(self.concurrency)
            ]

    def submit(self, w: PodWorker, write_limit: asyncio.Semaphore) -> None:
        """Queue the pod's status write unless it is queued already."""
        if not w.queued:
            w.queued = True
            self.queue.put_nowait((w, write_limit))

    async def _run(self) -> None:
        while True:
            w, write_limit = await self.queue.get()
            w.queued = False
            try:
                await send_status(w, write_limit)
                self.writes += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the worker's next sync recomputes and resubmits
                log.warning("pod %s: status write failed: %s", w.key, e)
                w.wake.set()

    async def stop(self) -> None:
        await cancel_and_wait(self.tasks)
        self.tasks = []
