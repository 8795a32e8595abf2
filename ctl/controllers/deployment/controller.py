"""The Deployment controller itself (Kubernetes' ``deployment_controller.go``): events and the sync.

It watches Deployments, ReplicaSets (an owned one wakes its Deployment; an orphan wakes
the Deployments whose selector matches it, which may adopt it) and pod deletions (which
a Recreate rollout waits for). A sync claims the matching ReplicaSets, then takes one
path: status only for a Deployment being deleted; scaling only (:mod:`.sync`) while
paused or when just ``replicas`` changed; otherwise one step of its strategy
(:mod:`.rolling` or :mod:`.recreate`).
"""

from __future__ import annotations

import copy
from typing import Any

from ctl.client.informer import SharedInformers, by_controller, by_namespace
from ctl.controllers.base import split_key
from ctl.controllers.deployment.recreate import RecreateMixin
from ctl.controllers.deployment.rolling import RollingMixin
from ctl.controllers.deployment.util import fenceposts, is_rolling
from ctl.controllers.ownership import claim
from ctl.controllers.podutil import selector_of
from ctl.types import meta


class DeploymentController(RollingMixin, RecreateMixin):
    name = "deployment"

    def setup(self, informers: SharedInformers) -> None:
        self.deploys = informers.get("deployments")
        self.primary = self.deploys
        self.rs = informers.get("replicasets")
        self.pods = informers.get("pods")
        self.deploys.add_index("ns", by_namespace)
        self.rs.add_index("ns", by_namespace)
        self.rs.add_index("controller", by_controller)
        self.pods.add_index("controller", by_controller)
        self.deploys.add_handler(self._on_deploy)
        self.rs.add_handler(self._on_rs)
        self.pods.add_handler(self._on_pod)

    def _on_deploy(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self.enqueue(obj)

    def _deploy_for(self, obj: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any] | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deploys.get_key(meta.sibling_key(obj, ref["name"]))
        if d is None or d["metadata"]["uid"] != ref.get("uid"):
            return None
        return d

    def _on_rs(self, typ: str, rs: dict[str, Any], old: dict[str, Any] | None) -> None:
        ref = meta.controller_of(rs)
        d = self._deploy_for(rs, ref)
        if d is not None:
            self.enqueue(d)
        elif ref is None and typ != "DELETED":
            labels = rs["metadata"].get("labels") or {}
            for cand in self.deploys.by_index("ns", by_namespace(rs)[0]):
                sel = selector_of(cand)
                if sel is not None and sel.matches(labels):
                    self.enqueue(cand)
        if old is not None:
            old_ref = meta.controller_of(old)
            if (old_ref or {}).get("uid") != (ref or {}).get("uid"):
                od = self._deploy_for(old, old_ref)
                if od is not None:
                    self.enqueue(od)

    def _on_pod(self, typ: str, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        # Recreate waits for the old pods to be gone.
        if typ != "DELETED":
            return
        ref = meta.controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs.get_key(meta.sibling_key(pod, ref["name"]))
        if rs is None:
            return
        d = self._deploy_for(rs, meta.controller_of(rs))
        if d is not None and not is_rolling(d):
            self.enqueue(d)

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
