"""Crafted Node and Pod objects for scheduler tests (plain dicts, as the API returns them)."""

from __future__ import annotations

from typing import Any


def node(
    name: str,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    ready: str | None = "True",
    unschedulable: bool = False,
) -> dict[str, Any]:
    res = {"cpu": cpu, "memory": memory, "pods": pods}
    conds = [{"type": "Ready", "status": ready}] if ready is not None else []
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
        "status": {"allocatable": res, "capacity": dict(res), "conditions": conds},
    }


def pod(
    name: str,
    cpu: str | None = "100m",
    memory: str | None = None,
    namespace: str = "default",
    owner: str | None = None,
    uid: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    req: dict[str, str] = {}
    if cpu is not None:
        req["cpu"] = cpu
    if memory is not None:
        req["memory"] = memory
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid:
        md["uid"] = uid
    if owner:
        md["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": f"uid-{owner}",
                "controller": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": md,
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": req}}], **spec},
    }


def affinity(
    terms: list[dict[str, Any]] | None = None, preferred: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    na: dict[str, Any] = {}
    if terms is not None:
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
    if preferred is not None:
        na["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"nodeAffinity": na}
