"""Hard multi-tenancy in the API server: who may reach which tenant, and with what.

:func:`install` (called by ``ctl.apiserver.main.build_server``) adds seven things
to the server:

* **Authentication of issued tokens.** Besides the bootstrap tokens in
  ``tokens.json`` (system components and the first administrator), the server accepts
  tokens issued through the TokenRequest API below. Those are kept in the store, so
  every API server of a partition sees them: a Secret of type ``centaurus.io/token``
  named ``token-<sha256 of the token>`` in the system tenant's ``kube-system``
  namespace, holding the user, tenant, groups, the tenant's uid and an optional expiry;
  never the token itself. A token stops working when its Secret is deleted, when it
  expires, or when its tenant is deleted (a re-created tenant of the same name has a
  new uid, so old tokens do not come back to life).

* **Isolation and RBAC** (an authorizer). A caller outside the system tenant can
  only address its own tenant: any path of another tenant, ``/tenants/all``, and the
  cluster-scoped kinds (Node, Tenant, Droplet) answer 403 with a message that is the
  same whether the other tenant exists or not. Inside its tenant, the tenant's
  Roles/ClusterRoles and bindings decide (:mod:`ctl.apiserver.rbac`). ``system:masters``
  in the system tenant is the cluster administrator; other system-tenant users are
  judged by the system tenant's roles, which then apply to every tenant.

* **Impersonation** judged by the same RBAC (:mod:`ctl.apiserver.impersonation`):
  ``Impersonate-*`` headers need the ``impersonate`` verb, never across tenants unless
  the caller is of the system tenant.

* **Access and identity reviews** answered from the same authorizers
  (:mod:`ctl.apiserver.reviews`: ``kubectl auth can-i``, ``auth whoami``, TokenReview).

* **Admission.** The ``system`` tenant cannot be deleted; a tenant's ``default`` and
  ``kube-system`` namespaces cannot be deleted while the tenant is Active; a tenant
  gets the ``centaurus.io/tenant`` finalizer so that deleting it only marks it
  Terminating until the tenant controller has removed everything it owned; pods are
  checked against ResourceQuotas (:mod:`ctl.apiserver.quota`); ``pods/eviction`` honours
  PodDisruptionBudgets (:mod:`ctl.apiserver.eviction`).

* **The TokenRequest API**: ``POST /apis/auth.centaurus.io/v1[/tenants/T]/tokenrequests``
  with ``{"spec": {"user": U, "groups": [...], "expirationSeconds": N}}`` answers 201 with
  ``status.token``. It is authorized like any other write (verb ``create`` on
  ``tokenrequests`` in group ``auth.centaurus.io``): the cluster administrator may
  issue tokens for any tenant, a tenant administrator for its own tenant. Only the
  cluster administrator may put ``system:masters`` in a token. ``GET`` on the same path
  lists the tenant's issued tokens (``GET .../tokenrequests/NAME`` shows one) with user,
  groups, issuer and expiry - never the token itself - and ``DELETE .../tokenrequests/NAME``
  revokes one (verbs ``list``/``get``/``delete``). A name of another tenant's token is
  answered 404, the same as one that does not exist.

* **Non-resource URLs and the tenant's view of the API** (:class:`NonResourceURLs`).
  ``/metrics`` and ``/debug/*`` answer only callers granted them by ``nonResourceURLs``
  rules (:meth:`ctl.apiserver.rbac.RBAC.url_allowed`: ``system:masters``, or a system-tenant
  identity bound to such a ClusterRole); anyone else, a tenant administrator included, gets
  403. ``/healthz``, ``/readyz``, ``/livez`` and ``/version`` stay public. Discovery
  (``/api``, ``/apis``, ``/api/v1``, ``/apis/G[/V]``) shown to a tenant's callers leaves out
  the cluster-scoped kinds it can never use (Node, Tenant, Droplet); the OpenAPI documents
  are complete only for callers granted ``get`` on their URL, and otherwise show the same
  tenant view (no paths of those kinds, no schemas of them).
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import orjson
from aiohttp import web

from ctl.apiserver import eviction, impersonation, reviews
from ctl.apiserver import status as st
from ctl.apiserver.auth import SYSTEM_MASTERS, Authenticator, Identity, hash_token, new_token
from ctl.apiserver.paths import RequestInfo
from ctl.apiserver.quota import QuotaAdmission
from ctl.apiserver.rbac import RBAC, EscalationCheck
from ctl.types import kinds, meta
from ctl.types.kinds import SYSTEM_TENANT, Kind

TOKEN_GROUP = "auth.centaurus.io"
TOKEN_KIND = Kind(
    "TokenRequest", TOKEN_GROUP, "v1", "tokenrequests", "tokenrequest", kinds.TENANT, subresources=()
)
TOKEN_SECRET_TYPE = "centaurus.io/token"
TOKEN_NAMESPACE = "kube-system"
TOKEN_TENANT_LABEL = "centaurus.io/token-tenant"
TENANT_FINALIZER = "centaurus.io/tenant"
PROTECTED_NAMESPACES = ("default", "kube-system")
TOKEN_PATH = re.compile(r"^/apis/auth\.centaurus\.io/v1(?:/tenants/([^/]+))?/tokenrequests(?:/([^/]+))?/?$")
MAX_USER = 253


def token_secret_name(token: str) -> str:
    return "token-" + hash_token(token)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class StoreTokens:
    """Issued tokens, looked up in the API server's cache (see the module docstring)."""

    def __init__(self, server: Any) -> None:
        self.cache = server.cache
        self.secrets = kinds.by_resource("v1", "secrets")
        self.tenants = kinds.by_resource("v1", "tenants")
        self._parsed: dict[str, tuple[str, dict[str, Any]]] = {}

    def lookup(self, token: str) -> Identity | None:
        assert self.secrets is not None and self.tenants is not None
        key = self.secrets.key(SYSTEM_TENANT, TOKEN_NAMESPACE, token_secret_name(token))
        obj = self.cache.get(self.secrets, key)
        if obj is None or obj.get("type") != TOKEN_SECRET_TYPE or obj["metadata"].get("deletionTimestamp"):
            return None
        rv = obj["metadata"].get("resourceVersion", "")
        hit = self._parsed.get(key)
        if hit is None or hit[0] != rv:
            rec = _token_record(obj)
            if rec is None:
                return None
            if len(self._parsed) > 100_000:
                self._parsed.clear()
            self._parsed[key] = hit = (rv, rec)
        rec = hit[1]
        if rec.get("expires") and float(rec["expires"]) < time.time():
            return None
        tenant = rec.get("tenant", "")
        t = self.cache.get(self.tenants, self.tenants.key("", "", tenant))
        if t is None or t["metadata"].get("uid") != rec.get("tenantUID"):
            return None
        groups = tuple(_token_groups(rec))
        return Identity(rec.get("user", ""), tenant, groups)


class TenantAuthenticator(Authenticator):
    """Bearer tokens from the store first, then ``tokens.json``; client certificates as before."""

    def __init__(self, base: Authenticator, issued: StoreTokens) -> None:
        super().__init__(base.tokens, base.anonymous)
        self.issued = issued

    def token_identity(self, token: str) -> Identity | None:
        return self.issued.lookup(token) or super().token_identity(token)

    def authenticate(self, headers: Any, peercert: dict[str, Any] | None = None) -> Identity | None:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            ident = self.issued.lookup(auth[7:].strip())
            if ident is not None:
                return ident
        return super().authenticate(headers, peercert)


class TenantAuthorizer:
    """Tenant isolation, then RBAC (see the module docstring)."""

    def __init__(self, rbac: RBAC) -> None:
        self.rbac = rbac

    def __call__(self, ident: Identity, verb: str, info: RequestInfo, tenant: str) -> None:
        if ident.is_cluster_admin:
            return
        kind = info.kind
        resource = kind.plural + (f"/{info.subresource}" if info.subresource else "")
        who = f'User "{ident.user}"'
        if not ident.is_system:
            if kind.scope == kinds.CLUSTER:
                raise st.forbidden(
                    f'{resource} is forbidden: {who} cannot {verb} resource "{resource}" at the cluster scope'
                )
            if info.all_tenants:
                raise st.forbidden(f"{resource} is forbidden: {who} cannot {verb} {resource} across tenants")
            if info.tenant is not None and info.tenant != ident.tenant:
                raise st.forbidden(
                    f'{resource} is forbidden: {who} cannot {verb} {resource} in tenant "{info.tenant}"'
                )
            rbac_tenant = ident.tenant
        else:
            rbac_tenant = SYSTEM_TENANT
        namespace = info.namespace if kind.namespaced else (info.name if kind.kind == "Namespace" else None)
        if self.rbac.allowed(ident, rbac_tenant, verb, kind.group, resource, namespace, info.name):
            return
        where = f' in the namespace "{info.namespace}"' if info.namespace else ""
        what = (
            kind.plural + (f".{kind.group}" if kind.group else "") + (f' "{info.name}"' if info.name else "")
        )
        raise st.forbidden(
            f'{what} is forbidden: {who} cannot {verb} resource "{resource}" in API group "{kind.group}"{where}'
        )


class TenantAdmission:
    def __init__(self, server: Any) -> None:
        self.cache = server.cache
        self.tenants = kinds.by_resource("v1", "tenants")

    def tenant_active(self, tenant: str) -> bool:
        assert self.tenants is not None
        t = self.cache.get(self.tenants, self.tenants.key("", "", tenant))
        return t is not None and not t["metadata"].get("deletionTimestamp")

    async def __call__(self, verb: str, kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        md = obj.get("metadata") or {}
        if kind.kind == "Tenant":
            if verb == "delete" and md.get("name") == SYSTEM_TENANT:
                raise st.forbidden(f'tenants "{SYSTEM_TENANT}" is forbidden: this tenant may not be deleted')
            if verb in ("create", "update"):
                spec = obj.setdefault("spec", {})
                if verb == "create":
                    spec.setdefault("finalizers", ["kubernetes"])
                    fins = md.setdefault("finalizers", [])
                    if TENANT_FINALIZER not in fins:
                        fins.append(TENANT_FINALIZER)
                causes = []
                if not isinstance(spec.get("finalizers", []), list) or not all(
                    isinstance(f, str) for f in spec.get("finalizers", [])
                ):
                    causes.append("spec.finalizers: must be a list of strings")
                if not isinstance(spec.get("storageClusterId", ""), str):
                    causes.append("spec.storageClusterId: must be a string")
                phase = (obj.get("status") or {}).get("phase")
                if phase not in (None, "Active", "Terminating"):
                    causes.append(
                        f'status.phase: Unsupported value: {phase!r}: supported values: "Active", "Terminating"'
                    )
                if causes:
                    raise st.APIError(
                        422, f'Tenant "{md.get("name")}" is invalid: {", ".join(causes)}', "Invalid"
                    )
        elif kind.kind == "Namespace" and verb == "delete":
            if md.get("name") in PROTECTED_NAMESPACES and self.tenant_active(md.get("tenant") or ""):
                raise st.forbidden(
                    f'namespaces "{md.get("name")}" is forbidden: this namespace may not be deleted while its tenant is Active'
                )


DISCOVERY_PATH = re.compile(r"^/(?:api/?|apis/?|api/v1/?|apis/[^/]+(?:/[^/]+)?/?)$")
NON_RESOURCE_PROTECTED = ("/metrics", "/debug")


class NonResourceURLs:
    """Authorization of non-resource URLs and the tenant view of discovery/OpenAPI (module docstring)."""

    def __init__(self, rbac: RBAC) -> None:
        self.rbac = rbac
        self.hidden = {k.kind for k in kinds.KINDS if k.scope == kinds.CLUSTER}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        ident: Identity | None = request.get("identity")
        path = request.path
        if ident is None:
            return await handler(request)
        verb = request.method.lower()
        if any(path == p or path.startswith(p + "/") for p in NON_RESOURCE_PROTECTED):
            if not self.rbac.url_allowed(ident, verb, path):
                raise st.forbidden(f'forbidden: User "{ident.user}" cannot {verb} path "{path}"')
            return await handler(request)
        if path.startswith("/openapi/"):
            tenant_view = not self.rbac.url_allowed(ident, "get", path)
        elif DISCOVERY_PATH.match(path):
            tenant_view = not ident.is_system
        else:
            return await handler(request)
        resp = await handler(request)
        if not tenant_view or resp.status != 200 or not isinstance(resp, web.Response) or not resp.body:
            return resp
        assert isinstance(resp.body, bytes)
        doc = self.tenant_view(orjson.loads(resp.body))
        return web.Response(body=orjson.dumps(doc), status=200, content_type="application/json")

    def tenant_view(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` (a discovery or OpenAPI document) without the kinds a tenant may never use."""
        hidden = self.hidden
        if isinstance(doc.get("resources"), list):  # APIResourceList
            doc["resources"] = [r for r in doc["resources"] if r.get("kind") not in hidden]
        if doc.get("kind") == "APIGroupList":
            usable = {k.group for k in (*kinds.KINDS, *kinds.VIRTUAL_KINDS) if k.kind not in hidden}
            doc["groups"] = [g for g in doc.get("groups") or [] if g.get("name") in usable]
        if isinstance(doc.get("paths"), dict) and ("swagger" in doc or "openapi" in doc):
            doc["paths"] = {p: item for p, item in doc["paths"].items() if not self._hidden_path(item)}
            hidden_defs = hidden | {h + "List" for h in hidden}
            for defs in (doc.get("definitions"), (doc.get("components") or {}).get("schemas")):
                if isinstance(defs, dict):  # the kinds' own schemas (io.k8s.api.core.v1.Node, ...NodeList)
                    for name in [n for n in defs if n.rsplit(".", 1)[-1] in hidden_defs]:
                        del defs[name]
        return doc

    def _hidden_path(self, item: Any) -> bool:
        if not isinstance(item, dict):
            return False
        for op in item.values():
            gvk = op.get("x-kubernetes-group-version-kind") if isinstance(op, dict) else None
            if isinstance(gvk, dict) and gvk.get("kind") in self.hidden:
                return True
        return False


def _token_record(secret: dict[str, Any]) -> dict[str, str] | None:
    """The decoded fields of an issued token's Secret (user, tenant, groups, ...); None if unreadable."""
    try:
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    except (ValueError, TypeError):
        return None


def _token_groups(rec: dict[str, str]) -> list[str]:
    try:
        return list(orjson.loads(rec.get("groups") or "[]"))
    except orjson.JSONDecodeError:
        return []


def _is_token_of(secret: dict[str, Any] | None, tenant: str) -> bool:
    """Whether ``secret`` is an issued token of ``tenant``."""
    return (
        secret is not None
        and secret.get("type") == TOKEN_SECRET_TYPE
        and (secret["metadata"].get("labels") or {}).get(TOKEN_TENANT_LABEL) == tenant
    )


def _token_view(secret: dict[str, Any]) -> dict[str, Any]:
    """An issued token as the API shows it: who, groups, issuer, expiry; never the token."""
    md = secret["metadata"]
    rec = _token_record(secret) or {}
    groups = _token_groups(rec)
    status: dict[str, Any] = {"issuedBy": (md.get("annotations") or {}).get("centaurus.io/issued-by", "")}
    if rec.get("expires"):
        status["expirationTimestamp"] = meta.rfc3339(float(rec["expires"]))
        status["expired"] = float(rec["expires"]) < time.time()
    return {
        "apiVersion": f"{TOKEN_GROUP}/v1",
        "kind": "TokenRequest",
        "metadata": {
            "name": md["name"],
            "tenant": rec.get("tenant", (md.get("labels") or {}).get(TOKEN_TENANT_LABEL, "")),
            "creationTimestamp": md.get("creationTimestamp"),
            "resourceVersion": md.get("resourceVersion"),
        },
        "spec": {"user": rec.get("user", ""), "groups": groups},
        "status": status,
    }


async def _issued_tokens(
    server: Any, request: web.Request, ident: Identity, tenant: str, info: RequestInfo, name: str | None
) -> web.Response:
    """GET (list or one) and DELETE (revoke) of a tenant's issued tokens."""
    verb = {"GET": "get" if name else "list", "DELETE": "delete"}.get(request.method)
    if verb is None or (verb == "delete" and not name):
        raise st.APIError(
            405,
            f"method {request.method} is not allowed here: POST a TokenRequest, GET to list, "
            "DELETE tokenrequests/NAME to revoke",
            "MethodNotAllowed",
        )
    request["verb"], request["resource"] = verb, "tokenrequests"
    server.authorize(ident, verb, info, tenant)
    sk = kinds.by_resource("v1", "secrets")
    assert sk is not None
    if name is None:
        items = [
            _token_view(o)
            for o in server.cache.list(sk, sk.prefix(SYSTEM_TENANT, TOKEN_NAMESPACE))
            if _is_token_of(o, tenant)
        ]
        items.sort(key=lambda t: (t["spec"]["user"], t["metadata"]["creationTimestamp"] or ""))
        out = {"apiVersion": f"{TOKEN_GROUP}/v1", "kind": "TokenRequestList", "metadata": {}, "items": items}
        return web.Response(body=orjson.dumps(out), content_type="application/json")
    secret = server.cache.get(sk, sk.key(SYSTEM_TENANT, TOKEN_NAMESPACE, name))
    if not _is_token_of(secret, tenant):
        raise st.not_found("tokenrequests", name, TOKEN_GROUP)
    if verb == "get":
        return web.Response(body=orjson.dumps(_token_view(secret)), content_type="application/json")
    gone, _ = await server.registry.delete(sk, SYSTEM_TENANT, TOKEN_NAMESPACE, name, {})
    await server.cache.wait_for(int(gone["metadata"].get("resourceVersion") or 0))  # revoked from now on
    body = st.success_status({"name": name, "group": TOKEN_GROUP, "kind": "tokenrequests"})
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _token_request(
    server: Any, request: web.Request, explicit_tenant: str | None, name: str | None = None
) -> web.Response:
    ident: Identity = request["identity"]
    tenant = explicit_tenant or ident.tenant
    info = RequestInfo(TOKEN_KIND, explicit_tenant, None, name, None)
    if info.all_tenants:
        raise st.bad_request("tokens belong to one tenant; name it instead of 'all'")
    if request.method != "POST" or name:
        return await _issued_tokens(server, request, ident, tenant, info, name)
    request["verb"], request["resource"] = "create", "tokenrequests"
    server.authorize(ident, "create", info, tenant)
    body = await server._object_body(request)
    spec = body.get("spec") or {}
    user = spec.get("user")
    if not isinstance(user, str) or not user or len(user) > MAX_USER or any(ord(c) < 32 for c in user):
        raise st.APIError(
            422,
            "TokenRequest is invalid: spec.user: Required value: a user name of 1-253 printable characters",
            "Invalid",
        )
    groups = spec.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise st.APIError(
            422, "TokenRequest is invalid: spec.groups: must be a list of non-empty strings", "Invalid"
        )
    if SYSTEM_MASTERS in groups and not ident.is_cluster_admin:
        raise st.forbidden(
            f"tokenrequests is forbidden: only a cluster administrator may issue {SYSTEM_MASTERS} tokens"
        )
    exp = spec.get("expirationSeconds")
    if exp is not None and (not isinstance(exp, int) or isinstance(exp, bool) or exp < 60):
        raise st.APIError(
            422,
            "TokenRequest is invalid: spec.expirationSeconds: must be an integer of at least 60",
            "Invalid",
        )
    await server.registry.check_tenant(tenant)
    tk = kinds.by_resource("v1", "tenants")
    sk = kinds.by_resource("v1", "secrets")
    assert tk is not None and sk is not None
    t = await server.registry.get(tk, "", None, tenant)
    token = new_token()
    groups = [g for g in groups if g != "system:authenticated"] + ["system:authenticated"]
    data = {
        "user": user,
        "tenant": tenant,
        "groups": orjson.dumps(groups).decode(),
        "tenantUID": t["metadata"]["uid"],
    }
    expires = None
    if exp:
        expires = time.time() + exp
        data["expires"] = f"{expires:.0f}"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": TOKEN_SECRET_TYPE,
        "metadata": {
            "name": token_secret_name(token),
            "labels": {TOKEN_TENANT_LABEL: tenant},
            "annotations": {"centaurus.io/token-user": user, "centaurus.io/issued-by": ident.user},
        },
        "data": {k: _b64(v) for k, v in data.items()},
    }
    created = await server.registry.create(sk, SYSTEM_TENANT, TOKEN_NAMESPACE, secret)
    await server.cache.wait_for(int(created["metadata"]["resourceVersion"]))
    out = {
        "apiVersion": f"{TOKEN_GROUP}/v1",
        "kind": "TokenRequest",
        "metadata": {
            "name": created["metadata"]["name"],
            "tenant": tenant,
            "creationTimestamp": created["metadata"]["creationTimestamp"],
        },
        "spec": {"user": user, "groups": groups, **({"expirationSeconds": exp} if exp else {})},
        "status": {"token": token, **({"expirationTimestamp": meta.rfc3339(expires)} if expires else {})},
    }
    return web.Response(body=orjson.dumps(out), status=201, content_type="application/json")


def install(server: Any) -> None:
    """Wire tenancy into an :class:`ctl.apiserver.app.APIServer` before it starts."""
    issued = StoreTokens(server)
    server.auth = TenantAuthenticator(server.auth, issued)
    server.rbac = RBAC(server.cache)
    server.authorizers.append(TenantAuthorizer(server.rbac))
    server.registry.admission.append(EscalationCheck(server.rbac))
    server.registry.admission.append(TenantAdmission(server))
    server.quota = QuotaAdmission(server.cache)
    server.registry.admission.append(server.quota.admit)
    impersonation.install(server)

    @web.middleware
    async def token_api(request: web.Request, handler: Any) -> web.StreamResponse:
        m = TOKEN_PATH.match(request.path)
        if m is None:
            return await handler(request)
        return await _token_request(server, request, m.group(1), m.group(2))

    server.app.middlewares.append(token_api)
    server.app.middlewares.append(NonResourceURLs(server.rbac).middleware)
    reviews.install(server)
    eviction.install(server)
