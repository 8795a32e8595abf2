"""Hollow transit daemons: the transitd RPC without a kernel, counting every request.

For the provisioning benchmark and the operator's tests: one process serves any number of
hollow daemons, each on its own Unix socket (``DIR/NAME.sock``), speaking the same RPC as
``agent/transit/rpc.py`` for what the operator uses (``/healthz``, ``/v1/status``, list/put/
delete of substrates, vpcs, nets, endpoints, agents). Objects are kept in memory, keyed as
the real daemon keys them; a PUT of a list is all or nothing. ``GET /v1/rpcs`` returns the
request counts (``{"PUT endpoints": n, ...}``), ``GET /v1/items`` the entries written and removed
(``{"endpoints": n, ...}``: a batched PUT of 50 endpoints counts one request and 50 entries),
``DELETE /v1/rpcs`` resets both, and
``POST /v1/wipe`` forgets every object and changes the pid (a daemon that restarted empty).

    python -m ctl.network.hollow --dir /tmp/h --names d1,d2,d3    # or --count 100 --prefix d
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

KINDS = ("substrates", "vpcs", "nets", "endpoints", "agents")
_pids = itertools.count(100000)


def _key(kind: str, o: dict[str, Any]) -> str:
    if kind == "substrates":
        return str(o["ip"])
    if kind == "vpcs":
        return str(o["vni"])
    if kind == "nets":
        return f"{o['vni']}/{o['cidr']}"
    if kind == "endpoints":
        return f"{o['vni']}/{o['ip']}"
    return str(o["veth"])


class HollowTransit:
    def __init__(self, name: str) -> None:
        self.name = name
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.rpcs: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.pid = next(_pids)

    def app(self) -> web.Application:
        r = web.RouteTableDef()

        def kind_of(req: web.Request) -> str:
            k = req.match_info["kind"]
            if k not in KINDS:
                raise web.HTTPNotFound(text=f"unknown kind {k}")
            return k

        @r.get("/healthz")
        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        @r.get("/v1/status")
        async def status(_: web.Request) -> web.Response:
            self.rpcs["GET status"] += 1
            return web.json_response(
                {
                    "host": self.name,
                    "pid": self.pid,
                    "loaded": True,
                    "objects": {k: len(v) for k, v in self.objects.items()},
                }
            )

        @r.get("/v1/rpcs")
        async def rpcs(_: web.Request) -> web.Response:
            return web.json_response(dict(self.rpcs))

        @r.get("/v1/items")
        async def items(_: web.Request) -> web.Response:
            return web.json_response(dict(self.items))

        @r.delete("/v1/rpcs")
        async def reset(_: web.Request) -> web.Response:
            self.rpcs.clear()
            self.items.clear()
            return web.json_response({})

        @r.post("/v1/wipe")
        async def wipe(_: web.Request) -> web.Response:
            self.objects = {k: {} for k in KINDS}
            self.pid = next(_pids)
            return web.json_response({"pid": self.pid})

        @r.get("/v1/{kind}")
        async def list_(req: web.Request) -> web.Response:
            k = kind_of(req)
            self.rpcs[f"GET {k}"] += 1
            return web.json_response(list(self.objects[k].values()))

        @r.put("/v1/{kind}")
        async def put(req: web.Request) -> web.Response:
            k = kind_of(req)
            self.rpcs[f"PUT {k}"] += 1
            body = await req.json()
            items = body if isinstance(body, list) else [body]
            self.items[k] += len(items)
            for o in items:
                o = dict(o)
                if k == "endpoints" and o.get("veth"):
                    o["local"] = True
                self.objects[k][_key(k, o)] = o
            return web.json_response(items)

        @r.get("/v1/{kind}/{key:.+}")
        async def get(req: web.Request) -> web.Response:
            k = kind_of(req)
            self.rpcs[f"GET {k}"] += 1
            o = self.objects[k].get(req.match_info["key"])
            if o is None:
                return web.json_response({"kind": "Status", "code": 404, "message": "not found"}, status=404)
            return web.json_response(o)

        @r.delete("/v1/{kind}/{key:.+}")
        async def delete(req: web.Request) -> web.Response:
            k = kind_of(req)
            self.rpcs[f"DELETE {k}"] += 1
            o = self.objects[k].pop(req.match_info["key"], None)
            self.items[k] += 1
            if o is None:
                return web.json_response({"kind": "Status", "code": 404, "message": "not found"}, status=404)
            return web.json_response(o)

        a = web.Application()
        a.add_routes(r)
        return a


async def serve(directory: Path, names: list[str], stop: asyncio.Event) -> None:
    runners = []
    for n in names:
        runner = web.AppRunner(HollowTransit(n).app(), access_log=None)
        await runner.setup()
        await web.UnixSite(runner, str(directory / f"{n}.sock")).start()
        runners.append(runner)
    (directory / "ready").write_text(str(len(names)))
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Hollow transit daemons (count RPCs).")
    p.add_argument("--dir", required=True)
    p.add_argument("--names", default="")
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--prefix", default="d")
    a = p.parse_args(argv)
    names = [n for n in a.names.split(",") if n] + [f"{a.prefix}{i}" for i in range(a.count)]
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(d, names, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
