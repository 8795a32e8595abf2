"""ResourceQuota controller: keep every quota's ``status.hard`` and ``status.used`` current.

Admission (:mod:`ctl.apiserver.quota`) enforces quotas but writes nothing back; this
controller maintains what ``kubectl describe quota`` shows. It watches ResourceQuotas and
Pods of all tenants through the shared informers, indexed by ``tenant/namespace``. A
quota is queued when it changes, and the quotas of a pod's namespace are queued when the
pod is created or deleted, or when it starts or stops counting (phase becomes
Succeeded/Failed) or its requests change; other pod updates (status conditions, binding)
leave quotas alone.

Object counts (``count/configmaps``, ``secrets``, ``count/deployments.apps`` ...) need the
objects of that kind: the first quota that names one makes the controller take that kind's
shared informer (indexed by ``tenant/namespace``, started at once when the informers run
already), and from then on creating or deleting such an object queues its namespace's quotas.

A sync counts the namespace's pods and objects from the informers with the same rules
admission uses (:mod:`ctl.types.quota_accounting`: finished pods do not count; compute
requests and limits; every object of a counted kind) and writes
``status: {hard: spec.hard, used: {...}}`` through the ``status`` subresource, only when
it differs from what is there. ``used`` is keyed like ``spec.hard`` and rendered as
Kubernetes renders quantities (``1500m``, ``2``, ``256Mi``). A counted kind whose informer
has not listed yet is retried shortly rather than reported as 0.

Resources in ``spec.hard`` that the accounting does not count (``services`` while there is
no Service kind, ``requests.storage``, ...) are copied to ``status.hard`` but get no entry
in ``status.used``: reporting ``0`` for something nobody counts would be a lie, and
Kubernetes, too, reports usage only for the resources its evaluators track.

Quotas are split among controller instances by their own ``metadata.hashKey``.
"""

from __future__ import annotations

import copy
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformer, SharedInformers, by_namespace
from ctl.controllers.base import Controller, split_key
from ctl.types.quota_accounting import counted_kind, counts, pod_requests, quota_status, tracked


def _usage_changed(pod: dict[str, Any], old: dict[str, Any] | None) -> bool:
    if old is None:
        return True
    if counts(pod) != counts(old):
        return True
    return pod_requests(pod) != pod_requests(old)


class ResourceQuotaController(Controller):
    name = "resourcequota"

    def setup(self, informers: SharedInformers) -> None:
        self.informers = informers
        self.counted: dict[str, SharedInformer] = {}  # count/... resource -> its kind's informer
        self.quotas = informers.get("resourcequotas")
        self.primary = self.quotas
        self.pods = informers.get("pods")
        self.quotas.add_index("ns", by_namespace)
        self.pods.add_index("ns", by_namespace)
        self.quotas.add_handler(self._on_quota)
        self.pods.add_handler(self._on_pod)

    def _on_quota(self, typ: str, quota: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ != "DELETED":
            self.enqueue(quota)
        if typ != "MODIFIED":  # count/resourcequotas of the namespace's other quotas moved
            for q in self.quotas.by_index("ns", by_namespace(quota)[0]):
                if q is not quota:
                    self.enqueue(q)

    def _on_pod(self, typ: str, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "MODIFIED" and not _usage_changed(pod, old):
            return
        for q in self.quotas.by_index("ns", by_namespace(pod)[0]):
            self.enqueue(q)

    def _on_object(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "MODIFIED":
            return  # counts move only with creates and deletes
        for q in self.quotas.by_index("ns", by_namespace(obj)[0]):
            self.enqueue(q)

    def _counted(self, resource: str) -> SharedInformer | None:
        """The informer of the kind ``resource`` counts, taken the first time a quota names it."""
        inf = self.counted.get(resource)
        if inf is None:
            kind = counted_kind(resource)
            if kind is None:
                return None
            inf = self.quotas if kind.plural == "resourcequotas" else self.informers.get(kind)
            if inf is not self.quotas:
                inf.add_index("ns", by_namespace)
                inf.add_handler(self._on_object)
            self.counted[resource] = inf
        return inf

    async def sync(self, key: str) -> float | None:
        quota = self.quotas.get_key(key)
        if quota is None or quota["metadata"].get("deletionTimestamp"):
            return None
        tenant, namespace, _ = split_key(key)
        hard = (quota.get("spec") or {}).get("hard") or {}
        objects: dict[str, int] = {}
        for res in {r for k in hard if (r := tracked(k)) and r.startswith("count/")}:
            inf = self._counted(res)
            if inf is None:
                continue
            if not inf.synced.is_set():
                return 0.5  # its first list is still coming: count then, not 0 now
            objects[res] = len(inf.by_index("ns", f"{tenant}/{namespace}"))
        status = quota_status(hard, self.pods.by_index("ns", f"{tenant}/{namespace}"), objects)
        if quota.get("status") == status:
            return None
        body = copy.deepcopy(quota)
        body["status"] = status
        try:
            await self.client.update(body, "status")
        except ApiError as e:
            if e.code == 404:
                return None
            raise  # a conflict: the informer brings the newer quota, the worker retries
        self.log.debug("quota %s: used %s", key, status["used"])
        return None
