"""ResourceQuota controller: keep every quota's ``status.hard`` and ``status.used`` current.

Admission (:mod:`ctl.apiserver.quota`) enforces quotas but writes nothing back; this
controller maintains what ``kubectl describe quota`` shows. It watches ResourceQuotas and
Pods of all tenants through the shared informers, indexed by ``tenant/namespace``. A
quota is queued when it changes, and the quotas of a pod's namespace are queued when the
pod is created or deleted, or when it starts or stops counting (phase becomes
Succeeded/Failed) or its requests change; other pod updates (status conditions, binding)
leave quotas alone.

A sync counts the namespace's pods from the informer with the same rules admission uses
(:mod:`ctl.types.quota_accounting`: finished pods do not count; ``pods``/``count/pods``,
``requests.cpu``/``cpu``, ``requests.memory``/``memory``) and writes
``status: {hard: spec.hard, used: {...}}`` through the ``status`` subresource, only when
it differs from what is there. ``used`` is keyed like ``spec.hard`` and rendered as
Kubernetes renders quantities (``1500m``, ``2``, ``256Mi``).

Resources in ``spec.hard`` that the accounting does not count (``services``,
``limits.cpu``, ``count/configmaps``, ...) are copied to ``status.hard`` but get no entry
in ``status.used``: reporting ``0`` for something nobody counts would be a lie, and
Kubernetes, too, reports usage only for the resources its evaluators track.

Quotas are split among controller instances by their own ``metadata.hashKey``.
"""

from __future__ import annotations

import copy
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers, by_namespace
from ctl.controllers.base import Controller, split_key
from ctl.types.meta import object_key
from ctl.types.quota_accounting import counts, pod_requests, quota_status


def _usage_changed(pod: dict[str, Any], old: dict[str, Any] | None) -> bool:
    if old is None:
        return True
    if counts(pod) != counts(old):
        return True
    return pod_requests(pod) != pod_requests(old)


class ResourceQuotaController(Controller):
    name = "resourcequota"

    def setup(self, informers: SharedInformers) -> None:
        self.quotas = informers.get("resourcequotas")
        self.primary = self.quotas
        self.pods = informers.get("pods")
        self.quotas.add_index("ns", by_namespace)
        self.pods.add_index("ns", by_namespace)
        self.quotas.add_handler(self._on_quota)
        self.pods.add_handler(self._on_pod)

    def _enqueue(self, quota: dict[str, Any]) -> None:
        if self.hash_range.owns(quota):
            self.queue.add(object_key(quota))

    def _on_quota(self, typ: str, quota: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ != "DELETED":
            self._enqueue(quota)

    def _on_pod(self, typ: str, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "MODIFIED" and not _usage_changed(pod, old):
            return
        for q in self.quotas.by_index("ns", by_namespace(pod)[0]):
            self._enqueue(q)

    async def sync(self, key: str) -> float | None:
        quota = self.quotas.get_key(key)
        if quota is None or quota["metadata"].get("deletionTimestamp"):
            return None
        tenant, namespace, _ = split_key(key)
        hard = (quota.get("spec") or {}).get("hard") or {}
        status = quota_status(hard, self.pods.by_index("ns", f"{tenant}/{namespace}"))
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
