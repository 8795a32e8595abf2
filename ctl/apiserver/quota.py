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

Pods admitted but not yet visible in the cache are remembered for a few seconds, so
a burst of concurrent creates cannot overshoot the quota.
"""

from __future__ import annotations

import time
from typing import Any

from ctl.apiserver import status as st
from ctl.apiserver.watchcache import WatchCache
from ctl.types import kinds
from ctl.types.validation import parse_quantity

TRACKED = ("pods", "requests.cpu", "requests.memory")
ALIASES = {"count/pods": "pods", "cpu": "requests.cpu", "memory": "requests.memory"}
PENDING_SECONDS = 10.0


def pod_requests(pod: dict[str, Any]) -> dict[str, float]:
    cpu = mem = 0.0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        try:
            cpu += parse_quantity(req["cpu"]) if "cpu" in req else 0.0
            mem += parse_quantity(req["memory"]) if "memory" in req else 0.0
        except ValueError:
            pass
    return {"pods": 1.0, "requests.cpu": cpu, "requests.memory": mem}


def _states(pod: dict[str, Any], resource: str) -> bool:
    what = resource.split(".", 1)[1]
    return all(
        what in ((c.get("resources") or {}).get("requests") or {})
        for c in (pod.get("spec") or {}).get("containers") or []
    )


def fmt(resource: str, v: float) -> str:
    if resource == "requests.cpu":
        m = round(v * 1000)
        return str(m // 1000) if m % 1000 == 0 else f"{m}m"
    if resource == "requests.memory":
        for suf, mult in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
            if v >= mult and v % mult == 0:
                return f"{int(v // mult)}{suf}"
        return str(int(v))
    return str(int(v))


class QuotaAdmission:
    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self.pods = kinds.by_resource("v1", "pods")
        self.quotas = kinds.by_resource("v1", "resourcequotas")
        self._pending: dict[str, tuple[float, dict[str, float]]] = {}

    def usage(self, tenant: str, namespace: str) -> dict[str, float]:
        assert self.pods is not None
        used = dict.fromkeys(TRACKED, 0.0)
        objs = self.cache.cache(self.pods).objects
        prefix = self.pods.prefix(tenant, namespace)
        for key, p in objs.items():
            if not key.startswith(prefix):
                continue
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            for r, v in pod_requests(p).items():
                used[r] += v
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
                r = ALIASES.get(key, key)
                if r not in TRACKED:
                    continue
                try:
                    lim = parse_quantity(limit)
                except ValueError:
                    continue
                if r != "pods" and not _states(obj, r):
                    raise st.forbidden(
                        f'pods "{name}" is forbidden: failed quota: {q["metadata"]["name"]}: must specify {r.split(".")[1]}'
                        " requests for every container"
                    )
                if used[r] + req[r] > lim + 1e-9:
                    requested.append(f"{r}={fmt(r, req[r])}")
                    using.append(f"{r}={fmt(r, used[r])}")
                    limited.append(f"{r}={limit}")
            if requested:
                raise st.forbidden(
                    f'pods "{name}" is forbidden: exceeded quota: {q["metadata"]["name"]}, requested: {",".join(requested)}, '
                    f"used: {','.join(using)}, limited: {','.join(limited)}"
                )
        self._pending[self.pods.key(tenant, ns, name)] = (time.monotonic(), req)
