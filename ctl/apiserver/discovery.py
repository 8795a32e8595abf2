"""Discovery documents (``/api``, ``/apis``, ``/api/v1``, ``/apis/G/V``), ``/version`` and OpenAPI.

These are what kubectl and the official client libraries read before they talk to a
resource. Tenant-scoped kinds are reported as not namespaced, which is how a stock
Kubernetes client sees them inside its own tenant. ``hidden`` kinds (Node and Tenant
for regular tenants) are left out of a caller's view.
"""

from __future__ import annotations

from typing import Any

import ctl
from ctl.types import kinds
from ctl.types.kinds import Kind

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
        "groups": [_group_entry(g, vs) for g, vs in kinds.groups().items() if g],
    }


def api_group(group: str) -> dict[str, Any] | None:
    vs = kinds.groups().get(group)
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
    elif sub in ("exec",):
        kind, verbs = "PodExecOptions", ["create", "get"]
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
    ks = [k for k in kinds.KINDS if k.api_version == group_version and k.kind not in (hidden or set())]
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


def _definition_name(k: Kind) -> str:
    g = k.group or "core"
    return f"io.centaurus.{g}.{k.version}.{k.kind}"


def openapi_v2() -> dict[str, Any]:
    """A Swagger 2.0 document: one free-form definition per kind, with its group/version/kind."""
    definitions: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for k in kinds.KINDS:
        gvk = [{"group": k.group, "version": k.version, "kind": k.kind}]
        definitions[_definition_name(k)] = {
            "description": f"{k.kind} ({k.scope}-scoped)",
            "type": "object",
            "x-kubernetes-group-version-kind": gvk,
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
        definitions[_definition_name(k) + "List"] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [
                {"group": k.group, "version": k.version, "kind": k.list_kind}
            ],
            "properties": {
                "items": {"type": "array", "items": {"$ref": f"#/definitions/{_definition_name(k)}"}}
            },
        }
        base = f"/api/{k.version}" if not k.group else f"/apis/{k.group}/{k.version}"
        coll = f"{base}/namespaces/{{namespace}}/{k.plural}" if k.namespaced else f"{base}/{k.plural}"
        ref = {"$ref": f"#/definitions/{_definition_name(k)}"}
        paths[coll] = {
            "get": {
                "operationId": f"list{k.kind}",
                "x-kubernetes-action": "list",
                "x-kubernetes-group-version-kind": gvk[0],
                "responses": {
                    "200": {
                        "description": "OK",
                        "schema": {"$ref": f"#/definitions/{_definition_name(k)}List"},
                    }
                },
            },
            "post": {
                "operationId": f"create{k.kind}",
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk[0],
                "parameters": [{"name": "body", "in": "body", "required": True, "schema": ref}],
                "responses": {"201": {"description": "Created", "schema": ref}},
            },
        }
        paths[coll + "/{name}"] = {
            "get": {
                "operationId": f"read{k.kind}",
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": gvk[0],
                "responses": {"200": {"description": "OK", "schema": ref}},
            },
            "put": {
                "operationId": f"replace{k.kind}",
                "x-kubernetes-action": "put",
                "x-kubernetes-group-version-kind": gvk[0],
                "responses": {"200": {"description": "OK", "schema": ref}},
            },
            "delete": {
                "operationId": f"delete{k.kind}",
                "x-kubernetes-action": "delete",
                "x-kubernetes-group-version-kind": gvk[0],
                "responses": {"200": {"description": "OK"}},
            },
            "patch": {
                "operationId": f"patch{k.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk[0],
                "consumes": [
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                ],
                "responses": {"200": {"description": "OK", "schema": ref}},
            },
        }
    return {
        "swagger": "2.0",
        "info": {"title": "Centaurus", "version": f"v1.{K8S_MINOR}.0-centaurus.{ctl.__version__}"},
        "paths": paths,
        "definitions": definitions,
    }


def openapi_v3_root() -> dict[str, Any]:
    """The OpenAPI v3 index kubectl reads: one document per group/version."""
    paths = {}
    for g, vs in kinds.groups().items():
        for v in vs:
            gv = f"api/{v}" if not g else f"apis/{g}/{v}"
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={ctl.__version__}"}
    return {"paths": paths}


def openapi_v3(group: str, version: str) -> dict[str, Any] | None:
    """OpenAPI 3 document of one group/version (schemas free-form; fieldValidation declared).

    Declaring the ``fieldValidation`` query parameter tells kubectl that the server
    validates fields itself, so kubectl sends its objects without client-side schema checks.
    """
    ks = [k for k in kinds.KINDS if k.group == group and k.version == version]
    if not ks:
        return None
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    fv = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for k in ks:
        name = _definition_name(k)
        gvk = {"group": k.group, "version": k.version, "kind": k.kind}
        schemas[name] = {
            "type": "object",
            "description": f"{k.kind} ({k.scope}-scoped)",
            "x-kubernetes-group-version-kind": [gvk],
            "x-kubernetes-preserve-unknown-fields": True,
        }
        ref = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
        base = f"/api/{k.version}" if not k.group else f"/apis/{k.group}/{k.version}"
        coll = f"{base}/namespaces/{{namespace}}/{k.plural}" if k.namespaced else f"{base}/{k.plural}"
        paths[coll] = {
            "post": {
                "operationId": f"create{k.kind}",
                "parameters": [fv],
                "requestBody": ref,
                "responses": {"201": {"description": "Created", **ref}},
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk,
            },
        }
        paths[coll + "/{name}"] = {
            "put": {
                "operationId": f"replace{k.kind}",
                "parameters": [fv],
                "requestBody": ref,
                "responses": {"200": {"description": "OK", **ref}},
                "x-kubernetes-action": "put",
                "x-kubernetes-group-version-kind": gvk,
            },
            "patch": {
                "operationId": f"patch{k.kind}",
                "parameters": [fv],
                "responses": {"200": {"description": "OK", **ref}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Centaurus", "version": f"v1.{K8S_MINOR}.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
