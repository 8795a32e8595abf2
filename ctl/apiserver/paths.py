"""Parsing request paths into what they address.

Paths follow Kubernetes plus the Arktos tenant segment (DESIGN.md §4)::

    /api/v1[/tenants/T][/namespaces/NS]/RESOURCE[/NAME[/SUBRESOURCE]]
    /apis/GROUP/VERSION[/tenants/T][/namespaces/NS]/RESOURCE[/NAME[/SUBRESOURCE]]

A path without ``/tenants/T`` is a *short path*: it means the caller's tenant.
``/tenants/all/...`` lists across tenants. ``/api/v1/tenants[/T[/status]]`` and
``/api/v1[/tenants/T]/namespaces[/NS[/status|finalize]]`` address the Tenant and
Namespace objects themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctl.apiserver.status import APIError
from ctl.types import kinds
from ctl.types.kinds import Kind

ALL_TENANTS = "all"


@dataclass
class RequestInfo:
    kind: Kind
    tenant: str | None  # explicit tenant from the path, None for a short path
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def all_tenants(self) -> bool:
        return self.tenant == ALL_TENANTS


def parse(path: str) -> RequestInfo:
    segs = [s for s in path.split("/") if s]
    if len(segs) >= 2 and segs[0] == "api":
        api_version, rest = segs[1], segs[2:]
        core = True
    elif len(segs) >= 3 and segs[0] == "apis":
        api_version, rest = f"{segs[1]}/{segs[2]}", segs[3:]
        core = False
    else:
        raise APIError(404, f"the server could not find the requested resource (path {path})", "NotFound")
    if not rest:
        raise APIError(404, f"the server could not find the requested resource (path {path})", "NotFound")
    tenant: str | None = None
    tenant_kind = kinds.by_resource("v1", "tenants")
    assert tenant_kind is not None
    if rest[0] == "tenants":
        if core and (len(rest) <= 2 or (len(rest) == 3 and rest[2] in tenant_kind.subresources)):
            return RequestInfo(
                tenant_kind,
                None,
                None,
                rest[1] if len(rest) > 1 else None,
                rest[2] if len(rest) > 2 else None,
            )
        if len(rest) < 3:
            raise APIError(404, f"the server could not find the requested resource (path {path})", "NotFound")
        tenant, rest = rest[1], rest[2:]
    namespace: str | None = None
    if rest[0] == "namespaces" and core:
        ns_kind = kinds.by_resource("v1", "namespaces")
        assert ns_kind is not None
        if len(rest) <= 2 or (len(rest) == 3 and rest[2] in ns_kind.subresources):
            return RequestInfo(
                ns_kind, tenant, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
            )
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    kind = kinds.by_resource(api_version, resource)
    if kind is None:
        raise APIError(
            404, f"the server could not find the requested resource ({api_version} {resource})", "NotFound"
        )
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if len(rest) > 3:
        raise APIError(404, f"the server could not find the requested resource (path {path})", "NotFound")
    if sub is not None and sub not in kind.subresources:
        raise APIError(404, f"{kind.plural} has no subresource {sub!r}", "NotFound")
    if kind.scope == kinds.CLUSTER and (tenant is not None or namespace is not None):
        raise APIError(
            404,
            f"{kind.plural} are cluster-scoped: use /{'api' if core else 'apis'}/{api_version}/{resource}",
            "NotFound",
        )
    if kind.scope == kinds.TENANT and namespace is not None:
        raise APIError(404, f"{kind.plural} are not namespaced", "NotFound")
    return RequestInfo(kind, tenant, namespace, name, sub)


def self_link(kind: Kind, tenant: str, namespace: str, name: str) -> str:
    base = f"/api/{kind.version}" if not kind.group else f"/apis/{kind.group}/{kind.version}"
    if kind.scope == kinds.CLUSTER:
        return f"{base}/{kind.plural}/{name}"
    if kind.scope == kinds.TENANT:
        return f"{base}/tenants/{tenant}/{kind.plural}/{name}"
    return f"{base}/tenants/{tenant}/namespaces/{namespace}/{kind.plural}/{name}"
