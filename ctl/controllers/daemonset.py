"""DaemonSet controller: one pod of the template on every eligible node.

A node is eligible when it matches the template's ``nodeSelector`` and required node
affinity and has no ``NoSchedule``/``NoExecute`` taint the pod does not tolerate; a pod
already on a node keeps running while only an untolerated ``NoSchedule`` taint appeared
(as Kubernetes' ``NodeShouldRunDaemonPod``). Every DaemonSet pod gets Kubernetes' default
tolerations (``not-ready``/``unreachable`` NoExecute, the pressure and ``unschedulable``
NoSchedule taints), so pods stay on nodes that go NotReady.

Pods are created bound: ``spec.nodeName`` is the node, and ``spec.affinity.nodeAffinity``
requires ``metadata.name`` of that node (matchFields, as Kubernetes writes it, so a
``describe`` reads the same). No scheduler round trip is needed, so pods follow nodes that
join (hollow nodes too) at API speed; pods on nodes that left, or on nodes no longer
eligible, are deleted, and so are failed pods: the replacement of a node's failed pod waits
1 s, 2 s, 4 s ... (at most 5 min) after each failure (ten minutes without one start it over),
with a ``FailedDaemonPod`` Warning Event, so a pod that keeps failing is no hot loop.

Updates go through :mod:`ctl.controllers.revisions`: the pod label
``controller-revision-hash`` names the template revision. ``RollingUpdate`` with
``maxSurge: 0`` deletes old pods, unavailable ones first, while at most ``maxUnavailable``
nodes lack an available pod; with ``maxSurge > 0`` it starts the new pod next to an
available old one on up to ``maxSurge`` nodes and deletes the old pod once the new one is
available. ``OnDelete`` replaces a pod only after the user deleted it.

Status: desired/current/ready/updated/available/unavailable counts, ``numberMisscheduled``
and ``observedGeneration``.
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from typing import Any

from ctl.client.informer import SharedInformers
from ctl.controllers import revisions
from ctl.controllers.podutil import is_available, is_ready
from ctl.scheduler.filters import match_expression, tolerates
from ctl.scheduler.nodeinfo import UNSCHEDULABLE_TAINT, Taint
from ctl.types import meta
from ctl.types.meta import object_key

BURST = 250

DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
)


# ----------------------------------------------------------------------------- eligibility
def pod_tolerations(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's tolerations plus the DaemonSet defaults it does not already have."""
    tols = [t for t in pod_spec.get("tolerations") or [] if isinstance(t, dict)]
    for d in DEFAULT_TOLERATIONS:
        if not any(t.get("key") == d["key"] and t.get("effect") == d["effect"] for t in tols):
            tols.append(dict(d))
    return tols


def _node_taints(node: dict[str, Any]) -> list[Taint]:
    spec = node.get("spec") or {}
    out = [
        Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
        for t in spec.get("taints") or []
        if isinstance(t, dict)
    ]
    if spec.get("unschedulable"):
        out.append(Taint(UNSCHEDULABLE_TAINT, "", "NoSchedule"))
    return out


def _matches_node(pod_spec: dict[str, Any], node: dict[str, Any]) -> bool:
    md = node.get("metadata") or {}
    labels = md.get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms")
    if not req:
        return True
    for term in req:
        exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not fields:
            continue
        if all(match_expression(e, labels) for e in exprs) and all(
            f.get("key") == "metadata.name" and match_expression({**f, "key": "n"}, {"n": md.get("name", "")})
            for f in fields
        ):
            return True
    return False


def should_run(pod_spec: dict[str, Any], node: dict[str, Any]) -> tuple[bool, bool]:
    """(a new pod should go on ``node``, a pod already there may keep running)."""
    if not _matches_node(pod_spec, node):
        return False, False
    tols = pod_tolerations(pod_spec)
    run, keep = True, True
    for t in _node_taints(node):
        if t.effect not in ("NoSchedule", "NoExecute") or any(tolerates(tol, t) for tol in tols):
            continue
        run = False
        if t.effect == "NoExecute":
            keep = False
    return run, keep


def resolve(value: Any, total: int) -> int:
    """An int-or-percent against ``total`` (percentages round up, as for DaemonSets)."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


# ----------------------------------------------------------------------------- controller
class DaemonSetController(revisions.RevisionedController):
    name = "daemonset"
    kind = "DaemonSet"
    plural = "daemonsets"

    def setup(self, informers: SharedInformers) -> None:
        super().setup(informers)
        self.nodes = informers.get("nodes")
        self.nodes.add_handler(self._on_node)
        # "DS-KEY/NODE" -> (failed pods seen there, the last one's uid, no new pod before this time)
        self.backoff: dict[str, tuple[int, str, float]] = {}

    def _on_node(self, typ: str, node: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "MODIFIED" and old is not None:
            if (node.get("metadata") or {}).get("labels") == (old.get("metadata") or {}).get("labels") and (
                node.get("spec") or {}
            ) == (old.get("spec") or {}):
                return  # a heartbeat or status change: eligibility is the same
        for ds in self.owners.list():
            self.enqueue(ds)

    # ------------------------------------------------------------------ sync
    async def sync(self, key: str) -> float | None:
        ds = self.owners.get_key(key)
        if ds is None:
            self.exp.delete(key)
            for k in [k for k in self.backoff if k.startswith(key + "/")]:
                del self.backoff[k]
            return None
        if ds["metadata"].get("deletionTimestamp"):
            return None
        got = await self.history(ds)
        if got is None:
            return 0.1
        rev, h = got
        pods, retry = await self.owned_pods(key, ds)
        plan = self._plan(ds, h, pods)
        if self.exp.satisfied(key):
            await self._act(key, ds, h, plan)
        new, again = self._status(ds, h, plan)
        await self.finish(ds, pods, {rev["metadata"]["name"]}, new)
        if retry:
            again = 0.2 if again is None else min(again, 0.2)
        if plan["retry_after"] < math.inf:
            again = plan["retry_after"] + 0.05 if again is None else min(again, plan["retry_after"] + 0.05)
        return again

    def _plan(self, ds: dict[str, Any], h: str, pods: list[dict[str, Any]]) -> dict[str, Any]:
        """What each node needs: the nodes to create on, the pods to delete, and the counts."""
        spec = ds.get("spec") or {}
        tpl_spec = (spec.get("template") or {}).get("spec") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        by_node: dict[str, list[dict[str, Any]]] = {}
        delete: list[dict[str, Any]] = []
        for p in pods:
            n = (p.get("spec") or {}).get("nodeName") or ""
            by_node.setdefault(n, []).append(p)
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        create: list[str] = []
        desired: list[str] = []
        misscheduled = 0
        retry_after = math.inf  # the soonest a node's failed-pod back-off ends
        for name, plist in by_node.items():
            if name not in nodes:
                delete.extend(p for p in plist if not p["metadata"].get("deletionTimestamp"))
        for name, node in nodes.items():
            run, keep = should_run(tpl_spec, node)
            plist = [p for p in by_node.get(name, []) if not p["metadata"].get("deletionTimestamp")]
            terminating = len(by_node.get(name, [])) - len(plist)
            if run:
                desired.append(name)
            if not keep:
                if plist:
                    misscheduled += 1
                delete.extend(plist)
                continue
            if not run and plist:
                continue  # keeps running under a NoSchedule taint; not counted as desired
            failed = [p for p in plist if (p.get("status") or {}).get("phase") == "Failed"]
            delete.extend(failed)
            for p in failed:
                self._failed(ds, name, p)
            plist = [p for p in plist if p not in failed]
            if not plist and run and not terminating and not failed:
                wait = self.backoff.get(f"{object_key(ds)}/{name}", (0, "", 0.0))[2] - time.monotonic()
                if wait > 0:
                    retry_after = min(retry_after, wait)
                else:
                    create.append(name)
            elif len(plist) > 1:
                new = [p for p in plist if _hash(p) == h]
                # keep one: an updated available pod, else the oldest
                if not any(is_available(p, mrs) for p in new):
                    continue  # a surge in progress: the rolling update resolves it
                old = [p for p in plist if _hash(p) != h]
                keep_pod = sorted(new, key=_created)[0]
                delete.extend(old + [p for p in new if p is not keep_pod])
        return {
            "nodes": nodes,
            "by_node": by_node,
            "desired": desired,
            "create": create,
            "delete": delete,
            "misscheduled": misscheduled,
            "retry_after": retry_after,
        }

    def _failed(self, ds: dict[str, Any], node: str, pod: dict[str, Any]) -> None:
        """A failed pod on ``node``: it is deleted, and its replacement waits 1 s, 2 s, 4 s ... (5 min at most)."""
        bkey = f"{object_key(ds)}/{node}"
        n, uid, until = self.backoff.get(bkey, (0, "", 0.0))
        if uid == pod["metadata"]["uid"]:
            return
        n = 1 if time.monotonic() - until > 600.0 else n + 1  # ten quiet minutes start it over
        self.backoff[bkey] = (n, pod["metadata"]["uid"], time.monotonic() + min(2.0 ** (n - 1), 300.0))
        self.recorder.warning(
            ds,
            "FailedDaemonPod",
            f"Found failed daemon pod {pod['metadata']['name']} on node {node}, will try to kill it",
        )

    def _rolling(
        self, ds: dict[str, Any], h: str, plan: dict[str, Any]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """More creations (surge) and deletions (old pods) for a rolling update."""
        spec = ds.get("spec") or {}
        st = spec.get("updateStrategy") or {}
        if st.get("type", "RollingUpdate") != "RollingUpdate":
            return [], []
        ru = st.get("rollingUpdate") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        total = len(plan["desired"])
        max_unavail = resolve(ru.get("maxUnavailable", 1), total)
        max_surge = resolve(ru.get("maxSurge", 0), total)
        if max_unavail == 0 and max_surge == 0:
            max_unavail = 1
        doomed = {object_key(p) for p in plan["delete"]}
        surge_nodes: list[str] = []
        deletions: list[dict[str, Any]] = []
        unavailable = 0
        old_available: list[tuple[str, dict[str, Any]]] = []
        surging = 0
        for name in plan["desired"]:
            plist = [
                p
                for p in plan["by_node"].get(name, [])
                if not p["metadata"].get("deletionTimestamp") and object_key(p) not in doomed
            ]
            new = [p for p in plist if _hash(p) == h]
            old = [p for p in plist if _hash(p) != h]
            if not plist or not any(is_available(p, mrs) for p in plist):
                unavailable += 1
            if not old:
                continue
            if any(is_available(p, mrs) for p in new):
                deletions.extend(old)  # the new pod took over (surge)
                continue
            if new:
                surging += 1
                continue  # waiting for the surge pod
            avail_old = [p for p in old if is_available(p, mrs)]
            if not avail_old:
                deletions.extend(old)  # an unavailable old pod costs nothing to replace
            else:
                old_available.append((name, avail_old[0]))
        if max_surge > 0:
            room = max(0, max_surge - surging)
            surge_nodes = [name for name, _ in old_available[:room]]
        else:
            room = max(0, max_unavail - unavailable)
            for _, p in old_available[:room]:
                deletions.extend(
                    q
                    for q in plan["by_node"][(p.get("spec") or {}).get("nodeName")]
                    if not q["metadata"].get("deletionTimestamp")
                )
        return surge_nodes, deletions

    async def _act(self, key: str, ds: dict[str, Any], h: str, plan: dict[str, Any]) -> None:
        surge, rolling_deletes = self._rolling(ds, h, plan)
        create = (plan["create"] + surge)[:BURST]
        seen: set[str] = set()
        delete = []
        for p in plan["delete"] + rolling_deletes:
            k = object_key(p)
            if k not in seen:
                seen.add(k)
                delete.append(p)
        delete = delete[:BURST]
        if create:
            self.exp.expect_creations(key, len(create))
            done = await self._create_pods(ds, h, create)
            for _ in range(len(create) - done):
                self.exp.creation_observed(key)
        if delete:
            await self.delete_pods(key, ds, delete)

    def _pod_for(self, ds: dict[str, Any], h: str, node: str) -> dict[str, Any]:
        spec = ds.get("spec") or {}
        tpl = spec.get("template") or {}
        tmd = tpl.get("metadata") or {}
        labels = dict(tmd.get("labels") or {})
        labels[revisions.HASH_LABEL] = h
        labels["pod-template-generation"] = str(ds["metadata"].get("generation", 1))
        md: dict[str, Any] = {
            "generateName": ds["metadata"]["name"] + "-",
            "namespace": ds["metadata"].get("namespace"),
            "labels": labels,
            "ownerReferences": [meta.owner_reference(ds)],
        }
        if tmd.get("annotations"):
            md["annotations"] = dict(tmd["annotations"])
        pspec = copy.deepcopy(tpl.get("spec") or {})
        pspec["nodeName"] = node
        pspec["tolerations"] = pod_tolerations(pspec)
        affinity = pspec.get("affinity") or {}
        na = dict(affinity.get("nodeAffinity") or {})
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
        }
        pspec["affinity"] = {**affinity, "nodeAffinity": na}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": pspec}

    async def _create_pods(self, ds: dict[str, Any], h: str, nodes: list[str]) -> int:
        md = ds["metadata"]
        done, batch, i = 0, 1, 0
        while i < len(nodes):
            chunk = nodes[i : i + batch]
            i += len(chunk)
            results = await asyncio.gather(
                *(
                    self.client.create(
                        self._pod_for(ds, h, n), namespace=md.get("namespace"), tenant=md.get("tenant")
                    )
                    for n in chunk
                ),
                return_exceptions=True,
            )
            failed = False
            for n, r in zip(chunk, results, strict=True):
                if isinstance(r, asyncio.CancelledError):
                    raise r
                if isinstance(r, BaseException):
                    failed = True
                    self.recorder.warning(ds, "FailedCreate", f"Error creating pod on node {n}: {r}")
                else:
                    done += 1
                    self.recorder.normal(ds, "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            if failed:
                return done
            batch *= 2
        return done

    # ------------------------------------------------------------------ status
    def _status(
        self, ds: dict[str, Any], h: str, plan: dict[str, Any]
    ) -> tuple[dict[str, Any], float | None]:
        """The new status and, while pods are ready but not yet available, when to look again."""
        spec = ds.get("spec") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        current = ready = updated = available = 0
        for name in plan["desired"]:
            plist = [p for p in plan["by_node"].get(name, []) if not p["metadata"].get("deletionTimestamp")]
            if not plist:
                continue
            current += 1
            if any(is_ready(p) for p in plist):
                ready += 1
            if any(is_available(p, mrs) for p in plist):
                available += 1
            if any(_hash(p) == h for p in plist):
                updated += 1
        new: dict[str, Any] = {
            "desiredNumberScheduled": len(plan["desired"]),
            "currentNumberScheduled": current,
            "numberMisscheduled": plan["misscheduled"],
            "numberReady": ready,
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": len(plan["desired"]) - available,
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        return new, (float(mrs) if mrs and available < ready else None)


def _hash(pod: dict[str, Any]) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(revisions.HASH_LABEL)


def _created(pod: dict[str, Any]) -> str:
    return str(pod["metadata"].get("creationTimestamp") or "")
