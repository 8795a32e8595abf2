"""HTTP/JSON API of the transit daemon (aiohttp), served on a Unix socket and optionally TCP.

    GET    /healthz                         "ok"
    GET    /v1/status                       host, substrate, loaded/mode, attachments, object counts
    POST   /v1/load      {"mode": "auto|native|generic", "agent_hook": "xdp|tc"}  attach the programs
    POST   /v1/unload                       detach them (maps stay pinned)
    GET    /v1/counters                     {"transit_xdp": {reason: n}, "transit_agent": {...}}
    DELETE /v1/counters                     reset them
    GET    /v1/dump                         every map, decoded (config, ..., ep_cache, counters)
    GET    /v1/learned  DELETE /v1/learned  learned direct paths (list / flush)
    GET    /v1/{kind}                       list; kind = substrates|vpcs|nets|endpoints|agents
    PUT    /v1/{kind}    object or [objects] create or replace (all validated before any write)
    GET    /v1/{kind}/{key}                 one object
    DELETE /v1/{kind}/{key}                 delete it

Keys: substrates/IP, vpcs/VNI, nets/VNI/CIDR (e.g. nets/100/10.0.1.0/24), endpoints/VNI/IP,
agents/VETH. Errors are Kubernetes-style Status objects with a one-line message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agent.transit import loader, model
from agent.transit.host import TransitHost

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REASONS = {400: "BadRequest", 404: "NotFound", 409: "Conflict", 422: "Invalid", 500: "InternalError"}


def status_error(code: int, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
        "code": code,
    }
    return web.json_response(body, status=code)


def _ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, indent=None))


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except model.Invalid as e:
        return status_error(422, str(e))
    except model.NotFound as e:
        return status_error(404, str(e))
    except model.Conflict as e:
        return status_error(409, str(e))
    except loader.LoaderError as e:
        return status_error(500, str(e))
    except Exception as e:  # last resort: still one line, never a traceback to the client
        return status_error(500, f"{type(e).__name__}: {e}")


async def _json(request: web.Request, default: Any = None) -> Any:
    if not request.can_read_body:
        if default is not None:
            return default
        raise model.Invalid("request body required (JSON)")
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError) as e:
        raise model.Invalid(f"request body is not valid JSON: {e}") from e


def make_app(host: TransitHost) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=16 * 1024 * 1024)
    r = app.router

    async def run(fn: Callable[..., Any], *a: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *a)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def status(_: web.Request) -> web.Response:
        return _ok(await run(host.status))

    async def load(req: web.Request) -> web.Response:
        body = await _json(req, default={})
        if not isinstance(body, dict) or set(body) - {"mode", "agent_hook"}:
            raise model.Invalid('load: body is {"mode": "auto|native|generic", "agent_hook": "xdp|tc"}')
        return _ok(await run(host.load, body.get("mode", "auto"), body.get("agent_hook")))

    async def unload(_: web.Request) -> web.Response:
        return _ok(await run(host.unload))

    async def counters(_: web.Request) -> web.Response:
        return _ok(host.maps.counters())

    async def reset_counters(_: web.Request) -> web.Response:
        host.maps.reset_counters()
        return _ok(host.maps.counters())

    async def dump(_: web.Request) -> web.Response:
        return _ok(await run(host.maps.dump))

    async def learned(_: web.Request) -> web.Response:
        return _ok(host.maps.learned())

    async def flush_learned(_: web.Request) -> web.Response:
        return _ok({"flushed": host.maps.flush_learned()})

    async def list_(req: web.Request) -> web.Response:
        return _ok(await run(host.list, req.match_info["kind"]))

    async def put(req: web.Request) -> web.Response:
        body = await _json(req)
        return _ok(await run(host.put, req.match_info["kind"], body))

    async def get(req: web.Request) -> web.Response:
        return _ok(await run(host.get, req.match_info["kind"], req.match_info["key"]))

    async def delete(req: web.Request) -> web.Response:
        return _ok(await run(host.delete, req.match_info["kind"], req.match_info["key"]))

    r.add_get("/healthz", healthz)
    r.add_get("/v1/status", status)
    r.add_post("/v1/load", load)
    r.add_post("/v1/unload", unload)
    r.add_get("/v1/counters", counters)
    r.add_delete("/v1/counters", reset_counters)
    r.add_get("/v1/dump", dump)
    r.add_get("/v1/learned", learned)
    r.add_delete("/v1/learned", flush_learned)
    r.add_get("/v1/{kind}", list_)
    r.add_put("/v1/{kind}", put)
    r.add_get("/v1/{kind}/{key:.+}", get)
    r.add_delete("/v1/{kind}/{key:.+}", delete)
    return app
