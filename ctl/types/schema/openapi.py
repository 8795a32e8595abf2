"""The OpenAPI documents: every path of every kind with its parameters, bodies and responses.

Built from :mod:`ctl.types.kinds` (paths, scopes, subresources) and the schema definitions
of :mod:`ctl.types.schema` (the bodies), so the document is what the server serves and
checks. For each kind it declares, as kube-apiserver does:

* the collection and the item paths for the caller's tenant (short paths), the explicit
  tenant paths ``/api/v1/tenants/{tenant}/...`` (Arktos), the cluster-wide list of a
  namespaced kind, and each subresource (status, scale, binding, log, exec, action, finalize);
* path parameters (``tenant``, ``namespace``, ``name``) and the query parameters of each
  verb (labelSelector, fieldSelector, limit, continue, resourceVersion, watch, dryRun,
  fieldManager, fieldValidation, gracePeriodSeconds, propagationPolicy, pretty ...);
* request and response schemas, the ``Status`` schema for every error response, and
  ``x-kubernetes-group-version-kind`` / ``x-kubernetes-action`` on every operation.

:func:`openapi_v2` is the Swagger 2.0 document at ``/openapi/v2``; :func:`openapi_v3` the
OpenAPI 3.0 document of one group/version at ``/openapi/v3/api/v1`` or
``/openapi/v3/apis/G/V``. Both are built once per set of hidden kinds and cached.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from ctl.types import kinds
from ctl.types.kinds import Kind
from ctl.types.schema import definition_name, definitions
from ctl.types.schema.apps import BINDING_NAME, SCALE_NAME
from ctl.types.schema.build import REF_PREFIX

Schema = dict[str, Any]
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
JSON = "application/json"
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def _q(name: str, typ: str, description: str, **extra: Any) -> Schema:
    return {
        "name": name,
        "in": "query",
        "type": typ,
        "description": description,
        "uniqueItems": True,
        **extra,
    }


P_PRETTY = _q("pretty", "string", "If 'true', the output is pretty printed.")
P_DRY_RUN = _q("dryRun", "string", "All: process the request fully but persist nothing.", enum=["All"])
P_FIELD_MANAGER = _q("fieldManager", "string", "Name of the actor making the change.")
P_FIELD_VALIDATION = _q(
    "fieldValidation",
    "string",
    "Unknown fields: Ignore drops them, Warn drops them with a warning, Strict refuses them.",
    enum=["Ignore", "Warn", "Strict"],
)
P_FORCE = _q("force", "boolean", "Force an apply patch over conflicts.")
LIST_PARAMS = [
    _q("allowWatchBookmarks", "boolean", "Ask for BOOKMARK events on a watch."),
    _q("continue", "string", "The continue token of the previous page."),
    _q(
        "fieldSelector",
        "string",
        "Select objects by fields (metadata.name, spec.nodeName, status.phase ...).",
    ),
    _q("labelSelector", "string", "Select objects by labels (a=b,c!=d,e in (f,g),!h)."),
    _q("limit", "integer", "At most this many items; the rest via continue.", minimum=0),
    _q("resourceVersion", "string", "List or watch at (or from) this revision."),
    _q(
        "resourceVersionMatch",
        "string",
        "How resourceVersion applies to a list.",
        enum=["Exact", "NotOlderThan"],
    ),
    _q("sendInitialEvents", "boolean", "Start a watch with the current objects."),
    _q("timeoutSeconds", "integer", "Timeout of a list or watch call.", minimum=0),
    _q("watch", "boolean", "Stream changes (one JSON event per line) instead of a list."),
]
DELETE_PARAMS = [
    P_DRY_RUN,
    _q("gracePeriodSeconds", "integer", "Seconds before the object is deleted (0 = now).", minimum=0),
    _q("orphanDependents", "boolean", "Deprecated: use propagationPolicy=Orphan."),
    _q(
        "propagationPolicy",
        "string",
        "Whether and how dependents are deleted.",
        enum=["Orphan", "Background", "Foreground"],
    ),
]
WRITE_PARAMS = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION]
LOG_PARAMS = [
    _q("container", "string", "The container to stream (default: the only one)."),
    _q("follow", "boolean", "Follow the log stream."),
    _q("previous", "boolean", "The log of the previous instance."),
    _q("sinceSeconds", "integer", "Only lines of the last N seconds.", minimum=1),
    _q("tailLines", "integer", "Only the last N lines.", minimum=0),
    _q("timestamps", "boolean", "Prefix each line with its time."),
    _q("limitBytes", "integer", "At most this many bytes.", minimum=1),
]
EXEC_PARAMS = [
    _q("command", "string", "The command to run (repeat for each argument)."),
    _q("container", "string", "The container to run it in."),
    _q("stdin", "boolean", "Attach stdin."),
    _q("stdout", "boolean", "Attach stdout."),
    _q("stderr", "boolean", "Attach stderr."),
    _q("tty", "boolean", "Allocate a terminal."),
]
ATTACH_PARAMS = [p for p in EXEC_PARAMS if p["name"] != "command"]
PORTFORWARD_PARAMS = [_q("ports", "integer", "The pod port to forward (repeat for each port).")]


def _path_param(name: str, what: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "type": "string",
        "description": what,
        "uniqueItems": True,
    }


def _ref(name: str) -> Schema:
    return {"$ref": REF_PREFIX + name}


def _id(k: Kind) -> str:
    """The operationId middle part: ``CoreV1NamespacedPod``, ``AppsV1NamespacedDeployment`` ..."""
    g = "".join(p.capitalize() for p in (k.group.split(".")[0] if k.group else "core").split("-"))
    return f"{g}{k.version.capitalize()}"


def _responses(ok: dict[str, Schema]) -> Schema:
    r: Schema = {c: {"description": text, "schema": s} for c, (text, s) in ok.items()}  # type: ignore[misc]
    r["401"] = {"description": "Unauthorized", "schema": _ref(STATUS)}
    r["default"] = {"description": "Error: a Status naming the reason", "schema": _ref(STATUS)}
    return r


def _op(
    k: Kind, action: str, op_id: str, params: list[Schema], ok: dict[str, Any], body: Schema | None = None
) -> Schema:
    o: Schema = {
        "description": f"{action} {k.kind}",
        "operationId": op_id,
        "consumes": ["*/*"],
        "produces": [JSON, "application/yaml"],
        "schemes": ["https"],
        "tags": [k.api_version.replace("/", "_").replace(".", "_")],
        "parameters": [P_PRETTY, *params],
        "responses": _responses(ok),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version, "kind": k.kind},
    }
    if body is not None:
        o["parameters"].insert(0, {"name": "body", "in": "body", "required": True, "schema": body})
    return o


def _sub_ops(k: Kind, sub: str, scope: str, obj: Schema) -> Schema:
    """Operations of one subresource path."""
    base = f"{scope}{k.kind}{sub.capitalize()}"
    if sub in ("status", "scale"):
        body = _ref(SCALE_NAME) if sub == "scale" else obj
        return {
            "get": _op(k, "get", f"read{base}", [], {"200": ("OK", body)}),
            "put": _op(
                k,
                "put",
                f"replace{base}",
                WRITE_PARAMS,
                {"200": ("OK", body), "201": ("Created", body)},
                body,
            ),
            "patch": {
                **_op(
                    k,
                    "patch",
                    f"patch{base}",
                    [*WRITE_PARAMS, P_FORCE],
                    {"200": ("OK", body)},
                    {"type": "object"},
                ),
                "consumes": list(PATCH_TYPES),
            },
        }
    if sub == "binding":
        return {
            "post": _op(
                k,
                "post",
                f"create{base}",
                WRITE_PARAMS,
                {"201": ("Created", _ref(STATUS))},
                _ref(BINDING_NAME),
            )
        }
    if sub == "eviction":  # policy/v1 Eviction (kubectl drain)
        return {
            "post": _op(
                k,
                "post",
                f"create{base}",
                WRITE_PARAMS,
                {"201": ("Created", _ref(STATUS))},
                _ref("io.k8s.api.policy.v1.Eviction"),
            )
        }
    if sub == "finalize":
        return {"put": _op(k, "put", f"replace{base}", WRITE_PARAMS, {"200": ("OK", obj)}, obj)}
    if sub == "log":
        op = _op(k, "get", f"read{base}", LOG_PARAMS, {"200": ("OK", {"type": "string"})})
        op["produces"] = ["text/plain", JSON]
        return {"get": op}
    if sub == "exec":
        return {
            "get": _op(k, "connect", f"connectGet{base}", EXEC_PARAMS, {"200": ("OK", {"type": "string"})}),
            "post": _op(k, "connect", f"connectPost{base}", EXEC_PARAMS, {"200": ("OK", {"type": "string"})}),
        }
    if sub in ("attach", "portforward"):  # streaming upgrades (WebSocket or SPDY), like exec
        params = ATTACH_PARAMS if sub == "attach" else PORTFORWARD_PARAMS
        ok = {"200": ("OK", {"type": "string"})}
        return {
            "get": _op(k, "connect", f"connectGet{base}", params, ok),
            "post": _op(k, "connect", f"connectPost{base}", params, ok),
        }
    if sub == "action":
        action_body = {
            "type": "object",
            "properties": {
                "operation": {"type": "string", "enum": ["reboot", "snapshot", "restore", "stop", "start"]}
            },
            "required": ["operation"],
            "x-kubernetes-preserve-unknown-fields": True,
        }
        return {
            "post": _op(
                k, "post", f"create{base}", WRITE_PARAMS, {"201": ("Created", _ref(STATUS))}, action_body
            )
        }
    return {}


def _kind_paths(k: Kind, name: str) -> dict[str, Schema]:
    obj, lst = _ref(name), _ref(name + "List")
    base = f"/api/{k.version}" if not k.group else f"/apis/{k.group}/{k.version}"
    gid = _id(k)
    tenant, ns, nm = (
        _path_param("tenant", "The tenant (Arktos)."),
        _path_param("namespace", "The namespace."),
        _path_param("name", f"Name of the {k.kind}."),
    )
    # (collection path, path parameters, operationId scope word)
    scopes: list[tuple[str, list[Schema], str]]
    if k.scope == kinds.CLUSTER:
        scopes = [(f"{base}/{k.plural}", [], gid)]
    elif k.scope == kinds.TENANT:
        scopes = [
            (f"{base}/{k.plural}", [], gid),
            (f"{base}/tenants/{{tenant}}/{k.plural}", [tenant], gid + "Tenant"),
        ]
    else:
        scopes = [
            (f"{base}/namespaces/{{namespace}}/{k.plural}", [ns], gid + "Namespaced"),
            (
                f"{base}/tenants/{{tenant}}/namespaces/{{namespace}}/{k.plural}",
                [tenant, ns],
                gid + "TenantNamespaced",
            ),
        ]
    paths: dict[str, Schema] = {}
    for coll, params, scope in scopes:
        paths[coll] = {
            "parameters": params,
            "get": _op(k, "list", f"list{scope}{k.kind}", LIST_PARAMS, {"200": ("OK", lst)}),
            "post": _op(
                k,
                "post",
                f"create{scope}{k.kind}",
                WRITE_PARAMS,
                {"200": ("OK", obj), "201": ("Created", obj), "202": ("Accepted", obj)},
                obj,
            ),
            "delete": _op(
                k,
                "deletecollection",
                f"deletecollection{scope}{k.kind}",
                [*LIST_PARAMS, *DELETE_PARAMS],
                {"200": ("OK", _ref(STATUS))},
            ),
        }
        paths[coll + "/{name}"] = {
            "parameters": [*params, nm],
            "get": _op(k, "get", f"read{scope}{k.kind}", [], {"200": ("OK", obj)}),
            "put": _op(
                k,
                "put",
                f"replace{scope}{k.kind}",
                WRITE_PARAMS,
                {"200": ("OK", obj), "201": ("Created", obj)},
                obj,
            ),
            "patch": {
                **_op(
                    k,
                    "patch",
                    f"patch{scope}{k.kind}",
                    [*WRITE_PARAMS, P_FORCE],
                    {"200": ("OK", obj), "201": ("Created", obj)},
                    {"type": "object"},
                ),
                "consumes": list(PATCH_TYPES),
            },
            "delete": _op(
                k,
                "delete",
                f"delete{scope}{k.kind}",
                DELETE_PARAMS,
                {"200": ("OK", _ref(STATUS)), "202": ("Accepted", _ref(STATUS))},
                _ref(DELETE_OPTIONS),
            ),
        }
        paths[coll + "/{name}"]["delete"]["parameters"][0]["required"] = False  # the DeleteOptions body
        for sub in k.subresources:
            ops = _sub_ops(k, sub, scope, obj)
            if ops:
                paths[f"{coll}/{{name}}/{sub}"] = {"parameters": [*params, nm], **ops}
    if k.namespaced:  # every namespace at once: the caller's tenant, or a named one
        for coll, params, scope in (
            (f"{base}/{k.plural}", [], gid),
            (f"{base}/tenants/{{tenant}}/{k.plural}", [tenant], gid + "Tenant"),
        ):
            paths[coll] = {
                "parameters": params,
                "get": _op(
                    k, "list", f"list{scope}{k.kind}ForAllNamespaces", LIST_PARAMS, {"200": ("OK", lst)}
                ),
            }
    return paths


def _list_definition(k: Kind, name: str) -> Schema:
    return {
        "description": f"A list of {k.kind} objects.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _ref(LIST_META),
            "items": {"type": "array", "items": _ref(name)},
        },
        "x-kubernetes-group-version-kind": [{"group": k.group, "version": k.version, "kind": k.list_kind}],
    }


def _visible(hidden: frozenset[str], group_version: str | None = None) -> list[tuple[Kind, str]]:
    out = []
    for k in kinds.KINDS:
        name = definition_name(k)
        if name and k.kind not in hidden and (group_version is None or k.api_version == group_version):
            out.append((k, name))
    return out


@lru_cache(maxsize=8)
def openapi_v2(title: str, version: str, hidden: frozenset[str] = frozenset()) -> Schema:
    """The Swagger 2.0 document (``/openapi/v2``) of every visible kind."""
    defs = copy.deepcopy(definitions())
    paths: dict[str, Schema] = {}
    for k, name in _visible(hidden):
        defs[name + "List"] = _list_definition(k, name)
        paths.update(_kind_paths(k, name))
    return {
        "swagger": "2.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "definitions": defs,
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "in": "header", "name": "authorization"}},
        "security": [{"BearerToken": []}],
    }


def _v3_refs(o: Any) -> Any:
    if isinstance(o, dict):
        out = {k: _v3_refs(v) for k, v in o.items()}
        r = out.get("$ref")
        if isinstance(r, str) and r.startswith(REF_PREFIX):
            out["$ref"] = "#/components/schemas/" + r[len(REF_PREFIX) :]
        return out
    if isinstance(o, list):
        return [_v3_refs(v) for v in o]
    return o


def _v3_param(p: Schema) -> Schema:
    schema = {k: p[k] for k in ("type", "enum", "minimum") if k in p}
    out = {"name": p["name"], "in": p["in"], "description": p.get("description", ""), "schema": schema}
    if p.get("required"):
        out["required"] = True
    return out


def _v3_op(op: Schema) -> Schema:
    consumes = op.get("consumes") or [JSON]
    produces = op.get("produces") or [JSON]
    out: Schema = {
        k: v for k, v in op.items() if k not in ("consumes", "produces", "schemes", "parameters", "responses")
    }
    params = []
    for p in op.get("parameters", []):
        if p["in"] == "body":
            media = consumes if consumes != ["*/*"] else [JSON, "application/yaml"]
            out["requestBody"] = {
                "required": bool(p.get("required")),
                "content": {m: {"schema": p["schema"]} for m in media},
            }
        else:
            params.append(_v3_param(p))
    out["parameters"] = params
    out["responses"] = {
        code: {
            "description": r["description"],
            "content": {
                m: {"schema": r["schema"]} for m in (produces if code not in ("401", "default") else [JSON])
            },
        }
        for code, r in op["responses"].items()
    }
    return out


@lru_cache(maxsize=64)
def openapi_v3(
    title: str, version: str, group: str, gv_version: str, hidden: frozenset[str] = frozenset()
) -> Schema | None:
    """The OpenAPI 3.0 document of one group/version, or None if it has no visible kind."""
    gv = f"{group}/{gv_version}" if group else gv_version
    if not _visible(hidden, gv):
        return None
    v2 = openapi_v2(title, version, hidden)
    paths: dict[str, Schema] = {}
    for path, item in v2["paths"].items():
        ops = [o for m, o in item.items() if m != "parameters"]
        if (
            not ops
            or ops[0]["x-kubernetes-group-version-kind"]["group"] != group
            or ops[0]["x-kubernetes-group-version-kind"]["version"] != gv_version
        ):
            continue
        paths[path] = {
            m: ([_v3_param(p) for p in o] if m == "parameters" else _v3_op(o)) for m, o in item.items()
        }
    return _v3_refs(
        {
            "openapi": "3.0.0",
            "info": {"title": title, "version": version},
            "paths": paths,
            "components": {
                "schemas": v2["definitions"],
                "securitySchemes": {
                    "BearerToken": {"type": "apiKey", "in": "header", "name": "authorization"}
                },
            },
            "security": [{"BearerToken": []}],
        }
    )
