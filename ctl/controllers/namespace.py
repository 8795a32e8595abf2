"""Namespace controller: empty a terminating namespace, then finalize it.

A namespace being deleted has a ``deletionTimestamp``, phase ``Terminating`` and the
``kubernetes`` entry in ``spec.finalizers``. For every namespaced kind in
:data:`ctl.types.kinds.KINDS` the controller lists the namespace's objects through the
explicit tenant path (``/api/v1/tenants/T/namespaces/NS/...``, so it works for every
tenant) and deletes them; pods bound to a node take their graceful deletion. It looks
again (with a short back-off) until nothing is left, then finalizes with
``PUT /api/v1/tenants/T/namespaces/NS/finalize`` and ``spec.finalizers`` without
``kubernetes``; the API server removes the namespace once its metadata finalizers are
empty too. Namespaces of all tenants are watched (``tenant=all``).
"""

from __future__ import annotations

import copy
from typing import Any

from ctl.client.aio import ApiError
from ctl.client.informer import SharedInformers
from ctl.controllers.base import Controller, split_key
from ctl.types import kinds
from ctl.types.meta import object_key

FINALIZER = "kubernetes"


class NamespaceController(Controller):
    name = "namespace"

    def setup(self, informers: SharedInformers) -> None:
        self.namespaces = informers.get("namespaces")
        self.primary = self.namespaces
        self.namespaces.add_handler(self._on_ns)
        self._attempts: dict[str, int] = {}

    def _on_ns(self, typ: str, ns: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and ns["metadata"].get("deletionTimestamp") and self.hash_range.owns(ns):
            self.queue.add(object_key(ns))

    async def sync(self, key: str) -> float | None:
        ns = self.namespaces.get_key(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            self._attempts.pop(key, None)
            return None
        tenant, _, name = split_key(key)
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        remaining = await self.delete_content(tenant, name)
        if remaining:
            n = self._attempts.get(key, 0) + 1
            self._attempts[key] = n
            return min(0.25 * n, 3.0)
        self._attempts.pop(key, None)
        body = copy.deepcopy(ns)
        body["spec"]["finalizers"] = [f for f in body["spec"].get("finalizers") or [] if f != FINALIZER]
        try:
            await self.client.request(
                "PUT", self.client.path("namespaces", name=name, subresource="finalize", tenant=tenant), body
            )
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        self.log.info("namespace %s/%s emptied and finalized", tenant, name)
        return None

    async def delete_content(self, tenant: str, namespace: str) -> int:
        """Delete every namespaced object; returns how many are still there (including ones just deleted)."""
        remaining = 0
        for k in kinds.KINDS:
            if k.scope != kinds.NAMESPACE:
                continue
            try:
                lst = await self.client.list_all(k, namespace=namespace, tenant=tenant)
            except ApiError as e:
                if e.code in (404, 405):
                    continue
                raise
            for obj in lst.get("items") or []:
                remaining += 1
                md = obj["metadata"]
                if md.get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(
                        k, md["name"], namespace=namespace, tenant=tenant, preconditions={"uid": md["uid"]}
                    )
                except ApiError as e:
                    if e.code not in (404, 409):
                        raise
        return remaining
