"""A node's presence in the cluster: its Node object, the Node's status, and its heartbeat Lease.

:class:`NodeRegistration` does for one node what kubelet's node status manager and lease
controller do, in every resource partition (DESIGN §6):

* **Registration** (:meth:`~NodeRegistration.register`): create the Node (or patch labels,
  annotations and podCIDR of an existing one), then write its status (capacity, addresses,
  nodeInfo, daemonEndpoints, conditions) through the ``status`` subresource; retried until it
  succeeds.
* **Node status** (:meth:`~NodeRegistration.status_loop`): conditions re-evaluated every
  ``lease_seconds`` from the host's readings; the status is written when a condition changes,
  otherwise every ``node_status_seconds``. A 404 means the Node was deleted: register again.
* **Lease** (:meth:`~NodeRegistration.lease_loop`): ``coordination.k8s.io/v1`` Lease
  ``kube-node-lease/NODE`` in the system tenant, owned by the Node, renewed every
  ``lease_seconds`` with a little jitter (and a staggered first renewal) so that a process full of
  hollow nodes does not renew in lock step.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path
from typing import Any

from agent.node import nodeinfo
from agent.node.nodeinfo import NodeSpec
from agent.node.shared import Shared
from ctl.client.aio import ApiError, Client
from ctl.types.kinds import NODE_LEASE_NAMESPACE, SYSTEM_TENANT

log = logging.getLogger("centaurus.agent")


class NodeRegistration:
    """The Node, its status and its Lease for one node, in every resource partition."""

    def __init__(self, spec: NodeSpec, shared: Shared, data_dir: Path | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.shared = shared
        self.timing = shared.timing
        self.data_dir = data_dir
        self.node_uid: dict[int, str] = {}  # partition index -> the Node's uid there (the Lease's owner)
        self.conditions: list[dict[str, Any]] = []
        self.runtime_ok = True
        self.runtime_message = ""
        self.lease_renewals = 0
        self.status_writes = 0

    # ------------------------------------------------------------------ node

    async def register(self) -> None:
        """Create or update the Node in every resource partition, then write its status."""
        obj = self.spec.node_object()
        self.conditions = nodeinfo.conditions(self._readings(), self.runtime_ok, self.runtime_message, None)
        for i, client in enumerate(self.shared.rp_clients):
            while True:
                try:
                    async with self.shared.write_limit:
                        try:
                            created = await client.create(obj)
                        except ApiError as e:
                            if e.code != 409:
                                raise
                            md = obj["metadata"]
                            created = await client.patch(
                                "nodes",
                                self.name,
                                {
                                    "metadata": {"labels": md["labels"], "annotations": md["annotations"]},
                                    "spec": {"podCIDR": self.spec.pod_cidr, "podCIDRs": [self.spec.pod_cidr]},
                                },
                            )
                        self.node_uid[i] = created["metadata"]["uid"]
                        await client.patch(
                            "nodes",
                            self.name,
                            {"status": self.spec.status(self.conditions)},
                            subresource="status",
                        )
                    break
                except (ApiError, ConnectionError) as e:
                    log.warning("node %s: registration failed: %s; retrying", self.name, e)
                    await asyncio.sleep(1.0 + random.random())
        self.status_writes += 1
        log.info("node %s registered", self.name)

    def _readings(self) -> nodeinfo.HostReadings | None:
        if self.spec.hollow or self.data_dir is None:
            return None
        return nodeinfo.read_host(self.data_dir)

    async def status_loop(self) -> None:
        """Re-evaluate conditions every lease period; write on change or every node_status_seconds."""
        last_write = time.monotonic() - random.random() * self.shared.stagger
        period = self.timing.lease_seconds
        while True:
            await asyncio.sleep(period)
            readings = await asyncio.to_thread(self._readings) if not self.spec.hollow else None
            conds = nodeinfo.conditions(readings, self.runtime_ok, self.runtime_message, self.conditions)
            changed = nodeinfo.strip_heartbeats(conds) != nodeinfo.strip_heartbeats(self.conditions)
            if not changed and time.monotonic() - last_write < self.timing.node_status_seconds:
                continue
            if changed:
                log.info(
                    "node %s conditions changed: %s", self.name, [(c["type"], c["status"]) for c in conds]
                )
            for client in self.shared.rp_clients:
                try:
                    async with self.shared.write_limit:
                        await client.patch(
                            "nodes", self.name, {"status": {"conditions": conds}}, subresource="status"
                        )
                except (ApiError, ConnectionError) as e:
                    log.warning("node %s: status update failed: %s", self.name, e)
                    if isinstance(e, ApiError) and e.code == 404:
                        await self.register()
            self.conditions = conds
            last_write = time.monotonic()
            self.status_writes += 1

    # ------------------------------------------------------------------ lease

    def _lease(self, i: int) -> dict[str, Any]:
        md: dict[str, Any] = {"name": self.name, "namespace": NODE_LEASE_NAMESPACE, "tenant": SYSTEM_TENANT}
        if self.node_uid.get(i):
            md["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.node_uid[i]}
            ]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": md,
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": self.timing.lease_duration,
                "renewTime": nodeinfo.now_micro(),
            },
        }

    async def renew_lease(
        self, i: int, client: Client, current: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Renew (or create) the lease in one partition; returns the stored lease."""
        async with self.shared.write_limit:
            if current is not None:
                cur = dict(current)
                cur["spec"] = {
                    **(cur.get("spec") or {}),
                    "holderIdentity": self.name,
                    "leaseDurationSeconds": self.timing.lease_duration,
                    "renewTime": nodeinfo.now_micro(),
                }
                try:
                    r: dict[str, Any] = await client.update(cur, tenant=SYSTEM_TENANT)
                    return r
                except ApiError as e:
                    if e.code not in (404, 409):
                        raise
            try:
                existing = await client.get(
                    "leases", self.name, namespace=NODE_LEASE_NAMESPACE, tenant=SYSTEM_TENANT
                )
            except ApiError as e:
                if e.code != 404:
                    raise
                lease = self._lease(i)
                lease["spec"]["acquireTime"] = lease["spec"]["renewTime"]
                created: dict[str, Any] = await client.create(
                    lease, namespace=NODE_LEASE_NAMESPACE, tenant=SYSTEM_TENANT
                )
                return created
            existing["spec"] = {**(existing.get("spec") or {}), **self._lease(i)["spec"]}
            updated: dict[str, Any] = await client.update(existing, tenant=SYSTEM_TENANT)
            return updated

    async def lease_loop(self) -> None:
        leases: dict[int, dict[str, Any] | None] = dict.fromkeys(range(len(self.shared.rp_clients)))
        await asyncio.sleep(random.random() * min(self.shared.stagger, self.timing.lease_seconds))
        while True:
            start = time.monotonic()
            for i, client in enumerate(self.shared.rp_clients):
                try:
                    leases[i] = await self.renew_lease(i, client, leases[i])
                    self.lease_renewals += 1
                except (ApiError, ConnectionError) as e:
                    leases[i] = None
                    log.warning("node %s: lease renewal failed: %s", self.name, e)
            # small jitter keeps thousands of hollow nodes from synchronising
            delay = self.timing.lease_seconds * (0.95 + 0.1 * random.random()) - (time.monotonic() - start)
            await asyncio.sleep(max(0.05, delay))
