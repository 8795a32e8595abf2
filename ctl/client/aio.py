"""Async API client used by the CLI and every component.

``Client`` speaks the paths of DESIGN.md §4 over HTTP(S) or a Unix socket
(``unix:///path``). Kinds are given as :class:`~ctl.types.kinds.Kind` or as any name
the CLI accepts (``po``, ``deploy``, ``pods.apps`` ...). ``tenant=None`` uses the short
path (the caller's tenant), ``tenant="all"`` lists across tenants.

``watch`` reconnects by itself from the last resourceVersion it delivered; when the
server answers 410 Gone it raises :class:`WatchExpired`, and the caller relists (the
:class:`~ctl.client.informer.Informer` does this for you).
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ctl.client.kubeconfig import ClientConfig
from ctl.client.kubeconfig import load as load_config
from ctl.types import kinds, streaming
from ctl.types.kinds import Kind
from ctl.types.shapes import WatchEventType


class ApiError(Exception):
    """An API call failed; ``status`` is the server's Status object."""

    def __init__(self, code: int, status: dict[str, Any]) -> None:
        self.code = code
        self.status = status
        self.reason = status.get("reason", "")
        super().__init__(status.get("message") or f"HTTP {code}")


class WatchExpired(ApiError):
    pass


def resolve_kind(kind: Kind | str) -> Kind:
    if isinstance(kind, Kind):
        return kind
    k = kinds.resolve(kind)
    if k is None:
        raise ValueError(f'the server doesn\'t have a resource type "{kind}"')
    return k


def kind_of_object(obj: dict[str, Any]) -> Kind:
    av, k = obj.get("apiVersion"), obj.get("kind")
    if not av or not k:
        raise ValueError("object has no apiVersion/kind")
    found = kinds.by_kind(av, k)
    if found is None:
        raise ValueError(f'no kind "{k}" is registered for version "{av}"')
    return found


class Client:
    def __init__(self, config: ClientConfig, timeout: float = 30.0) -> None:
        self.config = config
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._base = config.server
        self._headers = {"Accept": "application/json", "User-Agent": "centaurusctl"}
        self.warnings: list[str] = []  # the servers' Warning headers (RFC 7234 "299 - text"), oldest first
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None, **kw: Any) -> Client:
        return cls(load_config(path, context), **kw)

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self._base.startswith("https://"):
            return False
        ctx = ssl.create_default_context()
        if self.config.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.config.ca_data:
            ctx.load_verify_locations(cadata=self.config.ca_data.decode())
        if self.config.cert_data and self.config.key_data:
            with tempfile.NamedTemporaryFile("wb") as c, tempfile.NamedTemporaryFile("wb") as k:
                c.write(self.config.cert_data)
                c.flush()
                k.write(self.config.key_data)
                k.flush()
                ctx.load_cert_chain(c.name, k.name)
        return ctx

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if self._base.startswith("unix://"):
                connector: aiohttp.BaseConnector = aiohttp.UnixConnector(
                    path=self._base[len("unix://") :], limit=256
                )
                self._url = "http://localhost"
            else:
                connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=256)
                self._url = self._base
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, json_serialize=lambda o: orjson.dumps(o).decode()
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ raw
    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        s = await self.session()
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        p = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with s.request(
                method,
                self._url + path,
                data=data,
                params=p,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                payload = await resp.read()
                self.warnings += resp.headers.getall("Warning", [])
                if resp.status >= 400:
                    raise self._error(resp.status, payload)
                if raw:
                    return payload
                if not payload:
                    return None
                ct = resp.headers.get("Content-Type", "")
                return orjson.loads(payload) if "json" in ct else payload.decode(errors="replace")
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            raise self._unreachable(e) from None

    def _unreachable(self, e: Exception) -> ConnectionError:
        """The one-line error for a server that cannot be reached or did not answer in time."""
        if isinstance(e, TimeoutError):
            return ConnectionError(f"the API server at {self._base} did not answer within {self.timeout:g}s")
        return ConnectionError(f"cannot reach the API server at {self._base}: {e}")

    @staticmethod
    def _error(code: int, payload: bytes) -> ApiError:
        try:
            st = orjson.loads(payload)
            if not isinstance(st, dict):
                raise ValueError
        except ValueError:
            st = {
                "kind": "Status",
                "status": "Failure",
                "code": code,
                "message": payload.decode(errors="replace")[:500],
            }
        if code == 410:
            return WatchExpired(code, st)
        return ApiError(code, st)

    # ------------------------------------------------------------------ paths
    def path(
        self,
        kind: Kind | str,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        tenant: str | None = None,
    ) -> str:
        k = resolve_kind(kind)
        p = f"/api/{k.version}" if not k.group else f"/apis/{k.group}/{k.version}"
        if tenant is not None and k.scope != kinds.CLUSTER:
            p += f"/tenants/{quote(tenant)}"
        if k.namespaced and namespace:
            p += f"/namespaces/{quote(namespace)}"
        p += f"/{k.plural}"
        if name:
            p += f"/{quote(name)}"
            if subresource:
                p += f"/{subresource}"
        return p

    def object_path(
        self, obj: dict[str, Any], subresource: str | None = None, tenant: str | None = None
    ) -> str:
        k = kind_of_object(obj)
        md = obj.get("metadata") or {}
        t = tenant if tenant is not None else md.get("tenant")
        ns = md.get("namespace") or (self.namespace if k.namespaced else None)
        return self.path(k, ns, md.get("name"), subresource, t)

    # ------------------------------------------------------------------ verbs
    async def get(
        self,
        kind: Kind | str,
        name: str,
        namespace: str | None = None,
        tenant: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        k = resolve_kind(kind)
        r: dict[str, Any] = await self.request(
            "GET",
            self.path(k, namespace or (self.namespace if k.namespaced else None), name, subresource, tenant),
        )
        return r

    async def list(
        self,
        kind: Kind | str,
        namespace: str | None = None,
        tenant: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        params = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit,
            "continue": continue_token,
            "resourceVersion": resource_version,
        }
        r: dict[str, Any] = await self.request(
            "GET", self.path(kind, namespace, tenant=tenant), params=params
        )
        return r

    async def list_all(self, kind: Kind | str, page: int = 500, **kw: Any) -> dict[str, Any]:
        """List every page; returns one list object with all items."""
        out: dict[str, Any] | None = None
        token = None
        while True:
            r = await self.list(kind, limit=page, continue_token=token, **kw)
            if out is None:
                out = r
            else:
                out["items"].extend(r["items"])
            token = r.get("metadata", {}).get("continue")
            if not token:
                out["metadata"].pop("continue", None)
                return out

    async def create(
        self,
        obj: dict[str, Any],
        namespace: str | None = None,
        tenant: str | None = None,
        kind: Kind | str | None = None,
    ) -> dict[str, Any]:
        k = resolve_kind(kind) if kind else kind_of_object(obj)
        md = obj.get("metadata") or {}
        ns = namespace or md.get("namespace") or (self.namespace if k.namespaced else None)
        t = tenant if tenant is not None else md.get("tenant")
        r: dict[str, Any] = await self.request("POST", self.path(k, ns, tenant=t), obj)
        return r

    async def update(
        self, obj: dict[str, Any], subresource: str | None = None, tenant: str | None = None
    ) -> dict[str, Any]:
        r: dict[str, Any] = await self.request("PUT", self.object_path(obj, subresource, tenant), obj)
        return r

    async def update_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.update(obj, "status")

    async def patch(
        self,
        kind: Kind | str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        tenant: str | None = None,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        ct = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[patch_type]
        k = resolve_kind(kind)
        r: dict[str, Any] = await self.request(
            "PATCH",
            self.path(k, namespace or (self.namespace if k.namespaced else None), name, subresource, tenant),
            patch,
            content_type=ct,
        )
        return r

    async def delete(
        self,
        kind: Kind | str,
        name: str,
        namespace: str | None = None,
        tenant: str | None = None,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        k = resolve_kind(kind)
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            body["preconditions"] = preconditions
        r: dict[str, Any] = await self.request(
            "DELETE",
            self.path(k, namespace or (self.namespace if k.namespaced else None), name, tenant=tenant),
            body,
        )
        return r

    async def bind(self, pod: dict[str, Any], node: str) -> None:
        md = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": md["name"], "namespace": md["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await self.request(
            "POST", self.path("pods", md["namespace"], md["name"], "binding", md.get("tenant")), body
        )

    # ------------------------------------------------------------------ log / exec
    async def log_stream(
        self,
        name: str,
        namespace: str | None = None,
        tenant: str | None = None,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        """Yield a pod's log (a container's output, or a VM's console) in chunks as they arrive.

        With ``follow`` the stream stays open until the pod ends or the caller stops
        iterating; the client's timeout does not cut it. ``tail_lines`` keeps only the last
        lines, ``previous`` reads the previous (crashed) instance of the container.
        """
        s = await self.session()
        params = {
            "container": container,
            "follow": "true" if follow else None,
            "tailLines": tail_lines,
            "previous": "true" if previous else None,
        }
        path = self.path("pods", namespace or self.namespace, name, "log", tenant)
        try:
            async with s.get(
                self._url + path,
                params={k: str(v) for k, v in params.items() if v is not None},
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None if follow else self.timeout),
            ) as resp:
                if resp.status >= 400:
                    raise self._error(resp.status, await resp.read())
                async for chunk in resp.content.iter_any():
                    yield chunk
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as e:
            raise self._unreachable(e) from None

    async def logs(
        self,
        name: str,
        namespace: str | None = None,
        tenant: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> bytes:
        """A pod's log as it is now, in one piece (:meth:`log_stream` without ``follow``)."""
        chunks = [
            c
            async for c in self.log_stream(
                name, namespace, tenant, container, tail_lines=tail_lines, previous=previous
            )
        ]
        return b"".join(chunks)

    async def exec(
        self,
        name: str,
        command: Sequence[str],
        namespace: str | None = None,
        tenant: str | None = None,
        container: str | None = None,
    ) -> dict[str, Any]:
        """Run ``command`` in a pod's container to completion.

        Returns ``{"stdout": str, "stderr": str, "exitCode": int}`` as the node agent reports it
        (non-interactive: the pods/exec subresource takes one POST and answers when the command ends).
        """
        r: dict[str, Any] = await self.request(
            "POST",
            self.path("pods", namespace or self.namespace, name, "exec", tenant),
            {"command": [*command], "container": container},
        )
        return r

    async def exec_stream(
        self,
        name: str,
        command: Sequence[str],
        namespace: str | None = None,
        tenant: str | None = None,
        container: str | None = None,
        stdin: bool = False,
        tty: bool = False,
    ) -> aiohttp.ClientWebSocketResponse:
        """Start ``command`` interactively: a WebSocket on ``pods/NAME/exec`` speaking
        ``v5.channel.k8s.io`` (:mod:`ctl.types.streaming`: channel 0 stdin, 1 stdout, 2 stderr,
        3 the final Status, 4 resize, ``[255, 0]`` closes stdin). The caller reads and closes it."""
        s = await self.session()
        params = [("command", c) for c in command] + [("stdout", "1")]
        params += [("stdin", "1")] if stdin else []
        params += [("tty", "1")] if tty else [("stderr", "1")]
        if container:
            params.append(("container", container))
        path = self.path("pods", namespace or self.namespace, name, "exec", tenant)
        try:
            return await s.ws_connect(
                self._url + path, params=params, protocols=(streaming.V5,), heartbeat=30, max_msg_size=0
            )
        except aiohttp.WSServerHandshakeError as e:
            raise ApiError(
                e.status, {"kind": "Status", "status": "Failure", "code": e.status, "message": e.message}
            ) from None
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            raise self._unreachable(e) from None

    # ------------------------------------------------------------------ watch
    async def watch(
        self,
        kind: Kind | str,
        namespace: str | None = None,
        tenant: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        bookmarks: bool = True,
        reconnect: bool = True,
    ) -> AsyncIterator[tuple[WatchEventType, dict[str, Any]]]:
        """Yield (type, object); reconnects from the last resourceVersion seen.

        BOOKMARK events only advance the resourceVersion and are not yielded.
        Raises WatchExpired on 410 Gone (the caller must relist).
        """
        s = await self.session()
        rv = resource_version
        path = self._url + self.path(kind, namespace, tenant=tenant)
        backoff = 0.2
        while True:
            params = {
                "watch": "1",
                "timeoutSeconds": str(timeout_seconds),
                "allowWatchBookmarks": "true" if bookmarks else "false",
            }
            if rv:
                params["resourceVersion"] = rv
            if label_selector:
                params["labelSelector"] = label_selector
            if field_selector:
                params["fieldSelector"] = field_selector
            try:
                async with s.get(
                    path,
                    params=params,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30),
                ) as resp:
                    if resp.status >= 400:
                        raise self._error(resp.status, await resp.read())
                    backoff = 0.2
                    async for line in resp.content:
                        if not line.strip():
                            continue
                        ev = orjson.loads(line)
                        typ, obj = ev.get("type"), ev.get("object") or {}
                        if typ == "ERROR":
                            code = int(obj.get("code", 500))
                            if code == 410:
                                raise WatchExpired(410, obj)
                            raise ApiError(code, obj)
                        new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                        if new_rv:
                            rv = new_rv
                        if typ == "BOOKMARK":
                            continue
                        yield typ, obj
            except (
                aiohttp.ClientConnectionError,
                aiohttp.ClientPayloadError,
                TimeoutError,
                ConnectionError,
            ) as e:
                if not reconnect:
                    raise ConnectionError(f"watch on {path} failed: {e}") from None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not reconnect:
                return
