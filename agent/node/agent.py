"""One node's agent: registration, lease, node status, per-pod workers, adoption and actions.

A :class:`NodeAgent` is everything kubelet does for one node, minus the watches (those live in
:mod:`agent.node.sources`, so that thousands of hollow nodes in one process can share one watch):

* **Registration** (:meth:`register`): create the Node in every resource partition (or patch labels and
  annotations of an existing one), then write its status (capacity, addresses, nodeInfo,
  daemonEndpoints, conditions) through the ``status`` subresource.
* **Lease** (:meth:`lease_loop`): ``coordination.k8s.io/v1`` Lease ``kube-node-lease/NODE`` in the system
  tenant, renewed every ``lease_seconds`` (first renewal staggered so a process full of hollow nodes
  does not renew in lock step).
* **Node status** (:meth:`status_loop`): conditions re-evaluated every ``lease_seconds``; the status is
  written when a condition changes, otherwise every ``node_status_seconds``.
* **Pod workers**: one asyncio task per pod uid (kubelet's pod workers). Events only update the
  worker's copy of the pod and wake it; the worker serialises all work on that pod, calls the runtime
  (``sync_pod``), folds in probe results, and PATCHes ``status`` only when the computed status differs
  from the pod's. It resyncs every ``transition_resync`` seconds while the pod is in transition
  (Pending, restarting, not ready) and every ``resync_seconds`` otherwise. A pod with
  ``deletionTimestamp`` is killed with its grace period and then removed with ``DELETE
  gracePeriodSeconds=0`` (precondition: its uid).
* **Adoption** (:meth:`adopt`): before any worker runs, ``runtime.list_pods()`` is compared with the pods
  bound to this node: what the API still has is adopted as is (the runtime's ``sync_pod`` sees the
  running containers), anything else is an orphan and is killed.
* **Actions** (:meth:`on_action`): v1 Action objects naming this node are performed with
  ``runtime.action`` and their result written to the Action's status.

API writes of all nodes in a process go through one :class:`Shared` semaphore, so a burst (thousands
of hollow pods becoming Running) is spread over a bounded number of concurrent requests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from agent.node import admission, nodeinfo
from agent.node.nodeinfo import NodeSpec
from agent.node.podevents import PodEvents
from agent.node.podstatus import TERMINAL, compute_status, merge_patch
from agent.node.probes import Prober
from agent.runtime.base import PodRuntimeStatus, Runtime, RuntimeError_
from ctl.client.aio import ApiError, Client
from ctl.types.meta import now_rfc3339

log = logging.getLogger("centaurus.agent")

LEASE_NS = "kube-node-lease"
SYSTEM_TENANT = "system"
ACTION_OPS = ("reboot", "snapshot", "restore", "stop", "start")


@dataclass
class Timing:
    lease_seconds: float = 10.0
    lease_duration: int = 40
    node_status_seconds: float = 60.0
    resync_seconds: float = 10.0
    transition_resync: float = 0.5
    orphan_grace: float = 2.0


class StatusWriter:
    """kubelet's status manager: a pool of writers sending each pod's *latest* desired status.

    Workers only record what they want (``PodWorker.desired``) and enqueue the pod once; a writer
    computes the merge patch against the pod as last seen when it actually sends. Under a burst the
    queue therefore coalesces: a Pending status that was overtaken by Running is never sent.
    """

    def __init__(self, concurrency: int) -> None:
        self.queue: asyncio.Queue[tuple[NodeAgent, PodWorker]] = asyncio.Queue()
        self.concurrency = concurrency
        self.tasks: list[asyncio.Task[None]] = []
        self.writes = 0

    def start(self) -> None:
        if not self.tasks:
            self.tasks = [
                asyncio.create_task(self._run(), name=f"status-writer-{i}") for i in range(self.concurrency)
            ]

    def submit(self, agent: NodeAgent, w: PodWorker) -> None:
        if not w.queued:
            w.queued = True
            self.queue.put_nowait((agent, w))

    async def _run(self) -> None:
        while True:
            agent, w = await self.queue.get()
            w.queued = False
            try:
                await agent._send_status(w)
                self.writes += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the worker's next sync recomputes and resubmits
                log.warning("pod %s: status write failed: %s", w.key, e)
                w.wake.set()

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []


@dataclass
class Shared:
    """What every node agent of one process shares: API clients and write limits."""

    rp_clients: list[Client]
    tp_clients: list[Client]
    write_limit: asyncio.Semaphore
    sync_limit: asyncio.Semaphore
    timing: Timing
    stagger: float = 0.0  # spread first lease/status writes over this many seconds
    status_writer: StatusWriter | None = None
    pod_events: bool = True  # report Started/BackOff/Unhealthy/Killing Events


@dataclass(eq=False)
class PodWorker:
    uid: str
    key: str
    pod: dict[str, Any]
    client: Client
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    gone: bool = False
    task: asyncio.Task[None] | None = None
    failures: int = 0
    syncs: int = 0
    desired: dict[str, Any] | None = None  # latest status computed, not yet confirmed by the API
    queued: bool = False
    killing: bool = False  # a graceful stop is in progress
    admitted: bool = False  # passed node admission (agent/node/admission.py)


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def pod_key(pod: dict[str, Any]) -> str:
    md = pod.get("metadata") or {}
    return f"{md.get('tenant') or SYSTEM_TENANT}/{md.get('namespace') or 'default'}/{md.get('name')}"


def _signature(rs: PodRuntimeStatus) -> tuple[Any, ...]:
    """What a change of which must wake the pod's worker (PLEG events)."""
    return (
        rs.pod_ip,
        rs.finished,
        *((c.name, c.state, c.container_id, c.restart_count, c.reason) for c in rs.containers),
    )


_BOOKKEEPING = frozenset(("resourceVersion", "managedFields"))


def _needs_sync(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an update can change what a pod worker does: anything but status and bookkeeping.

    Status-only updates are mostly the echo of the agent's own writes; waking the worker for them
    cost a full ``sync_pod`` per write and, worse, used to push its transition resync back.
    """
    if old.get("spec") != new.get("spec"):
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return any(om.get(k) != nm.get(k) for k in om.keys() | nm.keys() if k not in _BOOKKEEPING)


def has_probes(pod: dict[str, Any]) -> bool:
    return any(
        c.get(p)
        for c in (pod.get("spec") or {}).get("containers") or []
        for p in ("livenessProbe", "readinessProbe", "startupProbe")
    )


class NodeAgent:
    def __init__(
        self,
        spec: NodeSpec,
        runtime: Runtime,
        shared: Shared,
        vm_runtime: Runtime | None = None,
        vm_runtime_error: str = "",
        data_dir: Any = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.runtime = runtime
        self.vm_runtime = vm_runtime
        self.vm_runtime_error = vm_runtime_error
        self.shared = shared
        self.timing = shared.timing
        self.data_dir = data_dir
        self.workers: dict[str, PodWorker] = {}
        self.by_key: dict[str, str] = {}
        self.ready = asyncio.Event()
        self.events = PodEvents(self.name, shared.pod_events)
        self.prober = Prober(
            runtime,
            on_liveness_failure=self._liveness_failed,
            on_change=self._probe_changed,
            on_probe_failure=self._probe_failed,
        )
        self.node_uid: dict[int, str] = {}
        self.conditions: list[dict[str, Any]] = []
        self.runtime_ok = True
        self.runtime_message = ""
        self.lease_renewals = 0
        self.status_writes = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._actions_running: set[str] = set()
        self._actions_done: set[str] = set()
        self._sigs: dict[str, tuple[Any, ...]] = {}

    # ------------------------------------------------------------------ node registration

    async def register(self) -> None:
        """Create or update the Node in every resource partition, then write its status."""
        obj = self.spec.node_object()
        self.conditions = nodeinfo.conditions(self._readings(), self.runtime_ok, self.runtime_message, None)
        for i, client in enumerate(self.shared.rp_clients):
            while True:
                try:
                    async with self.shared.write_limit:
                        try:
                            created = await client.create(obj)
                        except ApiError as e:
                            if e.code != 409:
                                raise
                            md = obj["metadata"]
                            created = await client.patch(
                                "nodes",
                                self.name,
                                {
                                    "metadata": {"labels": md["labels"], "annotations": md["annotations"]},
                                    "spec": {"podCIDR": self.spec.pod_cidr, "podCIDRs": [self.spec.pod_cidr]},
                                },
                            )
                        self.node_uid[i] = created["metadata"]["uid"]
                        await client.patch(
                            "nodes",
                            self.name,
                            {"status": self.spec.status(self.conditions)},
                            subresource="status",
                        )
                    break
                except (ApiError, ConnectionError) as e:
                    log.warning("node %s: registration failed: %s; retrying", self.name, e)
                    await asyncio.sleep(1.0 + random.random())
        self.status_writes += 1
        log.info("node %s registered", self.name)

    def _readings(self) -> nodeinfo.HostReadings | None:
        if self.spec.hollow or self.data_dir is None:
            return None
        return nodeinfo.read_host(self.data_dir)

    async def status_loop(self) -> None:
        """Re-evaluate conditions every lease period; write on change or every node_status_seconds."""
        last_write = time.monotonic() - random.random() * self.shared.stagger
        period = self.timing.lease_seconds
        while True:
            await asyncio.sleep(period)
            readings = await asyncio.to_thread(self._readings) if not self.spec.hollow else None
            conds = nodeinfo.conditions(readings, self.runtime_ok, self.runtime_message, self.conditions)
            changed = nodeinfo.strip_heartbeats(conds) != nodeinfo.strip_heartbeats(self.conditions)
            if not changed and time.monotonic() - last_write < self.timing.node_status_seconds:
                continue
            if changed:
                log.info(
                    "node %s conditions changed: %s", self.name, [(c["type"], c["status"]) for c in conds]
                )
            for client in self.shared.rp_clients:
                try:
                    async with self.shared.write_limit:
                        await client.patch(
                            "nodes", self.name, {"status": {"conditions": conds}}, subresource="status"
                        )
                except (ApiError, ConnectionError) as e:
                    log.warning("node %s: status update failed: %s", self.name, e)
                    if isinstance(e, ApiError) and e.code == 404:
                        await self.register()
            self.conditions = conds
            last_write = time.monotonic()
            self.status_writes += 1

    # ------------------------------------------------------------------ lease

    def _lease(self, i: int) -> dict[str, Any]:
        md: dict[str, Any] = {"name": self.name, "namespace": LEASE_NS, "tenant": SYSTEM_TENANT}
        if self.node_uid.get(i):
            md["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.node_uid[i]}
            ]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": md,
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": self.timing.lease_duration,
                "renewTime": nodeinfo.now_micro(),
            },
        }

    async def renew_lease(
        self, i: int, client: Client, current: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Renew (or create) the lease in one partition; returns the stored lease."""
        async with self.shared.write_limit:
            if current is not None:
                cur = dict(current)
                cur["spec"] = {
                    **(cur.get("spec") or {}),
                    "holderIdentity": self.name,
                    "leaseDurationSeconds": self.timing.lease_duration,
                    "renewTime": nodeinfo.now_micro(),
                }
                try:
                    r: dict[str, Any] = await client.update(cur, tenant=SYSTEM_TENANT)
                    return r
                except ApiError as e:
                    if e.code not in (404, 409):
                        raise
            try:
                existing = await client.get("leases", self.name, namespace=LEASE_NS, tenant=SYSTEM_TENANT)
            except ApiError as e:
                if e.code != 404:
                    raise
                lease = self._lease(i)
                lease["spec"]["acquireTime"] = lease["spec"]["renewTime"]
                created: dict[str, Any] = await client.create(lease, namespace=LEASE_NS, tenant=SYSTEM_TENANT)
                return created
            existing["spec"] = {**(existing.get("spec") or {}), **self._lease(i)["spec"]}
            updated: dict[str, Any] = await client.update(existing, tenant=SYSTEM_TENANT)
            return updated

    async def lease_loop(self) -> None:
        leases: dict[int, dict[str, Any] | None] = dict.fromkeys(range(len(self.shared.rp_clients)))
        await asyncio.sleep(random.random() * min(self.shared.stagger, self.timing.lease_seconds))
        while True:
            start = time.monotonic()
            for i, client in enumerate(self.shared.rp_clients):
                try:
                    leases[i] = await self.renew_lease(i, client, leases[i])
                    self.lease_renewals += 1
                except (ApiError, ConnectionError) as e:
                    leases[i] = None
                    log.warning("node %s: lease renewal failed: %s", self.name, e)
            # small jitter keeps thousands of hollow nodes from synchronising
            delay = self.timing.lease_seconds * (0.95 + 0.1 * random.random()) - (time.monotonic() - start)
            await asyncio.sleep(max(0.05, delay))

    # ------------------------------------------------------------------ pod events

    def on_pod(self, typ: str, pod: dict[str, Any], client: Client) -> None:
        """Called by the pod source for every event on a pod bound to this node (must not block)."""
        md = pod.get("metadata") or {}
        uid = md.get("uid")
        if not uid:
            return
        w = self.workers.get(uid)
        if typ == "DELETED":
            if w is not None:
                w.gone = True
                w.wake.set()
                self._shorten_kill(w, self.timing.orphan_grace)  # force-deleted mid-stop
            return
        if w is None:
            w = PodWorker(uid=uid, key=pod_key(pod), pod=pod, client=client)
            self.workers[uid] = w
            self.by_key[w.key] = uid
            w.task = asyncio.create_task(self._run_worker(w), name=f"pod-{w.key}")
        elif _rv(pod) >= _rv(w.pod):
            old, w.pod = w.pod, pod
            if md.get("deletionTimestamp"):  # deleted again, maybe with a shorter grace period
                self._shorten_kill(w, float(md.get("deletionGracePeriodSeconds") or 0))
            if not _needs_sync(old, pod):
                return  # e.g. the echo of our own status write: nothing for the worker to do
        w.wake.set()

    def _shorten_kill(self, w: PodWorker, grace: float) -> None:
        rt = self.runtime_of(w.pod)
        if w.killing and rt is not None:
            rt.shorten_grace(w.uid, grace)

    def pod_by_key(self, key: str) -> PodWorker | None:
        uid = self.by_key.get(key)
        return self.workers.get(uid) if uid else None

    def runtime_of(self, pod: dict[str, Any]) -> Runtime | None:
        if (pod.get("spec") or {}).get("virtualMachine"):
            return self.vm_runtime
        return self.runtime

    async def _run_worker(self, w: PodWorker) -> None:
        await self.ready.wait()
        loop = asyncio.get_running_loop()
        due: float | None = None  # when the next timed resync is due (loop time)
        try:
            while True:
                w.wake.clear()
                try:
                    nxt = await self._sync(w)
                    w.failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - a worker must survive anything and retry
                    w.failures += 1
                    nxt = min(self.timing.transition_resync * 2**w.failures, self.timing.resync_seconds)
                    if isinstance(e, (ApiError, ConnectionError, RuntimeError_)):
                        log.warning("pod %s: sync failed: %s", w.key, e)
                    else:
                        log.exception("pod %s: sync failed", w.key)
                w.syncs += 1
                if nxt is None:
                    return
                if math.isinf(nxt):
                    due = None
                    await w.wake.wait()
                    continue
                now = loop.time()
                if due is None or due <= now or now + nxt < due:
                    due = now + nxt
                # else: an event-driven sync never postpones a resync that is already due sooner
                try:
                    await asyncio.wait_for(w.wake.wait(), due - now)
                except TimeoutError:
                    due = None
        finally:
            if self.workers.get(w.uid) is w:
                del self.workers[w.uid]
            if self.by_key.get(w.key) == w.uid:
                del self.by_key[w.key]
            self._sigs.pop(w.uid, None)
            self.prober.stop(w.uid)
            self.events.forget(w.uid)

    async def _sync(self, w: PodWorker) -> float | None:
        """One pass over one pod; returns seconds until the next resync (inf: only on events, None: done)."""
        pod = w.pod
        md = pod["metadata"]
        if w.gone:
            # removed from the API without us (force delete): stop whatever still runs
            await self._kill(
                w, min(float(md.get("deletionGracePeriodSeconds") or 0), self.timing.orphan_grace)
            )
            return None
        if md.get("deletionTimestamp"):
            self.events.stopping(w.client, pod)
            await self._kill(w, float(md.get("deletionGracePeriodSeconds") or 0))
            try:
                async with self.shared.write_limit:
                    await w.client.delete(
                        "pods",
                        md["name"],
                        md.get("namespace"),
                        md.get("tenant") or SYSTEM_TENANT,
                        grace_period_seconds=0,
                        preconditions={"uid": w.uid},
                    )
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
            log.info("pod %s deleted", w.key)
            return None
        rt = self.runtime_of(pod)
        rs: PodRuntimeStatus | None = None
        error = fail = None
        phase_before = (pod.get("status") or {}).get("phase")
        if rt is None:
            fail = (
                "VirtualMachineRuntimeUnavailable",
                f"node {self.name} cannot run virtual machines: "
                + (self.vm_runtime_error or "the agent was started without --vm-runtime-uri"),
            )
        elif phase_before in TERMINAL:
            return math.inf  # a terminal phase never changes; containers stay for their logs
        elif (refused := self._admit(w)) is not None:
            fail = refused
        else:
            t0 = time.monotonic()
            try:
                async with self.shared.sync_limit:
                    t1 = time.monotonic()
                    rs = await rt.sync_pod(pod)
            except RuntimeError_ as e:
                error = (e.reason, str(e))
            if log.isEnabledFor(logging.DEBUG):
                log.debug("pod %s: sync_pod %.3fs (queued %.3fs)", w.key, time.monotonic() - t1, t1 - t0)
            if rs is not None:
                self._sigs[w.uid] = _signature(rs)
            if rs is not None and rt is self.runtime and has_probes(pod):
                self.prober.start(pod, rs)
                self.prober.apply(rs)
            elif rs is not None:
                for c in rs.containers:
                    if not (pod.get("spec") or {}).get("virtualMachine"):
                        c.ready = c.state == "running"
        self.events.observed(w.client, pod, rs, fail or error)
        status = compute_status(pod, rs, self.spec.internal_ip, error, fail)
        await self._write_status(w, status)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("pod %s: phase %s after sync", w.key, status["phase"])
        phase = status["phase"]
        if phase in TERMINAL:
            return math.inf
        if error is not None:
            return min(self.timing.resync_seconds, 2.0)
        transition = phase == "Pending" or any(
            c.state != "running" or not c.ready for c in (rs.containers if rs else [])
        )
        return self.timing.transition_resync if transition else self.timing.resync_seconds

    def _admit(self, w: PodWorker) -> tuple[str, str] | None:
        """Node admission, once per pod before it first runs; (reason, message) if refused."""
        if w.admitted:
            return None
        if not admission.has_run(w.pod):
            others = (
                o.pod
                for o in self.workers.values()
                if o is not w
                and o.admitted
                and not o.gone
                and (o.pod.get("status") or {}).get("phase") not in TERMINAL
            )
            refused = admission.refusal(w.pod, others, self.spec)
            if refused is not None:
                log.info("pod %s refused: %s", w.key, refused[1])
                return refused
        w.admitted = True
        return None

    async def _write_status(self, w: PodWorker, status: dict[str, Any]) -> None:
        if not merge_patch(w.pod.get("status") or {}, status):
            w.desired = None
            return
        w.desired = status
        if self.shared.status_writer is not None:
            self.shared.status_writer.submit(self, w)
        else:
            await self._send_status(w)

    async def _send_status(self, w: PodWorker) -> None:
        """PATCH the pod's status subresource with the difference to the latest desired status."""
        status = w.desired
        if status is None or w.gone:
            return
        patch = merge_patch(w.pod.get("status") or {}, status)
        if not patch:
            return
        md = w.pod["metadata"]
        try:
            async with self.shared.write_limit:
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
        if (updated.get("metadata") or {}).get("uid") == w.uid and _rv(updated) >= _rv(w.pod):
            w.pod = updated
        if w.desired is status:
            w.desired = None

    async def _kill(self, w: PodWorker, grace: float) -> None:
        self.prober.stop(w.uid)
        rt = self.runtime_of(w.pod)
        if rt is None:
            return
        w.killing = True  # from here a force delete or a shorter grace cuts the stop short
        try:
            await rt.kill_pod(w.uid, grace)
        finally:
            w.killing = False

    # ------------------------------------------------------------------ PLEG

    async def relist(self) -> int:
        """kubelet's PLEG: list the runtimes' pods and wake the workers of pods whose containers changed.

        Runtimes are level-triggered and only observed when asked, so without this a container that
        exits would be noticed at the next periodic resync. Returns how many workers were woken.
        """
        woke = 0
        for rt in filter(None, (self.runtime, self.vm_runtime)):
            try:
                pods = await rt.list_pods()
            except RuntimeError_ as e:
                log.debug("node %s: relist of %s failed: %s", self.name, rt.name, e)
                continue
            for ps in pods:
                sig = _signature(ps)
                if self._sigs.get(ps.uid) != sig:
                    self._sigs[ps.uid] = sig
                    w = self.workers.get(ps.uid)
                    if w is not None:
                        w.wake.set()
                        woke += 1
        return woke

    # ------------------------------------------------------------------ probes

    def _wake(self, uid: str) -> None:
        w = self.workers.get(uid)
        if w is not None:
            w.wake.set()

    async def _liveness_failed(self, uid: str, container: str, message: str) -> None:
        w = self.workers.get(uid)
        log.info("pod %s container %s: %s; restarting", w.key if w else uid, container, message)
        if w is not None:
            self.events.liveness_restart(w.client, w.pod, container)
        try:
            await self.runtime.restart_container(uid, container, message)
        except RuntimeError_ as e:
            log.warning("restart of %s/%s failed: %s", uid, container, e)
        self._wake(uid)

    def _probe_changed(self, uid: str) -> None:
        self._wake(uid)

    def _probe_failed(self, uid: str, container: str, message: str) -> None:
        w = self.workers.get(uid)
        if w is not None:
            self.events.probe_failed(w.client, w.pod, message)

    # ------------------------------------------------------------------ adoption

    async def adopt(self, api_pods: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
        """Reconcile what the runtimes run with ``api_pods`` (uid -> pod bound here); returns (adopted, killed)."""
        adopted: list[str] = []
        killed: list[str] = []
        for rt in filter(None, (self.runtime, self.vm_runtime)):
            try:
                existing = await rt.list_pods()
            except RuntimeError_ as e:
                log.warning("node %s: %s runtime cannot list pods: %s", self.name, rt.name, e)
                continue
            for ps in existing:
                if ps.uid in api_pods:
                    adopted.append(ps.uid)
                    continue
                log.info(
                    "node %s: removing orphaned pod %s/%s/%s (uid %s) from %s",
                    self.name,
                    ps.tenant,
                    ps.namespace,
                    ps.name,
                    ps.uid,
                    rt.name,
                )
                try:
                    await rt.kill_pod(ps.uid, self.timing.orphan_grace)
                    killed.append(ps.uid)
                except RuntimeError_ as e:
                    log.warning("orphan %s: %s", ps.uid, e)
        if adopted or killed:
            log.info("node %s: adopted %d pods, removed %d orphans", self.name, len(adopted), len(killed))
        return adopted, killed

    # ------------------------------------------------------------------ actions

    def on_action(self, typ: str, action: dict[str, Any], client: Client) -> None:
        if typ == "DELETED":
            return
        md = action.get("metadata") or {}
        uid = md.get("uid") or ""
        if (
            (action.get("status") or {}).get("complete")
            or uid in self._actions_running
            or uid in self._actions_done
        ):
            return
        self._actions_running.add(uid)
        t = asyncio.create_task(self._do_action(action, client), name=f"action-{md.get('name')}")
        self._tasks.append(t)
        t.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _do_action(self, action: dict[str, Any], client: Client) -> None:
        md = action["metadata"]
        uid = md["uid"]
        spec = action.get("spec") or {}
        try:
            await self.ready.wait()
            op = spec.get("operation") or spec.get("action") or ""
            pod_name = spec.get("podName") or spec.get("pod") or ""
            tenant = md.get("tenant") or SYSTEM_TENANT
            key = f"{tenant}/{md.get('namespace') or 'default'}/{pod_name}"
            params = dict(spec.get("params") or {})
            params.update(
                {
                    k: v
                    for k, v in spec.items()
                    if k not in ("nodeName", "podName", "podID", "pod", "operation", "action", "params")
                }
            )
            w = self.pod_by_key(key)
            result: dict[str, Any]
            if op not in ACTION_OPS:
                result = {
                    "complete": True,
                    "error": f"unsupported action {op!r} (supported: {', '.join(ACTION_OPS)})",
                }
            elif w is None:
                result = {"complete": True, "error": f"pod {pod_name!r} is not running on node {self.name}"}
            elif spec.get("podID") and spec["podID"] != w.uid:
                result = {
                    "complete": True,
                    "error": f"pod {pod_name!r} was replaced (uid {w.uid}, action for {spec['podID']})",
                }
            else:
                rt = self.runtime_of(w.pod)
                if rt is None:
                    result = {
                        "complete": True,
                        "error": f"node {self.name} has no runtime for pod {pod_name!r}",
                    }
                else:
                    log.info("action %s: %s on pod %s", md.get("name"), op, key)
                    try:
                        result = await rt.action(w.uid, op, params)
                    except RuntimeError_ as e:
                        result = {"error": str(e)}
                    result.setdefault("complete", True)
                w.wake.set()
            result["completionTime"] = now_rfc3339()
            while True:
                try:
                    async with self.shared.write_limit:
                        await client.patch(
                            "actions",
                            md["name"],
                            {"status": result},
                            md.get("namespace"),
                            tenant,
                            subresource="status",
                        )
                    break
                except ApiError as e:
                    if e.code == 404:
                        break
                    log.warning("action %s: status write failed: %s; retrying", md.get("name"), e)
                except ConnectionError as e:
                    log.warning("action %s: status write failed: %s; retrying", md.get("name"), e)
                await asyncio.sleep(1.0)
            self._actions_done.add(uid)
        finally:
            self._actions_running.discard(uid)

    # ------------------------------------------------------------------ lifecycle

    def start_loops(self) -> None:
        self._tasks.append(asyncio.create_task(self.lease_loop(), name=f"lease-{self.name}"))
        self._tasks.append(asyncio.create_task(self.status_loop(), name=f"status-{self.name}"))

    async def stop(self) -> None:
        tasks = list(self._tasks) + [w.task for w in self.workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.prober.close()
        await self.events.stop()
