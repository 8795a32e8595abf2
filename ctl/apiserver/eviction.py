"""``policy/v1`` Eviction: ``POST pods/NAME/eviction``, honouring PodDisruptionBudgets.

``kubectl drain`` (and every client that evicts) posts an ``Eviction`` naming the pod,
with optional ``deleteOptions``. As in kube-apiserver's eviction REST:

* the pod is deleted (with those options) outright when no budget covers it, when it has
  finished (Succeeded/Failed), is still Pending, or is already being deleted;
* a pod covered by more than one PodDisruptionBudget cannot be evicted (500, as Kubernetes);
* otherwise the budget decides: when the budget allows a disruption, it is spent - the pod
  goes into the budget's ``status.disruptedPods`` and ``status.disruptionsAllowed`` drops,
  written with a compare-and-swap before the pod is deleted, so two concurrent evictions
  cannot both spend the last disruption - and when it allows none, the answer is
  ``429 TooManyRequests`` with the cause ``DisruptionBudget``, and kubectl drain retries.
  A pod that is not Ready may be evicted without spending anything when the budget is
  healthy anyway (``unhealthyPodEvictionPolicy: IfHealthyBudget``, the default) or always
  (``AlwaysAllow``).

The disruption controller (:mod:`ctl.controllers.disruption`) keeps a budget's status current
as pods change; the same numbers (:func:`ctl.types.disruption.budget_status`) are computed here
from the API server's cache whenever an eviction is judged and when a budget is created or
updated (an admission step), so ``kubectl get pdb`` shows them from the start: ``expectedPods`` (pods the selector matches), ``currentHealthy``
(those Ready, not being deleted, not recently evicted), ``desiredHealthy`` (from
``minAvailable``, or ``expectedPods - maxUnavailable``; percentages round up) and
``disruptionsAllowed``. Evicted pods stay in ``disruptedPods`` until they are gone or for
two minutes at most.

Dry run (``?dryRun=All`` or in the delete options) judges and answers without writing.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from ctl.apiserver import status as st
from ctl.apiserver.params import check_delete_options
from ctl.apiserver.paths import RequestInfo
from ctl.types import kinds, meta
from ctl.types.disruption import budget_status
from ctl.types.disruption import pod_ready as _ready
from ctl.types.disruption import selects as _selected

PDB_KIND = kinds.by_resource("policy/v1", "poddisruptionbudgets")
POD_KIND = kinds.by_resource("v1", "pods")


def _too_many(pdb_name: str, message: str) -> st.APIError:
    return st.APIError(
        429,
        message,
        "TooManyRequests",
        {
            "causes": [
                {"reason": "DisruptionBudget", "message": f"The disruption budget {pdb_name} {message}"}
            ]
        },
    )


class Eviction:
    """The ``pods/eviction`` hook and the budget-status admission step for one API server."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def _pods(self, tenant: str, namespace: str) -> list[dict[str, Any]]:
        assert POD_KIND is not None
        return list(self.server.cache.list(POD_KIND, POD_KIND.prefix(tenant, namespace)))

    async def admit(
        self, verb: str, kind: kinds.Kind, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        """A budget created or updated gets its status computed at once (``kubectl get pdb``)."""
        if kind is not PDB_KIND or verb not in ("create", "update"):
            return
        if old is not None and old.get("spec") == obj.get("spec") and old.get("status") != obj.get("status"):
            return  # a status write (ours): keep what it says
        md = obj.get("metadata") or {}
        obj["status"] = budget_status(obj, self._pods(md.get("tenant") or "", md.get("namespace") or ""))

    async def __call__(
        self, server: Any, request: web.Request, ident: Any, info: RequestInfo
    ) -> web.StreamResponse | None:
        assert POD_KIND is not None and PDB_KIND is not None and info.name is not None
        if info.all_tenants:
            raise st.bad_request("tenant 'all' can only be used to list or watch")
        tenant = ident.tenant if info.tenant is None else info.tenant
        ns = info.namespace or "default"
        body = await server._object_body(request)
        md = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if md.get("name") not in (None, "", info.name):
            raise st.bad_request(
                f"name in URL does not match name in Eviction object ({md.get('name')!r:.60})"
            )
        raw_opts = body.get("deleteOptions")
        options = request["params"].delete_options(check_delete_options(raw_opts) if raw_opts else None)
        dry_run = bool(options.get("dryRun"))
        request["verb"], request["resource"] = "create", "pods/eviction"
        for _attempt in range(5):
            pod = await server.registry.get(POD_KIND, tenant, ns, info.name)
            if await self._judge(tenant, ns, pod, dry_run):
                break
        else:
            raise st.APIError(429, "the disruption budget kept changing; try again", "TooManyRequests")
        await server.registry.delete(POD_KIND, tenant, ns, info.name, options)
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        return web.Response(body=orjson.dumps(out), status=201, content_type="application/json")

    async def _judge(self, tenant: str, ns: str, pod: dict[str, Any], dry_run: bool) -> bool:
        """Whether the pod may go now (True), after spending its budget; False: the budget moved, retry."""
        assert PDB_KIND is not None
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
            return True
        budgets = [
            b
            for b in self.server.cache.list(PDB_KIND, PDB_KIND.prefix(tenant, ns))
            if _selected(b, pod) and not b["metadata"].get("deletionTimestamp")
        ]
        if not budgets:
            return True
        if len(budgets) > 1:
            raise st.APIError(
                500,
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                "InternalError",
            )
        pdb = budgets[0]
        name = pdb["metadata"]["name"]
        now = time.time()
        status = budget_status(pdb, self._pods(tenant, ns), now)
        if not _ready(pod):
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            if policy == "AlwaysAllow" or status["currentHealthy"] >= status["desiredHealthy"]:
                return True
            raise _too_many(name, "Cannot evict pod as it would violate the pod's disruption budget.")
        if status["disruptionsAllowed"] <= 0:
            raise _too_many(
                name,
                f"Cannot evict pod as it would violate the pod's disruption budget. The disruption budget "
                f"{name} needs {status['desiredHealthy']} healthy pods and has {status['currentHealthy']} currently",
            )
        if dry_run:
            return True
        status["disruptionsAllowed"] -= 1
        status.setdefault("disruptedPods", {})[pod["metadata"]["name"]] = meta.rfc3339(now)
        body = {**pdb, "status": status}
        try:
            await self.server.registry.update(PDB_KIND, tenant, ns, name, body, "status")
        except st.APIError as e:
            if e.code == 409:
                return False
            raise
        return True


def install(server: Any) -> None:
    """Serve ``pods/eviction`` and keep new budgets' status (after the tenancy layer)."""
    ev = Eviction(server)
    server.subresource_handlers[("pods", "eviction")] = ev
    server.registry.admission.append(ev.admit)


__all__ = ["Eviction", "budget_status", "install"]
