"""Tenant provisioning: what a tenant is given when it is created and what is removed when it goes.

These are client-side operations on the API, shared by the tenant controller
(:mod:`ctl.tenancy.controller`, which runs them for every tenant it watches) and by the CLI
(``centaurusctl tenant create`` provisions at once, without waiting for the controller).
For each tenant: namespaces ``default``, ``kube-system`` and ``kube-public``; the built-in
ClusterRoles ``admin``, ``edit`` and ``view`` (:func:`ctl.types.roles.builtin_cluster_roles`)
and a ClusterRoleBinding ``tenant-admin`` granting ``admin`` to user ``TENANT-admin``; a
default ``Network``; the tenant administrator's token, issued through the TokenRequest API and
kept in the Secret ``tenant-admin-token`` of its ``kube-system`` namespace. Removal deletes
every object the tenant owns, clears stuck finalizers, finalizes the namespaces and revokes
the tenant's issued tokens (:func:`cleanup_tenant`, :func:`finish_tenant`).

Everything here goes through :class:`ctl.client.Client`: no import of the API server.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from ctl.client import ApiError, Client
from ctl.types import kinds
from ctl.types.kinds import SYSTEM_TENANT
from ctl.types.roles import RBAC_GROUP, builtin_cluster_roles

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
