"""HTTP front of the API server: routing, content negotiation, watch streaming.

One catch-all route per API root hands the path to :func:`ctl.apiserver.paths.parse`,
then to the generic :class:`~ctl.apiserver.registry.Registry`. A middleware measures
every request and turns :class:`APIError` (and anything unexpected) into a Kubernetes
``Status``. Bodies are limited to 3 MiB and must be JSON or YAML; PATCH takes the
merge, JSON and strategic merge patch types.

The process entry (``centaurusctl serve apiserver``: flags, listeners, extensions,
compaction, shutdown) is :mod:`ctl.apiserver.main`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ctl.apiserver import discovery, protobuf, tables
from ctl.apiserver import status as st
from ctl.apiserver.apply import WRITE_OPTIONS, write_options
from ctl.apiserver.auth import PUBLIC_PATHS, Authenticator, Identity, current_identity
from ctl.apiserver.decode import MAX_BODY, decode_body, is_yaml
from ctl.apiserver.fieldvalidation import FIELD_VALIDATION
from ctl.apiserver.impersonation import refuse as refuse_impersonation
from ctl.apiserver.metrics import Metrics
from ctl.apiserver.params import Params, check_delete_options, parse_params
from ctl.apiserver.paths import RequestInfo, parse
from ctl.apiserver.registry import Registry
from ctl.apiserver.scale import scale_of
from ctl.apiserver.status import APIError
from ctl.apiserver.tables import table
from ctl.apiserver.watchcache import WatchCache
from ctl.apiserver.watchstream import serve_watch
from ctl.store import Store
from ctl.types import kinds
from ctl.types.kinds import SYSTEM_NAMESPACES, SYSTEM_TENANT, Kind
from ctl.types.selectors import FieldSelector, LabelSelector, field_supported

log = logging.getLogger("centaurus.apiserver")

Hook = Callable[["APIServer", web.Request, Identity, RequestInfo], Awaitable[web.StreamResponse | None]]

# The verbs each subresource accepts, as in Kubernetes (anything else is 405, before
# authorization: ``DELETE pods/NAME/status`` must never reach the delete verb).
SUBRESOURCE_VERBS: dict[str, frozenset[str]] = {
    "status": frozenset({"get", "update", "patch"}),
    "scale": frozenset({"get", "update", "patch"}),
    "finalize": frozenset({"update"}),
    "binding": frozenset({"create"}),
    "log": frozenset({"get"}),
    "exec": frozenset({"create"}),
    "attach": frozenset({"create"}),
    "portforward": frozenset({"create"}),
    "action": frozenset({"create"}),
    "eviction": frozenset({"create"}),
}
PROTOBUF = "application/vnd.kubernetes.protobuf"
_METHOD_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


class APIServer:
    """The API server's state: store, cache, registry, authenticator, hooks."""

    def __init__(
        self, store: Store, authenticator: Authenticator | None = None, data_dir: Path | None = None
    ) -> None:
        self.store = store
        self.cache = WatchCache(store)
        self.registry = Registry(store, self.cache)
        self.auth = authenticator or Authenticator(None, anonymous=True)
        self.metrics = Metrics()
        self.data_dir = data_dir
        self.shutting_down = asyncio.Event()
        # Extension points for later layers (tenancy, RBAC, subresources like pod log/exec/action).
        self.authorizers: list[Callable[[Identity, str, RequestInfo, str], None]] = []
        self.subresource_handlers: dict[tuple[str, str], Hook] = {}
        # Impersonation headers -> the identity to serve as (ctl.apiserver.impersonation).
        self.impersonate: Callable[[Any, Identity], Identity] = refuse_impersonation
        self.app = self._make_app()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.store.start()
        await self.cache.start()
        await self.bootstrap()

    async def stop(self) -> None:
        self.shutting_down.set()
        await self.cache.stop()
        await self.store.close()

    async def bootstrap(self) -> None:
        """Objects that exist from the first start: the system tenant and its namespaces."""
        tk = kinds.by_resource("v1", "tenants")
        nk = kinds.by_resource("v1", "namespaces")
        assert tk and nk
        try:
            await self.registry.create(tk, "", None, {"metadata": {"name": SYSTEM_TENANT}})
        except APIError as e:
            if e.code != 409:
                raise
        for ns in SYSTEM_NAMESPACES:
            try:
                await self.registry.create(nk, SYSTEM_TENANT, None, {"metadata": {"name": ns}})
            except APIError as e:
                if e.code != 409:
                    raise

    # ------------------------------------------------------------------ app
    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY + 1024)
        r = app.router
        r.add_get("/healthz", self._healthz)
        r.add_get("/livez", self._healthz)
        r.add_get("/readyz", self._readyz)
        r.add_get("/version", self._version)
        r.add_get("/version/", self._version)  # the Python client's VersionApi asks for this one
        r.add_get("/metrics", self._metrics)
        r.add_get("/openapi/v2", self._openapi)
        r.add_get("/openapi/v3", lambda req: self._discovery(req, discovery.openapi_v3_root()))
        r.add_get("/openapi/v3/{tail:.+}", self._openapi_v3)
        r.add_get("/api", lambda req: self._discovery(req, discovery.api_versions()))
        r.add_get("/api/", lambda req: self._discovery(req, discovery.api_versions()))
        r.add_get("/apis", lambda req: self._discovery(req, discovery.api_groups()))
        r.add_get("/apis/", lambda req: self._discovery(req, discovery.api_groups()))
        r.add_get("/api/v1", self._core_resources)
        r.add_get("/api/v1/", self._core_resources)
        r.add_get("/apis/{group}", self._group)
        r.add_get("/apis/{group}/", self._group)
        r.add_get("/apis/{group}/{version}", self._group_resources)
        r.add_get("/apis/{group}/{version}/", self._group_resources)
        r.add_route("*", "/api/{tail:.+}", self._resource)
        r.add_route("*", "/apis/{tail:.+}", self._resource)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        t0 = time.perf_counter()
        code = 500
        try:
            if request.path not in PUBLIC_PATHS:
                ident = self.auth.authenticate(request.headers, _peercert(request))
                if ident is None:
                    raise APIError(
                        401,
                        "Unauthorized: a valid bearer token or client certificate is required",
                        "Unauthorized",
                    )
                ident = self.impersonate(request.headers, ident)
                request["identity"] = ident
                current_identity.set(ident)
            resp = await handler(request)
            code = resp.status
            for w in request.get("warnings") or ():
                if not resp.prepared:
                    resp.headers.add("Warning", _warning_header(w))
            return resp
        except APIError as e:
            code = e.code
            return _json(e.body(), e.code)
        except web.HTTPException as e:
            code = e.status
            return _json(
                st.status_body(e.status, e.reason or "error", st.REASONS.get(e.status, "Unknown")), e.status
            )
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # never a traceback to the client
            log.exception("internal error on %s %s", request.method, request.path)
            msg = st.truncate(f"internal error: {type(e).__name__}: {e}", 512)
            return _json(st.status_body(500, msg, "InternalError"), 500)
        finally:
            verb = request.get("verb", request.method.lower())
            self.metrics.observe(verb, request.get("resource", ""), code, time.perf_counter() - t0)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        if not self.cache.ready.is_set() or self.shutting_down.is_set():
            return web.Response(text="not ready", status=503)
        return web.Response(text="ok")

    async def _version(self, request: web.Request) -> web.Response:
        return _json(discovery.version_info())

    async def _metrics(self, request: web.Request) -> web.Response:
        extra = {
            "centaurus_store_revision": float(self.cache.revision),
            "centaurus_watch_cache_objects": float(sum(len(c.objects) for c in self.cache.caches.values())),
        }
        return web.Response(text=self.metrics.render(extra), content_type="text/plain")

    async def _openapi(self, request: web.Request) -> web.Response:
        if "protobuf" in request.headers.get("Accept", "") and "json" not in request.headers.get(
            "Accept", ""
        ):
            raise APIError(406, "only application/json is served; use /openapi/v3", "NotAcceptable")
        return _json(discovery.openapi_v2())

    async def _openapi_v3(self, request: web.Request) -> web.Response:
        parts = request.match_info["tail"].split("/")
        doc = None
        if len(parts) == 2 and parts[0] == "api":
            doc = discovery.openapi_v3("", parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.openapi_v3(parts[1], parts[2])
        if doc is None:
            raise APIError(404, f"no OpenAPI document for {request.match_info['tail']}")
        return _json(doc)

    def _hidden(self, request: web.Request) -> set[str]:
        ident: Identity | None = request.get("identity")
        return set() if ident is None or ident.is_system else {"Node", "Tenant"}

    async def _discovery(self, request: web.Request, doc: dict[str, Any]) -> web.Response:
        return _json(doc)

    async def _core_resources(self, request: web.Request) -> web.Response:
        return _json(discovery.resource_list("v1", self._hidden(request)))

    async def _group(self, request: web.Request) -> web.Response:
        g = discovery.api_group(request.match_info["group"])
        if g is None:
            raise APIError(
                404, f"the server could not find the requested resource (group {request.match_info['group']})"
            )
        return _json(g)

    async def _group_resources(self, request: web.Request) -> web.Response:
        gv = f"{request.match_info['group']}/{request.match_info['version']}"
        doc = discovery.resource_list(gv, self._hidden(request))
        if doc is None:
            raise APIError(404, f"the server could not find the requested resource (group version {gv})")
        return _json(doc)

    # ------------------------------------------------------------------ resources
    def _tenant_of(self, ident: Identity, info: RequestInfo) -> str | None:
        """The tenant a request addresses (None = across tenants)."""
        if info.kind.scope == kinds.CLUSTER:
            return ""
        if info.tenant is None:
            return ident.tenant
        if info.all_tenants:
            return None
        return info.tenant

    async def _body(self, request: web.Request) -> Any:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise APIError(
                413,
                f"the request body is {request.content_length} bytes; the limit is {MAX_BODY} bytes (3 MiB)",
                "RequestEntityTooLarge",
            )
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise APIError(
                413,
                f"the request body is larger than the limit of {MAX_BODY} bytes (3 MiB)",
                "RequestEntityTooLarge",
            ) from None
        if len(raw) > MAX_BODY:
            raise APIError(
                413,
                f"the request body is {len(raw)} bytes; the limit is {MAX_BODY} bytes (3 MiB)",
                "RequestEntityTooLarge",
            )
        if not raw.strip():
            raise st.bad_request("the request body is empty; send a JSON object")
        ct = request.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if is_yaml(ct) or ct in ("application/json", "") or ct.endswith("+json"):
            return decode_body(raw, ct)
        if ct == PROTOBUF and request.method in ("POST", "PUT"):
            return protobuf.decode_request(raw)
        raise APIError(
            415,
            f"unsupported content type {ct!r:.100}: send application/json or application/yaml",
            "UnsupportedMediaType",
        )

    async def _object_body(self, request: web.Request) -> dict[str, Any]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise st.bad_request("the request body must be a JSON object")
        return body

    def authorize(self, ident: Identity, verb: str, info: RequestInfo, tenant: str | None) -> None:
        for a in self.authorizers:
            a(ident, verb, info, tenant or "")

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        info = parse(request.path)
        ident: Identity = request["identity"]
        kind = info.kind
        sub = info.subresource
        request["resource"] = kind.plural + (f"/{sub}" if sub else "")
        tenant = self._tenant_of(ident, info)
        method = request.method
        params = parse_params(request.query)
        request["params"] = params
        if info.name is None and sub is None:
            if method == "GET":
                verb = "watch" if params.watch else "list"
            elif method == "POST":
                verb = "create"
            elif method == "DELETE":
                verb = "deletecollection"
            else:
                raise APIError(405, f"method {method} is not allowed on a collection", "MethodNotAllowed")
        else:
            verb = _METHOD_VERBS.get(method, "")
            if method == "GET" and sub in ("exec", "attach", "portforward"):
                verb = "create"  # a WebSocket upgrade is a GET; Kubernetes authorizes it as create
            if not verb:
                raise APIError(405, f"method {method} is not allowed", "MethodNotAllowed")
            if sub is not None and verb not in SUBRESOURCE_VERBS.get(sub, ()):
                raise APIError(
                    405,
                    f"{method} is not allowed on {kind.plural}/{sub}"
                    f" (it accepts {', '.join(sorted(SUBRESOURCE_VERBS.get(sub, ()))) or 'nothing'})",
                    "MethodNotAllowed",
                )
        request["verb"] = verb
        if tenant is None and not ident.is_system:
            raise st.forbidden(
                f'{kind.plural} is forbidden: User "{ident.user}" cannot {verb} resources across tenants'
            )
        self.authorize(ident, verb, info, tenant)
        hook = self.subresource_handlers.get((kind.plural, sub or ""))
        if hook is not None and sub:
            resp = await hook(self, request, ident, info)
            if resp is not None:
                return resp
        dry_run = params.dry_run
        if verb in ("create", "update", "patch"):
            # fieldValidation (Ignore|Warn|Strict) reaches the schema check through the registry;
            # Warn's findings come back as Warning headers (added by the middleware).
            warnings: list[str] = []
            request["warnings"] = warnings
            FIELD_VALIDATION.set((params.field_validation, warnings))
            WRITE_OPTIONS.set(write_options(params, request.headers))  # fieldManager/force (managedFields)
        if sub is None and info.name is None:
            if verb in ("list", "watch"):
                return await self._list_or_watch(request, kind, tenant, info, params, verb == "watch")
            if verb == "create":
                if tenant is None:
                    raise st.bad_request("cannot create objects in tenant 'all'; name a tenant")
                body = await self._object_body(request)
                if kind.namespaced and info.namespace is None:
                    info.namespace = (body.get("metadata") or {}).get("namespace") or "default"
                obj = await self.registry.create(kind, tenant, info.namespace, body, dry_run=dry_run)
                return _json(obj, 201)
            return await self._delete_collection(request, kind, tenant, info, params)
        assert info.name is not None
        if tenant is None:
            raise st.bad_request("tenant 'all' can only be used to list or watch")
        if kind.namespaced and info.namespace is None:
            info.namespace = "default"
        if verb == "get":
            obj = await self.registry.get(kind, tenant, info.namespace, info.name)
            if sub == "scale":
                return _json(scale_of(kind, obj))
            include = tables.requested(request.headers, request.query)
            if include and sub is None:  # kubectl get KIND NAME: the server's columns
                return _json(
                    table(kind, [obj], int(obj["metadata"].get("resourceVersion") or 0), None, include)
                )
            return _json(obj)
        if verb == "update":
            body = await self._object_body(request)
            if sub == "scale":
                return _json(
                    await self.registry.update_scale(
                        kind, tenant, info.namespace, info.name, body, dry_run=dry_run
                    )
                )
            obj = await self.registry.update(
                kind, tenant, info.namespace, info.name, body, sub, dry_run=dry_run
            )
            return _json(obj)
        if verb == "patch":
            body = await self._body(request)
            obj = await self.registry.patch(
                kind,
                tenant,
                info.namespace,
                info.name,
                request.headers.get("Content-Type", ""),
                body,
                sub,
                dry_run=dry_run,
            )
            opts = WRITE_OPTIONS.get()
            return _json(obj, 201 if opts is not None and opts.created else 200)  # create-on-apply: 201
        if verb == "delete":
            options = params.delete_options(await self._delete_options_body(request))
            obj, _gone = await self.registry.delete(kind, tenant, info.namespace, info.name, options)
            return _json(obj)
        if verb == "create" and sub == "binding":
            body = await self._object_body(request)
            await self.registry.bind(tenant, info.namespace or "default", info.name, body, dry_run=dry_run)
            return _json(st.success_status(), 201)
        raise APIError(405, f"{verb} is not supported on {kind.plural}/{sub}", "MethodNotAllowed")

    async def _delete_options_body(self, request: web.Request) -> dict[str, Any] | None:
        """The DeleteOptions a DELETE may carry (None without a body), type-checked."""
        if not request.can_read_body:
            return None
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise APIError(413, f"DeleteOptions larger than {MAX_BODY} bytes", "RequestEntityTooLarge")
        raw = await request.read()
        if not raw.strip():
            return None
        ct = request.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if ct == PROTOBUF:  # kubectl delete/drain send DeleteOptions in protobuf
            return check_delete_options(protobuf.decode_request(raw))
        return check_delete_options(decode_body(raw, ct if is_yaml(ct) else "application/json"))

    def _selectors(self, params: Params, kind: Kind) -> tuple[LabelSelector, FieldSelector]:
        return params.selectors(field_supported(kind.kind), kind.plural)

    async def _list_or_watch(
        self,
        request: web.Request,
        kind: Kind,
        tenant: str | None,
        info: RequestInfo,
        params: Params,
        watch: bool,
    ) -> web.StreamResponse:
        labels, fields = self._selectors(params, kind)
        namespace = info.namespace
        if tenant is None and namespace is not None and kind.namespaced:
            # /tenants/all/namespaces/NS/...: one namespace name across tenants. The store
            # prefix cannot say that (the tenant comes first), so the namespace filters.
            fields = FieldSelector([*fields.reqs, ("metadata.namespace", "=", namespace)])
        if kind.namespaced and namespace is None:
            ns_field = fields.equality_value("metadata.namespace")
            if ns_field:
                namespace = ns_field
        if watch:
            return await serve_watch(self, request, kind, tenant, namespace, labels, fields, params)
        items, rev, cont = await self.registry.list(
            kind, tenant, namespace, labels, fields, params.limit, params.cont, params.resource_version
        )
        include = tables.requested(request.headers, request.query)
        if include:
            return _json(table(kind, items, rev, cont, include))
        body: dict[str, Any] = {
            "kind": kind.list_kind,
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": str(rev), **({"continue": cont} if cont else {})},
            "items": items,
        }
        return _json(body)

    async def _delete_collection(
        self, request: web.Request, kind: Kind, tenant: str | None, info: RequestInfo, params: Params
    ) -> web.Response:
        if tenant is None:
            raise st.bad_request("cannot delete across tenants")
        labels, fields = self._selectors(params, kind)
        options = params.delete_options(await self._delete_options_body(request))
        items, _, _ = await self.registry.list(kind, tenant, info.namespace, labels, fields)
        deleted = []
        for o in items:
            md = o["metadata"]
            try:
                obj, _ = await self.registry.delete(kind, tenant, md.get("namespace"), md["name"], options)
                deleted.append(obj)
            except APIError as e:
                if e.code != 404:
                    raise
        return _json(
            {"kind": kind.list_kind, "apiVersion": kind.api_version, "metadata": {}, "items": deleted}
        )


def _warning_header(text: str) -> str:
    """An RFC 7234 warning as the Kubernetes API server sends it (code 299, agent ``-``)."""
    text = st.truncate(text.replace('"', "'").replace("\n", " "), 256)
    return f'299 - "{text}"'


def _peercert(request: web.Request) -> dict[str, Any] | None:
    transport = request.transport
    if transport is None:
        return None
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None:
        return None
    cert: dict[str, Any] | None = sslobj.getpeercert()
    return cert


__all__ = ["APIServer"]
