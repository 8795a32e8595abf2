"""One node's agent: per-pod workers, adoption, the PLEG and probes, around registration and actions.

A :class:`NodeAgent` is everything kubelet does for one node, minus the watches (those live in
:mod:`agent.node.sources`, so that thousands of hollow nodes in one process can share one watch).
It orchestrates; the parts with their own concerns live beside it:

* **Registration, node status and Lease**: :class:`~agent.node.registration.NodeRegistration`
  (:meth:`NodeAgent.register`, and the two loops :meth:`NodeAgent.start_loops` starts).
* **Pod workers**: one asyncio task per pod uid (kubelet's pod workers, records in
  :mod:`agent.node.podworker`). Events only update the worker's copy of the pod and wake it; the
  worker serialises all work on that pod, runs node admission once (:mod:`agent.node.admission`),
  calls the runtime (``sync_pod``), folds in probe results (:mod:`agent.node.probes`), reports
  Events (:mod:`agent.node.podevents`) and hands the computed status to the status writer
  (:mod:`agent.node.statuswriter`), which PATCHes it only when it differs from the pod's. It resyncs
  every ``transition_resync`` seconds while the pod is in transition (Pending, restarting, not
  ready) and every ``resync_seconds`` otherwise. A pod with ``deletionTimestamp`` is killed with its
  grace period and then removed with ``DELETE gracePeriodSeconds=0`` (precondition: its uid).
* **PLEG** (:meth:`NodeAgent.relist`): the runtimes' pods are listed periodically and the workers
  of pods whose containers changed are woken.
* **Adoption** (:meth:`NodeAgent.adopt`): before any worker runs, ``runtime.list_pods()`` is compared
  with the pods bound to this node: what the API still has is adopted as is (the runtime's
  ``sync_pod`` sees the running containers), anything else is an orphan and is killed.
* **Actions**: :class:`~agent.node.actions.ActionRunner` (:meth:`NodeAgent.on_action`).

API writes of all nodes in a process go through the one write limit of
:class:`~agent.node.shared.Shared`, so a burst (thousands of hollow pods becoming Running) is spread
over a bounded number of concurrent requests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from pathlib import Path
from typing import Any

from agent.cni.bridge import NetworkError
from agent.node import admission
from agent.node.actions import ActionRunner
from agent.node.nodeinfo import NodeSpec
from agent.node.podevents import PodEvents
from agent.node.podnet import CONDITION, PodNetworking
from agent.node.podstatus import TERMINAL, compute_status, merge_patch, set_condition
from agent.node.podworker import PodWorker, has_probes, needs_sync, pod_key, pod_rv, runtime_signature
from agent.node.probes import Prober
from agent.node.registration import NodeRegistration
from agent.node.shared import Shared
from agent.node.statuswriter import send_status
from agent.runtime.base import PodRuntimeStatus, Runtime, RuntimeError_
from ctl.client.aio import ApiError, Client
from ctl.types.kinds import SYSTEM_TENANT
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.agent")


class NodeAgent:
    def __init__(
        self,
        spec: NodeSpec,
        runtime: Runtime,
        shared: Shared,
        vm_runtime: Runtime | None = None,
        vm_runtime_error: str = "",
        data_dir: Path | None = None,
        podnet: PodNetworking | None = None,
    ) -> None:
        self.spec = spec
        self.podnet = podnet  # VPC endpoints (None: the runtime's own network, e.g. the cbr0 bridge)
        if podnet is not None:
            podnet.wake = self._wake
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
        self.registration = NodeRegistration(spec, shared, data_dir)
        self.actions = ActionRunner(
            self.name, self.ready, self.pod_by_key, self.runtime_of, shared.write_limit
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._sigs: dict[str, tuple[Any, ...]] = {}

    async def register(self) -> None:
        """Create or update the Node in every resource partition, then write its status."""
        await self.registration.register()

    def on_action(self, typ: str, action: dict[str, Any], client: Client) -> None:
        """Called by the action source for every event on an Action naming this node (must not block)."""
        self.actions.on_action(typ, action, client)

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
        elif pod_rv(pod) >= pod_rv(w.pod):
            old, w.pod = w.pod, pod
            if md.get("deletionTimestamp"):  # deleted again, maybe with a shorter grace period
                self._shorten_kill(w, float(md.get("deletionGracePeriodSeconds") or 0))
            if not needs_sync(old, pod):
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
        elif (waiting := await self._network_step(w, rt)) is not None:
            error = waiting
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
                self._sigs[w.uid] = runtime_signature(rs)
            if rs is not None and rt is self.runtime and has_probes(pod):
                self.prober.start(pod, rs)
                self.prober.apply(rs)
            elif rs is not None:
                for c in rs.containers:
                    if not (pod.get("spec") or {}).get("virtualMachine"):
                        c.ready = c.state == "running"
        self.events.observed(w.client, pod, rs, fail or error)
        status = compute_status(pod, rs, self.spec.internal_ip, error, fail)
        if self._on_vpc(pod, rt) and fail is None and phase_before not in TERMINAL:
            net_wait = error if error is not None and rs is None else None
            set_condition(status, pod, CONDITION, net_wait is None, *(net_wait or ("", "")))
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

    def _on_vpc(self, pod: dict[str, Any], rt: Runtime | None) -> bool:
        return self.podnet is not None and rt is self.runtime and self.podnet.applies(pod)

    async def _network_step(self, w: PodWorker, rt: Runtime) -> tuple[str, str] | None:
        """The pod's VPC endpoint before its containers (:mod:`agent.node.podnet`); why it waits, or None."""
        if self.podnet is None or not self._on_vpc(w.pod, rt):
            return None
        try:
            return await self.podnet.prepare(w.client, w.pod, w.wake)
        except NetworkError as e:
            return "NetworkSetupFailed", str(e)

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
            self.shared.status_writer.submit(w, self.shared.write_limit)
        else:
            await send_status(w, self.shared.write_limit)

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
        if self.podnet is not None and self._on_vpc(w.pod, rt):
            await self.podnet.release(w.client, w.pod)  # after the netns is gone: the IP is free

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
                sig = runtime_signature(ps)
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
        if self.podnet is not None:
            try:
                await self.podnet.collect(self.shared.tp_clients, set(api_pods))
            except (ApiError, ConnectionError) as e:
                log.warning("node %s: stale endpoints not collected: %s", self.name, e)
        return adopted, killed

    # ------------------------------------------------------------------ lifecycle

    def start_loops(self) -> None:
        self._tasks.append(asyncio.create_task(self.registration.lease_loop(), name=f"lease-{self.name}"))
        self._tasks.append(asyncio.create_task(self.registration.status_loop(), name=f"status-{self.name}"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks, [w.task for w in self.workers.values() if w.task is not None])
        await self.actions.stop()
        if self.podnet is not None:
            await self.podnet.stop()
        await self.prober.close()
        await self.events.stop()
