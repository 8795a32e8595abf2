"""The resource metrics API: ``metrics.k8s.io/v1beta1`` NodeMetrics and PodMetrics (``kubectl top``).

What metrics-server adds to a Kubernetes cluster, served by the API server itself: every
request pulls fresh figures from the node agents' ``/stats/summary`` (:mod:`agent.node.stats`,
the kubelet summary API's counterpart; the agent endpoint is the one published on each Node
for ``log``/``exec``), so nothing is written to the store. One agent endpoint serves every node
of its process, so a request costs one fetch per endpoint, not per node::

    GET /apis/metrics.k8s.io/v1beta1/nodes[/NAME]                         NodeMetrics
    GET /apis/metrics.k8s.io/v1beta1[/tenants/T][/namespaces/NS]/pods[/NAME]   PodMetrics

PodMetrics are tenant-scoped like pods: a short path is the caller's tenant, ``/tenants/T``
another tenant (refused to tenants other than the caller's by the tenancy authorizer),
``/tenants/all`` every tenant (system tenant only). NodeMetrics are cluster-scoped and, like
Nodes, only for the system tenant. Authorization is the server's own (``get``/``list`` on
``pods``/``nodes`` in the ``metrics.k8s.io`` group); ``labelSelector`` filters as on the pods
and nodes themselves. A node whose agent does not answer is left out, as metrics-server does.

The kinds are declared as virtual kinds (never stored), so discovery lists the group and
``kubectl top`` finds it. The figures of the last pull are also exported on ``/metrics`` for
Prometheus (a scrape of ``/metrics`` refreshes them when they are older than
:data:`SCRAPE_MAX_AGE` seconds).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from ctl.apiserver import status as st
from ctl.apiserver.auth import Identity
from ctl.apiserver.paths import ALL_TENANTS, RequestInfo
from ctl.apiserver.podsub import AGENT_ENDPOINT_ANNOTATION
from ctl.types import kinds
from ctl.types.selectors import FieldSelector, LabelSelector, SelectorError

log = logging.getLogger("centaurus.apiserver.metrics")

GROUP, VERSION = kinds.METRICS_GROUP, kinds.METRICS_VERSION
API_VERSION = f"{GROUP}/{VERSION}"
NODE_METRICS, POD_METRICS = kinds.NODE_METRICS, kinds.POD_METRICS
PATH = re.compile(
    r"^/apis/metrics\.k8s\.io/v1beta1"
    r"(?:/tenants/(?P<tenant>[^/]+))?(?:/namespaces/(?P<ns>[^/]+))?"
    r"/(?P<res>nodes|pods)(?:/(?P<name>[^/]+))?/?$"
)
FETCH_TIMEOUT = 5.0
SCRAPE_MAX_AGE = 10.0


def cpu_quantity(nano_cores: int) -> str:
    return f"{int(nano_cores)}n"


def memory_quantity(nbytes: int) -> str:
    return f"{int(nbytes) // 1024}Ki"


def _usage(entry: dict[str, Any]) -> dict[str, str] | None:
    cpu = (entry.get("cpu") or {}).get("usageNanoCores")
    mem = (entry.get("memory") or {}).get("workingSetBytes")
    if not isinstance(cpu, int) or not isinstance(mem, int):
        return None
    return {"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)}


async def fetch_summary(endpoint: str, node: str | None = None) -> dict[str, Any]:
    """One agent endpoint's ``/stats/summary`` (``unix:///path`` or ``http://host:port``)."""
    if endpoint.startswith("unix://"):
        conn: aiohttp.BaseConnector = aiohttp.UnixConnector(path=endpoint[len("unix://") :])
        base = "http://agent"
    else:
        conn, base = aiohttp.TCPConnector(), endpoint.rstrip("/")
    params = {"node": node} if node else {}
    async with aiohttp.ClientSession(connector=conn) as s:
        async with s.get(
            f"{base}/stats/summary", params=params, timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        ) as r:
            if r.status != 200:
                raise OSError(f"{endpoint}/stats/summary answered {r.status}")
            out: dict[str, Any] = orjson.loads(await r.read())
            return out


class MetricsAPI:
    """Serves the metrics paths and keeps the last figures for ``/metrics``."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.nodes_kind = kinds.by_resource("v1", "nodes")
        self.pods_kind = kinds.by_resource("v1", "pods")
        # node name -> its latest summary entry, and when it was pulled
        self.last: dict[str, dict[str, Any]] = {}
        self.pulled_at = 0.0

    # ------------------------------------------------------------------ pulling
    def _endpoint(self, node: dict[str, Any]) -> str:
        return str(
            ((node.get("metadata") or {}).get("annotations") or {}).get(AGENT_ENDPOINT_ANNOTATION) or ""
        )

    async def summaries(self, node_names: set[str] | None) -> dict[str, dict[str, Any]]:
        """node name -> summary entry, for ``node_names`` (None: every node), one fetch per endpoint."""
        assert self.nodes_kind is not None
        by_endpoint: dict[str, set[str]] = {}
        for node in self.server.cache.list(self.nodes_kind, self.nodes_kind.prefix()):
            name = node["metadata"]["name"]
            ep = self._endpoint(node)
            if ep and (node_names is None or name in node_names):
                by_endpoint.setdefault(ep, set()).add(name)
        eps = list(by_endpoint)

        async def one(ep: str) -> dict[str, Any]:
            names = by_endpoint[ep]
            try:
                return await fetch_summary(ep, next(iter(names)) if len(names) == 1 else None)
            except (OSError, aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as e:
                log.info("metrics: agent endpoint %s did not answer: %s", ep, e)
                return {}

        out: dict[str, dict[str, Any]] = {}
        for ep, doc in zip(eps, await asyncio.gather(*(one(ep) for ep in eps)), strict=True):
            for entry in doc.get("nodes") or []:
                if isinstance(entry, dict) and entry.get("nodeName") in by_endpoint[ep]:
                    out[entry["nodeName"]] = entry
        if node_names is None:
            self.last, self.pulled_at = out, time.monotonic()
        else:
            self.last.update(out)
        return out

    # ------------------------------------------------------------------ objects
    def node_metrics(self, node: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any] | None:
        usage = _usage(entry)
        if usage is None:
            return None
        md = node["metadata"]
        return {
            "kind": "NodeMetrics",
            "apiVersion": API_VERSION,
            "metadata": {
                "name": md["name"],
                "creationTimestamp": entry.get("timestamp"),
                "labels": md.get("labels") or {},
            },
            "timestamp": entry.get("timestamp"),
            "window": entry.get("window", "0s"),
            "usage": usage,
        }

    def pod_metrics(self, pod: dict[str, Any], entry: dict[str, Any], ps: dict[str, Any]) -> dict[str, Any]:
        md = pod["metadata"]
        containers = []
        for c in ps.get("containers") or []:
            usage = _usage(c)
            if usage is not None:
                containers.append({"name": c.get("name", ""), "usage": usage})
        return {
            "kind": "PodMetrics",
            "apiVersion": API_VERSION,
            "metadata": {
                "name": md["name"],
                "namespace": md.get("namespace"),
                "tenant": md.get("tenant"),
                "creationTimestamp": entry.get("timestamp"),
                "labels": md.get("labels") or {},
            },
            "timestamp": entry.get("timestamp"),
            "window": entry.get("window", "0s"),
            "containers": containers,
        }

    # ------------------------------------------------------------------ serving
    async def serve(self, request: web.Request, m: re.Match[str]) -> web.Response:
        if request.method != "GET":
            raise st.APIError(405, "the metrics API only answers GET (get, list)", "MethodNotAllowed")
        ident: Identity = request["identity"]
        res, name, ns, tenant_seg = m["res"], m["name"], m["ns"], m["tenant"]
        kind = NODE_METRICS if res == "nodes" else POD_METRICS
        verb = "get" if name else "list"
        request["verb"], request["resource"] = verb, f"{res}.{GROUP}"
        info = RequestInfo(kind, tenant_seg, ns if kind is POD_METRICS else None, name, None)
        if kind is NODE_METRICS and (tenant_seg or ns):
            raise st.APIError(404, f"the server could not find the requested resource (path {request.path})")
        tenant: str | None = ""
        if kind is POD_METRICS:
            tenant = (
                ident.tenant if tenant_seg is None else (None if tenant_seg == ALL_TENANTS else tenant_seg)
            )
            if tenant is None and not ident.is_system:
                raise st.forbidden(
                    f'pods.{GROUP} is forbidden: User "{ident.user}" cannot list resources across tenants'
                )
            if tenant is None and name:
                raise st.bad_request("tenant 'all' can only be used to list")
        self.server.authorize(ident, verb, info, tenant)
        try:
            labels = LabelSelector.parse(request.query.get("labelSelector"))
        except SelectorError as e:
            raise st.bad_request(f"labelSelector: {e}") from None
        if kind is NODE_METRICS:
            return await self._nodes(name, labels)
        return await self._pods(tenant, ns or (name and "default") or None, name, labels)

    async def _nodes(self, name: str | None, labels: LabelSelector) -> web.Response:
        nk = self.nodes_kind
        assert nk is not None
        if name:
            node = self.server.cache.get(nk, nk.key("", "", name))
            entry = (await self.summaries({name})).get(name) if node is not None else None
            obj = self.node_metrics(node, entry) if node is not None and entry is not None else None
            if obj is None:
                raise st.APIError(404, f'nodemetrics.{GROUP} "{name}" not found', "NotFound")
            return _json(obj)
        nodes = [
            n for n in self.server.cache.list(nk, nk.prefix()) if labels.matches(n["metadata"].get("labels"))
        ]
        got = await self.summaries(None if labels.empty else {n["metadata"]["name"] for n in nodes})
        items = []
        for n in nodes:
            entry = got.get(n["metadata"]["name"])
            obj = self.node_metrics(n, entry) if entry is not None else None
            if obj is not None:
                items.append(obj)
        return _json({"kind": "NodeMetricsList", "apiVersion": API_VERSION, "metadata": {}, "items": items})

    async def _pods(
        self, tenant: str | None, ns: str | None, name: str | None, labels: LabelSelector
    ) -> web.Response:
        pk = self.pods_kind
        assert pk is not None
        pods, _, _ = await self.server.registry.list(pk, tenant, ns, labels, FieldSelector([]))
        if name:
            pods = [p for p in pods if p["metadata"]["name"] == name]
        pods = [p for p in pods if (p.get("spec") or {}).get("nodeName")]
        got = await self.summaries({p["spec"]["nodeName"] for p in pods}) if pods else {}
        by_uid: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for entry in got.values():
            for ps in entry.get("pods") or []:
                uid = (ps.get("podRef") or {}).get("uid")
                if uid:
                    by_uid[uid] = (entry, ps)
        items = []
        for p in pods:
            found = by_uid.get(p["metadata"].get("uid", ""))
            if found is not None:
                obj = self.pod_metrics(p, *found)
                if obj["containers"]:
                    items.append(obj)
        if name:
            if not items:
                raise st.APIError(404, f'podmetrics.{GROUP} "{name}" not found', "NotFound")
            return _json(items[0])
        return _json({"kind": "PodMetricsList", "apiVersion": API_VERSION, "metadata": {}, "items": items})

    # ------------------------------------------------------------------ Prometheus
    def exposition(self) -> list[str]:
        """The last pulled figures as Prometheus gauges (a collector of :class:`ctl.apiserver.metrics.Metrics`)."""
        node_cpu = ["# TYPE centaurus_node_cpu_usage_cores gauge"]
        node_mem = ["# TYPE centaurus_node_memory_working_set_bytes gauge"]
        pod_cpu = ["# TYPE centaurus_container_cpu_usage_cores gauge"]
        pod_mem = ["# TYPE centaurus_container_memory_working_set_bytes gauge"]
        for node, entry in sorted(self.last.items()):
            cpu = (entry.get("cpu") or {}).get("usageNanoCores")
            mem = (entry.get("memory") or {}).get("workingSetBytes")
            if isinstance(cpu, int):
                node_cpu.append(f'centaurus_node_cpu_usage_cores{{node="{_esc(node)}"}} {cpu / 1e9:.9f}')
            if isinstance(mem, int):
                node_mem.append(f'centaurus_node_memory_working_set_bytes{{node="{_esc(node)}"}} {mem}')
            for ps in entry.get("pods") or []:
                ref = ps.get("podRef") or {}
                base = (
                    f'node="{_esc(node)}",tenant="{_esc(ref.get("tenant"))}",'
                    f'namespace="{_esc(ref.get("namespace"))}",pod="{_esc(ref.get("name"))}"'
                )
                for c in ps.get("containers") or []:
                    labels = f'{base},container="{_esc(c.get("name"))}"'
                    cpu = (c.get("cpu") or {}).get("usageNanoCores")
                    mem = (c.get("memory") or {}).get("workingSetBytes")
                    if isinstance(cpu, int):
                        pod_cpu.append(f"centaurus_container_cpu_usage_cores{{{labels}}} {cpu / 1e9:.9f}")
                    if isinstance(mem, int):
                        pod_mem.append(f"centaurus_container_memory_working_set_bytes{{{labels}}} {mem}")
        return node_cpu + node_mem + pod_cpu + pod_mem

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/apis/metrics.k8s.io/v1beta1/") and path.rstrip("/") != f"/apis/{API_VERSION}":
            m = PATH.match(path)
            if m is None:
                raise st.APIError(404, f"the server could not find the requested resource (path {path:.200})")
            return await self.serve(request, m)
        if path == "/metrics" and time.monotonic() - self.pulled_at > SCRAPE_MAX_AGE:
            try:
                await asyncio.wait_for(self.summaries(None), FETCH_TIMEOUT + 1)
            except TimeoutError:
                log.info("metrics: agents did not answer in time for /metrics")
        return await handler(request)


def _esc(v: Any) -> str:
    return str(v or "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _json(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def install(server: Any) -> MetricsAPI:
    """Serve the metrics API on ``server`` and add its figures to ``/metrics``."""
    api = MetricsAPI(server)
    server.app.middlewares.append(api.middleware)
    server.metrics.collectors.append(api.exposition)
    server.metrics_api = api
    return api


__all__ = ["NODE_METRICS", "POD_METRICS", "MetricsAPI", "install"]
