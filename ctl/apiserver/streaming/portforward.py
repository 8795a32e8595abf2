"""``portforward``: TCP connections into a pod, over SPDY, SPDY-in-WebSocket, or WebSocket channels.

* **SPDY** (``Upgrade: SPDY/3.1``, ``X-Stream-Protocol-Version: portforward.k8s.io``) and the same
  SPDY tunnelled in a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``, kubectl 1.31+):
  for every local connection the client opens an ``error`` and a ``data`` stream carrying the same
  ``port`` and ``requestID`` headers (without ``requestID``, as very old clients do, the pair is
  an error stream and the data stream two ids later). Each complete pair becomes one WebSocket to
  the agent (``.../portforward?port=N``), relayed both ways with half-close: the client's FIN on
  the data stream ends our writing to the pod, the pod closing its side is a FIN back. A failure
  is written to the error stream (kubectl prints it); the error stream is closed when the
  connection ends.
* **WebSocket channels** (``v4.channel.k8s.io``, ``portforward.k8s.io``, ``channel.k8s.io`` and
  base64 variants; the Python client's ``portforward``): ``?ports=A,B`` opens one pod connection
  per port at once; port ``i`` uses channel ``2i`` for data and ``2i+1`` for errors, each opened
  by a message holding the port as two little-endian bytes. The socket closes when every pod
  connection has ended, and closing it ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from ctl.apiserver.status import APIError
from ctl.apiserver.streaming import transport as tp
from ctl.apiserver.streaming.remotecommand import open_agent
from ctl.apiserver.streaming.spdy import SpdySession, SpdyStream
from ctl.types import streaming as sp

log = logging.getLogger("centaurus.apiserver.streaming")

Connect = Callable[[int], Awaitable[tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]]]


async def serve(request: web.Request, endpoint: str, path: str, pod_name: str) -> web.StreamResponse:
    """Answer an upgraded port-forward request, relaying each connection to the agent."""

    async def connect(port: int) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
        return await open_agent(endpoint, path, [("port", str(port))], ())

    if tp.is_websocket(request):
        offered = tp.websocket_protocols(request)
        tunnel = sp.SPDY_TUNNEL_PREFIX + sp.PORT_FORWARD
        if tunnel in offered:
            ws = web.WebSocketResponse(protocols=(tunnel,), heartbeat=None, max_msg_size=0)
            await ws.prepare(request)
            await tp.spdy_over_websocket(ws, lambda s: _serve_spdy(s, connect, pod_name))
            return ws
        return await _serve_channels(request, offered, connect, pod_name)
    offered = tp.spdy_protocols(request)
    if offered and sp.PORT_FORWARD not in offered:
        raise APIError(
            403,
            f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
            f"server supports [{sp.PORT_FORWARD}]",
            "Forbidden",
        )
    resp, session = await tp.spdy_upgrade(request, sp.PORT_FORWARD)
    try:
        await _serve_spdy(session, connect, pod_name)
    finally:
        await tp.close_spdy(request, session)
    return resp


# ---------------------------------------------------------------------- SPDY


async def _serve_spdy(session: SpdySession, connect: Connect, pod_name: str) -> None:
    pending: dict[str, dict[str, SpdyStream]] = {}
    tasks: set[asyncio.Task[None]] = set()
    try:
        while (st := await session.accept()) is not None:
            typ = st.header("streamtype")
            if typ not in ("data", "error"):
                st.reset()
                continue
            rid = st.header("requestid") or str(st.id if typ == "error" else st.id - 2)
            pair = pending.setdefault(rid, {})
            if typ in pair:
                st.reset()
                continue
            pair[typ] = st
            if len(pair) == 2:
                del pending[rid]
                t = asyncio.ensure_future(_forward_pair(pair["data"], pair["error"], connect, pod_name))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _forward_pair(data: SpdyStream, error: SpdyStream, connect: Connect, pod_name: str) -> None:
    raw_port = data.header("port")
    try:
        port = sp.parse_port(raw_port)
        client, up = await connect(port)
    except (ValueError, APIError) as e:
        msg = str(e) if isinstance(e, APIError) else f"invalid port {raw_port!r}: {e}"
        await error.write(f"error forwarding port {raw_port} to pod {pod_name}: {msg}".encode())
        await error.close()
        await data.close()
        return

    async def to_pod() -> None:
        while chunk := await data.read():
            await up.send_bytes(chunk)
        if not data.was_reset:
            await up.send_bytes(b"")  # the client is done sending: half-close toward the pod

    async def from_pod() -> None:
        async for msg in up:
            if msg.type == WSMsgType.BINARY:
                if not msg.data:
                    await data.close()
                else:
                    await data.write(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await error.write(f"error forwarding port {port} to pod {pod_name}: {msg.data}".encode())

    a, b = asyncio.ensure_future(to_pod()), asyncio.ensure_future(from_pod())
    c = asyncio.ensure_future(_reset_or_closed(data))
    try:
        await asyncio.wait({b, c}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (a, b, c):
            t.cancel()
        await asyncio.gather(a, b, c, return_exceptions=True)
        await up.close()
        await client.close()
        await data.close()
        await error.close()


async def _reset_or_closed(st: SpdyStream) -> None:
    """Returns when the client reset the stream or the session ended (nothing more will arrive)."""
    while not (st.was_reset or st.session.closed):
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------------- WebSocket channels


def _ports(request: web.Request) -> list[int]:
    raw = [p for v in request.query.getall("ports", []) for p in v.split(",") if p.strip()]
    if not raw:
        raise APIError(400, 'query parameter "ports" is required', "BadRequest")
    try:
        return [sp.parse_port(p.strip()) for p in raw]
    except ValueError as e:
        raise APIError(400, f"invalid port: {e}", "BadRequest") from None


async def _serve_channels(
    request: web.Request, offered: list[str], connect: Connect, pod_name: str
) -> web.StreamResponse:
    ports = _ports(request)
    protocol = sp.pick_protocol(offered, sp.PORT_FORWARD_WS_PROTOCOLS) if offered else ""
    if protocol is None:
        raise APIError(
            403,
            f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
            f"server supports {list(sp.PORT_FORWARD_WS_PROTOCOLS)}",
            "Forbidden",
        )
    codec = protocol or sp.V1
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), heartbeat=None, max_msg_size=0)
    await ws.prepare(request)

    async def send(ch: int, payload: bytes) -> None:
        msg = sp.encode(codec, ch, payload)
        with contextlib.suppress(ConnectionError, RuntimeError):
            if isinstance(msg, str):
                await ws.send_str(msg)
            else:
                await ws.send_bytes(msg)

    ups: list[Any] = []
    for i, port in enumerate(ports):
        await send(2 * i, sp.port_prefix(port))
        await send(2 * i + 1, sp.port_prefix(port))
    for i, port in enumerate(ports):
        try:
            ups.append(await connect(port))
        except APIError as e:
            ups.append(None)
            await send(2 * i + 1, f"error forwarding port {port} to pod {pod_name}: {e}".encode())

    async def from_pod(i: int, up: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in up:
            if msg.type == WSMsgType.BINARY and msg.data:
                await send(2 * i, msg.data)
            elif msg.type == WSMsgType.BINARY:
                return  # the pod closed its side
            elif msg.type == WSMsgType.TEXT:
                await send(
                    2 * i + 1, f"error forwarding port {ports[i]} to pod {pod_name}: {msg.data}".encode()
                )

    async def inbound() -> None:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            got = sp.decode(codec, msg.data)
            if got is None:
                continue
            ch, payload = got
            i = ch // 2
            if ch % 2 == 0 and i < len(ups) and ups[i] is not None and payload:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ups[i][1].send_bytes(payload)

    pumps = [asyncio.ensure_future(from_pod(i, u[1])) for i, u in enumerate(ups) if u is not None]
    inb = asyncio.ensure_future(inbound())
    try:
        if pumps:
            all_done = asyncio.ensure_future(asyncio.wait(pumps))
            await asyncio.wait({all_done, inb}, return_when=asyncio.FIRST_COMPLETED)
            all_done.cancel()
    finally:
        for t in (*pumps, inb):
            t.cancel()
        await asyncio.gather(*pumps, inb, return_exceptions=True)
        for u in ups:
            if u is not None:
                await u[1].close()
                await u[0].close()
        await ws.close()
    return ws
