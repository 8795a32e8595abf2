"""What every node agent of one process shares: timings, API clients and write limits.

One agent process runs one real node or thousands of hollow ones. They share one
:class:`Shared`: the API clients of the resource partitions (Node, Lease) and of the tenant
partitions (pods, actions), one semaphore bounding concurrent API writes and one bounding
concurrent runtime syncs, so that a burst (thousands of hollow pods becoming Running) is spread
over a bounded number of requests, and one status writer pool. :class:`Timing` holds the periods
kubelet has flags for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from agent.node.statuswriter import StatusWriter
from ctl.client.aio import Client


@dataclass
class Timing:
    lease_seconds: float = 10.0
    lease_duration: int = 40
    node_status_seconds: float = 60.0
    resync_seconds: float = 10.0
    transition_resync: float = 0.5
    orphan_grace: float = 2.0


@dataclass
class Shared:
    """What every node agent of one process shares: API clients and write limits."""

    rp_clients: list[Client]
    tp_clients: list[Client]
    write_limit: asyncio.Semaphore
    sync_limit: asyncio.Semaphore
    timing: Timing
    stagger: float = 0.0  # spread first lease/status writes over this many seconds
    status_writer: StatusWriter | None = None
    pod_events: bool = True  # report Started/BackOff/Unhealthy/Killing Events
