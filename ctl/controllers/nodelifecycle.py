"""Node lifecycle controller: node health from Leases, taints, eviction, and pod GC.

Node agents renew a Lease named after their node in ``kube-node-lease`` (system
tenant). The controller notes, by its own clock, when each lease's ``renewTime`` last
changed (so clock skew between hosts does not matter); a node whose lease has not been
renewed for ``--node-monitor-grace-period`` gets its conditions set to ``Unknown``
(reason ``NodeStatusUnknown``) and the taints ``node.kubernetes.io/unreachable`` with
effects ``NoExecute`` and ``NoSchedule``. A node whose Ready condition is ``False`` gets
the ``node.kubernetes.io/not-ready`` taints instead. When the lease is renewed again the
Unknown conditions this controller set are turned back (Ready ``True``) and the taints
removed.

Eviction: pods on a node with a NoExecute taint are deleted once the taint is older
than their toleration's ``tolerationSeconds`` (never, if they tolerate it without a
limit) or, without a matching toleration, than ``--pod-eviction-timeout``. Pods on an
unreachable node are force-deleted (grace 0: nobody is left to stop them), and so are
pods already terminating there; their ReplicaSets then create replacements, which wait
(Pending) for the scheduler.

Pod GC: pods bound to a node that no longer exists (confirmed with a GET) are
force-deleted.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from ctl.client import Client
from ctl.client.aio import ApiError
from ctl.client.events import EventRecorder
from ctl.client.informer import SharedInformers, by_node
from ctl.controllers.base import Controller, HashRange
from ctl.controllers.podutil import condition
from ctl.types import meta
from ctl.types.kinds import NODE_LEASE_NAMESPACE, SYSTEM_TENANT
from ctl.types.meta import object_key
from ctl.util.tasks import cancel_and_wait

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNKNOWN_REASON = "NodeStatusUnknown"
CONDITION_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def tolerates(pod: dict[str, Any], taint: dict[str, Any]) -> tuple[bool, float | None]:
    """(tolerated, seconds): seconds None means forever."""
    best: tuple[bool, float | None] = (False, None)
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        key = t.get("key") or ""
        if key and key != taint.get("key"):
            continue
        if not key and op != "Exists":
            continue
        if op != "Exists" and (t.get("value") or "") != (taint.get("value") or ""):
            continue
        secs = t.get("tolerationSeconds")
        if secs is None:
            return True, None
        s = max(float(secs), 0.0)
        if not best[0] or (best[1] is not None and s < best[1]):
            best = (True, s)
    return best


def _wanted_taints(node: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The node's taints as its Ready condition wants them, or None when they already are."""
    ready = condition(node, "Ready")
    rs = (ready or {}).get("status")
    want_key = UNREACHABLE if rs == "Unknown" else NOT_READY if rs == "False" else None
    taints = list((node.get("spec") or {}).get("taints") or [])
    keep = [t for t in taints if t.get("key") not in (UNREACHABLE, NOT_READY) or t.get("key") == want_key]
    have = {(t.get("key"), t.get("effect")) for t in keep}
    now = meta.now_rfc3339()
    if want_key:
        for effect in ("NoExecute", "NoSchedule"):
            if (want_key, effect) not in have:
                keep.append({"key": want_key, "effect": effect, "timeAdded": now})
    return None if keep == taints else keep


def _needs_attention(node: dict[str, Any]) -> bool:
    ready = condition(node, "Ready")
    if ready is not None and ready.get("status") == "Unknown" and ready.get("reason") == UNKNOWN_REASON:
        return True
    return any(t.get("key") in (UNREACHABLE, NOT_READY) for t in (node.get("spec") or {}).get("taints") or [])


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        recorder: EventRecorder,
        hash_range: HashRange,
        workers: int = 2,
        grace: float = 40.0,
        eviction_timeout: float = 300.0,
        period: float | None = None,
    ) -> None:
        self.grace = grace
        self.eviction_timeout = eviction_timeout
        self.period = period or min(max(grace / 8, 0.2), 5.0)
        super().__init__(client, informers, recorder, hash_range, workers)

    def setup(self, informers: SharedInformers) -> None:
        self.nodes = informers.get("nodes", tenant=None)
        self.leases = informers.get("leases", namespace=NODE_LEASE_NAMESPACE, tenant=SYSTEM_TENANT)
        self.pods = informers.get("pods")
        self.pods.add_index("node", by_node)
        self.probe: dict[str, tuple[str, float]] = {}  # node -> (renewTime seen, local time it changed)
        self.nodes.add_handler(self._on_node)
        self.leases.add_handler(self._on_lease)
        self._monitor: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ events
    def _on_node(self, typ: str, node: dict[str, Any], old: dict[str, Any] | None) -> None:
        name = node["metadata"]["name"]
        if not self.hash_range.owns(node):
            return
        if typ == "DELETED":
            self.probe.pop(name, None)
            self.queue.add(f"podgc:{name}")
            return
        self.probe.setdefault(name, ("", time.monotonic()))
        self.queue.add(f"node:{name}")

    def _on_lease(self, typ: str, lease: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            return
        name = lease["metadata"]["name"]
        spec = lease.get("spec") or {}
        renew = str(
            spec.get("renewTime") or spec.get("acquireTime") or lease["metadata"].get("resourceVersion")
        )
        prev = self.probe.get(name)
        if prev is None or prev[0] != renew:
            self.probe[name] = (renew, time.monotonic())
            node = self.nodes.get_key(f"//{name}")
            # A healthy node needs no sync per renewal: its timer (armed by sync at the grace
            # deadline) looks again. Only a node marked Unknown/tainted recovers right away.
            if (
                node is not None
                and self.hash_range.owns(node)
                and (prev is None or _wanted_taints(node) is not None or _needs_attention(node))
            ):
                self.queue.add(f"node:{name}")

    def object_for(self, key: str) -> dict[str, Any] | None:
        what, _, name = key.partition(":")
        return self.nodes.get_key(f"//{name}") if what == "node" else None

    async def prepare(self) -> None:
        self._monitor = asyncio.create_task(self._monitor_loop(), name="node-monitor")

    async def stop(self) -> None:
        await cancel_and_wait(self._monitor)
        self._monitor = None
        await super().stop()

    async def _monitor_loop(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.period)
            n += 1
            if n % max(int(30 / self.period), 1) == 0:
                # Safety net: each node also re-arms its own timer at its grace deadline.
                for node in self.nodes.list():
                    if self.hash_range.owns(node):
                        self.queue.add(f"node:{node['metadata']['name']}")
            if n % max(int(10 / self.period), 1) == 0:
                for value in list(self.pods.indexes["node"].values):
                    if self.nodes.get_key(f"//{value}") is None:
                        self.queue.add(f"podgc:{value}")

    # ------------------------------------------------------------------ sync
    async def sync(self, key: str) -> float | None:
        what, _, name = key.partition(":")
        if what == "podgc":
            await self._pod_gc(name)
            return None
        node = self.nodes.get_key(f"//{name}")
        if node is None:
            return None
        now = time.monotonic()
        _, seen = self.probe.setdefault(name, ("", now))
        stale = now - seen > self.grace
        ready = condition(node, "Ready")
        need_unknown = stale and (ready is None or ready.get("status") != "Unknown")
        need_recover = (
            not stale
            and ready is not None
            and ready.get("status") == "Unknown"
            and ready.get("reason") == UNKNOWN_REASON
        )
        if need_unknown or need_recover or _wanted_taints(node) is not None:
            node = copy.deepcopy(node)  # informer objects are shared: write a copy
            if need_unknown:
                await self._mark_unknown(node)
            elif need_recover:
                await self._mark_recovered(node)
            await self._reconcile_taints(node)
        delay = await self._evict(node)
        if not stale:
            until = seen + self.grace - now + 0.05
            delay = until if delay is None else min(delay, until)
        return delay

    async def _mark_unknown(self, node: dict[str, Any]) -> None:
        now = meta.now_rfc3339()
        status = node.setdefault("status", {})
        conds = status.setdefault("conditions", [])
        present = {c.get("type") for c in conds}
        for t in CONDITION_TYPES:
            if t not in present:
                conds.append({"type": t})
        for c in conds:
            if c.get("type") in CONDITION_TYPES and c.get("status") != "Unknown":
                c.update(
                    {
                        "status": "Unknown",
                        "reason": UNKNOWN_REASON,
                        "message": "Kubelet stopped posting node status.",
                        "lastHeartbeatTime": c.get("lastHeartbeatTime") or now,
                        "lastTransitionTime": now,
                    }
                )
        out = await self.client.update(node, "status")
        node["metadata"] = out["metadata"]
        name = node["metadata"]["name"]
        self.log.info("node %s: lease not renewed for %.0fs, status Unknown", name, self.grace)
        self.recorder.normal(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady")

    async def _mark_recovered(self, node: dict[str, Any]) -> None:
        now = meta.now_rfc3339()
        for c in node.setdefault("status", {}).get("conditions") or []:
            if c.get("type") in CONDITION_TYPES and c.get("reason") == UNKNOWN_REASON:
                ok = c["type"] == "Ready"
                c.update(
                    {
                        "status": "True" if ok else "False",
                        "reason": "KubeletReady" if ok else "NodeLeaseRenewed",
                        "message": "node lease renewed; the node agent is back"
                        if ok
                        else "node lease renewed",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                )
        out = await self.client.update(node, "status")
        node["metadata"] = out["metadata"]
        name = node["metadata"]["name"]
        self.log.info("node %s: lease renewed, Ready again", name)
        self.recorder.normal(node, "NodeReady", f"Node {name} status is now: NodeReady")

    async def _reconcile_taints(self, node: dict[str, Any]) -> None:
        keep = _wanted_taints(node)
        if keep is None:
            return
        node.setdefault("spec", {})["taints"] = keep
        out = await self.client.update(node)
        node["metadata"] = out["metadata"]
        node["spec"] = out.get("spec", node["spec"])

    async def _evict(self, node: dict[str, Any]) -> float | None:
        taint = next(
            (
                t
                for t in (node.get("spec") or {}).get("taints") or []
                if t.get("key") in (UNREACHABLE, NOT_READY) and t.get("effect") == "NoExecute"
            ),
            None,
        )
        if taint is None:
            return None
        force = taint["key"] == UNREACHABLE
        try:
            added = meta.parse_rfc3339(taint.get("timeAdded") or "")
        except ValueError:
            added = time.time()
        now = time.time()
        name = node["metadata"]["name"]
        next_check: float | None = None
        for pod in self.pods.by_index("node", name):
            pmd = pod["metadata"]
            if pmd.get("deletionTimestamp"):
                if force:
                    await self._delete_pod(pod, 0)
                continue
            ok, secs = tolerates(pod, taint)
            if ok and secs is None:
                continue
            wait = secs if ok and secs is not None else self.eviction_timeout
            left = added + wait - now
            if left > 0:
                next_check = left if next_check is None else min(next_check, left)
                continue
            self.recorder.normal(
                pod, "TaintManagerEviction", f"Marking for deletion Pod {pmd.get('namespace')}/{pmd['name']}"
            )
            await self._delete_pod(pod, 0 if force else None)
        return None if next_check is None else next_check + 0.05

    async def _delete_pod(self, pod: dict[str, Any], grace: int | None) -> None:
        pmd = pod["metadata"]
        try:
            await self.client.delete(
                "pods",
                pmd["name"],
                namespace=pmd.get("namespace"),
                tenant=pmd.get("tenant") or None,
                grace_period_seconds=grace,
                preconditions={"uid": pmd["uid"]},
            )
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _pod_gc(self, node_name: str) -> None:
        pods = self.pods.by_index("node", node_name)
        if not pods or self.nodes.get_key(f"//{node_name}") is not None:
            return
        try:
            await self.client.get("nodes", node_name)
            return  # it exists after all (our watch lags)
        except ApiError as e:
            if e.code != 404:
                raise
        for pod in pods:
            pmd = pod["metadata"]
            self.log.info(
                "pod GC: force-deleting %s/%s/%s bound to deleted node %s",
                pmd.get("tenant"),
                pmd.get("namespace"),
                pmd["name"],
                node_name,
            )
            await self._delete_pod(pod, 0)

    def key_for(self, node: dict[str, Any]) -> str:
        return object_key(node)
