"""``exec`` and ``attach``: the client's streaming protocol relayed to the node agent's v5 WebSocket.

The client side is either a WebSocket whose subprotocol is one of
:data:`ctl.types.streaming.EXEC_WS_PROTOCOLS` (what the client offered first wins, as
kube-apiserver's handshake does; no subprotocol means ``channel.k8s.io``) or SPDY/3.1 with
``X-Stream-Protocol-Version`` one of :data:`~ctl.types.streaming.EXEC_SPDY_PROTOCOLS`, whose
streams the client opens and names (``error`` always, then ``stdin``, ``stdout``, ``stderr``
unless there is a TTY, and ``resize`` with a TTY from v3 on); the relay starts once all of them
exist (30 s at most, like kubelet's stream-creation timeout).

Translation, both ways: stdin data, its end (v5's ``[255, 0]`` or the SPDY stream's FIN) and
terminal sizes (channel 4, or a stream of JSON objects on SPDY's ``resize`` stream) go to the
agent; stdout and stderr come back on their channels or streams; the agent's final Status goes
to the error channel, as JSON for v4/v5 and as the bare failure text for older protocols. Then
the client's streams are closed (SPDY: FIN on each, GOAWAY) and the connection ends. If the
client goes away first the agent connection is closed, which stops the process (exec) or
detaches (attach).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from ctl.apiserver.status import APIError
from ctl.apiserver.streaming import transport as tp
from ctl.apiserver.streaming.spdy import SpdySession, SpdyStream
from ctl.types import streaming as sp

log = logging.getLogger("centaurus.apiserver.streaming")

STREAM_CREATION_TIMEOUT = 30.0

Upstream = aiohttp.ClientWebSocketResponse


@dataclass
class StdioOptions:
    """What the client asked for (``stdin``/``stdout``/``stderr``/``tty`` query flags)."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    container: str = ""
    command: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, q: Any, container: str, exec_: bool) -> StdioOptions:
        def flag(name: str) -> bool:
            return str(q.get(name, "")).lower() in ("1", "true")

        o = cls(flag("stdin"), flag("stdout"), flag("stderr"), flag("tty"), container)
        if o.tty:
            o.stderr = False  # a terminal has one output stream (kubelet drops stderr the same way)
        if not (o.stdin or o.stdout or o.stderr):
            raise APIError(400, "you must specify at least 1 of stdin, stdout, stderr", "BadRequest")
        if exec_:
            o.command = list(q.getall("command", []))
            if not o.command:
                raise APIError(400, "you must specify at least one command for the container", "BadRequest")
        return o

    def agent_params(self) -> list[tuple[str, str]]:
        out = [("container", self.container)] + [("command", c) for c in self.command]
        for name in ("stdin", "stdout", "stderr", "tty"):
            if getattr(self, name):
                out.append((name, "1"))
        return out


def negotiate(request: web.Request) -> str:
    """The protocol the upgrade will use; 403 when the client offers none this server speaks."""
    if tp.is_websocket(request):
        offered = tp.websocket_protocols(request)
        if not offered:
            return ""
        chosen = sp.pick_protocol(offered, sp.EXEC_WS_PROTOCOLS)
    else:
        offered = tp.spdy_protocols(request)
        if not offered:
            return sp.V1
        chosen = sp.pick_protocol(offered, sp.EXEC_SPDY_PROTOCOLS)
    if chosen is None:
        raise APIError(
            403,
            f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
            f"server supports {list(sp.EXEC_WS_PROTOCOLS if tp.is_websocket(request) else sp.EXEC_SPDY_PROTOCOLS)}",
            "Forbidden",
        )
    return chosen


async def open_agent(
    endpoint: str, path: str, params: list[tuple[str, str]], protocols: tuple[str, ...]
) -> Any:
    """Connect to the agent before answering the client's upgrade, so that failures are plain Status errors."""
    try:
        return await tp.agent_websocket(endpoint, path, params, protocols)
    except aiohttp.WSServerHandshakeError as e:
        code = e.status if 400 <= e.status < 600 else 502
        reason = {404: "NotFound", 400: "BadRequest"}.get(code, "InternalError")
        raise APIError(code, f"the node agent refused the stream: {e.message}", reason) from None
    except (aiohttp.ClientError, OSError) as e:
        raise APIError(503, f"cannot reach the node agent at {endpoint}: {e}", "ServiceUnavailable") from None


async def serve(request: web.Request, endpoint: str, path: str, opts: StdioOptions) -> web.StreamResponse:
    """Answer an upgraded exec/attach request by relaying it to the agent at ``endpoint`` + ``path``."""
    protocol = negotiate(request)
    session, up = await open_agent(endpoint, path, opts.agent_params(), (sp.V5,))
    try:
        if tp.is_websocket(request):
            return await _serve_websocket(request, up, protocol)
        return await _serve_spdy(request, up, opts, protocol)
    finally:
        await up.close()
        await session.close()


async def _relay(
    up: Upstream,
    send: Callable[[int, bytes], Awaitable[None]],
    inbound: Awaitable[None],
) -> dict[str, Any] | None:
    """Agent output to the client (``send``) until the agent ends; ``inbound`` feeds the agent.

    Returns the agent's final Status, or None when the client went away first.
    """
    status: dict[str, Any] | None = None

    async def downstream() -> None:
        nonlocal status
        async for msg in up:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            ch, payload = msg.data[0], msg.data[1:]
            if ch == sp.ERROR:
                with contextlib.suppress(ValueError):
                    got = orjson.loads(payload)
                    status = got if isinstance(got, dict) else None
            elif ch in (sp.STDOUT, sp.STDERR):
                await send(ch, payload)

    down = asyncio.ensure_future(downstream())
    inb = asyncio.ensure_future(inbound)
    try:
        done, _ = await asyncio.wait({down, inb}, return_when=asyncio.FIRST_COMPLETED)
        if down not in done:
            return None
        if down.exception() is not None:
            log.debug("stream from the agent ended: %s", down.exception())
        return status or sp.exit_status(None, "the node agent closed the stream without a status")
    finally:
        for t in (down, inb):
            t.cancel()
        await asyncio.gather(down, inb, return_exceptions=True)


async def _to_agent(up: Upstream, channel: int, payload: bytes) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await up.send_bytes(bytes([channel]) + payload)


# ---------------------------------------------------------------------- WebSocket clients


async def _serve_websocket(request: web.Request, up: Upstream, protocol: str) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), heartbeat=None, max_msg_size=0)
    await ws.prepare(request)
    codec = protocol or sp.V1

    async def send(ch: int, data: bytes) -> None:
        msg = sp.encode(codec, ch, data)
        if isinstance(msg, str):
            await ws.send_str(msg)
        else:
            await ws.send_bytes(msg)

    async def inbound() -> None:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            if codec == sp.V5 and isinstance(msg.data, bytes) and msg.data[:1] == bytes([sp.CLOSE]):
                if msg.data[1:2] == bytes([sp.STDIN]):
                    await _to_agent(up, sp.CLOSE, bytes([sp.STDIN]))
                continue
            got = sp.decode(codec, msg.data)
            if got is None:
                continue
            ch, payload = got
            if ch in (sp.STDIN, sp.RESIZE):
                await _to_agent(up, ch, payload)

    try:
        status = await _relay(up, send, inbound())
        if status is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                if sp.has_status(codec):
                    await send(sp.ERROR, orjson.dumps(status))
                elif text := sp.status_text(status):
                    await send(sp.ERROR, text)
    finally:
        await ws.close()
    return ws


# ---------------------------------------------------------------------- SPDY clients


def _expected_streams(opts: StdioOptions, protocol: str) -> int:
    n = 1 + opts.stdin + opts.stdout + opts.stderr
    return n + (1 if opts.tty and sp.supports_resize(protocol) else 0)


async def _collect(session: SpdySession, expected: int) -> dict[str, SpdyStream] | None:
    streams: dict[str, SpdyStream] = {}

    async def gather() -> None:
        while len(streams) < expected:
            st = await session.accept()
            if st is None:
                raise ConnectionResetError("the client closed the connection")
            typ = st.header("streamtype")
            if typ not in sp.SPDY_STREAM_TYPES or typ in streams:
                st.reset()
                continue
            streams[typ] = st

    try:
        await asyncio.wait_for(gather(), STREAM_CREATION_TIMEOUT)
    except (TimeoutError, ConnectionResetError) as e:
        log.info("exec/attach client did not open its streams: %s", e or "timed out")
        return None
    return streams


def _resize_objects(buf: str) -> tuple[list[dict[str, Any]], str]:
    """Complete JSON objects at the start of ``buf`` and what is left (SPDY's resize stream)."""
    out: list[dict[str, Any]] = []
    dec = json.JSONDecoder()
    while True:
        buf = buf.lstrip()
        if not buf:
            return out, ""
        try:
            obj, end = dec.raw_decode(buf)
        except ValueError:
            return out, buf
        if isinstance(obj, dict):
            out.append(obj)
        buf = buf[end:]


async def _serve_spdy(
    request: web.Request, up: Upstream, opts: StdioOptions, protocol: str
) -> web.StreamResponse:
    resp, session = await tp.spdy_upgrade(request, protocol)
    try:
        streams = await _collect(session, _expected_streams(opts, protocol))
        if streams is None:
            return resp
        by_channel = {sp.SPDY_STREAM_TYPES[k]: v for k, v in streams.items()}

        async def send(ch: int, data: bytes) -> None:
            st = by_channel.get(ch) or (by_channel.get(sp.STDOUT) if ch == sp.STDERR else None)
            if st is not None and data:
                await st.write(data)

        async def stdin_pump(st: SpdyStream) -> None:
            while data := await st.read():
                await _to_agent(up, sp.STDIN, data)
            if not st.was_reset:
                await _to_agent(up, sp.CLOSE, bytes([sp.STDIN]))

        async def resize_pump(st: SpdyStream) -> None:
            left = ""
            while data := await st.read():
                objs, left = _resize_objects(left + data.decode(errors="replace"))
                for o in objs:
                    await _to_agent(up, sp.RESIZE, orjson.dumps(o))

        async def inbound() -> None:
            pumps = []
            if sp.STDIN in by_channel:
                pumps.append(asyncio.ensure_future(stdin_pump(by_channel[sp.STDIN])))
            if sp.RESIZE in by_channel:
                pumps.append(asyncio.ensure_future(resize_pump(by_channel[sp.RESIZE])))
            try:
                while (st := await session.accept()) is not None:
                    st.reset()  # no stream is expected once the command runs
            finally:
                for p in pumps:
                    p.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)

        status = await _relay(up, send, inbound())
        if status is not None:
            err = by_channel[sp.ERROR]
            await err.write(orjson.dumps(status) if sp.has_status(protocol) else sp.status_text(status))
            for st in by_channel.values():
                await st.close()
    finally:
        await tp.close_spdy(request, session)
    return resp
