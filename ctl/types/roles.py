"""The built-in RBAC roles, declared beside the kinds.

Every tenant starts with three ClusterRoles, created by the tenant controller
(:mod:`ctl.tenancy.controller`) and evaluated by the API server's authorizer
(:mod:`ctl.apiserver.rbac`), so they live here, below both:

* ``admin``: everything in the tenant;
* ``edit``: workloads and their configuration (pods and their log/exec/action/binding
  subresources, ConfigMaps, Secrets, Events, Actions, ServiceAccounts, Deployments,
  ReplicaSets and their scale, PodDisruptionBudgets, Leases, Mizar endpoints), evicting pods
  (``create pods/eviction``, what ``kubectl drain`` needs), no RBAC, quotas or credentials;
* ``view``: read-only over the same workloads, without Secrets or the pod subresources
  that act (exec, action, binding, eviction).

Both also read namespaces, quotas, the tenant's networks, VPCs and subnets, and the resource
metrics (``metrics.k8s.io`` pods and nodes, ``kubectl top``), as Kubernetes aggregates
``system:aggregated-metrics-reader`` into its view, edit and admin roles.
"""

from __future__ import annotations

from typing import Any

RBAC_GROUP = "rbac.authorization.k8s.io"
READ_VERBS = ["get", "list", "watch"]
WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"]

# What "edit" may write and "view" may read (besides namespaces and quotas, which view reads).
_WORKLOADS: list[tuple[str, list[str]]] = [
    (
        "",
        [
            "pods",
            "pods/log",
            "pods/exec",
            "pods/action",
            "pods/binding",
            "configmaps",
            "events",
            "actions",
            "serviceaccounts",
        ],
    ),
    ("apps", ["deployments", "replicasets", "deployments/scale", "replicasets/scale"]),
    ("policy", ["poddisruptionbudgets"]),
    ("batch", ["jobs", "cronjobs"]),
    ("coordination.k8s.io", ["leases"]),
    ("mizar.centaurus.io", ["endpoints"]),
]


def builtin_cluster_roles() -> dict[str, list[dict[str, Any]]]:
    """name -> rules of the ClusterRoles each tenant starts with."""
    edit: list[dict[str, Any]] = []
    view: list[dict[str, Any]] = []
    for group, res in _WORKLOADS:
        edit.append({"apiGroups": [group], "resources": res, "verbs": READ_VERBS + WRITE_VERBS})
        view.append(
            {
                "apiGroups": [group],
                "resources": [r for r in res if r not in ("pods/exec", "pods/action", "pods/binding")],
                "verbs": READ_VERBS,
            }
        )
    edit.append({"apiGroups": [""], "resources": ["secrets"], "verbs": READ_VERBS + WRITE_VERBS})
    edit.append({"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]})
    for rules in (edit, view):
        rules.append({"apiGroups": [""], "resources": ["namespaces", "resourcequotas"], "verbs": READ_VERBS})
        rules.append(
            {
                "apiGroups": ["arktos.centaurus.io", "mizar.centaurus.io"],
                "resources": ["networks", "vpcs", "subnets"],
                "verbs": READ_VERBS,
            }
        )
        rules.append({"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": READ_VERBS})
    return {
        "admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        "edit": edit,
        "view": view,
    }
