"""What the TUI can do to an object, as the CLI does it, each one call (or a short sequence) on the API.

Every function takes the client, the object's :class:`~ctl.types.kinds.Kind` and the object
as the table holds it, and returns the one-line message the status line shows; a refusal by
the server propagates as :class:`~ctl.client.ApiError` (the screen shows its message).

* ``delete`` - as ``centaurusctl delete`` (background propagation).
* ``scale`` - a merge patch of ``spec.replicas`` (Deployments, ReplicaSets, StatefulSets).
* ``rollout_restart`` / ``rollout_undo`` - as ``kubectl rollout``: stamp
  ``kubectl.kubernetes.io/restartedAt`` on the pod template; copy the previous ReplicaSet's
  template back (retried on a 409 Conflict).
* ``cordon`` / ``drain`` - ``spec.unschedulable``; drain is cordon plus deleting every pod
  bound to the node (the API has no eviction subresource yet), in every tenant.
* ``vm_action`` - a CustomAction posted to ``pods/NAME/action`` (the Action API).
* ``apply_yaml`` - an edited object PUT back (resourceVersion kept, so a concurrent change
  is a 409, not a silent overwrite).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from ctl.client import ApiError, Client
from ctl.tui.data.rows import mapping
from ctl.types import kinds, meta
from ctl.types.actions import ACTION_OPERATIONS
from ctl.types.kinds import Kind

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"
SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet")


def _ref(kind: Kind, obj: dict[str, Any]) -> tuple[str, str | None, str | None]:
    md = obj.get("metadata") or {}
    tenant = md.get("tenant") if kind.scope != kinds.CLUSTER else None
    return str(md.get("name")), md.get("namespace") if kind.namespaced else None, tenant


def label(kind: Kind, obj: dict[str, Any]) -> str:
    name, ns, _ = _ref(kind, obj)
    return f"{kind.singular}/{name}" + (f" in {ns}" if ns else "")


async def delete(client: Client, kind: Kind, obj: dict[str, Any]) -> str:
    name, ns, tenant = _ref(kind, obj)
    await client.delete(kind, name, ns, tenant, propagation_policy="Background")
    return f"{label(kind, obj)} deleted"


async def scale(client: Client, kind: Kind, obj: dict[str, Any], replicas: int) -> str:
    if kind.kind not in SCALABLE:
        raise ValueError(f"{kind.plural} cannot be scaled")
    if replicas < 0:
        raise ValueError("replicas must be 0 or more")
    name, ns, tenant = _ref(kind, obj)
    await client.patch(kind, name, {"spec": {"replicas": replicas}}, ns, tenant)
    return f"{label(kind, obj)} scaled to {replicas}"


async def rollout_restart(client: Client, kind: Kind, obj: dict[str, Any]) -> str:
    if kind.kind != "Deployment":
        raise ValueError("only deployments have rollouts")
    name, ns, tenant = _ref(kind, obj)
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: meta.now_rfc3339()}}}}}
    await client.patch(kind, name, patch, ns, tenant)
    return f"{label(kind, obj)} restarted"


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except (TypeError, ValueError):
        return 0


async def rollout_undo(client: Client, kind: Kind, obj: dict[str, Any]) -> str:
    """Roll a Deployment back to its previous revision."""
    if kind.kind != "Deployment":
        raise ValueError("only deployments have rollouts")
    name, ns, tenant = _ref(kind, obj)
    for _attempt in range(5):
        d = await client.get(kind, name, ns, tenant)
        uid = d["metadata"]["uid"]
        owned = (await client.list("replicasets", ns, tenant=tenant))["items"]
        history = sorted(
            (rs for rs in owned if (meta.controller_of(rs) or {}).get("uid") == uid and _revision(rs) > 0),
            key=_revision,
        )
        if len(history) < 2:
            raise ValueError(f"deployment {name} has no previous revision")
        template = copy.deepcopy(history[-2]["spec"]["template"])
        ((template.get("metadata") or {}).get("labels") or {}).pop(TEMPLATE_HASH, None)
        d["spec"]["template"] = template
        try:
            await client.request("PUT", client.path(kind, ns, name, tenant=tenant), d)
        except ApiError as e:
            if e.code == 409:
                continue
            raise
        return f"{label(kind, obj)} rolled back to revision {_revision(history[-2])}"
    raise ValueError(f"deployment {name} kept changing; try again")


async def cordon(client: Client, kind: Kind, obj: dict[str, Any], on: bool = True) -> str:
    if kind.kind != "Node":
        raise ValueError("only nodes can be cordoned")
    name, _, _ = _ref(kind, obj)
    await client.patch(kind, name, {"spec": {"unschedulable": True if on else None}})
    return f"node/{name} {'cordoned' if on else 'uncordoned'}"


async def drain(client: Client, kind: Kind, obj: dict[str, Any]) -> str:
    """Cordon the node, then delete every pod bound to it (all tenants)."""
    await cordon(client, kind, obj)
    name, _, _ = _ref(kind, obj)
    pods = await client.list_all("pods", tenant="all", field_selector=f"spec.nodeName={name}")
    n = 0
    for p in pods["items"]:
        md = p.get("metadata") or {}
        if md.get("deletionTimestamp"):
            continue
        try:
            await client.delete("pods", md["name"], md.get("namespace"), md.get("tenant"))
            n += 1
        except ApiError as e:
            if e.code != 404:
                raise
    return f"node/{name} drained ({n} pod{'s' if n != 1 else ''} deleted)"


def is_vm(obj: dict[str, Any]) -> bool:
    return isinstance((obj.get("spec") or {}).get("virtualMachine"), dict)


async def vm_action(
    client: Client, kind: Kind, obj: dict[str, Any], operation: str, snapshot_id: str | None = None
) -> str:
    if kind.kind != "Pod" or not is_vm(obj):
        raise ValueError("VM actions need a virtual machine pod")
    if operation not in ACTION_OPERATIONS:
        raise ValueError(f"unknown VM action {operation!r}")
    if operation == "restore" and not snapshot_id:
        raise ValueError("restore needs a snapshot id")
    name, ns, tenant = _ref(kind, obj)
    body: dict[str, Any] = {"kind": "CustomAction", "apiVersion": "v1", "operation": operation}
    if snapshot_id:
        body["snapshotID"] = snapshot_id
    res = await client.request("POST", client.path(kind, ns, name, "action", tenant), body)
    action = ((res or {}).get("details") or {}).get("name", "") if isinstance(res, dict) else ""
    return f"{operation} of pod/{name}: action/{action} created"


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)


async def apply_yaml(client: Client, kind: Kind, original: dict[str, Any], text: str) -> str:
    """PUT an edited copy of ``original`` back; unchanged text is a no-op."""
    try:
        edited = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"the edited YAML does not parse: {e}".splitlines()[0]) from None
    if not isinstance(edited, dict):
        raise ValueError("the edited YAML is not an object")
    if edited == original:
        return f"{label(kind, original)}: no changes"
    name, ns, tenant = _ref(kind, original)
    new_md = mapping(edited, "metadata")
    if new_md.get("name") != name:
        raise ValueError("the name cannot be changed by edit")
    await client.request("PUT", client.path(kind, ns, name, tenant=tenant), edited)
    return f"{label(kind, original)} edited"
