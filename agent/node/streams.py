"""The agent's streaming endpoints: exec, attach and port-forward over WebSocket, for the API server.

The API server terminates whatever protocol the client speaks (WebSocket ``v1``-``v5``,
SPDY/3.1, SPDY tunnelled in a WebSocket) and talks to the agent in one of two simple forms,
served here on the agent endpoint (:mod:`agent.node.endpoint`):

``GET /pods/{tenant}/{namespace}/{name}/exec?command=..&command=..&container=&stdin=1&stdout=1&stderr=1&tty=1``
``GET /pods/{tenant}/{namespace}/{name}/attach?container=&stdin=1&stdout=1&stderr=1&tty=1``
    WebSocket with subprotocol ``v5.channel.k8s.io``: channel 0 stdin, 1 stdout, 2 stderr,
    3 the final Status (exit code in ``details.causes``), 4 resize, and ``[255, 0]`` to close
    stdin. The agent sends an empty stdout message once the process runs, the Status when it
    ends, then closes.

``GET /pods/{tenant}/{namespace}/{name}/portforward?port=N``
    WebSocket carrying one TCP connection to ``127.0.0.1:N`` inside the pod's network namespace:
    binary messages are data, an empty binary message is end-of-stream (half-close) in either
    direction, a text message is an error (then the agent closes).

Runtimes that cannot stream (the hollow runtime) still answer non-interactive exec: the command
runs through the runtime's one-shot ``exec`` and its output and exit code come back on the same
channels. Errors before the upgrade are ``Status`` responses like the rest of the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from agent.runtime.base import RuntimeError_
from ctl.types import streaming as sp
from ctl.types.status import status_body

log = logging.getLogger("centaurus.agent.streams")

DRAIN_AFTER_EXIT = 2.0  # output still in flight once the process has exited (background children may hold it)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "") in ("1", "true", "True")


async def _send_status(ws: web.WebSocketResponse, status: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_bytes(bytes([sp.ERROR]) + orjson.dumps(status))


async def serve_stdio(request: web.Request, rt: Any, uid: str, attach: bool) -> web.StreamResponse:
    """Exec (or attach) over a v5 channel WebSocket; ``rt`` is the pod's runtime."""
    q = request.query
    container = q.get("container") or None
    tty, want_stdin = _flag(request, "tty"), _flag(request, "stdin")
    argv = q.getall("command", [])
    streaming = hasattr(rt, "attach" if attach else "exec_stream")
    session = None
    error: RuntimeError_ | None = None
    if attach and not streaming:
        error = RuntimeError_("NotSupported", f"the {rt.name} runtime cannot attach to containers")
    elif not attach and not argv:
        error = RuntimeError_("InvalidArgument", "exec needs at least one command= parameter")
    elif streaming:
        try:
            if attach:
                session = await rt.attach(uid, container)
            else:
                session = await rt.exec_stream(uid, container, argv, tty=tty, stdin=want_stdin)
        except RuntimeError_ as e:
            error = e
    ws = web.WebSocketResponse(protocols=(sp.V5,), heartbeat=None, max_msg_size=0)
    await ws.prepare(request)
    if error is not None:
        await _send_status(ws, sp.exit_status(None, str(error)))
        await ws.close()
        return ws
    if session is None:  # a runtime with one-shot exec only
        await _oneshot(ws, rt, uid, container, argv)
        return ws
    try:
        await ws.send_bytes(bytes([sp.STDOUT]))
        code = await _relay(ws, session, attach)
        await _send_status(ws, sp.exit_status(0) if attach or code is None else sp.exit_status(code))
    finally:
        await session.close()
        await ws.close()
    return ws


async def _oneshot(
    ws: web.WebSocketResponse, rt: Any, uid: str, container: str | None, argv: list[str]
) -> None:
    try:
        res = await rt.exec(uid, container, argv, timeout=300)
    except RuntimeError_ as e:
        await _send_status(ws, sp.exit_status(None, str(e)))
    else:
        await ws.send_bytes(bytes([sp.STDOUT]) + res.stdout)
        if res.stderr:
            await ws.send_bytes(bytes([sp.STDERR]) + res.stderr)
        await _send_status(ws, sp.exit_status(res.exit_code))
    await ws.close()


async def _relay(ws: web.WebSocketResponse, session: Any, attach: bool) -> int | None:
    """Pump the session's output to the socket and the socket's input to the session until it ends."""

    async def output() -> None:
        while True:
            item = await session.output.get()
            if item is None:
                return
            channel, data = item
            await ws.send_bytes(bytes([channel]) + data)

    async def inbound() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            data: bytes = msg.data
            ch = data[0]
            if ch == sp.STDIN:
                await session.write_stdin(data[1:])
            elif ch == sp.CLOSE and data[1:2] == bytes([sp.STDIN]):
                await session.close_stdin()
            elif ch == sp.RESIZE:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    size = orjson.loads(data[1:])
                    session.resize(int(size["Width"]), int(size["Height"]))

    out_t = asyncio.ensure_future(output())
    in_t = asyncio.ensure_future(inbound())
    wait_t = asyncio.ensure_future(session.wait())
    try:
        done, _ = await asyncio.wait({wait_t, in_t}, return_when=asyncio.FIRST_COMPLETED)
        if in_t in done and not wait_t.done():
            # the API server (the client) went away: stop the process or detach
            return None
        code = wait_t.result()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(out_t), DRAIN_AFTER_EXIT)
        return code
    finally:
        for t in (out_t, in_t, wait_t):
            t.cancel()
        await asyncio.gather(out_t, in_t, wait_t, return_exceptions=True)


async def serve_portforward(request: web.Request, rt: Any, uid: str) -> web.StreamResponse:
    """One TCP connection into the pod, over a WebSocket (see the module docstring)."""
    try:
        port = sp.parse_port(request.query.get("port", ""))
    except ValueError as e:
        body = status_body(400, f"port-forward needs port=1..65535: {e}", "BadRequest")
        return web.Response(body=orjson.dumps(body), status=400, content_type="application/json")
    ws = web.WebSocketResponse(heartbeat=None, max_msg_size=0)
    await ws.prepare(request)
    if not hasattr(rt, "port_connect"):
        await ws.send_str(f"the {rt.name} runtime cannot forward ports")
        await ws.close()
        return ws
    try:
        sock: socket.socket = await rt.port_connect(uid, port)
    except RuntimeError_ as e:
        await ws.send_str(str(e))
        await ws.close()
        return ws
    reader, writer = await asyncio.open_connection(sock=sock)

    async def to_pod() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            if not msg.data:
                if writer.can_write_eof():
                    writer.write_eof()
                continue
            writer.write(msg.data)
            await writer.drain()

    async def from_pod() -> None:
        while True:
            data = await reader.read(64 * 1024)
            await ws.send_bytes(data)  # empty: end of stream
            if not data:
                return

    a, b = asyncio.ensure_future(to_pod()), asyncio.ensure_future(from_pod())
    try:
        done, _ = await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        if b in done and not a.done():
            # the pod closed its side; the client may still be sending (half-close): wait for it a little
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(a), 30)
        for t in done:
            if t.exception() is not None and not isinstance(t.exception(), ConnectionError):
                log.debug("port-forward to %s:%d ended: %s", uid, port, t.exception())
    finally:
        for t in (a, b):
            t.cancel()
        await asyncio.gather(a, b, return_exceptions=True)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        await ws.close()
    return ws
