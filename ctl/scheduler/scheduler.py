"""The scheduler process's engine: informers in, decisions and bindings out.

* One pod informer over every tenant (``/api/v1/tenants/all/pods``) feeds both the
  queue (pods that want scheduling: unbound, addressed to this scheduler, not being
  deleted) and the cache (bound pods' requests per node). One node informer per node
  source -- the API endpoints of the resource partitions (DESIGN.md §6), by default the
  same API server -- fills the node table; node names are assumed unique across
  partitions, and a node deleted in one partition is only removed if it came from there.
* The scheduling loop pops pods, runs :class:`~ctl.scheduler.algorithm.Algorithm`,
  *assumes* the pod on the chosen node in the cache at once and hands the binding
  (``POST .../pods/NAME/binding`` in the pod's tenant) to a background task; at most
  ``parallelism`` bindings are in flight, so throughput is not bounded by request
  latency. The scheduler keeps every background task it starts (bindings, status
  patches, the loops) and cancels and awaits them in :meth:`Scheduler.stop`. A failed binding *forgets* the assumed pod and requeues it with back-off.
* Unschedulable pods get a FailedScheduling Event with the reason and wait in the
  queue until a node is added or changed or a bound pod goes away.
* A malformed Node or Pod already in the store (``status.conditions: 7``,
  ``status.allocatable: "x"``, containers that are not a list) is left out of the cache
  and the queue and reported once per version as one warning line (and counted in
  ``centaurus_scheduler_malformed_objects_total``); everything else goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from ctl.client.aio import ApiError, Client
from ctl.client.events import NORMAL, WARNING, EventRecorder
from ctl.client.informer import Informer
from ctl.client.reportonce import ReportOnce, describe
from ctl.scheduler.algorithm import Algorithm, FitError
from ctl.scheduler.cache import ClusterCache
from ctl.scheduler.nodeinfo import NodeInfo
from ctl.scheduler.podinfo import DEFAULT_SCHEDULER, PodInfo, occupies_node, wants_scheduling
from ctl.scheduler.queue import SchedulingQueue
from ctl.types import meta
from ctl.types.meta import object_key
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.scheduler")


@dataclass
class Options:
    scheduler_name: str = DEFAULT_SCHEDULER
    percentage_of_nodes_to_score: float = 0.0
    parallelism: int = 128
    initial_backoff: float = 1.0
    max_backoff: float = 10.0
    unschedulable_timeout: float = 60.0
    scheduled_events: bool = True
    event_workers: int = 4


class Scheduler:
    def __init__(
        self, client: Client, node_clients: list[Client] | None = None, options: Options | None = None
    ) -> None:
        self.client = client
        self.opts = options or Options()
        self.cache = ClusterCache()
        self.algorithm = Algorithm(self.cache, self.opts.percentage_of_nodes_to_score)
        self.queue = SchedulingQueue(
            self.opts.initial_backoff, self.opts.max_backoff, self.opts.unschedulable_timeout
        )
        self.events = EventRecorder(
            client, DEFAULT_SCHEDULER, workers=self.opts.event_workers, max_pending=20_000
        )
        self.pod_informer = Informer(client, "pods", tenant="all")
        self.pod_informer.add_handler(self.on_pod)
        self.node_informers: list[Informer] = []
        for i, c in enumerate(node_clients or [client]):
            inf = Informer(c, "nodes")
            inf.add_handler(self._node_handler(i))
            self.node_informers.append(inf)
        self.binding: dict[str, PodInfo] = {}
        self.malformed = ReportOnce()  # "pod:KEY"/"node:NAME" -> resourceVersion reported
        self._unschedulable_marked: dict[str, str] = {}
        self._bg_tasks: set[asyncio.Future[None]] = set()
        self._sem = asyncio.Semaphore(max(1, self.opts.parallelism))
        self._tasks: list[asyncio.Task[Any]] = []
        self.synced = asyncio.Event()
        self.stats = {
            "attempts": 0,
            "scheduled": 0,
            "bound": 0,
            "unschedulable": 0,
            "bind_errors": 0,
            "moves": 0,
            "malformed": 0,
            "schedule_seconds": 0.0,
        }

    # ------------------------------------------------------------------ informer handlers
    def on_pod(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        key = object_key(obj)
        try:
            self._on_pod(typ, key, obj)
        except Exception as e:  # a malformed pod: leave it out, say so once, go on
            self.queue.delete(key)
            if self.cache.remove_pod(key):
                self._move("pod left")
            self._malformed("pod", key, obj, e)

    def _on_pod(self, typ: str, key: str, obj: dict[str, Any]) -> None:
        md = obj.get("metadata") or {}
        if typ == "DELETED":
            self.queue.delete(key)
            self.malformed.forget(f"pod:{key}")
            self.events.forget(str(md.get("uid", "")))
            if self.cache.remove_pod(key):
                self._move("pod deleted")
            return
        node = (obj.get("spec") or {}).get("nodeName")
        if node:
            self.queue.delete(key)
            if occupies_node(obj):
                cur = self.cache.pods.get(key)
                if cur is not None and cur.node == node:
                    cur.assumed = False  # confirmed by the watch
                else:
                    self.cache.add_pod(key, node, PodInfo.from_pod(obj), assumed=False)
            elif self.cache.remove_pod(key):
                self._move("pod finished")
            return
        if key in self.binding:
            return  # binding in flight; the watch will show the outcome
        if wants_scheduling(obj, self.opts.scheduler_name):
            self.queue.add(obj)
        else:
            self.queue.delete(key)
            if self.cache.remove_pod(key):
                self._move("pod left")

    def _node_handler(self, source: int):  # type: ignore[no-untyped-def]
        def on_node(typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            name = (obj.get("metadata") or {}).get("name", "")
            if typ == "DELETED":
                self.cache.remove_node(name, source)
                self.malformed.forget(f"node:{name}")
                return
            try:
                info = NodeInfo.from_node(obj, source)
            except Exception as e:  # a malformed node: not a place for pods until it is fixed
                self.cache.remove_node(name, source)
                self._malformed("node", name, obj, e)
                return
            cur = self.cache.node(name)
            if cur is not None and cur.source != source:
                log.warning(
                    "node %s is reported by node sources %d and %d; keeping the first",
                    name,
                    cur.source,
                    source,
                )
                return
            if self.cache.set_node(info) != "unchanged":
                self._move(f"node {name} added or changed")

        return on_node

    def _malformed(self, what: str, key: str, obj: dict[str, Any], e: Exception) -> None:
        """Report once per object version that the scheduler cannot read it (and ignores it)."""
        md = obj.get("metadata")
        rv = str(md.get("resourceVersion", "")) if isinstance(md, dict) else ""
        if self.malformed.first(f"{what}:{key}", rv):
            self.stats["malformed"] += 1
            log.warning("%s %s is malformed, ignoring it until it changes: %s", what, key, describe(e))
            log.debug("%s %s traceback", what, key, exc_info=e)

    def _move(self, why: str) -> None:
        n = self.queue.move_all()
        if n:
            self.stats["moves"] += n
            log.debug("%s: %d unschedulable pod(s) back in the queue", why, n)

    # ------------------------------------------------------------------ scheduling
    def schedule_one(self, info: PodInfo) -> str | None:
        """Decide for one popped pod; assume it and return the node name, or None if unschedulable."""
        self.stats["attempts"] += 1
        t0 = time.perf_counter()
        try:
            d = self.algorithm.schedule(info)
        except FitError as e:
            self.stats["schedule_seconds"] += time.perf_counter() - t0
            self.stats["unschedulable"] += 1
            self.queue.requeue_unschedulable(info.key)
            msg = str(e)
            log.info("pod %s is unschedulable: %s", info.key, msg)
            self.events.event(info.pod, WARNING, "FailedScheduling", msg, action="Scheduling")
            self._mark_unschedulable(info, msg)
            return None
        self.stats["schedule_seconds"] += time.perf_counter() - t0
        self.stats["scheduled"] += 1
        self.queue.done(info.key)
        self.cache.add_pod(info.key, d.node, info, assumed=True)
        self.binding[info.key] = info
        return d.node

    def _mark_unschedulable(self, info: PodInfo, msg: str) -> None:
        """Set PodScheduled=False/Unschedulable on the pod (once per distinct message), as kube-scheduler does."""
        marked = self._unschedulable_marked
        if marked.get(info.uid) == msg:
            return
        if len(marked) > 100_000:
            marked.clear()
        marked[info.uid] = msg
        md = info.pod.get("metadata") or {}
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": msg,
            "lastTransitionTime": meta.now_rfc3339(),
        }

        async def patch() -> None:
            try:
                await self.client.patch(
                    "pods",
                    md.get("name", ""),
                    {"status": {"conditions": [cond]}},
                    md.get("namespace"),
                    md.get("tenant"),
                    patch_type="strategic",
                    subresource="status",
                )
            except Exception as e:  # the pod may be gone; the Event already says why
                log.debug("could not mark %s unschedulable: %s", info.key, e)

        self._background(patch())

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the scheduler keeps (until it is done, or cancelled by :meth:`stop`)."""
        task = asyncio.ensure_future(coro)
        self._bg_tasks.add(task)
        task.add_done_callback(self._bg_tasks.discard)

    async def _bind(self, info: PodInfo, node: str) -> None:
        try:
            await self.client.bind(info.pod, node)
            self.stats["bound"] += 1
            md = info.pod.get("metadata") or {}
            self.events.forget(info.uid)
            if self.opts.scheduled_events:
                self.events.event(
                    info.pod,
                    NORMAL,
                    "Scheduled",
                    f"Successfully assigned {md.get('namespace')}/{md.get('name')} to {node}",
                    action="Binding",
                    aggregate=False,
                )
        except (ApiError, ConnectionError, OSError) as e:
            self.stats["bind_errors"] += 1
            cur = self.cache.pods.get(info.key)
            if cur is not None and cur.assumed:
                self.cache.remove_pod(info.key)  # forget the assumption
            gone = isinstance(e, ApiError) and (
                e.code == 404
                or (e.code == 409 and ("already assigned" in str(e) or "being deleted" in str(e)))
            )
            if not gone:
                log.warning("binding %s to %s failed: %s; retrying after back-off", info.key, node, e)
                self.queue.requeue_error(info)
                self.events.event(
                    info.pod, WARNING, "FailedScheduling", f"Binding rejected: {e}", action="Binding"
                )
            self._move("binding failed")
        finally:
            self.binding.pop(info.key, None)
            self._sem.release()

    async def loop(self) -> None:
        n = 0
        while True:
            await self._sem.acquire()
            info = self.queue.pop_nowait()
            if info is None:
                info = await self.queue.pop()
            try:
                node = self.schedule_one(info)
            except Exception as e:  # the algorithm choked on the pod: drop it, keep scheduling
                self.queue.delete(info.key)
                self.binding.pop(info.key, None)
                self._malformed("pod", info.key, info.pod, e)
                node = None
            if node is None:
                self._sem.release()
            else:
                self._background(self._bind(info, node))
            n += 1
            if n % 32 == 0:
                await asyncio.sleep(0)  # let watches and binding responses in

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.events.start()
        self._tasks.append(self.pod_informer.start())
        for inf in self.node_informers:
            self._tasks.append(inf.start())
        await asyncio.gather(self.pod_informer.synced.wait(), *(i.synced.wait() for i in self.node_informers))
        log.info(
            "scheduler synced: %d nodes from %d source(s), %d pods bound, %d waiting",
            self.cache.node_count,
            len(self.node_informers),
            len(self.cache.pods),
            len(self.queue),
        )
        self.synced.set()
        self._tasks.append(asyncio.create_task(self.queue.run_flusher(), name="queue-flusher"))
        self._tasks.append(asyncio.create_task(self.loop(), name="schedule-loop"))
        self._tasks.append(asyncio.create_task(self._report(), name="stats"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await cancel_and_wait(list(self._bg_tasks))  # bindings and status patches in flight
        await self.events.stop()

    async def _report(self) -> None:
        last = dict(self.stats)
        while True:
            await asyncio.sleep(10)
            if self.stats != last:
                q = self.queue.counts()
                log.info(
                    "scheduled %d (+%d), bound %d, unschedulable attempts %d, bind errors %d, queue %s, cache %s, events written %d dropped %d",
                    self.stats["scheduled"],
                    self.stats["scheduled"] - last["scheduled"],
                    self.stats["bound"],
                    self.stats["unschedulable"],
                    self.stats["bind_errors"],
                    q,
                    self.cache.summary(),
                    self.events.written,
                    self.events.dropped,
                )
                last = dict(self.stats)

    def metrics_text(self) -> str:
        q = self.queue.counts()
        lines = [
            f"centaurus_scheduler_schedule_attempts_total {self.stats['attempts']}",
            f"centaurus_scheduler_scheduled_total {self.stats['scheduled']}",
            f"centaurus_scheduler_bound_total {self.stats['bound']}",
            f"centaurus_scheduler_unschedulable_total {self.stats['unschedulable']}",
            f"centaurus_scheduler_bind_errors_total {self.stats['bind_errors']}",
            f"centaurus_scheduler_malformed_objects_total {self.stats['malformed']}",
            f"centaurus_scheduler_algorithm_seconds_total {self.stats['schedule_seconds']:.6f}",
            f"centaurus_scheduler_nodes {self.cache.node_count}",
            f"centaurus_scheduler_bindings_in_flight {len(self.binding)}",
            f"centaurus_scheduler_events_written_total {self.events.written}",
            f"centaurus_scheduler_events_dropped_total {self.events.dropped}",
        ]
        lines += [f'centaurus_scheduler_pending_pods{{queue="{k}"}} {v}' for k, v in q.items()]
        return "\n".join(lines) + "\n"
