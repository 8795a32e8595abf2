"""Connection hygiene of the API server: header and idle timeouts, limits per client and in total.

aiohttp keeps an idle keep-alive connection for an hour by default and has no timeout for
a request's headers, so a client sending its headers a byte at a time holds a descriptor
for as long as it likes. :func:`runner` builds the server's :class:`aiohttp.web.AppRunner`
with a request handler (:class:`GuardedHandler`) that enforces, as Go's ``http.Server``
does for kube-apiserver:

* **header timeout** (``--request-header-timeout``, 10 s): from the connection's start, and
  from the first byte of every later request, the request line and headers must be
  complete within it; otherwise the connection is closed.
* **idle timeout** (``--idle-connection-timeout``, 90 s): a keep-alive connection with no
  request in progress is closed after it. A request being served - a watch streaming for
  half an hour, a followed log, an exec session - is not idle and is never cut.
* **connection limits**: at most ``--max-connections`` in total and
  ``--max-connections-per-address`` from one client address (TCP; the Unix socket is for
  the machine's own components and counts only toward the total) are accepted; more
  are answered ``429 TooManyRequests`` (a ``Status`` with ``Retry-After``) and closed. Once a
  connection's first request is authenticated, it also counts toward its user's
  ``--max-connections-per-user`` (tenant users; the cluster administrator and the cluster's
  components are exempt); a connection over that limit is answered 429 and closed.

Header lines are limited to 8 KiB each and 128 in number (aiohttp's parser, kept explicit
here). ``apiserver_connections_*`` metrics report open connections and refusals.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ctl.apiserver import status as st
from ctl.apiserver.auth import Identity
from ctl.apiserver.fairness import too_many_requests

MAX_LINE = 8190
MAX_HEADERS = 128


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The API server's connection flags."""
    g = p.add_argument_group("connections")
    g.add_argument(
        "--request-header-timeout", type=float, default=10.0, help="seconds to send a request's headers"
    )
    g.add_argument(
        "--idle-connection-timeout", type=float, default=90.0, help="seconds a keep-alive connection may idle"
    )
    g.add_argument(
        "--max-connections", type=int, default=10_000, help="open connections in total (0 = no limit)"
    )
    g.add_argument(
        "--max-connections-per-address",
        type=int,
        default=1_000,
        help="open TCP connections per client address",
    )
    g.add_argument(
        "--max-connections-per-user",
        type=int,
        default=500,
        help="open connections per tenant user (0 = no limit)",
    )


class ConnectionGuard:
    """The counts and limits shared by every connection of one server."""

    def __init__(
        self,
        header_timeout: float = 10.0,
        idle_timeout: float = 90.0,
        max_total: int = 10_000,
        max_per_address: int = 1_000,
        max_per_user: int = 500,
    ) -> None:
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.max_per_user = max_per_user
        self.total = 0
        self.by_address: collections.Counter[str] = collections.Counter()
        self.by_user: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[str] = collections.Counter()
        self.header_timeouts = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ConnectionGuard:
        return cls(
            args.request_header_timeout,
            args.idle_connection_timeout,
            args.max_connections,
            args.max_connections_per_address,
            args.max_connections_per_user,
        )

    def admit(self, address: str) -> str | None:
        """Count a new connection; the reason it is refused instead, if it is."""
        if self.max_total and self.total >= self.max_total:
            self.refused["total"] += 1
            return f"the server has {self.total} open connections, its limit"
        if address and self.max_per_address and self.by_address[address] >= self.max_per_address:
            self.refused["address"] += 1
            return f"{self.by_address[address]} connections are open from {address}, the limit per client address"
        self.total += 1
        if address:
            self.by_address[address] += 1
        return None

    def release(self, address: str, user: str | None) -> None:
        self.total -= 1
        for counter, key in ((self.by_address, address), (self.by_user, user)):
            if key:
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Count an authenticated connection toward its user's limit (module docstring)."""
        proto = request.protocol
        ident: Identity | None = request.get("identity")
        if (
            isinstance(proto, GuardedHandler)
            and proto.user is None
            and ident is not None
            and not ident.is_cluster_admin
            and self.max_per_user
        ):
            key = f"{ident.tenant}/{ident.user}"
            if self.by_user[key] >= self.max_per_user:
                self.refused["user"] += 1
                resp = too_many_requests(
                    f'user "{ident.user}" has {self.by_user[key]} connections open, the limit per user'
                )
                resp.force_close()
                return resp
            self.by_user[key] += 1
            proto.user = key
        return await handler(request)

    def metric_lines(self) -> list[str]:
        out = [
            "# TYPE apiserver_connections_open gauge",
            f"apiserver_connections_open {self.total}",
            "# TYPE apiserver_connections_header_timeouts_total counter",
            f"apiserver_connections_header_timeouts_total {self.header_timeouts}",
            "# TYPE apiserver_connections_refused_total counter",
        ]
        for reason in ("total", "address", "user"):
            out.append(f'apiserver_connections_refused_total{{reason="{reason}"}} {self.refused[reason]}')
        return out


class GuardedHandler(RequestHandler):
    """aiohttp's request handler with the header timeout and the connection limits."""

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard
        self.address = ""
        self.user: str | None = None
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.address = peer[0] if isinstance(peer, tuple) and peer else ""
        super().connection_made(transport)
        refused = self.guard.admit(self.address)
        if refused is not None:
            body = orjson.dumps(
                st.status_body(
                    429, f"too many connections: {refused}", "TooManyRequests", {"retryAfterSeconds": 1}
                )
            )
            head = (
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            cast_transport: Any = transport
            cast_transport.write(head.encode() + body)
            self.force_close()
            return
        self._admitted = True
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        waiting = self._waiter is not None and not self._waiter.done()  # between requests: bytes are headers
        before = len(self._messages)
        super().data_received(data)
        if len(self._messages) > before or not waiting:
            self._disarm_header_timer()
        elif data and self._header_timer is None:
            self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_header_timer()
        if self._admitted:
            self._admitted = False
            self.guard.release(self.address, self.user)
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self.guard.header_timeout > 0:
            self._header_timer = self._loop.call_later(self.guard.header_timeout, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._waiter is not None and not self._waiter.done() and not self._messages:
            self.guard.header_timeouts += 1
            self.force_close()


class GuardedRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections are :class:`GuardedHandler` s."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", guard.idle_timeout)
        kwargs.setdefault("max_line_size", MAX_LINE)
        kwargs.setdefault("max_field_size", MAX_LINE)
        kwargs.setdefault("max_headers", MAX_HEADERS)
        super().__init__(app, **kwargs)
        self.guard = guard

    @property
    def server(self) -> Callable[[], GuardedHandler] | None:  # type: ignore[override]
        srv = super().server
        if srv is None:
            return None

        def factory() -> GuardedHandler:  # what web.Server.__call__ does, with our handler class
            return GuardedHandler(srv, loop=srv._loop, guard=self.guard, **srv._kwargs)

        return factory


def runner(server: Any, args: argparse.Namespace, **kwargs: Any) -> web.AppRunner:
    """The API server's runner: guarded connections, the per-user middleware and metrics installed."""
    guard = ConnectionGuard.from_args(args)
    server.app.middlewares.insert(1, guard.middleware)  # right after authentication
    server.metrics.collectors.append(guard.metric_lines)
    server.connections = guard
    return GuardedRunner(server.app, guard, **kwargs)
