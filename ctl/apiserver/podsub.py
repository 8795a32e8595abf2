"""Pod subresources that reach past the store: ``log``, ``exec``, ``attach``, ``portforward`` and ``action``.

``log``, ``exec``, ``attach`` and ``portforward`` are proxied to the node agent that runs the
pod (as kube-apiserver proxies to the kubelet). The agent publishes its endpoint on its Node
in the ``centaurus.io/agent-endpoint`` annotation; the log proxy streams the agent's answer
back unchanged, so ``centaurusctl logs -f`` follows in real time.

``exec``, ``attach`` and ``portforward`` are the Kubernetes streaming protocols: an upgraded
request (WebSocket ``v5.channel.k8s.io`` and its predecessors, or SPDY/3.1) is checked here
(the pod exists in the caller's tenant, is scheduled and not finished, the container is one of
its containers, it is not a VM pod for exec/attach) and then relayed by
:mod:`ctl.apiserver.streaming`. Authorization is Kubernetes': ``create`` on ``pods/exec``,
``pods/attach`` and ``pods/portforward``, WebSocket GETs included. A plain ``POST`` to
``exec`` with ``{"command": [...], "container": ...}`` keeps the one-shot JSON form the CLI's
non-interactive path uses.

``action`` is the Arktos Action API: ``POST .../pods/NAME/action`` with
``{"kind": "CustomAction", "operation": "reboot|snapshot|restore|stop|start", ...}``
creates an ``Action`` object named ``{operation}-{unixtime}`` that records the node,
the pod and the operation's parameters, and answers a Status naming it. The agent of
that node (and only it) performs the action and writes the Action's status. With
``dryRun=All`` the Action is checked but not created.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from aiohttp import web

from ctl.apiserver import status as st
from ctl.apiserver.auth import Identity
from ctl.apiserver.paths import RequestInfo
from ctl.apiserver.status import APIError
from ctl.apiserver.streaming import portforward, remotecommand
from ctl.apiserver.streaming import transport as tp
from ctl.types import kinds
from ctl.types.actions import ACTION_OPERATIONS

AGENT_ENDPOINT_ANNOTATION = "centaurus.io/agent-endpoint"


def install(server: Any) -> None:
    server.subresource_handlers[("pods", "log")] = _log
    server.subresource_handlers[("pods", "exec")] = _exec
    server.subresource_handlers[("pods", "attach")] = _attach
    server.subresource_handlers[("pods", "portforward")] = _portforward
    server.subresource_handlers[("pods", "action")] = _action


def _where(ident: Identity, info: RequestInfo) -> tuple[str, str]:
    """(tenant, namespace) the request addresses; a short path means the caller's tenant."""
    return (info.tenant if info.tenant is not None else ident.tenant), info.namespace or "default"


async def _pod(server: Any, ident: Identity, info: RequestInfo) -> dict[str, Any]:
    pk = kinds.by_resource("v1", "pods")
    assert pk and info.name
    tenant, ns = _where(ident, info)
    pod: dict[str, Any] = await server.registry.get(pk, tenant, ns, info.name)
    return pod


async def _pod_and_agent(
    server: Any, request: web.Request, ident: Identity, info: RequestInfo
) -> tuple[dict[str, Any], str]:
    nk = kinds.by_resource("v1", "nodes")
    assert nk
    pod = await _pod(server, ident, info)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise APIError(
            400,
            f'pod "{info.name}" is not scheduled to a node yet; there is nothing to read or run',
            "BadRequest",
        )
    node = server.registry.cache.get(nk, nk.key("", "", node_name))
    if node is None:
        raise APIError(404, f'node "{node_name}" of pod "{info.name}" is not registered', "NotFound")
    endpoint = ((node.get("metadata") or {}).get("annotations") or {}).get(AGENT_ENDPOINT_ANNOTATION)
    if not endpoint:
        raise APIError(
            503, f'the agent of node "{node_name}" has not published an endpoint', "ServiceUnavailable"
        )
    return pod, endpoint.rstrip("/")


def _connector(endpoint: str) -> tuple[aiohttp.BaseConnector, str]:
    if endpoint.startswith("unix://"):
        return aiohttp.UnixConnector(path=endpoint[len("unix://") :]), "http://agent"
    return aiohttp.TCPConnector(), endpoint


async def _log(server: Any, request: web.Request, ident: Identity, info: RequestInfo) -> web.StreamResponse:
    if request.method != "GET":
        raise APIError(405, "pods/log only supports GET", "MethodNotAllowed")
    pod, endpoint = await _pod_and_agent(server, request, ident, info)
    md = pod["metadata"]
    params = {
        k: v
        for k, v in request.query.items()
        if k in ("container", "follow", "tailLines", "previous", "timestamps")
    }
    conn, base = _connector(endpoint)
    url = f"{base}/pods/{md['tenant']}/{md['namespace']}/{md['name']}/log"
    async with aiohttp.ClientSession(connector=conn) as s:
        try:
            async with s.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
            ) as up:
                if up.status >= 400:
                    body = await up.read()
                    return web.Response(body=body, status=up.status, content_type="application/json")
                resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except aiohttp.ClientConnectionError as e:
            raise _unreachable(pod, endpoint, e) from None


def _unreachable(pod: dict[str, Any], endpoint: str, e: Exception) -> APIError:
    return APIError(
        503,
        f"cannot reach the agent of node {pod['spec']['nodeName']} at {endpoint}: {e}",
        "ServiceUnavailable",
    )


def _container(pod: dict[str, Any], request: web.Request) -> str:
    """The container a stream addresses: ``container=`` or the pod's only one (as kube-apiserver)."""
    names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    name = request.query.get("container", "")
    pod_name = pod["metadata"]["name"]
    if not name:
        if len(names) == 1:
            return str(names[0])
        raise st.bad_request(
            f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(names)}]"
        )
    if name not in names:
        raise st.bad_request(f"container {name} is not valid for pod {pod_name}")
    return name


async def _stream_target(
    server: Any, request: web.Request, ident: Identity, info: RequestInfo, what: str
) -> tuple[dict[str, Any], str, str]:
    """(pod, agent endpoint, agent path) of a streaming request, after every check that can be a Status."""
    if not tp.is_upgrade(request):
        raise st.bad_request(
            f"Upgrade request required: pods/{what} is a streaming protocol (WebSocket or SPDY/3.1)"
        )
    pod = await _pod(server, ident, info)
    spec = pod.get("spec") or {}
    if spec.get("virtualMachine") and what != "portforward":
        raise st.bad_request(
            f'pod "{info.name}" is a virtual machine: {what} runs in containers; '
            "use the VM's console (centaurusctl logs) or ssh into the guest"
        )
    if spec.get("virtualMachine"):
        raise st.bad_request(
            f'pod "{info.name}" is a virtual machine: port-forward into VM guests is not supported yet'
        )
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise st.bad_request(f"cannot {what} into a container in a completed pod; current phase is {phase}")
    pod, endpoint = await _pod_and_agent(server, request, ident, info)
    md = pod["metadata"]
    return pod, endpoint, f"/pods/{md['tenant']}/{md['namespace']}/{md['name']}/{what}"


async def _stdio(
    server: Any, request: web.Request, ident: Identity, info: RequestInfo, what: str
) -> web.StreamResponse:
    pod, endpoint, path = await _stream_target(server, request, ident, info, what)
    opts = remotecommand.StdioOptions.from_query(request.query, _container(pod, request), what == "exec")
    return await remotecommand.serve(request, endpoint, path, opts)


async def _attach(
    server: Any, request: web.Request, ident: Identity, info: RequestInfo
) -> web.StreamResponse:
    return await _stdio(server, request, ident, info, "attach")


async def _portforward(
    server: Any, request: web.Request, ident: Identity, info: RequestInfo
) -> web.StreamResponse:
    pod, endpoint, path = await _stream_target(server, request, ident, info, "portforward")
    return await portforward.serve(request, endpoint, path, pod["metadata"]["name"])


async def _exec(server: Any, request: web.Request, ident: Identity, info: RequestInfo) -> web.StreamResponse:
    if tp.is_upgrade(request) or request.method != "POST":
        return await _stdio(server, request, ident, info, "exec")
    body = await server._object_body(request)
    cmd = body.get("command")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise st.bad_request('exec needs "command": a non-empty list of strings')
    pod, endpoint = await _pod_and_agent(server, request, ident, info)
    md = pod["metadata"]
    conn, base = _connector(endpoint)
    url = f"{base}/pods/{md['tenant']}/{md['namespace']}/{md['name']}/exec"
    async with aiohttp.ClientSession(connector=conn) as s:
        try:
            async with s.post(
                url,
                json=body,
                timeout=aiohttp.ClientTimeout(total=float(body.get("timeoutSeconds", 60)) + 10),
            ) as up:
                payload = await up.read()
                return web.Response(body=payload, status=up.status, content_type="application/json")
        except aiohttp.ClientConnectionError as e:
            raise _unreachable(pod, endpoint, e) from None


async def _action(
    server: Any, request: web.Request, ident: Identity, info: RequestInfo
) -> web.StreamResponse:
    if request.method != "POST":
        raise APIError(405, "pods/action only supports POST", "MethodNotAllowed")
    body = await server._object_body(request)
    op = body.get("operation")
    if op not in ACTION_OPERATIONS:
        raise st.bad_request(
            f"unknown operation {op!r}: supported operations are {', '.join(ACTION_OPERATIONS)}"
        )
    ak = kinds.by_resource("v1", "actions")
    assert ak and info.name
    tenant, ns = _where(ident, info)
    pod = await _pod(server, ident, info)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise APIError(
            409, f'pod "{info.name}" is not scheduled to a node yet; actions need a running pod', "Conflict"
        )
    if not (pod.get("spec") or {}).get("virtualMachine"):
        raise st.bad_request(f'pod "{info.name}" is a container pod; actions apply to virtual machine pods')
    dry_run = request["params"].dry_run if "params" in request else False
    params = {k: v for k, v in body.items() if k not in ("kind", "apiVersion", "operation", "metadata")}
    name = f"{op}-{int(time.time())}"
    action: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Action",
        "metadata": {"name": name, "namespace": ns, "labels": {"centaurus.io/pod": info.name}},
        "spec": {
            "nodeName": node,
            "podName": info.name,
            "podID": pod["metadata"]["uid"],
            "operation": op,
            **params,
        },
    }
    for attempt in range(5):
        try:
            created = await server.registry.create(ak, tenant, ns, action, dry_run=dry_run)
            break
        except APIError as e:
            if e.code == 409 and attempt < 4:
                action["metadata"]["name"] = f"{name}-{attempt + 1}"
                continue
            raise
    out = st.success_status(
        {"name": created["metadata"]["name"], "kind": "actions"},
        f"action {created['metadata']['name']} created",
    )
    out["code"] = 201
    import orjson

    return web.Response(body=orjson.dumps(out), status=201, content_type="application/json")
