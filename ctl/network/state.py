"""The network operator's shared state: topology, allocator, programmers, node health.

One :class:`NetState` is shared by every reconciler of :mod:`ctl.network.controllers`: the
:class:`~ctl.network.topology.Topology` (what each droplet must hold), the
:class:`~ctl.network.allocator.Allocator` (VNI and IP records), one
:class:`~ctl.network.programmer.DropletProgrammer` per droplet (created on first use), the
:class:`~ctl.network.nodehealth.NodeHealth` of the droplets' Nodes and the set of droplets it
excludes from placement. The transit daemons' restart checks are spread so that they cost at
most ``check_rate`` status requests a second in all (:meth:`NetState.retune`): every
``--check-interval`` seconds per daemon on a small cluster, less often on a large one. Its helpers write a status only when it differs, park an object as
``Failed`` with a Warning Event, and :meth:`NetState.converge` waits until the touched keys are
applied on the droplets concerned - never on an excluded droplet (its Node is NotReady: its
daemon is programmed in the background, retried with back-off, and nobody waits for it).
"""

from __future__ import annotations

import asyncio
import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ctl.client import Client
from ctl.client.events import EventRecorder
from ctl.client.informer import SharedInformers
from ctl.controllers.base import Controller
from ctl.network import objects as ob
from ctl.network.allocator import Allocator
from ctl.network.nodehealth import NodeHealth
from ctl.network.programmer import DropletProgrammer
from ctl.network.topology import Key, Topology

Obj = dict[str, Any]
WAIT_RETRY = 2.0  # seconds before an object waiting for another one looks again
DEFAULT_NODE_GRACE = 30.0  # seconds a droplet's Node may be NotReady before its placements move
DEFAULT_CHECK_RATE = 100.0  # transitd restart checks per second, over all droplets


class NetState:
    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        recorder: EventRecorder,
        check_interval: float = 2.0,
        program_timeout: float = 10.0,
        node_grace: float = DEFAULT_NODE_GRACE,
        check_rate: float = DEFAULT_CHECK_RATE,
    ) -> None:
        self.client = client
        self.informers = informers
        self.recorder = recorder
        self.topology = Topology()
        self.allocator = Allocator(client, lambda kind, key: informers.get(kind).get_key(key))
        self.allocator.on_extra = lambda kind, key: self.enqueue(
            "vpc" if kind is ob.VPC else "endpoint", [key]
        )
        self.programmers: dict[str, DropletProgrammer] = {}
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="transit")
        self.check_interval = check_interval
        self.check_rate = check_rate
        self.program_timeout = program_timeout
        self.uids: dict[str, str] = {}  # object key -> uid (for releases after a delete)
        self.controllers: dict[str, Controller] = {}
        self.health = NodeHealth(node_grace)
        self.excluded: set[str] = set()  # droplets whose Node is NotReady past the grace period

    def placeable(self) -> list[str]:
        """The droplets bouncers and dividers may be placed on (all of them if every one is excluded)."""
        ok = [d for d in self.topology.droplets if d not in self.excluded]
        return ok or list(self.topology.droplets)

    def programmer(self, name: str) -> DropletProgrammer:
        p = self.programmers.get(name)
        if p is None:
            p = DropletProgrammer(
                name, self.topology, self.executor, self.check_interval, self._droplet_state
            )
            self.programmers[name] = p
            self.retune()
            p.start()
        return p

    def retune(self) -> None:
        """Spread the transitd restart checks: at most ``check_rate`` per second over all droplets."""
        every = max(self.check_interval, len(self.programmers) / self.check_rate)
        for p in self.programmers.values():
            p.check_interval = every

    def _droplet_state(self, name: str, ok: bool, pid: int | None) -> None:
        c = self.controllers.get("droplet")
        if c is not None:
            c.queue.add(f"//{name}")

    async def converge(
        self, touched: dict[str, set[Key]] | None = None, full: set[str] | None = None
    ) -> None:
        """Program the touched keys (and whole droplets in ``full``); wait until applied."""
        futs = []
        for d, keys in (touched or {}).items():
            if d in self.topology.droplets and keys:
                f = self.programmer(d).converge(keys)
                if d not in self.excluded:
                    futs.append(f)
        for d in full or ():
            if d in self.topology.droplets:
                f = self.programmer(d).converge_all()
                if d not in self.excluded:
                    futs.append(f)
        if futs:
            await asyncio.wait_for(asyncio.gather(*futs), self.program_timeout)

    async def write_status(self, obj: Obj, want: Obj) -> Obj:
        if not ob.status_differs(obj, want):
            return obj
        body = copy.deepcopy(obj)
        body["status"] = want
        r: Obj = await self.client.update_status(body)
        return r

    async def fail(self, obj: Obj, reason: str, message: str) -> None:
        want = {
            "phase": ob.FAILED,
            "reason": reason,
            "message": message,
            "observedGeneration": ob.generation(obj),
        }
        if ob.status(obj).get("reason") != reason or ob.status(obj).get("message") != message:
            self.recorder.warning(obj, reason, message)
        await self.write_status(obj, want)

    async def wait(self, obj: Obj, message: str) -> float:
        await self.write_status(obj, {"phase": ob.INIT, "message": message})
        return WAIT_RETRY

    def enqueue(self, controller: str, keys: list[str]) -> None:
        c = self.controllers.get(controller)
        if c is not None:
            for k in keys:
                c.queue.add(k)

    async def close(self) -> None:
        for p in list(self.programmers.values()):
            await p.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
