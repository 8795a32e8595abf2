"""Watch streams: one JSON event per line, from the watch cache to the client.

:func:`serve_watch` answers ``?watch=1``: it checks the requested resourceVersion against
the store's compaction (410 Gone when too old), then pumps the watch cache's events for the
kind, prefix and selectors into a queue and writes them as chunked JSON lines, coalescing
what is queued into one write. It sends BOOKMARK events when the client allows them and
nothing else happened for 30 s, renders each event as a one-row Table for ``kubectl get -w``,
ends after ``timeoutSeconds`` (default 30 minutes) or when the server shuts down, and turns a
compaction in the middle of the stream into an ERROR event with a 410 Status, as Kubernetes does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from ctl.apiserver import status as st
from ctl.apiserver import tables
from ctl.apiserver.params import Params
from ctl.store import CompactedError
from ctl.types.kinds import Kind
from ctl.types.selectors import FieldSelector, LabelSelector


async def serve_watch(
    server: Any,
    request: web.Request,
    kind: Kind,
    tenant: str | None,
    namespace: str | None,
    labels: LabelSelector,
    fields: FieldSelector,
    params: Params,
) -> web.StreamResponse:
    rv = params.resource_version
    after = None if rv in (None, "", "0") else int(rv)
    timeout = 1800.0 if params.timeout_seconds is None else float(params.timeout_seconds)
    bookmarks = params.allow_watch_bookmarks
    prefix = kind.prefix(tenant, namespace)
    if after is not None:
        compacted = await server.store.compacted_revision()
        if after < compacted:
            raise st.gone(f"too old resource version: {after} ({compacted})")
    resp = web.StreamResponse(headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    await resp.prepare(request)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    gen = server.cache.watch(kind, prefix, after, labels, fields)

    include = tables.requested(request.headers, request.query)

    async def pump() -> None:
        first = True
        try:
            async for typ, obj in gen:
                if include:  # kubectl get -w: one Table row per event, column definitions once
                    rv = int(obj.get("metadata", {}).get("resourceVersion") or 0)
                    obj = tables.table(kind, [obj], rv, None, include, headers=first)
                    first = False
                queue.put_nowait(orjson.dumps({"type": typ, "object": obj}) + b"\n")
        except CompactedError as e:
            err = st.gone(f"too old resource version: {e.requested} ({e.compacted})").body()
            queue.put_nowait(orjson.dumps({"type": "ERROR", "object": err}) + b"\n")
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(pump())
    stop = asyncio.create_task(server.shutting_down.wait())
    server.metrics.watchers += 1
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            get = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {get, stop}, timeout=min(remaining, 30.0), return_when=asyncio.FIRST_COMPLETED
            )
            if get not in done:
                get.cancel()
                if stop in done:
                    break
                if bookmarks:
                    bm = {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": kind.kind,
                            "apiVersion": kind.api_version,
                            "metadata": {"resourceVersion": str(server.cache.revision)},
                        },
                    }
                    await resp.write(orjson.dumps(bm) + b"\n")
                continue
            line = get.result()
            if line is None:
                break
            chunk = [line]
            while not queue.empty():
                nxt = queue.get_nowait()
                if nxt is None:
                    queue.put_nowait(None)
                    break
                chunk.append(nxt)
            await resp.write(b"".join(chunk))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        server.metrics.watchers -= 1
        stop.cancel()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        await gen.aclose()  # type: ignore[attr-defined]
    try:
        await resp.write_eof()
    except (ConnectionResetError, RuntimeError):
        pass
    return resp
