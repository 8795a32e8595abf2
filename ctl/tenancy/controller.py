"""The tenant controller: gives every new tenant its private virtual cluster and removes it all again.

For each Active tenant it makes sure, idempotently, that the tenant has:

* namespaces ``default``, ``kube-system`` and ``kube-public``;
* the built-in ClusterRoles ``admin``, ``edit`` and ``view`` (:func:`ctl.types.roles.builtin_cluster_roles`)
  and a ClusterRoleBinding ``tenant-admin`` granting ``admin`` to user ``TENANT-admin``;
* a default ``Network`` (arktos.centaurus.io/v1) named ``default``;
* the tenant administrator's credential: a token issued through the TokenRequest API and
  kept, so that a cluster administrator can hand it out, in the Secret ``tenant-admin-token``
  of the tenant's ``kube-system`` namespace (keys ``token`` and ``user``).

A tenant being deleted is Terminating (the API server put ``deletionTimestamp`` on
it and holds it with the ``centaurus.io/tenant`` finalizer). The controller then
deletes every object the tenant owns in every tenant-scoped and namespaced kind
(pods with grace period 0, so nothing waits for a node agent; objects still held by
finalizers after the first pass have their finalizers cleared, so nothing stays stuck),
then the namespaces (finalizing them itself), then the tenant's issued tokens, and
finally drops the tenant's finalizers, which removes the tenant.

``run_tenant_controller(client)`` runs it on an API client with system-administrator
rights (it lists, watches and relists tenants every ``resync`` seconds); ``python -m
ctl.tenancy.controller --server URL --token T`` runs it standalone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
from typing import Any

from ctl.client import ApiError, Client, ClientConfig, WatchExpired
from ctl.client.kubeconfig import load as load_config
from ctl.types import kinds
from ctl.types.kinds import SYSTEM_TENANT
from ctl.types.roles import RBAC_GROUP, builtin_cluster_roles
from ctl.util.daemon import run_daemon
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.tenants")

TENANT_NAMESPACES = ("default", "kube-system", "kube-public")
ADMIN_SECRET = "tenant-admin-token"
TENANT_FINALIZER = "centaurus.io/tenant"
TOKEN_TENANT_LABEL = "centaurus.io/token-tenant"
RBAC = f"{RBAC_GROUP}/v1"


def admin_user(tenant: str) -> str:
    return f"{tenant}-admin"


async def _create(client: Client, obj: dict[str, Any], tenant: str) -> bool:
    """Create unless it exists; True if created."""
    try:
        await client.create(obj, tenant=tenant)
        return True
    except ApiError as e:
        if e.code == 409:
            return False
        raise


async def ensure_tenant(client: Client, tenant: str) -> None:
    """Everything an Active tenant starts with (safe to repeat)."""
    for ns in TENANT_NAMESPACES:
        await _create(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, tenant)
    for name, rules in builtin_cluster_roles().items():
        await _create(
            client,
            {
                "apiVersion": RBAC,
                "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {"centaurus.io/bootstrapping": "rbac-defaults"}},
                "rules": rules,
            },
            tenant,
        )
    await _create(
        client,
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "tenant-admin", "labels": {"centaurus.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": admin_user(tenant)}],
        },
        tenant,
    )
    await _create(
        client,
        {
            "apiVersion": "arktos.centaurus.io/v1",
            "kind": "Network",
            "metadata": {"name": "default"},
            "spec": {"type": "mizar"},
        },
        tenant,
    )
    if tenant != SYSTEM_TENANT:
        await ensure_admin_credential(client, tenant)


async def ensure_admin_credential(client: Client, tenant: str) -> None:
    try:
        await client.get("secrets", ADMIN_SECRET, "kube-system", tenant)
        return
    except ApiError as e:
        if e.code != 404:
            raise
    tr = await issue_token(client, tenant, admin_user(tenant))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "centaurus.io/tenant-admin-token",
        "metadata": {
            "name": ADMIN_SECRET,
            "namespace": "kube-system",
            "annotations": {"centaurus.io/token-id": tr["metadata"]["name"]},
        },
        "data": {
            "token": base64.b64encode(tr["status"]["token"].encode()).decode(),
            "user": base64.b64encode(admin_user(tenant).encode()).decode(),
        },
    }
    if not await _create(client, secret, tenant):
        await client.delete(
            "secrets", tr["metadata"]["name"], "kube-system", SYSTEM_TENANT
        )  # lost a race: drop ours


async def issue_token(
    client: Client,
    tenant: str | None,
    user: str,
    groups: list[str] | None = None,
    expiration_seconds: int | None = None,
) -> dict[str, Any]:
    """POST a TokenRequest (tenant None = the caller's own tenant); returns it with status.token."""
    spec: dict[str, Any] = {"user": user, "groups": groups or []}
    if expiration_seconds:
        spec["expirationSeconds"] = expiration_seconds
    path = "/apis/auth.centaurus.io/v1" + (f"/tenants/{tenant}" if tenant else "") + "/tokenrequests"
    r: dict[str, Any] = await client.request(
        "POST", path, {"apiVersion": "auth.centaurus.io/v1", "kind": "TokenRequest", "spec": spec}
    )
    return r


def _owned_kinds() -> list[kinds.Kind]:
    """Every kind a tenant owns, namespaced ones first, namespaces last."""
    ks = [k for k in kinds.KINDS if k.scope != kinds.CLUSTER and k.kind != "Namespace"]
    ks.sort(key=lambda k: 0 if k.namespaced else 1)
    ns = kinds.by_resource("v1", "namespaces")
    assert ns is not None
    return [*ks, ns]


async def cleanup_tenant(client: Client, tenant: str, force: bool) -> int:
    """One pass of deleting everything ``tenant`` owns; returns how many objects remain."""
    remaining = 0
    for k in _owned_kinds():
        items = (await client.list_all(k, tenant=tenant))["items"]
        for o in items:
            md = o["metadata"]
            ns = md.get("namespace")
            remaining += 1
            try:
                if not md.get("deletionTimestamp"):
                    await client.delete(
                        k,
                        md["name"],
                        ns,
                        tenant,
                        propagation_policy="Background",
                        grace_period_seconds=0 if k.kind == "Pod" else None,
                    )
                    continue
                if k.kind == "Namespace":  # its contents went with the kinds above: finalize it ourselves
                    if md.get("finalizers"):
                        await client.patch(k, md["name"], {"metadata": {"finalizers": None}}, None, tenant)
                    await client.request(
                        "PUT",
                        client.path(k, None, md["name"], "finalize", tenant),
                        {**o, "spec": {**(o.get("spec") or {}), "finalizers": []}},
                    )
                elif force and (md.get("finalizers") or k.kind == "Pod"):
                    if md.get("finalizers"):
                        await client.patch(k, md["name"], {"metadata": {"finalizers": None}}, ns, tenant)
                    if k.kind == "Pod":
                        await client.delete(k, md["name"], ns, tenant, grace_period_seconds=0)
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
    secrets = await client.list(
        "secrets", "kube-system", SYSTEM_TENANT, label_selector=f"{TOKEN_TENANT_LABEL}={tenant}"
    )
    for s in secrets["items"]:
        try:
            await client.delete("secrets", s["metadata"]["name"], "kube-system", SYSTEM_TENANT)
        except ApiError as e:
            if e.code != 404:
                raise
    return remaining


async def finish_tenant(client: Client, tenant: str) -> None:
    """Drop our finalizer (and spec.finalizers); the tenant goes once no other finalizer holds it."""
    try:
        t = await client.get("tenants", tenant)
        rest = [f for f in t["metadata"].get("finalizers") or [] if f != TENANT_FINALIZER]
        await client.patch(
            "tenants",
            tenant,
            {
                "metadata": {"finalizers": rest or None, "resourceVersion": t["metadata"]["resourceVersion"]},
                "spec": {"finalizers": []},
            },
        )
    except ApiError as e:
        if e.code != 404:
            raise


class TenantController:
    def __init__(self, client: Client, resync: float = 30.0) -> None:
        self.client = client
        self.resync = resync
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.queued: set[str] = set()
        self.passes: dict[str, int] = {}

    def enqueue(self, name: str) -> None:
        if name not in self.queued:
            self.queued.add(name)
            self.queue.put_nowait(name)

    async def sync(self, name: str) -> float | None:
        """Reconcile one tenant; returns a delay to retry after, or None when done."""
        try:
            t = await self.client.get("tenants", name)
        except ApiError as e:
            if e.code == 404:
                self.passes.pop(name, None)
                return None
            raise
        md = t["metadata"]
        if not md.get("deletionTimestamp"):
            self.passes.pop(name, None)
            await ensure_tenant(self.client, name)
            return None
        if TENANT_FINALIZER not in (md.get("finalizers") or []):
            return None  # someone else finishes it
        n = self.passes.get(name, 0)
        self.passes[name] = n + 1
        remaining = await cleanup_tenant(self.client, name, force=n >= 1)
        if remaining:
            log.info("tenant %s: %d objects left to delete", name, remaining)
            return 0.3 if n < 10 else 2.0
        await finish_tenant(self.client, name)
        self.passes.pop(name, None)
        log.info("tenant %s deleted", name)
        return None

    async def worker(self) -> None:
        while True:
            name = await self.queue.get()
            self.queued.discard(name)
            try:
                delay = await self.sync(name)
            except (ApiError, ConnectionError) as e:
                log.warning("tenant %s: %s; retrying", name, e)
                delay = 1.0
            except Exception:
                log.exception("tenant %s: unexpected error; retrying", name)
                delay = 2.0
            if delay is not None:
                asyncio.get_running_loop().call_later(delay, self.enqueue, name)

    async def watch_loop(self) -> None:
        while True:
            try:
                lst = await self.client.list("tenants")
                for t in lst["items"]:
                    self.enqueue(t["metadata"]["name"])
                rv = lst["metadata"]["resourceVersion"]
                async for _typ, obj in self.client.watch(
                    "tenants", resource_version=rv, timeout_seconds=int(self.resync)
                ):
                    self.enqueue(obj["metadata"]["name"])
            except WatchExpired:
                continue
            except (ApiError, ConnectionError) as e:
                log.warning("tenant watch: %s; relisting", e)
                await asyncio.sleep(1.0)


async def run_tenant_controller(client: Client, workers: int = 2, resync: float = 30.0) -> None:
    """Run until cancelled."""
    c = TenantController(client, resync)
    tasks = [asyncio.create_task(c.watch_loop(), name="tenant-watch")]
    tasks += [asyncio.create_task(c.worker(), name=f"tenant-worker-{i}") for i in range(workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        await cancel_and_wait(tasks)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ctl.tenancy.controller", description="Run the tenant controller alone."
    )
    p.add_argument("--server", default="")
    p.add_argument("--token", default=None)
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--resync", type=float, default=30.0)
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    cfg = ClientConfig(a.server, token=a.token) if a.server else load_config(a.kubeconfig)
    if a.token:
        cfg.token = a.token

    async def go(stop: asyncio.Event) -> None:
        client = Client(cfg)
        task = asyncio.create_task(run_tenant_controller(client, a.workers, a.resync), name="tenant")
        halt = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            await asyncio.wait({task, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(task, halt)
            await client.close()

    return run_daemon("tenants", go, a.log_level)


if __name__ == "__main__":
    raise SystemExit(main())
