"""ResourceQuota enforcement at admission: pods, CPU and memory requests per namespace.

A ``ResourceQuota`` in a namespace of a tenant limits, in ``spec.hard``, the number of
``pods`` (also ``count/pods``) and the sums of container requests ``requests.cpu``
(also ``cpu``) and ``requests.memory`` (also ``memory``) over the namespace's pods that
have not finished (phase other than Succeeded/Failed). Admission of a new pod adds
its requests to the current usage, read from the API server's in-memory cache, and
refuses the pod with a 403 that names the quota and the amounts, worded as
kube-apiserver words it::

    pods "p" is forbidden: exceeded quota: compute, requested: requests.cpu=500m,
    used: requests.cpu=1800m, limited: requests.cpu=2

When a quota limits CPU or memory, a pod must state that request (as in Kubernetes).
The counting rules are shared with the quota controller, which keeps ``status.used``
up to date (:mod:`ctl.types.quota_accounting`).

Pods admitted but not yet visible in the cache are remembered for a few seconds, so
a burst of concurrent creates cannot overshoot the quota.
"""

from __future__ import annotations

import time
from typing import Any

from ctl.apiserver import status as st
from ctl.apiserver.watchcache import WatchCache
from ctl.types import kinds
from ctl.types.quota_accounting import format_amount, pod_requests, states_request, total, tracked
from ctl.types.validation import parse_quantity

PENDING_SECONDS = 10.0


class QuotaAdmission:
    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self.pods = kinds.by_resource("v1", "pods")
        self.quotas = kinds.by_resource("v1", "resourcequotas")
        self._pending: dict[str, tuple[float, dict[str, float]]] = {}

    def usage(self, tenant: str, namespace: str) -> dict[str, float]:
        assert self.pods is not None
        objs = self.cache.cache(self.pods).objects
        prefix = self.pods.prefix(tenant, namespace)
        used = total(p for key, p in objs.items() if key.startswith(prefix))
        now = time.monotonic()
        for key, (t, req) in list(self._pending.items()):
            if now - t > PENDING_SECONDS or key in objs:
                del self._pending[key]
            elif key.startswith(prefix):
                for r, v in req.items():
                    used[r] += v
        return used

    async def admit(
        self, verb: str, kind: kinds.Kind, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        if verb != "create" or kind.kind != "Pod":
            return
        assert self.quotas is not None and self.pods is not None
        md = obj["metadata"]
        tenant, ns, name = md.get("tenant") or "", md.get("namespace") or "", md.get("name", "")
        quotas = self.cache.list(self.quotas, self.quotas.prefix(tenant, ns))
        if not quotas:
            return
        req = pod_requests(obj)
        used = self.usage(tenant, ns)
        for q in quotas:
            hard = (q.get("spec") or {}).get("hard") or {}
            requested, using, limited = [], [], []
            for key, limit in sorted(hard.items()):
                r = tracked(key)
                if r is None:
                    continue
                try:
                    lim = parse_quantity(limit)
                except ValueError:
                    continue
                if r != "pods" and not states_request(obj, r):
                    raise st.forbidden(
                        f'pods "{name}" is forbidden: failed quota: {q["metadata"]["name"]}: must specify {r.split(".")[1]}'
                        " requests for every container"
                    )
                if used[r] + req[r] > lim + 1e-9:
                    requested.append(f"{r}={format_amount(r, req[r])}")
                    using.append(f"{r}={format_amount(r, used[r])}")
                    limited.append(f"{r}={limit}")
            if requested:
                raise st.forbidden(
                    f'pods "{name}" is forbidden: exceeded quota: {q["metadata"]["name"]}, requested: {",".join(requested)}, '
                    f"used: {','.join(using)}, limited: {','.join(limited)}"
                )
        self._pending[self.pods.key(tenant, ns, name)] = (time.monotonic(), req)
