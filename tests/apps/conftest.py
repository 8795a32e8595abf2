"""Fixtures for the DaemonSet/StatefulSet tests: the controller fixtures plus a node farm.

The API server and the controllers process come from :mod:`tests.controllers.conftest`.
:class:`NodeFarm` plays the kubelets of several nodes for one namespace: it creates the
Node objects (with labels and taints), renews their Leases, binds unbound pods round-robin
(StatefulSet pods; DaemonSet pods arrive bound), reports every pod bound to one of its
nodes Running and Ready (optionally not ready until ``hold`` is cleared for it), and
removes deleted pods, as an agent does once their containers stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ctl.client import ApiError, Client
from ctl.types import meta
from tests.controllers.conftest import (  # noqa: F401 - fixtures used by the tests here
    FakeKubelet,
    client,
    cluster,
    eventually,
    ns,
    pod_template,
    renew_lease,
    running_status,
)

_fixtures = (client, cluster, ns)  # re-exported: pytest finds them in this module


class NodeFarm(FakeKubelet):
    """:class:`FakeKubelet` for several nodes (its task handling and pod removal are reused)."""

    def __init__(self, client: Client, namespace: str, prefix: str) -> None:
        super().__init__(client, namespace, node=prefix, lease=False)
        self.prefix = prefix
        self.nodes: list[str] = []
        self.not_ready: set[str] = set()  # pod names to report Running but not Ready
        self._rr = 0

    async def add_node(
        self, suffix: str, labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None
    ) -> str:
        name = f"{self.prefix}-{suffix}"
        node: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or []},
        }
        self.nodes.append(name)  # before the node exists: its first pod may come at once
        await self.client.create(node)
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "lastTransitionTime": meta.now_rfc3339(),
        }
        for attempt in range(10):  # the node lifecycle controller may write the node meanwhile
            fresh = await self.client.get("nodes", name)
            fresh["status"] = {"conditions": [ready]}
            try:
                await self.client.update_status(fresh)
                break
            except ApiError as e:
                if e.code != 409 or attempt == 9:
                    raise
        await renew_lease(self.client, name)
        return name

    async def remove_node(self, name: str) -> None:
        self.nodes.remove(name)
        await self.client.delete("nodes", name)

    async def start(self) -> NodeFarm:
        self._main = asyncio.create_task(self._run())
        self._lease_task = asyncio.create_task(self._renew())
        return self

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for n in list(self.nodes):
                with contextlib.suppress(ApiError, ConnectionError):
                    await renew_lease(self.client, n)

    async def _run(self) -> None:
        async for typ, pod in self.client.watch("pods", self.namespace):
            if typ == "DELETED":
                continue
            md = pod["metadata"]
            node = (pod.get("spec") or {}).get("nodeName")
            if md.get("deletionTimestamp"):
                if node in self.nodes or not node:
                    self._spawn(self._remove(pod))
                continue
            if not node and self.nodes:
                node = self.nodes[self._rr % len(self.nodes)]
                self._rr += 1
                self._spawn(self._start(pod, node, bind=True))
            elif node in self.nodes and not _reported(pod, md["name"] not in self.not_ready):
                self._spawn(self._start(pod, node, bind=False))

    async def _start(self, pod: dict[str, Any], node: str, bind: bool) -> None:
        md = pod["metadata"]
        with contextlib.suppress(ApiError):
            if bind:
                await self.client.bind(pod, node)
                return  # the bound pod comes back through the watch
            for _ in range(5):
                fresh = await self.client.get("pods", md["name"], namespace=md["namespace"])
                if fresh["metadata"]["uid"] != md["uid"] or fresh["metadata"].get("deletionTimestamp"):
                    return
                fresh["status"] = running_status(fresh, ready=md["name"] not in self.not_ready)
                try:
                    await self.client.update(fresh, "status")
                    return
                except ApiError as e:
                    if e.code != 409:
                        return

    async def refresh(self, pod_name: str) -> None:
        """Report a pod again (after changing :attr:`not_ready`)."""
        pod = await self.client.get("pods", pod_name, namespace=self.namespace)
        await self._start(pod, pod["spec"]["nodeName"], bind=False)

    async def stop(self) -> None:
        await super().stop()
        for n in list(self.nodes):
            with contextlib.suppress(ApiError):
                await self.client.delete("nodes", n)


async def set_image(client: Client, ns: str, plural: str, name: str, image: str) -> dict[str, Any]:
    """Change the template's (first container's) image with a merge patch, as ``set image`` does."""
    obj = await client.get(plural, name, namespace=ns)
    containers = obj["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = image
    patch = {"spec": {"template": {"spec": {"containers": containers}}}}
    return await client.patch(plural, name, patch, namespace=ns)


def _reported(pod: dict[str, Any], ready: bool) -> bool:
    st = pod.get("status") or {}
    if st.get("phase") != "Running":
        return False
    cond = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), None)
    return cond is not None and (cond.get("status") == "True") == ready


@pytest.fixture()
async def farm(client: Client, ns: str) -> AsyncIterator[NodeFarm]:
    f = await NodeFarm(client, ns, ns).start()
    try:
        yield f
    finally:
        await f.stop()
