"""Request priority and fairness: one tenant's flood cannot starve the others or the cluster's components.

In the spirit of Kubernetes' API Priority and Fairness (without its configuration objects
and shuffle-sharding): every authenticated request is classified into a **priority level**
and, inside it, a **flow**:

* ``exempt``: the cluster administrator and the cluster's components (``system:masters`` in
  the system tenant; every component credential ``centaurusctl init`` issues is one). Never
  queued, never rejected.
* ``system``: other identities of the system tenant (nodes, ``system:*`` users, operators);
  one flow per user, their own seats, so tenants cannot crowd them out.
* ``workload``: everyone else, one flow per tenant.

A level has a number of seats (requests executing at once). A flow may hold at most its
share of them (``--tenant-max-inflight``); beyond that its requests wait in the flow's own
FIFO queue (``--tenant-queue-length`` deep, at most ``--queue-wait-seconds``). When a seat
frees, the level dispatches round-robin across the flows that have waiters, so a flow with
a thousand queued requests gets no more turns than one with a single request. When a
flow's share and its queue are both exhausted, or a request has waited too long, the answer
is ``429 TooManyRequests`` with ``Retry-After`` (a ``Status`` with
``details.retryAfterSeconds``), as kube-apiserver answers.

Long-running requests (watches, ``log?follow=true``, ``exec``, ``attach``, ``portforward``,
``proxy``) take no seat: they would hold it for hours while doing almost nothing.

:func:`install` puts the middleware right after authentication; :class:`FlowControl`
publishes ``apiserver_flowcontrol_*`` metrics (executing, waiting, dispatched, rejected per
level and flow) on ``/metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from ctl.apiserver import status as st
from ctl.apiserver.auth import Identity

EXEMPT, SYSTEM, WORKLOAD = "exempt", "system", "workload"
LONG_RUNNING_SUBRESOURCES = ("exec", "attach", "portforward", "proxy")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The API server's flow-control flags."""
    g = p.add_argument_group("priority and fairness")
    g.add_argument(
        "--max-requests-inflight",
        type=int,
        default=64,
        help="seats (requests executing at once) of the tenants' level; 0 turns flow control off",
    )
    g.add_argument("--tenant-max-inflight", type=int, default=8, help="seats one tenant may hold at once")
    g.add_argument("--tenant-queue-length", type=int, default=64, help="requests one tenant may have waiting")
    g.add_argument(
        "--system-max-inflight",
        type=int,
        default=64,
        help="seats of the system tenant's non-admin identities",
    )
    g.add_argument(
        "--queue-wait-seconds", type=float, default=10.0, help="longest wait for a seat before a 429"
    )


def classify(ident: Identity) -> tuple[str, str]:
    """(priority level, flow) of a caller (module docstring)."""
    if ident.is_cluster_admin:
        return EXEMPT, ident.user
    if ident.is_system:
        return SYSTEM, ident.user
    return WORKLOAD, ident.tenant


def long_running(request: web.BaseRequest) -> bool:
    """Whether a request streams for long (watch, followed log, exec...) and so takes no seat."""
    q = request.query
    if q.get("watch", "false").lower() in ("1", "true", "yes", ""):
        return True
    parts = request.path.rstrip("/").split("/")
    if len(parts) < 3 or parts[-3] not in ("pods", "services", "nodes"):  # .../RESOURCE/NAME/SUBRESOURCE
        return False
    if parts[-1] in LONG_RUNNING_SUBRESOURCES:
        return True
    return parts[-1] == "log" and q.get("follow", "false").lower() in ("1", "true", "yes", "")


class TooManyRequests(Exception):
    def __init__(self, why: str, retry_after: int) -> None:
        super().__init__(why)
        self.retry_after = retry_after


@dataclass
class _Flow:
    executing: int = 0
    waiting: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    dispatched: int = 0
    rejected: int = 0


class PriorityLevel:
    """Seats shared by flows, fair queuing among them (module docstring)."""

    def __init__(self, name: str, seats: int, flow_seats: int, queue_length: int, wait: float) -> None:
        self.name = name
        self.seats = max(1, seats)
        self.flow_seats = max(1, min(flow_seats, self.seats))
        self.queue_length = max(0, queue_length)
        self.wait = wait
        self.executing = 0
        self.flows: dict[str, _Flow] = {}
        self._ready: collections.OrderedDict[str, None] = collections.OrderedDict()  # flows with waiters

    def _flow(self, key: str) -> _Flow:
        f = self.flows.get(key)
        if f is None:
            if len(self.flows) > 10_000:  # forget idle flows so the table cannot grow without bound
                for k in [k for k, v in self.flows.items() if not v.executing and not v.waiting]:
                    del self.flows[k]
            f = self.flows[key] = _Flow()
        return f

    def _can_run(self, f: _Flow) -> bool:
        return self.executing < self.seats and f.executing < self.flow_seats

    async def acquire(self, key: str) -> None:
        f = self._flow(key)
        if not f.waiting and self._can_run(f):
            self._take(f)
            return
        if len(f.waiting) >= self.queue_length:
            f.rejected += 1
            raise TooManyRequests(
                f"the {self.name} priority level is full for {key!r}: {f.executing} requests executing "
                f"and {len(f.waiting)} waiting",
                1,
            )
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        f.waiting.append(fut)
        self._ready[key] = None
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.wait)
        except (TimeoutError, asyncio.CancelledError) as e:
            if fut.done() and not fut.cancelled():  # granted just as we gave up: hand the seat back
                self.release(key)
            else:
                fut.cancel()
                self._forget(key, f, fut)
            if isinstance(e, asyncio.CancelledError):
                raise
            f.rejected += 1
            raise TooManyRequests(
                f"the request waited {self.wait:g}s in the {self.name} priority level without a seat", 1
            ) from None

    def _forget(self, key: str, f: _Flow, fut: asyncio.Future[None]) -> None:
        try:
            f.waiting.remove(fut)
        except ValueError:
            pass
        if not f.waiting:
            self._ready.pop(key, None)

    def _take(self, f: _Flow) -> None:
        self.executing += 1
        f.executing += 1
        f.dispatched += 1

    def release(self, key: str) -> None:
        f = self.flows[key]
        self.executing -= 1
        f.executing -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free seats to waiting flows, one request per flow per turn (round-robin)."""
        while self._ready and self.executing < self.seats:
            progressed = False
            for key in list(self._ready):
                if self.executing >= self.seats:
                    return
                f = self.flows[key]
                while f.waiting and f.waiting[0].done():  # timed out or cancelled meanwhile
                    f.waiting.popleft()
                if not f.waiting:
                    self._ready.pop(key, None)
                    continue
                if f.executing >= self.flow_seats:
                    continue
                self._take(f)
                f.waiting.popleft().set_result(None)
                self._ready.move_to_end(key)  # its turn is used: the others come first next time
                if not f.waiting:
                    self._ready.pop(key, None)
                progressed = True
                break
            if not progressed:
                return


class FlowControl:
    """The levels, the middleware and the metrics (module docstring)."""

    def __init__(
        self,
        seats: int = 64,
        tenant_seats: int = 8,
        tenant_queue: int = 64,
        system_seats: int = 64,
        wait: float = 10.0,
    ) -> None:
        self.levels = {
            WORKLOAD: PriorityLevel(WORKLOAD, seats, tenant_seats, tenant_queue, wait),
            SYSTEM: PriorityLevel(SYSTEM, system_seats, system_seats, tenant_queue, wait),
        }
        self.exempt_executing = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FlowControl | None:
        if getattr(args, "max_requests_inflight", 0) <= 0:
            return None
        return cls(
            args.max_requests_inflight,
            args.tenant_max_inflight,
            args.tenant_queue_length,
            args.system_max_inflight,
            args.queue_wait_seconds,
        )

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        ident: Identity | None = request.get("identity")
        if ident is None or long_running(request):
            return await handler(request)
        level_name, flow = classify(ident)
        if level_name == EXEMPT:
            self.exempt_executing += 1
            try:
                return await handler(request)
            finally:
                self.exempt_executing -= 1
        level = self.levels[level_name]
        try:
            await level.acquire(flow)
        except TooManyRequests as e:
            return too_many_requests(str(e), e.retry_after)
        try:
            return await handler(request)
        finally:
            level.release(flow)

    def metric_lines(self) -> list[str]:
        out = [
            "# TYPE apiserver_flowcontrol_current_executing_requests gauge",
            f'apiserver_flowcontrol_current_executing_requests{{priority_level="{EXEMPT}"}} {self.exempt_executing}',
        ]
        for name, lv in self.levels.items():
            out.append(
                f'apiserver_flowcontrol_current_executing_requests{{priority_level="{name}"}} {lv.executing}'
            )
        out.append("# TYPE apiserver_flowcontrol_current_inqueue_requests gauge")
        for name, lv in self.levels.items():
            waiting = sum(len(f.waiting) for f in lv.flows.values())
            out.append(f'apiserver_flowcontrol_current_inqueue_requests{{priority_level="{name}"}} {waiting}')
        for metric, attr in (("dispatched", "dispatched"), ("rejected", "rejected")):
            out.append(f"# TYPE apiserver_flowcontrol_{metric}_requests_total counter")
            for name, lv in self.levels.items():
                for key, f in sorted(lv.flows.items()):
                    out.append(
                        f'apiserver_flowcontrol_{metric}_requests_total{{priority_level="{name}",flow="{_label(key)}"}} '
                        f"{getattr(f, attr)}"
                    )
        return out


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def too_many_requests(message: str, retry_after: int = 1) -> web.Response:
    """A 429 TooManyRequests Status with ``Retry-After`` (and ``details.retryAfterSeconds``)."""
    body = st.status_body(429, message, "TooManyRequests", {"retryAfterSeconds": retry_after})
    return web.Response(
        body=orjson.dumps(body),
        status=429,
        content_type="application/json",
        headers={"Retry-After": str(retry_after)},
    )


def install(server: Any, args: argparse.Namespace) -> FlowControl | None:
    """Put flow control right after authentication (before every other middleware); None when off."""
    fc = FlowControl.from_args(args)
    if fc is None:
        return None
    server.app.middlewares.insert(1, fc.middleware)
    server.metrics.collectors.append(fc.metric_lines)
    server.flowcontrol = fc
    return fc


__all__ = [
    "FlowControl",
    "PriorityLevel",
    "TooManyRequests",
    "add_arguments",
    "classify",
    "install",
    "long_running",
    "too_many_requests",
]
