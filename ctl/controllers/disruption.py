"""Disruption controller: keep every PodDisruptionBudget's ``status`` current as pods change.

Kubernetes' disruption controller, for the numbers ``kubectl get pdb`` and ``kubectl drain``
read: ``expectedPods``, ``currentHealthy``, ``desiredHealthy``, ``disruptionsAllowed`` (and the
``DisruptionAllowed`` condition), computed by :func:`ctl.types.disruption.budget_status` - the
arithmetic the API server's eviction uses, so the two never disagree.

It watches PodDisruptionBudgets and Pods of all tenants through the shared informers, both
indexed by ``tenant/namespace``. A budget is queued when it changes, and the budgets of a pod's
namespace are queued when a pod is created or deleted, or when what a budget counts changes
(labels, phase, readiness, a deletion starting); other pod updates leave budgets alone.

A sync writes the status through the ``status`` subresource only when it differs. Evictions
spend a disruption by writing the budget's status themselves (with ``disruptedPods``): the
controller keeps those entries while they are fresh and looks again when the oldest one
expires, so a disruption spent on a pod that never went away is given back. A conflict (an
eviction wrote first) is retried with the newer budget from the informer.

Budgets are split among controller instances by their own ``metadata.hashKey``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers, by_namespace
from ctl.controllers.base import Controller, split_key
from ctl.types import meta
from ctl.types.disruption import DISRUPTED_TTL, budget_status, pod_ready


def _counted_state(pod: dict[str, Any]) -> tuple[Any, ...]:
    """What of a pod a budget's numbers depend on."""
    md = pod.get("metadata") or {}
    return (
        tuple(sorted((md.get("labels") or {}).items())),
        (pod.get("status") or {}).get("phase"),
        pod_ready(pod),
        bool(md.get("deletionTimestamp")),
    )


class DisruptionController(Controller):
    name = "disruption"

    def setup(self, informers: SharedInformers) -> None:
        self.pdbs = informers.get("poddisruptionbudgets")
        self.primary = self.pdbs
        self.pods = informers.get("pods")
        self.pdbs.add_index("ns", by_namespace)
        self.pods.add_index("ns", by_namespace)
        self.pdbs.add_handler(self._on_pdb)
        self.pods.add_handler(self._on_pod)

    def _on_pdb(self, typ: str, pdb: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ != "DELETED":
            self.enqueue(pdb)

    def _on_pod(self, typ: str, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "MODIFIED" and old is not None and _counted_state(pod) == _counted_state(old):
            return
        for pdb in self.pdbs.by_index("ns", by_namespace(pod)[0]):
            self.enqueue(pdb)

    async def sync(self, key: str) -> float | None:
        pdb = self.pdbs.get_key(key)
        if pdb is None or pdb["metadata"].get("deletionTimestamp"):
            return None
        tenant, namespace, _ = split_key(key)
        now = time.time()
        status = budget_status(pdb, self.pods.by_index("ns", f"{tenant}/{namespace}"), now)
        again = _next_expiry(status, now)
        if pdb.get("status") == status:
            return again
        body = copy.deepcopy(pdb)
        body["status"] = status
        try:
            await self.client.update(body, "status")
        except ApiError as e:
            if e.code == 404:
                return None
            raise  # a conflict: the informer brings the newer budget, the worker retries
        self.log.debug(
            "pdb %s: %d/%d healthy, %d disruptions allowed",
            key,
            status["currentHealthy"],
            status["desiredHealthy"],
            status["disruptionsAllowed"],
        )
        return again


def _next_expiry(status: dict[str, Any], now: float) -> float | None:
    """Seconds until the oldest ``disruptedPods`` entry expires (None when there is none)."""
    times = []
    for ts in (status.get("disruptedPods") or {}).values():
        try:
            times.append(meta.parse_rfc3339(ts))
        except (TypeError, ValueError):
            continue
    if not times:
        return None
    return max(0.5, min(times) + DISRUPTED_TTL - now + 0.5)


__all__ = ["DisruptionController"]
