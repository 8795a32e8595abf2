"""Discovery documents (``/api``, ``/apis``, ``/api/v1``, ``/apis/G/V``), ``/version`` and OpenAPI.

The OpenAPI documents themselves are built from the kinds and their schemas by
:mod:`ctl.types.schema.openapi` (the schemas validation uses, so the two cannot disagree).

These are what kubectl and the official client libraries read before they talk to a
resource. Tenant-scoped kinds are reported as not namespaced, which is how a stock
Kubernetes client sees them inside its own tenant. ``hidden`` kinds (Node and Tenant
for regular tenants) are left out of a caller's view. The virtual kinds (access and token
reviews, :data:`ctl.types.kinds.VIRTUAL_KINDS`, create-only and never stored) are listed
with the stored ones, so that kubectl finds ``authorization.k8s.io`` and
``authentication.k8s.io``.
"""

from __future__ import annotations

from typing import Any

import ctl
from ctl.types import kinds
from ctl.types.kinds import Kind
from ctl.types.schema import openapi

K8S_MINOR = "32"


def version_info() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": K8S_MINOR,
        "gitVersion": f"v1.{K8S_MINOR}.0-centaurus.{ctl.__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-11-23T00:00:00Z",
        "goVersion": "python3.11",
        "compiler": "cpython",
        "platform": "linux/amd64",
        "centaurusVersion": ctl.__version__,
    }


def served_groups() -> dict[str, list[str]]:
    """group -> versions of every served kind, virtual ones included ("" is the core group)."""
    out = kinds.groups()
    for k in kinds.VIRTUAL_KINDS:
        vs = out.setdefault(k.group, [])
        if k.version not in vs:
            vs.append(k.version)
    return out


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


def api_groups(hidden: set[str] | None = None) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in served_groups().items() if g],
    }


def api_group(group: str) -> dict[str, Any] | None:
    vs = served_groups().get(group)
    if not vs or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, vs)}


def _resource(k: Kind) -> dict[str, Any]:
    r: dict[str, Any] = {
        "name": k.plural,
        "singularName": k.singular,
        "namespaced": k.namespaced,
        "kind": k.kind,
        "verbs": list(k.verbs),
    }
    if k.short:
        r["shortNames"] = list(k.short)
    if k.categories:
        r["categories"] = list(k.categories)
    return r


def _sub(k: Kind, sub: str) -> dict[str, Any]:
    kind, verbs = k.kind, ["get", "patch", "update"]
    group, version = None, None
    if sub == "scale":
        kind, group, version = "Scale", "autoscaling", "v1"
    elif sub == "binding":
        kind, verbs = "Binding", ["create"]
    elif sub in ("action",):
        kind, verbs = "CustomAction", ["create"]
    elif sub in ("log",):
        kind, verbs = "Pod", ["get"]
    elif sub in ("exec", "attach", "portforward"):
        kind = {"exec": "PodExecOptions", "attach": "PodAttachOptions"}.get(sub, "PodPortForwardOptions")
        verbs = ["create", "get"]
    elif sub == "eviction":
        kind, verbs, group, version = "Eviction", ["create"], "policy", "v1"
    elif sub == "finalize":
        verbs = ["update"]
    r: dict[str, Any] = {
        "name": f"{k.plural}/{sub}",
        "singularName": "",
        "namespaced": k.namespaced,
        "kind": kind,
        "verbs": verbs,
    }
    if group:
        r["group"], r["version"] = group, version
    return r


def resource_list(group_version: str, hidden: set[str] | None = None) -> dict[str, Any] | None:
    ks = [
        k
        for k in (*kinds.KINDS, *kinds.VIRTUAL_KINDS)
        if k.api_version == group_version and k.kind not in (hidden or set())
    ]
    if not ks:
        return None
    resources: list[dict[str, Any]] = []
    for k in ks:
        resources.append(_resource(k))
        resources.extend(_sub(k, s) for s in k.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _title_version() -> tuple[str, str]:
    return "Centaurus", f"v1.{K8S_MINOR}.0-centaurus.{ctl.__version__}"


def openapi_v2(hidden: set[str] | None = None) -> dict[str, Any]:
    """The Swagger 2.0 document: every path, parameter and schema (:mod:`ctl.types.schema.openapi`)."""
    return openapi.openapi_v2(*_title_version(), frozenset(hidden or ()))


def openapi_v3_root() -> dict[str, Any]:
    """The OpenAPI v3 index kubectl reads: one document per group/version."""
    paths = {}
    for g, vs in kinds.groups().items():
        for v in vs:
            gv = f"api/{v}" if not g else f"apis/{g}/{v}"
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={ctl.__version__}"}
    return {"paths": paths}


def openapi_v3(group: str, version: str, hidden: set[str] | None = None) -> dict[str, Any] | None:
    """OpenAPI 3 document of one group/version (None if the server has no such group/version).

    It declares the ``fieldValidation`` query parameter, which tells kubectl that the server
    validates fields itself, so kubectl sends its objects without client-side schema checks.
    """
    return openapi.openapi_v3(*_title_version(), group, version, frozenset(hidden or ()))
