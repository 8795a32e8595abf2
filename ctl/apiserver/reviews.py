"""Access and identity reviews: ``authorization.k8s.io/v1`` and ``authentication.k8s.io/v1``.

These are questions a client asks the API server, answered at once and never stored
(the kinds are declared in :data:`ctl.types.kinds.VIRTUAL_KINDS`, so discovery shows them):

* ``SelfSubjectAccessReview`` - may I do this? (``kubectl auth can-i create pods``). The
  answer is what the server's own authorizers (tenant isolation, then RBAC) say for the
  caller - the identity after impersonation, so ``kubectl auth can-i --as=alice`` asks
  about alice. Resources the server does not serve (``users``, ``*``) are judged by RBAC
  alone; non-resource URLs as :meth:`ctl.apiserver.rbac.RBAC.url_allowed` judges them,
  with the public ones (health, version, discovery) allowed to everyone.
* ``SelfSubjectRulesReview`` - what may I do in this namespace? (``kubectl auth can-i
  --list``): the RBAC rules that apply to the caller there, plus the rules every
  authenticated user holds (creating these reviews, reading the public URLs), as
  Kubernetes' ``system:basic-user``/``system:discovery`` roles give them.
* ``SubjectAccessReview`` - may *someone else* do this? Only for callers of the system
  tenant granted ``create subjectaccessreviews`` (the cluster administrator holds it): it
  reveals any tenant's grants. The subject's tenant is the extra ``centaurus.io/tenant``
  (default: the system tenant).
* ``SelfSubjectReview`` - who am I? (``kubectl auth whoami``): user, uid, groups, extra
  (the tenant is the extra ``centaurus.io/tenant``).
* ``TokenReview`` - whose is this token? For system-tenant callers granted ``create
  tokenreviews``: bootstrap and issued tokens both, never the anonymous fallback.

Every review is a POST answered 201 with the request's spec and the ``status``, as
kube-apiserver answers; a malformed one is 400/422, other methods 405.
:func:`install` adds the middleware that serves their paths.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from ctl.apiserver import status as st
from ctl.apiserver.auth import PUBLIC_PATHS, Identity
from ctl.apiserver.paths import RequestInfo
from ctl.types import kinds
from ctl.types.kinds import SYSTEM_TENANT

AUTHZ, AUTHN = "authorization.k8s.io", "authentication.k8s.io"
TENANT_EXTRA = "centaurus.io/tenant"
REVIEW_PATH = re.compile(
    r"^/apis/(authorization\.k8s\.io|authentication\.k8s\.io)/v1(?:/tenants/[^/]+)?/"
    r"(selfsubjectaccessreviews|selfsubjectrulesreviews|subjectaccessreviews|selfsubjectreviews|tokenreviews)/?$"
)
# URLs every authenticated caller may read (Kubernetes' system:discovery, system:public-info-viewer).
PUBLIC_URL_PATTERNS = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", *sorted(PUBLIC_PATHS)]
BASIC_RULES: list[dict[str, Any]] = [
    {
        "verbs": ["create"],
        "apiGroups": [AUTHZ],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
    {"verbs": ["create"], "apiGroups": [AUTHN], "resources": ["selfsubjectreviews"]},
]
ALL_RESOURCES = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
ALL_URLS = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


def _served_kind(group: str, resource: str) -> kinds.Kind | None:
    for k in kinds.KINDS:
        if k.group == group and k.plural == resource:
            return k
    return None


def _str(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key, "")
    if v is None:
        return ""
    if not isinstance(v, str):
        raise st.bad_request(f"{where}.{key} must be a string")
    return v


def _url_public(path: str) -> bool:
    if path in PUBLIC_PATHS or path in ("/api", "/apis") or path.startswith(("/api/", "/apis/")):
        return True
    return path == "/openapi" or path.startswith("/openapi/")


class Reviews:
    """The review answers for one API server (``server.authorize``, ``server.rbac``, ``server.auth``)."""

    def __init__(self, server: Any) -> None:
        self.server = server

    # ------------------------------------------------------------------ judging
    def access(self, ident: Identity, spec: dict[str, Any], where: str = "spec") -> tuple[bool, str]:
        """(allowed, reason) for the attributes in ``spec`` (resourceAttributes or nonResourceAttributes)."""
        res, nonres = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if (res is None) == (nonres is None) or not isinstance(res if nonres is None else nonres, dict):
            raise st.APIError(
                422,
                f"{where}.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or "
                "resourceAttributes must be specified",
                "Invalid",
            )
        if nonres is not None:
            path = _str(nonres, "path", f"{where}.nonResourceAttributes")
            verb = _str(nonres, "verb", f"{where}.nonResourceAttributes")
            if ident.is_cluster_admin or (verb == "get" and _url_public(path)):
                return True, ""
            if self.server.rbac.url_allowed(ident, verb, path):
                return True, "allowed by a nonResourceURLs rule of the system tenant"
            return False, f'User "{ident.user}" cannot {verb} path "{path}"'
        w = f"{where}.resourceAttributes"
        assert isinstance(res, dict)
        verb, group = _str(res, "verb", w), _str(res, "group", w)
        resource, sub = _str(res, "resource", w), _str(res, "subresource", w)
        namespace, name = _str(res, "namespace", w) or None, _str(res, "name", w) or None
        if ident.is_cluster_admin:
            return True, ""
        kind = _served_kind(group, resource)
        if kind is not None and verb != "*":
            ns = namespace if kind.namespaced else None
            info = RequestInfo(kind, None, ns, name, sub or None)
            tenant = "" if kind.scope == kinds.CLUSTER else ident.tenant
            try:
                self.server.authorize(ident, verb, info, tenant)
            except st.APIError as e:
                if e.code != 403:
                    raise
                return False, str(e.body().get("message") or "")
            return True, ""
        rbac_tenant = SYSTEM_TENANT if ident.is_system else ident.tenant
        full = resource + (f"/{sub}" if sub else "")
        if self.server.rbac.allowed(ident, rbac_tenant, verb, group, full, namespace, name):
            return True, ""
        return False, f'User "{ident.user}" cannot {verb} resource "{full}" in API group "{group}"'

    def rules(self, ident: Identity, namespace: str | None) -> dict[str, Any]:
        """The status of a SelfSubjectRulesReview: resource and non-resource rules in ``namespace``."""
        if ident.is_cluster_admin:
            return {"resourceRules": ALL_RESOURCES, "nonResourceRules": ALL_URLS, "incomplete": False}
        rbac_tenant = SYSTEM_TENANT if ident.is_system else ident.tenant
        resource_rules: list[dict[str, Any]] = [dict(r) for r in BASIC_RULES]
        url_rules: list[dict[str, Any]] = [{"verbs": ["get"], "nonResourceURLs": PUBLIC_URL_PATTERNS}]
        for r in self.server.rbac.rules(ident, rbac_tenant, namespace):
            if r.get("nonResourceURLs"):
                if ident.is_system:  # only the system tenant's URL grants take effect
                    url_rules.append(
                        {"verbs": list(r.get("verbs") or []), "nonResourceURLs": r["nonResourceURLs"]}
                    )
                continue
            out = {
                "verbs": list(r.get("verbs") or []),
                "apiGroups": list(r.get("apiGroups") or []),
                "resources": list(r.get("resources") or []),
            }
            if r.get("resourceNames"):
                out["resourceNames"] = list(r["resourceNames"])
            if out not in resource_rules:
                resource_rules.append(out)
        return {"resourceRules": resource_rules, "nonResourceRules": url_rules, "incomplete": False}

    def _system_only(self, ident: Identity, group: str, resource: str) -> None:
        """Reviews about others: system-tenant callers granted ``create`` on them."""
        if ident.is_cluster_admin:
            return
        if ident.is_system and self.server.rbac.allowed(
            ident, SYSTEM_TENANT, "create", group, resource, None, None
        ):
            return
        raise st.forbidden(
            f'{resource}.{group} is forbidden: User "{ident.user}" cannot create resource "{resource}" in API '
            f'group "{group}" at the cluster scope (only the system tenant\'s administrators may)'
        )

    # ------------------------------------------------------------------ answering
    def answer(self, ident: Identity, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("spec")
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise st.bad_request("spec must be an object")
        status: dict[str, Any]
        if resource == "selfsubjectaccessreviews":
            allowed, reason = self.access(ident, spec)
            status = {"allowed": allowed, **({"reason": reason} if reason else {})}
        elif resource == "selfsubjectrulesreviews":
            ns = _str(spec, "namespace", "spec") or None
            status = self.rules(ident, ns)
        elif resource == "subjectaccessreviews":
            self._system_only(ident, AUTHZ, resource)
            status = self._subject_access(spec)
        elif resource == "selfsubjectreviews":
            status = {"userInfo": ident.user_info()}
        else:  # tokenreviews
            self._system_only(ident, AUTHN, resource)
            token = _str(spec, "token", "spec")
            who = self.server.auth.token_identity(token) if token else None
            audiences = spec.get("audiences") or []
            if who is None:
                status = {"authenticated": False, "user": {}, "error": "invalid bearer token"}
            else:
                status = {"authenticated": True, "user": who.user_info(), "audiences": audiences}
        kind = next(k for k in kinds.VIRTUAL_KINDS if k.plural == resource)
        md = body.get("metadata")
        md = md if isinstance(md, dict) else {}
        return {
            "kind": kind.kind,
            "apiVersion": kind.api_version,
            "metadata": {**md, "creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def _subject_access(self, spec: dict[str, Any]) -> dict[str, Any]:
        user = _str(spec, "user", "spec")
        groups = spec.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise st.bad_request("spec.groups must be a list of strings")
        if not user and not groups:
            raise st.APIError(
                422, "spec.user: Invalid value: at least one of user or group must be specified", "Invalid"
            )
        extra = spec.get("extra") or {}
        if not isinstance(extra, dict):
            raise st.bad_request("spec.extra must be a map of lists of strings")
        tenant = SYSTEM_TENANT
        t = extra.get(TENANT_EXTRA)
        if isinstance(t, list) and len(t) == 1 and isinstance(t[0], str) and t[0]:
            tenant = t[0]
        subject = Identity(user, tenant, tuple(groups), uid=_str(spec, "uid", "spec"))
        allowed, reason = self.access(subject, spec)
        return {"allowed": allowed, **({"reason": reason} if reason else {})}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        m = REVIEW_PATH.match(request.path)
        if m is None or request.get("identity") is None:
            return await handler(request)
        resource = m.group(2)
        request["resource"] = resource
        if request.method != "POST":
            raise st.APIError(405, f"{resource} accept only create (POST)", "MethodNotAllowed")
        request["verb"] = "create"
        body = await self.server._object_body(request)
        out = self.answer(request["identity"], resource, body)
        return web.Response(body=orjson.dumps(out), status=201, content_type="application/json")


def install(server: Any) -> None:
    """Serve the review paths (needs ``server.rbac`` from the tenancy layer)."""
    server.app.middlewares.append(Reviews(server).middleware)


__all__ = ["Reviews", "install"]
