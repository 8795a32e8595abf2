"""ResourceQuota enforcement at admission: object counts and pods' compute resources per namespace.

A ``ResourceQuota`` in a namespace of a tenant limits, in ``spec.hard``, what the
namespace may hold (the resources and the counting rules are those of
:mod:`ctl.types.quota_accounting`, shared with the quota controller that keeps
``status.used`` current):

* object counts - ``count/configmaps``, ``count/deployments.apps``, ``secrets``,
  ``configmaps``, ``resourcequotas`` ...: creating one more object of that resource is
  refused when the namespace already holds ``hard`` of them;
* ``pods`` (``count/pods``) and compute resources - ``requests.cpu``/``cpu``,
  ``requests.memory``/``memory``, ``limits.cpu``, ``limits.memory``, and the
  ephemeral-storage pair: a new pod's use is added to the namespace's unfinished pods'.

The usage is read from the API server's in-memory cache, and a refusal is a 403 naming
the quota and the amounts, worded as kube-apiserver words it::

    pods "p" is forbidden: exceeded quota: compute, requested: requests.cpu=500m,
    used: requests.cpu=1800m, limited: requests.cpu=2

When a quota limits a compute resource, a pod must state it for every container (as in
Kubernetes; a stated limit also states the request).

Objects admitted but not yet visible in the cache are remembered for a few seconds, so a
burst of concurrent creates cannot overshoot a quota.
"""

from __future__ import annotations

import time
from typing import Any

from ctl.apiserver import status as st
from ctl.apiserver.watchcache import WatchCache
from ctl.types import kinds
from ctl.types.quota_accounting import (
    count_resource,
    counted_kind,
    format_amount,
    pod_requests,
    states_request,
    total,
    tracked,
)
from ctl.types.validation import parse_quantity

PENDING_SECONDS = 10.0


class QuotaAdmission:
    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self.pods = kinds.by_resource("v1", "pods")
        self.quotas = kinds.by_resource("v1", "resourcequotas")
        # store key of an admitted object -> (when, what it adds to each tracked resource, its kind)
        self._pending: dict[str, tuple[float, dict[str, float], kinds.Kind]] = {}

    def usage(self, tenant: str, namespace: str, resources: set[str] | None = None) -> dict[str, float]:
        """What the namespace uses of the pod resources and of each ``count/...`` in ``resources``."""
        assert self.pods is not None
        prefix = self.pods.prefix(tenant, namespace)
        used = total(self.cache.list(self.pods, prefix))
        for r in resources or ():
            k = counted_kind(r)
            if k is not None:
                used[r] = float(sum(1 for _ in self.cache.iter_items(k, k.prefix(tenant, namespace))))
        now = time.monotonic()
        for key, (t, delta, k) in list(self._pending.items()):
            if now - t > PENDING_SECONDS or self.cache.get(k, key) is not None:
                del self._pending[key]
            elif key.startswith(k.prefix(tenant, namespace)):
                for r, v in delta.items():
                    used[r] = used.get(r, 0.0) + v
        return used

    async def admit(
        self, verb: str, kind: kinds.Kind, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        if verb != "create" or not kind.namespaced:
            return
        assert self.quotas is not None
        md = obj["metadata"]
        tenant, ns, name = md.get("tenant") or "", md.get("namespace") or "", md.get("name", "")
        quotas = self.cache.list(self.quotas, self.quotas.prefix(tenant, ns))
        if not quotas and kind.kind != "ResourceQuota":
            return
        if kind.kind == "Pod":
            delta = pod_requests(obj)
        else:
            delta = {count_resource(kind): 1.0}
        if kind.kind == "ResourceQuota":
            quotas = [*quotas, obj]  # a new quota limits itself too (count/resourcequotas)
        wanted = {
            r for q in quotas for key in ((q.get("spec") or {}).get("hard") or {}) if (r := tracked(key))
        }
        if not wanted & set(delta):
            return
        used = self.usage(tenant, ns, wanted)
        for q in quotas:
            self._check(q, kind, obj, name, delta, used)
        self._pending[kind.key(tenant, ns, name)] = (time.monotonic(), delta, kind)

    def _check(
        self,
        q: dict[str, Any],
        kind: kinds.Kind,
        obj: dict[str, Any],
        name: str,
        delta: dict[str, float],
        used: dict[str, float],
    ) -> None:
        hard = (q.get("spec") or {}).get("hard") or {}
        qname = (q.get("metadata") or {}).get("name")
        what = f'{kind.plural}{"." + kind.group if kind.group else ""} "{name}"'
        requested, using, limited = [], [], []
        for key, limit in sorted(hard.items()):
            r = tracked(key)
            if r is None or r not in delta:
                continue
            try:
                lim = parse_quantity(limit)
            except ValueError:
                continue
            if kind.kind == "Pod" and r != "pods" and not states_request(obj, r):
                what_, name_ = r.split(".", 1)
                raise st.forbidden(
                    f"{what} is forbidden: failed quota: {qname}: must specify {name_} {what_} for every container"
                )
            if delta[r] and used.get(r, 0.0) + delta[r] > lim + 1e-9:
                requested.append(f"{key}={format_amount(r, delta[r])}")
                using.append(f"{key}={format_amount(r, used.get(r, 0.0))}")
                limited.append(f"{key}={limit}")
        if requested:
            raise st.forbidden(
                f"{what} is forbidden: exceeded quota: {qname}, requested: {','.join(requested)}, "
                f"used: {','.join(using)}, limited: {','.join(limited)}"
            )
