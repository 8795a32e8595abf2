"""Where node agents learn about their pods and actions: informers over every tenant partition.

A real agent (one node per process) watches ``/api/v1/tenants/all/pods?fieldSelector=spec.nodeName=NODE``
so the API server's node index sends it only its own pods (DESIGN §5). A hollow process with thousands
of nodes instead opens ONE watch across tenants without a node selector and dispatches each event by
``spec.nodeName`` to the node it belongs to (a dict lookup; unbound pods and pods of other nodes are
dropped). Per-node watches would cost one HTTP connection and one server-side watcher per hollow node.

Actions (v1 ``Action``, namespaced, ``spec.nodeName``) are watched the same way.

Every tenant partition (``--tp-server``) gets its own informers; a pod's worker remembers the client
it came from, so its status goes back to the partition that owns it (DESIGN §6).

:meth:`Sources.start` returns once every informer has listed, after running adoption on every node
(the runtimes' pods are compared with the pods bound in the API) and releasing the pod workers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent.node.agent import NodeAgent
from ctl.client.aio import Client
from ctl.client.informer import Informer

log = logging.getLogger("centaurus.agent.sources")


class Sources:
    def __init__(self, agents: dict[str, NodeAgent], tp_clients: list[Client], node_selector: bool) -> None:
        self.agents = agents
        self.tp_clients = tp_clients
        self.node_selector = node_selector
        self.pod_informers: list[Informer] = []
        self.action_informers: list[Informer] = []
        self.pod_events = 0

    def _selector(self) -> str | None:
        if self.node_selector and len(self.agents) == 1:
            return f"spec.nodeName={next(iter(self.agents))}"
        return None

    def _pod_handler(self, client: Client) -> Any:
        agents = self.agents

        def handle(typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            self.pod_events += 1
            node = (obj.get("spec") or {}).get("nodeName")
            if not node:
                return
            a = agents.get(node)
            if a is not None:
                a.on_pod(typ, obj, client)

        return handle

    def _action_handler(self, client: Client) -> Any:
        agents = self.agents

        def handle(typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            a = agents.get((obj.get("spec") or {}).get("nodeName") or "")
            if a is not None:
                a.on_action(typ, obj, client)

        return handle

    async def start(self, adopt: bool = True) -> None:
        sel = self._selector()
        for client in self.tp_clients:
            pi = Informer(client, "pods", tenant="all", field_selector=sel)
            pi.add_handler(self._pod_handler(client))
            self.pod_informers.append(pi)
            ai = Informer(client, "actions", tenant="all", field_selector=sel)
            ai.add_handler(self._action_handler(client))
            self.action_informers.append(ai)
        for inf in self.pod_informers + self.action_informers:
            inf.start()
        await asyncio.gather(*(inf.synced.wait() for inf in self.pod_informers))
        log.info("pod informers synced (%d partitions)", len(self.tp_clients))
        if adopt:
            bound: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in self.agents}
            for inf in self.pod_informers:
                for pod in inf.list():
                    node = (pod.get("spec") or {}).get("nodeName")
                    if node in bound:
                        bound[node][pod["metadata"]["uid"]] = pod
            for name, agent in self.agents.items():
                await agent.adopt(bound[name])
        for agent in self.agents.values():
            agent.ready.set()

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self.pod_informers + self.action_informers))
