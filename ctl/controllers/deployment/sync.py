"""Reconcile machinery the strategies share (Kubernetes' ``deployment/sync.go``).

:class:`SyncMixin` holds what every path of a sync needs: telling the *new* ReplicaSet
(template equal to the Deployment's, ignoring ``pod-template-hash``) from the old ones,
creating the new one (``DEPLOYMENT-HASH``, bumping ``status.collisionCount`` on a name
clash with a foreign ReplicaSet), keeping revisions and the desired/max-replicas
annotations, scaling one ReplicaSet, proportional scaling while paused or when only
``replicas`` changed (spread over the active ReplicaSets, largest first), deleting old
ReplicaSets beyond ``revisionHistoryLimit``, and computing and writing the status.
The strategies (:mod:`.rolling`, :mod:`.recreate`) build on it; the controller
(:mod:`.controller`) decides which path a sync takes.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformer
from ctl.controllers.base import Controller
from ctl.controllers.deployment.progress import get_condition, set_condition, update_progressing
from ctl.controllers.deployment.util import (
    CHANGE_CAUSE,
    DESIRED,
    HASH_LABEL,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    created,
    equal_ignore_hash,
    is_rolling,
    max_surge,
    max_unavailable,
    new_rs_replicas,
    replicas_of,
    revision,
    st,
    template_hash,
)
from ctl.types import meta


class SyncMixin(Controller):
    """ReplicaSet bookkeeping, scaling and status for the Deployment controller."""

    deploys: SharedInformer
    rs: SharedInformer
    pods: SharedInformer

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
        replicas = new_rs_replicas(d, old, None)
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
        """Write the status with the Progressing condition brought up to date; return when to look again."""
        new = self._calculate_status(d, all_rs, new_rs)
        rs_name = new_rs["metadata"]["name"] if new_rs else ""
        again, timed_out = update_progressing(d, new, rs_name, time.time())
        if timed_out:
            self.recorder.warning(
                d, "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.'
            )
        await self._write_status(d, new)
        return again

    async def _write_status(self, d: dict[str, Any], status: dict[str, Any]) -> None:
        if status == (d.get("status") or {}):
            return
        body = copy.deepcopy(d)
        body["status"] = status
        out = await self.client.update(body, "status")
        d["metadata"] = out["metadata"]
        d["status"] = out.get("status", status)
