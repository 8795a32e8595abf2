"""Deployment controller: roll a Deployment's pod template out through ReplicaSets.

Each template gets its own ReplicaSet named ``DEPLOYMENT-HASH``, where HASH (also the
``pod-template-hash`` label added to the ReplicaSet's selector, labels and template) is
a stable hash of the pod template plus ``status.collisionCount``. The ReplicaSet whose
template equals the Deployment's (ignoring that label) is the *new* one; all others are
*old*. Revisions are kept in the ``deployment.kubernetes.io/revision`` annotation: the
new ReplicaSet always carries the highest one, so ``rollout undo`` (copying an old
ReplicaSet's template back) just makes that ReplicaSet new again with a fresh revision.

Strategies, as in Kubernetes:

* ``RollingUpdate``: scale the new ReplicaSet up while the total stays within
  ``replicas + maxSurge`` (percentages round up) and scale old ones down while the
  available pods stay at least ``replicas - maxUnavailable`` (percentages round down).
  Two guards make this hold even while ReplicaSet statuses lag: a ReplicaSet counts as
  ``max(spec.replicas, status.replicas)`` pods when surging, and as
  ``min(spec.replicas, status.availableReplicas)`` available pods when scaling down.
* ``Recreate``: scale every old ReplicaSet to zero, wait until none of their pods is
  left, then scale the new one up.

Paused Deployments only scale (proportionally across active ReplicaSets) and clean up.
Old ReplicaSets with no pods beyond ``revisionHistoryLimit`` are deleted once a rollout
completes. Status carries replicas, updatedReplicas, readyReplicas, availableReplicas,
unavailableReplicas, observedGeneration and the Available/Progressing conditions
(including ProgressDeadlineExceeded after ``progressDeadlineSeconds`` without progress).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from typing import Any

import orjson

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers, by_controller, by_namespace
from ctl.controllers.base import Controller, split_key
from ctl.controllers.ownership import claim
from ctl.controllers.podutil import selector_of
from ctl.types import meta
from ctl.types.meta import object_key

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


# ---------------------------------------------------------------------- pure helpers
def safe_encode(s: str) -> str:
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in s)


def strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """Stable short hash of a pod template (ignoring pod-template-hash), like ComputeHash."""
    data = orjson.dumps(strip_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    n = int.from_bytes(hashlib.sha256(data).digest()[:4], "big")
    return safe_encode(str(n))


def _normalized(t: dict[str, Any]) -> dict[str, Any]:
    t = strip_hash(t)
    md = t.setdefault("metadata", {})
    for k in ("labels", "annotations"):
        if not md.get(k):
            md.pop(k, None)
    if not md:
        t.pop("metadata", None)
    return t


def equal_ignore_hash(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _normalized(a) == _normalized(b)


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value {value!r}: must be an integer or a percentage")
    if isinstance(value, int):
        return value
    s = str(value).strip()
    if s.endswith("%"):
        try:
            p = float(s[:-1])
        except ValueError:
            raise ValueError(f"invalid value {value!r}: must be an integer or a percentage") from None
        v = p * total / 100.0
        return int(math.ceil(v)) if round_up else int(math.floor(v))
    try:
        return int(s)
    except ValueError:
        raise ValueError(f"invalid value {value!r}: must be an integer or a percentage") from None


def is_rolling(d: dict[str, Any]) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def replicas_of(obj: dict[str, Any]) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def fenceposts(d: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas, as ResolveFenceposts."""
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    n = replicas_of(d)
    surge = int_or_percent(ru.get("maxSurge", "25%"), n, True)
    unavailable = int_or_percent(ru.get("maxUnavailable", "25%"), n, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: dict[str, Any]) -> int:
    n = replicas_of(d)
    if not is_rolling(d) or n == 0:
        return 0
    return min(fenceposts(d)[1], n)


def max_surge(d: dict[str, Any]) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def revision(obj: dict[str, Any]) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def st(obj: dict[str, Any], field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def created(obj: dict[str, Any]) -> tuple[str, str]:
    return (obj["metadata"].get("creationTimestamp") or "", obj["metadata"]["name"])


def get_condition(status: dict[str, Any], typ: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == typ), None)


def set_condition(
    status: dict[str, Any],
    typ: str,
    cstatus: str,
    reason: str,
    message: str,
    keep_transition_from: dict[str, Any] | None = None,
) -> None:
    cur = get_condition(status, typ)
    if cur is not None and cur.get("status") == cstatus and cur.get("reason") == reason:
        return
    now = meta.now_rfc3339()
    cond = {
        "type": typ,
        "status": cstatus,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
    if cur is not None and cur.get("status") == cstatus:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime", now)
    if keep_transition_from is not None and keep_transition_from.get("status") == cstatus:
        cond["lastTransitionTime"] = keep_transition_from.get("lastTransitionTime", now)
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != typ] + [cond]


def deployment_complete(d: dict[str, Any], s: dict[str, Any]) -> bool:
    n = replicas_of(d)
    return (
        int(s.get("updatedReplicas") or 0) == n
        and int(s.get("replicas") or 0) == n
        and int(s.get("availableReplicas") or 0) == n
        and int(s.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 1)
    )


# ---------------------------------------------------------------------- controller
class DeploymentController(Controller):
    name = "deployment"

    def setup(self, informers: SharedInformers) -> None:
        self.deploys = informers.get("deployments")
        self.rs = informers.get("replicasets")
        self.pods = informers.get("pods")
        self.deploys.add_index("ns", by_namespace)
        self.rs.add_index("ns", by_namespace)
        self.rs.add_index("controller", by_controller)
        self.pods.add_index("controller", by_controller)
        self.deploys.add_handler(self._on_deploy)
        self.rs.add_handler(self._on_rs)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ events
    def _enqueue(self, d: dict[str, Any]) -> None:
        if self.hash_range.owns(d):
            self.queue.add(object_key(d))

    def _on_deploy(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._enqueue(obj)

    def _deploy_for(self, obj: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any] | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        md = obj["metadata"]
        d = self.deploys.get_key(f"{md.get('tenant', '')}/{md.get('namespace', '')}/{ref['name']}")
        if d is None or d["metadata"]["uid"] != ref.get("uid"):
            return None
        return d

    def _on_rs(self, typ: str, rs: dict[str, Any], old: dict[str, Any] | None) -> None:
        ref = meta.controller_of(rs)
        d = self._deploy_for(rs, ref)
        if d is not None:
            self._enqueue(d)
        elif ref is None and typ != "DELETED":
            labels = rs["metadata"].get("labels") or {}
            for cand in self.deploys.by_index("ns", by_namespace(rs)[0]):
                sel = selector_of(cand)
                if sel is not None and sel.matches(labels):
                    self._enqueue(cand)
        if old is not None:
            old_ref = meta.controller_of(old)
            if (old_ref or {}).get("uid") != (ref or {}).get("uid"):
                od = self._deploy_for(old, old_ref)
                if od is not None:
                    self._enqueue(od)

    def _on_pod(self, typ: str, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        # Recreate waits for the old pods to be gone.
        if typ != "DELETED":
            return
        ref = meta.controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        md = pod["metadata"]
        rs = self.rs.get_key(f"{md.get('tenant', '')}/{md.get('namespace', '')}/{ref['name']}")
        if rs is None:
            return
        d = self._deploy_for(rs, meta.controller_of(rs))
        if d is not None and not is_rolling(d):
            self._enqueue(d)

    # ------------------------------------------------------------------ sync
    async def sync(self, key: str) -> float | None:
        d = self.deploys.get_key(key)
        if d is None:
            return None
        d = copy.deepcopy(d)
        tenant, namespace, _ = split_key(key)
        sel = selector_of(d)
        if sel is None:
            self.recorder.warning(
                d, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required."
            )
            return None
        try:
            fenceposts(d)
        except ValueError as e:
            self.recorder.warning(d, "InvalidStrategy", str(e))
            return None
        candidates = self.rs.by_index("ns", f"{tenant}/{namespace}")
        rss, retry = await claim(self.client, d, "deployments", "replicasets", candidates, sel)
        rss = [copy.deepcopy(r) for r in rss]
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old = self._split(d, rss)
            await self._sync_status(d, old + ([new_rs] if new_rs else []), new_rs)
            return None
        await self._check_paused(d)
        if (d.get("spec") or {}).get("paused") or self._is_scaling_event(d, rss):
            again = await self._sync_only(d, rss)
        elif is_rolling(d):
            again = await self._rollout_rolling(d, rss)
        else:
            again = await self._rollout_recreate(d, rss)
        if retry:
            again = 0.2 if again is None else min(again, 0.2)
        return again

    def _split(
        self, d: dict[str, Any], rss: list[dict[str, Any]]
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        tpl = (d.get("spec") or {}).get("template") or {}
        new_rs = None
        old = []
        for rs in sorted(rss, key=created):
            if new_rs is None and equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, tpl):
                new_rs = rs
            else:
                old.append(rs)
        return new_rs, old

    def _is_scaling_event(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> bool:
        want = replicas_of(d)
        for rs in rss:
            if replicas_of(rs) <= 0:
                continue
            v = (rs["metadata"].get("annotations") or {}).get(DESIRED)
            if v is not None and v.isdigit() and int(v) != want:
                return True
        return False

    async def _check_paused(self, d: dict[str, Any]) -> None:
        status = copy.deepcopy(d.get("status") or {})
        cond = get_condition(status, "Progressing")
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not (cond and cond.get("reason") == "DeploymentPaused"):
            set_condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif not paused and cond and cond.get("reason") == "DeploymentPaused":
            set_condition(status, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
        else:
            return
        await self._write_status(d, status)

    # ------------------------------------------------------------------ replica sets
    async def _get_all(
        self, d: dict[str, Any], rss: list[dict[str, Any]], create: bool
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        new_rs, old = self._split(d, rss)
        max_old = max((revision(r) for r in old), default=0)
        new_revision = max_old + 1
        if new_rs is not None:
            ann = new_rs["metadata"].setdefault("annotations", {})
            changed = False
            if revision(new_rs) < new_revision:
                prev = ann.get(REVISION)
                if prev:
                    hist = [h for h in (ann.get(REVISION_HISTORY) or "").split(",") if h]
                    ann[REVISION_HISTORY] = ",".join([*hist, prev])
                ann[REVISION] = str(new_revision)
                changed = True
            for k in (CHANGE_CAUSE,):
                v = (d["metadata"].get("annotations") or {}).get(k)
                if v and ann.get(k) != v:
                    ann[k] = v
                    changed = True
            mrs = int((d.get("spec") or {}).get("minReadySeconds") or 0)
            if int(new_rs["spec"].get("minReadySeconds") or 0) != mrs:
                new_rs["spec"]["minReadySeconds"] = mrs
                changed = True
            if changed:
                new_rs = await self.client.update(new_rs)
        elif create:
            new_rs = await self._create_new_rs(d, rss, old, new_revision)
            if new_rs is None:
                return None, old
        if new_rs is not None:
            await self._set_deploy_revision(d, str(revision(new_rs)))
        return new_rs, old

    async def _set_deploy_revision(self, d: dict[str, Any], rev: str) -> None:
        ann = d["metadata"].get("annotations") or {}
        if ann.get(REVISION) == rev:
            return
        body = copy.deepcopy(d)
        body["metadata"].setdefault("annotations", {})[REVISION] = rev
        out = await self.client.update(body)
        d["metadata"] = out["metadata"]

    async def _create_new_rs(
        self, d: dict[str, Any], rss: list[dict[str, Any]], old: list[dict[str, Any]], new_revision: int
    ) -> dict[str, Any] | None:
        md = d["metadata"]
        spec = d.get("spec") or {}
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        h = template_hash(spec.get("template") or {}, collisions)
        tpl = copy.deepcopy(spec.get("template") or {})
        tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        sel = copy.deepcopy(spec.get("selector") or {})
        sel.setdefault("matchLabels", {})[HASH_LABEL] = h
        replicas = self._new_rs_replicas(d, old, None)
        ann = {
            REVISION: str(new_revision),
            DESIRED: str(replicas_of(d)),
            MAX_REPLICAS: str(replicas_of(d) + max_surge(d)),
        }
        cause = (md.get("annotations") or {}).get(CHANGE_CAUSE)
        if cause:
            ann[CHANGE_CAUSE] = cause
        rs_name = f"{md['name']}-{h}"
        body: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": md.get("namespace"),
                "labels": dict(tpl["metadata"]["labels"]),
                "annotations": ann,
                "ownerReferences": [meta.owner_reference(d)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": sel,
                "template": tpl,
            },
        }
        try:
            rs = await self.client.create(body, namespace=md.get("namespace"), tenant=md.get("tenant"))
        except ApiError as e:
            if e.code != 409 or e.reason != "AlreadyExists":
                raise
            existing = await self.client.get(
                "replicasets", rs_name, namespace=md.get("namespace"), tenant=md.get("tenant")
            )
            ref = meta.controller_of(existing)
            if (
                ref
                and ref.get("uid") == md["uid"]
                and equal_ignore_hash(existing["spec"]["template"], spec["template"])
            ):
                return existing
            status = copy.deepcopy(d.get("status") or {})
            status["collisionCount"] = collisions + 1
            await self._write_status(d, status)
            raise ApiError(409, {"message": f"hash collision for {rs_name}", "reason": "Conflict"}) from None
        if replicas > 0:
            self.recorder.normal(
                d, "ScalingReplicaSet", f"Scaled up replica set {rs['metadata']['name']} to {replicas}"
            )
        status = copy.deepcopy(d.get("status") or {})
        set_condition(
            status,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            f'Created new replica set "{rs["metadata"]["name"]}"',
        )
        await self._write_status(d, status)
        return rs

    async def _scale(self, d: dict[str, Any], rs: dict[str, Any], n: int) -> tuple[bool, dict[str, Any]]:
        cur = replicas_of(rs)
        ann = rs["metadata"].get("annotations") or {}
        desired, mx = str(replicas_of(d)), str(replicas_of(d) + max_surge(d))
        if cur == n and ann.get(DESIRED) == desired and ann.get(MAX_REPLICAS) == mx:
            return False, rs
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = n
        body["metadata"].setdefault("annotations", {}).update({DESIRED: desired, MAX_REPLICAS: mx})
        out = await self.client.update(body)
        out.setdefault("status", rs.get("status") or {})
        rs.clear()
        rs.update(out)
        if cur != n:
            verb = "up" if n > cur else "down"
            self.recorder.normal(
                d,
                "ScalingReplicaSet",
                f"Scaled {verb} replica set {rs['metadata']['name']} to {n} from {cur}",
            )
        return cur != n, rs

    def _new_rs_replicas(
        self, d: dict[str, Any], old: list[dict[str, Any]], new_rs: dict[str, Any] | None
    ) -> int:
        want = replicas_of(d)
        cur_new = replicas_of(new_rs) if new_rs else 0
        if not is_rolling(d):
            return want
        all_rs = old + ([new_rs] if new_rs else [])
        current = sum(max(replicas_of(r), st(r, "replicas")) for r in all_rs)
        max_total = want + max_surge(d)
        if current >= max_total:
            return cur_new
        up = min(max_total - current, want - cur_new)
        return cur_new + max(up, 0)

    # ------------------------------------------------------------------ strategies
    async def _rollout_rolling(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> float | None:
        new_rs, old = await self._get_all(d, rss, create=True)
        if new_rs is None:
            return 0.5
        all_rs = old + [new_rs]
        if await self._reconcile_new(d, new_rs, old):
            return await self._sync_rollout_status(d, all_rs, new_rs)
        if await self._reconcile_old(d, new_rs, old):
            return await self._sync_rollout_status(d, all_rs, new_rs)
        if deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        return await self._sync_rollout_status(d, all_rs, new_rs)

    async def _reconcile_new(
        self, d: dict[str, Any], new_rs: dict[str, Any], old: list[dict[str, Any]]
    ) -> bool:
        want = replicas_of(d)
        cur = replicas_of(new_rs)
        if cur == want:
            return False
        if cur > want:
            return (await self._scale(d, new_rs, want))[0]
        n = self._new_rs_replicas(d, old, new_rs)
        return (await self._scale(d, new_rs, n))[0]

    async def _reconcile_old(
        self, d: dict[str, Any], new_rs: dict[str, Any], old: list[dict[str, Any]]
    ) -> bool:
        old_pods = sum(replicas_of(r) for r in old)
        if old_pods == 0:
            return False
        all_rs = old + [new_rs]
        all_pods = sum(replicas_of(r) for r in all_rs)
        min_available = replicas_of(d) - max_unavailable(d)
        new_unavailable = replicas_of(new_rs) - st(new_rs, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = 0
        # First scale down old ReplicaSets' unhealthy (not available) replicas.
        for rs in sorted(old, key=created):
            if cleaned >= max_scaled_down:
                break
            cur = replicas_of(rs)
            healthy = min(st(rs, "availableReplicas"), cur)
            if cur == 0 or cur == healthy:
                continue
            down = min(max_scaled_down - cleaned, cur - healthy)
            await self._scale(d, rs, cur - down)
            cleaned += down
        # Then available ones, keeping minAvailable.
        available = sum(min(st(r, "availableReplicas"), replicas_of(r)) for r in all_rs)
        budget = min(available - min_available, max_scaled_down - cleaned)
        scaled = 0
        if budget > 0:
            for rs in sorted(old, key=created):
                if scaled >= budget:
                    break
                cur = replicas_of(rs)
                if cur == 0:
                    continue
                down = min(cur, budget - scaled)
                await self._scale(d, rs, cur - down)
                scaled += down
        return cleaned + scaled > 0

    async def _rollout_recreate(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> float | None:
        new_rs, old = await self._get_all(d, rss, create=False)
        all_rs = old + ([new_rs] if new_rs else [])
        scaled = False
        for rs in old:
            if replicas_of(rs) > 0:
                scaled |= (await self._scale(d, rs, 0))[0]
        if scaled:
            return await self._sync_rollout_status(d, all_rs, new_rs)
        for rs in old:
            for p in self.pods.by_index("controller", rs["metadata"]["uid"]):
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return await self._sync_rollout_status(d, all_rs, new_rs)
        if new_rs is None:
            new_rs, old = await self._get_all(d, rss, create=True)
            if new_rs is None:
                return 0.5
            all_rs = old + [new_rs]
        if replicas_of(new_rs) != replicas_of(d):
            await self._scale(d, new_rs, replicas_of(d))
        if deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        return await self._sync_rollout_status(d, all_rs, new_rs)

    async def _sync_only(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> float | None:
        new_rs, old = await self._get_all(d, rss, create=False)
        await self._proportional_scale(d, new_rs, old)
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, old)
        all_rs = old + ([new_rs] if new_rs else [])
        await self._sync_status(d, all_rs, new_rs)
        return None

    async def _proportional_scale(
        self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]
    ) -> None:
        want = replicas_of(d)
        all_rs = old + ([new_rs] if new_rs else [])
        active = [r for r in all_rs if replicas_of(r) > 0]
        target: dict[str, Any] | None = None
        if not active:
            target = new_rs or (max(old, key=created) if old else None)
        elif len(active) == 1:
            target = active[0]
        if target is not None or not active:
            if target is not None:
                await self._scale(d, target, want)
            return
        if new_rs is not None and replicas_of(new_rs) == want and st(new_rs, "availableReplicas") == want:
            for r in old:
                await self._scale(d, r, 0)
            return
        if not is_rolling(d):
            return
        allowed = want + max_surge(d) if want > 0 else 0
        total = sum(replicas_of(r) for r in active)
        delta = allowed - total
        if delta == 0:
            return
        order = sorted(active, key=lambda r: (replicas_of(r), created(r)), reverse=True)
        if delta < 0:
            order = sorted(active, key=lambda r: (-replicas_of(r), created(r)))
        targets = {r["metadata"]["name"]: replicas_of(r) for r in order}
        given = 0
        for r in order:
            share = int(delta * replicas_of(r) / total) if total else 0
            share = max(share, -targets[r["metadata"]["name"]])
            targets[r["metadata"]["name"]] += share
            given += share
        left = delta - given
        for r in order:
            if left == 0:
                break
            name = r["metadata"]["name"]
            step = left if left > 0 else max(left, -targets[name])
            targets[name] += step
            left -= step
        for r in order:
            await self._scale(d, r, targets[r["metadata"]["name"]])

    async def _cleanup(self, d: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [
            r
            for r in old
            if replicas_of(r) == 0
            and st(r, "replicas") == 0
            and not r["metadata"].get("deletionTimestamp")
            and int((r.get("status") or {}).get("observedGeneration") or 0)
            >= int(r["metadata"].get("generation") or 1)
        ]
        extra = len(cleanable) - int(limit)
        if extra <= 0:
            return
        for rs in sorted(cleanable, key=lambda r: (revision(r), created(r)))[:extra]:
            md = rs["metadata"]
            try:
                await self.client.delete(
                    "replicasets",
                    md["name"],
                    namespace=md.get("namespace"),
                    tenant=md.get("tenant"),
                    preconditions={"uid": md["uid"]},
                )
                self.log.info(
                    "deployment %s/%s: deleted old replica set %s (revision %d)",
                    md.get("namespace"),
                    d["metadata"]["name"],
                    md["name"],
                    revision(rs),
                )
            except ApiError as e:
                if e.code not in (404, 409):
                    raise

    # ------------------------------------------------------------------ status
    def _calculate_status(
        self, d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None
    ) -> dict[str, Any]:
        status = copy.deepcopy(d.get("status") or {})
        available = sum(st(r, "availableReplicas") for r in all_rs)
        total_spec = sum(replicas_of(r) for r in all_rs)
        status.update(
            {
                "observedGeneration": d["metadata"].get("generation", 1),
                "replicas": sum(st(r, "replicas") for r in all_rs),
                "updatedReplicas": st(new_rs, "replicas") if new_rs else 0,
                "readyReplicas": sum(st(r, "readyReplicas") for r in all_rs),
                "availableReplicas": available,
                "unavailableReplicas": max(total_spec - available, 0),
            }
        )
        if available >= replicas_of(d) - max_unavailable(d):
            set_condition(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            set_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        return status

    async def _sync_status(
        self, d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None
    ) -> None:
        await self._write_status(d, self._calculate_status(d, all_rs, new_rs))

    async def _sync_rollout_status(
        self, d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None
    ) -> float | None:
        new = self._calculate_status(d, all_rs, new_rs)
        old = d.get("status") or {}
        spec = d.get("spec") or {}
        deadline = spec.get("progressDeadlineSeconds")
        cond = get_condition(new, "Progressing")
        again: float | None = None
        rs_name = new_rs["metadata"]["name"] if new_rs else ""
        if deadline is not None and not spec.get("paused"):
            if deployment_complete(d, new):
                set_condition(
                    new,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.',
                )
            elif self._progressing(old, new):
                keep = cond if cond and cond.get("status") == "True" else None
                new["conditions"] = [c for c in new.get("conditions") or [] if c.get("type") != "Progressing"]
                set_condition(
                    new,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{rs_name}" is progressing.',
                    keep_transition_from=keep,
                )
                again = float(deadline) + 1
            elif cond is not None and cond.get("reason") not in (
                "NewReplicaSetAvailable",
                "ProgressDeadlineExceeded",
            ):
                since = meta.parse_rfc3339(cond.get("lastUpdateTime") or meta.now_rfc3339())
                left = since + float(deadline) - time.time()
                if left <= 0:
                    set_condition(
                        new,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        f'ReplicaSet "{rs_name}" has timed out progressing.',
                    )
                    self.recorder.warning(
                        d, "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.'
                    )
                else:
                    again = left + 1
        await self._write_status(d, new)
        return again

    @staticmethod
    def _progressing(old: dict[str, Any], new: dict[str, Any]) -> bool:
        def g(s: dict[str, Any], f: str) -> int:
            return int(s.get(f) or 0)

        old_old = g(old, "replicas") - g(old, "updatedReplicas")
        new_old = g(new, "replicas") - g(new, "updatedReplicas")
        return (
            g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or new_old < old_old
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas")
        )

    async def _write_status(self, d: dict[str, Any], status: dict[str, Any]) -> None:
        if status == (d.get("status") or {}):
            return
        body = copy.deepcopy(d)
        body["status"] = status
        out = await self.client.update(body, "status")
        d["metadata"] = out["metadata"]
        d["status"] = out.get("status", status)
