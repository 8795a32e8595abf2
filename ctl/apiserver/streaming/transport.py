"""Upgrading an aiohttp request to a streaming protocol, and reaching the node agent's streams.

* :func:`is_upgrade`, :func:`is_websocket` tell the upgrade a request asks for.
* :func:`spdy_upgrade` answers ``101 Switching Protocols`` with ``Upgrade: SPDY/3.1`` and the
  negotiated ``X-Stream-Protocol-Version`` and takes over the connection: aiohttp's request
  handler is given a payload parser that feeds every later byte to a
  :class:`~ctl.apiserver.streaming.spdy.SpdySession` (the same hook aiohttp's own WebSocket
  support uses), and the session writes straight to the transport, waiting on its backpressure.
* :func:`spdy_over_websocket` runs a SPDY session whose bytes travel in binary WebSocket
  messages (the ``SPDY/3.1+portforward.k8s.io`` subprotocol of kubectl 1.31+).
* :func:`agent_websocket` opens the WebSocket to the agent endpoint (``http://`` or ``unix://``).
* :func:`linger` waits a little for the client to close first, so that closing never turns the
  last bytes it has not read yet into a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import WSMsgType, web

from ctl.apiserver.streaming.spdy import SpdySession
from ctl.types import streaming as sp

LINGER = 2.0


def is_upgrade(request: web.Request) -> bool:
    return "upgrade" in request.headers.get("Connection", "").lower() and bool(request.headers.get("Upgrade"))


def is_websocket(request: web.Request) -> bool:
    return is_upgrade(request) and request.headers.get("Upgrade", "").lower() == "websocket"


def is_spdy(request: web.Request) -> bool:
    return is_upgrade(request) and request.headers.get("Upgrade", "").lower() == sp.SPDY.lower()


def websocket_protocols(request: web.Request) -> list[str]:
    return sp.offered_protocols(request.headers.getall("Sec-WebSocket-Protocol", []))


def spdy_protocols(request: web.Request) -> list[str]:
    return sp.offered_protocols(request.headers.getall(sp.STREAM_PROTOCOL_HEADER, []))


class _Feeder:
    """aiohttp's payload-parser interface, feeding a SPDY session."""

    def __init__(self, session: SpdySession) -> None:
        self.session = session

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.session.feed(data)
        return False, b""

    def feed_eof(self) -> None:
        self.session.feed_eof()


async def spdy_upgrade(request: web.Request, protocol: str) -> tuple[web.StreamResponse, SpdySession]:
    """Switch the connection to SPDY/3.1 (``protocol`` is the negotiated stream protocol)."""
    resp = web.StreamResponse(
        status=101,
        headers={"Connection": "Upgrade", "Upgrade": sp.SPDY, sp.STREAM_PROTOCOL_HEADER: protocol},
    )
    await resp.prepare(request)
    transport = request.transport
    handler = request.protocol
    assert transport is not None

    async def send(data: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        transport.write(data)
        await handler._drain_helper()

    def pause(on: bool) -> None:
        if transport.is_closing():
            return
        if on:
            transport.pause_reading()
        else:
            transport.resume_reading()

    session = SpdySession(send, pause)
    handler.keep_alive(False)
    handler.set_parser(_Feeder(session))  # type: ignore[arg-type]
    return resp, session


async def close_spdy(request: web.Request, session: SpdySession) -> None:
    """GOAWAY, flush, give the client a moment to close first, then close the connection."""
    await session.close()
    transport = request.transport
    if transport is None:
        return
    loop = asyncio.get_running_loop()
    end = loop.time() + LINGER
    while not transport.is_closing() and loop.time() < end:
        await asyncio.sleep(0.05)
    transport.close()


async def spdy_over_websocket(
    ws: web.WebSocketResponse, serve: Callable[[SpdySession], Awaitable[None]]
) -> None:
    """Run ``serve`` on a SPDY session carried in ``ws``'s binary messages until both end."""
    room = asyncio.Event()
    room.set()

    async def send(data: bytes) -> None:
        await ws.send_bytes(data)

    def pause(on: bool) -> None:
        room.clear() if on else room.set()

    session = SpdySession(send, pause)

    async def pump() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                session.feed(msg.data)
                await room.wait()
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        session.feed_eof()

    reader = asyncio.ensure_future(pump())
    try:
        await serve(session)
    finally:
        await session.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), LINGER)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()


def _connector(endpoint: str) -> tuple[aiohttp.BaseConnector, str]:
    if endpoint.startswith("unix://"):
        return aiohttp.UnixConnector(path=endpoint[len("unix://") :]), "http://agent"
    return aiohttp.TCPConnector(), endpoint


async def agent_websocket(
    endpoint: str, path: str, params: list[tuple[str, str]], protocols: tuple[str, ...] = ()
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    """A WebSocket to the agent at ``endpoint`` (the caller closes both)."""
    conn, base = _connector(endpoint)
    session = aiohttp.ClientSession(connector=conn)
    try:
        ws = await session.ws_connect(
            base + path,
            params=params,
            protocols=protocols,
            heartbeat=None,
            autoping=True,
            max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
        )
    except BaseException:
        await session.close()
        raise
    return session, ws
