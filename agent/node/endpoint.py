"""The agent's own HTTP endpoint: container logs and exec, for the API server to proxy.

Served with aiohttp on a TCP address (``--endpoint-address``/``--endpoint-port``, loopback by default)
and/or a Unix socket (``--endpoint-socket``); one endpoint serves every node of the process. Contract
(what ``pods/NAME/log`` and ``pods/NAME/exec`` in the API server forward to)::

    GET  /healthz                                   -> "ok"
    GET  /pods/{tenant}/{namespace}/{name}/log?container=&follow=&tailLines=&previous=
         -> 200 text/plain, the container's output, streamed (chunked) while follow=true
    POST /pods/{tenant}/{namespace}/{name}/exec
         body {"command": ["sh", "-c", "..."], "container": "c1", "timeoutSeconds": 30}
         -> 200 {"exitCode": 0, "stdout": "...", "stderr": "..."}  (text, undecodable bytes replaced)
    GET  /pods/{tenant}/{namespace}/{name}/exec?command=..&stdin=1&tty=1   (WebSocket, v5.channel.k8s.io)
    GET  /pods/{tenant}/{namespace}/{name}/attach?container=&stdin=1&tty=1 (WebSocket, v5.channel.k8s.io)
    GET  /pods/{tenant}/{namespace}/{name}/portforward?port=N              (WebSocket, raw TCP)
         -> the interactive streams of :mod:`agent.node.streams`

``follow``/``previous`` accept ``true|1``; ``tailLines`` a non-negative integer. Errors are Kubernetes
``Status`` objects: 404 NotFound (pod not on this node, unknown container), 400 BadRequest (bad
parameters, bad JSON, container not running for exec) and 500 for a runtime failure. Every node's
``status.daemonEndpoints.kubeletEndpoint.Port`` is the TCP port and its ``centaurus.io/agent-endpoint``
annotation the full base URL (``http://HOST:PORT`` or ``unix:///path``).

There is no authentication: the endpoint only listens on loopback or a Unix socket (mode 0600, root),
which only the API server on the same host reaches.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from agent.node import stats, streams
from agent.node.agent import NodeAgent
from agent.node.podworker import PodWorker
from agent.runtime.base import RuntimeError_
from ctl.types.status import status_body

log = logging.getLogger("centaurus.agent.endpoint")

Lookup = Callable[[str], tuple[NodeAgent, PodWorker] | None]


def status_error(code: int, reason: str, message: str) -> web.Response:
    body = status_body(code, message, reason)
    return web.Response(body=orjson.dumps(body), status=code, content_type="application/json")


_CODES = {
    "NotFound": 404,
    "ContainerNotRunning": 400,
    "InvalidArgument": 400,
    "NotSupported": 400,
    "ExecTimeout": 504,
}


def _runtime_error(e: RuntimeError_) -> web.Response:
    code = _CODES.get(e.reason, 500)
    reason = {404: "NotFound", 400: "BadRequest", 504: "Timeout"}.get(code, "InternalError")
    return status_error(code, reason, str(e))


def _truthy(v: str | None) -> bool:
    return (v or "").lower() in ("1", "true", "yes")


class AgentEndpoint:
    def __init__(self, agents: dict[str, NodeAgent]) -> None:
        self.agents = agents
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/pods/{tenant}/{namespace}/{name}/log", self._log)
        self.app.router.add_post("/pods/{tenant}/{namespace}/{name}/exec", self._exec)
        self.app.router.add_get("/pods/{tenant}/{namespace}/{name}/exec", self._stream_exec)
        self.app.router.add_get("/pods/{tenant}/{namespace}/{name}/attach", self._stream_attach)
        self.app.router.add_get("/pods/{tenant}/{namespace}/{name}/portforward", self._portforward)
        stats.install(self.app, agents)  # GET /stats/summary (agent/node/stats.py)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.socket_path = ""

    def lookup(self, key: str) -> tuple[NodeAgent, PodWorker] | None:
        for a in self.agents.values():
            w = a.pod_by_key(key)
            if w is not None:
                return a, w
        return None

    def _find(self, request: web.Request) -> tuple[NodeAgent, PodWorker] | web.Response:
        m = request.match_info
        key = f"{m['tenant']}/{m['namespace']}/{m['name']}"
        found = self.lookup(key)
        if found is None:
            return status_error(
                404, "NotFound", f'pod "{m["name"]}" in {m["tenant"]}/{m["namespace"]} is not on this node'
            )
        return found

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _log(self, request: web.Request) -> web.StreamResponse:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        agent, w = found
        q = request.query
        tail: int | None = None
        if q.get("tailLines"):
            try:
                tail = int(q["tailLines"])
                if tail < 0:
                    raise ValueError
            except ValueError:
                return status_error(
                    400, "BadRequest", f"tailLines must be a non-negative integer, got {q['tailLines']!r}"
                )
        rt = agent.runtime_of(w.pod)
        if rt is None:
            return status_error(400, "BadRequest", "this node has no runtime for the pod")
        kw: dict[str, Any] = {"previous": True} if _truthy(q.get("previous")) else {}
        try:
            it = await rt.logs(w.uid, q.get("container") or None, _truthy(q.get("follow")), tail, **kw)
        except RuntimeError_ as e:
            return _runtime_error(e)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            async for chunk in it:
                await resp.write(chunk)
        except (ConnectionResetError, RuntimeError_) as e:
            log.debug("log stream of %s ended: %s", w.key, e)
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    async def _exec(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        agent, w = found
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as e:
            return status_error(400, "BadRequest", f"exec body is not valid JSON: {e}")
        if not isinstance(body, dict):
            return status_error(400, "BadRequest", "exec body must be a JSON object")
        cmd = body.get("command")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
            return status_error(400, "BadRequest", 'exec needs "command": a non-empty list of strings')
        try:
            timeout = float(body.get("timeoutSeconds", 30))
        except (TypeError, ValueError):
            return status_error(400, "BadRequest", "timeoutSeconds must be a number")
        rt = agent.runtime_of(w.pod)
        if rt is None:
            return status_error(400, "BadRequest", "this node has no runtime for the pod")
        try:
            res = await rt.exec(w.uid, body.get("container") or None, cmd, timeout=timeout)
        except RuntimeError_ as e:
            return _runtime_error(e)
        out = {
            "exitCode": res.exit_code,
            "stdout": res.stdout.decode(errors="replace"),
            "stderr": res.stderr.decode(errors="replace"),
        }
        return web.Response(body=orjson.dumps(out), content_type="application/json")

    async def _streamed(self, request: web.Request, what: str) -> web.StreamResponse:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        agent, w = found
        rt = agent.runtime_of(w.pod)
        if rt is None:
            return status_error(400, "BadRequest", "this node has no runtime for the pod")
        if what == "portforward":
            return await streams.serve_portforward(request, rt, w.uid)
        return await streams.serve_stdio(request, rt, w.uid, attach=what == "attach")

    async def _stream_exec(self, request: web.Request) -> web.StreamResponse:
        return await self._streamed(request, "exec")

    async def _stream_attach(self, request: web.Request) -> web.StreamResponse:
        return await self._streamed(request, "attach")

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        return await self._streamed(request, "portforward")

    async def start(self, address: str = "127.0.0.1", port: int | None = 0, socket_path: str = "") -> None:
        """Listen on TCP (``port=None`` disables it; 0 picks a free port) and/or a Unix socket."""
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        if port is not None:
            site = web.TCPSite(self.runner, address, port, reuse_address=True)
            await site.start()
            # aiohttp does not expose the bound port otherwise
            socks = getattr(getattr(site, "_server", None), "sockets", None)
            if socks:
                self.port = int(socks[0].getsockname()[1])
            else:
                self.port = port
            self.address = address
        if socket_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)
            os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
            await web.UnixSite(self.runner, socket_path).start()
            os.chmod(socket_path, 0o600)
            self.socket_path = socket_path

    def url(self) -> str:
        """The base URL other components should use (the Unix socket when there is one)."""
        if self.socket_path:
            return f"unix://{self.socket_path}"
        if self.port:
            host = self.address if self.address not in ("0.0.0.0", "::", "") else "127.0.0.1"
            return f"http://{host}:{self.port}"
        return ""

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
