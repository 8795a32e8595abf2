"""Fixtures for controller tests: a real API server, the controllers as a real process, a fake kubelet.

No scheduler or node agent runs: :class:`FakeKubelet` plays both for the pods of one
namespace. It binds every unbound pod to its node, reports it Running and Ready
(optionally after a delay), renews the node's Lease, and removes pods that are being
deleted with grace 0, as an agent does once their containers stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ctl.client import ApiError, Client
from ctl.types import meta
from tests.cluster import ApiServerProcess, RoleProcess
from tests.helpers import eventually  # noqa: F401 - the controller tests import it from here


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, RoleProcess]]:
    d: Path = tmp_path_factory.mktemp("ctrl")
    api = ApiServerProcess(d).start()
    ctrl = RoleProcess("controllers", ["--server", api.url, "--workers", "2"], d / "controllers.log").start()
    try:
        yield api, ctrl
    finally:
        ctrl.stop()
        api.stop()
        log = ctrl.log()
        if "Traceback" in log:
            print(log[-6000:])


@pytest.fixture()
async def client(cluster: tuple[ApiServerProcess, RoleProcess]) -> AsyncIterator[Client]:
    c = cluster[0].client()
    try:
        yield c
    finally:
        await c.close()


_counter = 0


@pytest.fixture()
async def ns(client: Client) -> AsyncIterator[str]:
    global _counter
    _counter += 1
    name = f"t{_counter}-{int(time.time() * 1000) % 100000}"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def pod_template(labels: dict[str, str], image: str = "busybox:1", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}], "terminationGracePeriodSeconds": 30, **spec},
    }


def replicaset(name: str, replicas: int, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(labels),
            **spec,
        },
    }


def deployment(name: str, replicas: int, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(labels),
            **spec,
        },
    }


async def ensure_node(client: Client, name: str) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "lastTransitionTime": meta.now_rfc3339(),
                }
            ]
        },
    }
    try:
        created = await client.create(node)
        created["status"] = node["status"]
        await client.update_status(created)
    except ApiError as e:
        if e.code != 409:
            raise


async def renew_lease(client: Client, node: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        lease = await client.get("leases", node, namespace="kube-node-lease", tenant="system")
        lease["spec"]["renewTime"] = now
        await client.update(lease)
    except ApiError as e:
        if e.code != 404:
            raise
        await client.create(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now},
            },
            tenant="system",
        )


def running_status(pod: dict[str, Any], ready: bool = True) -> dict[str, Any]:
    now = meta.now_rfc3339()
    st = dict(pod.get("status") or {})
    conds = [c for c in st.get("conditions") or [] if c.get("type") not in ("Ready", "ContainersReady")]
    conds.append({"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now})
    conds.append(
        {"type": "ContainersReady", "status": "True" if ready else "False", "lastTransitionTime": now}
    )
    st.update(
        {
            "phase": "Running",
            "conditions": conds,
            "startTime": now,
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "ready": ready,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": now}},
                }
                for c in (pod.get("spec") or {}).get("containers") or []
            ],
        }
    )
    return st


class FakeKubelet:
    """Binds, starts and removes the pods of one namespace (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        namespace: str,
        node: str = "node-a",
        ready_delay: float = 0.0,
        tenant: str | None = None,
        lease: bool = True,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.node = node
        self.ready_delay = ready_delay
        self.tenant = tenant
        self.lease = lease
        self.paused = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self.handled: set[str] = set()

    async def start(self) -> FakeKubelet:
        await ensure_node(self.client, self.node)
        if self.lease:
            await renew_lease(self.client, self.node)
            self._lease_task = asyncio.create_task(self._renew())
        self._main = asyncio.create_task(self._run())
        return self

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(ApiError, ConnectionError):
                await renew_lease(self.client, self.node)

    async def _run(self) -> None:
        async for typ, pod in self.client.watch("pods", self.namespace, tenant=self.tenant):
            if typ == "DELETED" or self.paused:
                continue
            md = pod["metadata"]
            node = (pod.get("spec") or {}).get("nodeName")
            if md.get("deletionTimestamp"):
                if node == self.node:
                    self._spawn(self._remove(pod))
                continue
            if not node and md["uid"] not in self.handled:
                self.handled.add(md["uid"])
                self._spawn(self._start_pod(pod))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _remove(self, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        with contextlib.suppress(ApiError):
            await self.client.delete(
                "pods",
                md["name"],
                namespace=md["namespace"],
                tenant=self.tenant,
                grace_period_seconds=0,
                preconditions={"uid": md["uid"]},
            )

    async def _start_pod(self, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        try:
            await self.client.bind(pod, self.node)
            if self.ready_delay:
                fresh = await self.client.get(
                    "pods", md["name"], namespace=md["namespace"], tenant=self.tenant
                )
                fresh["status"] = running_status(fresh, ready=False)
                await self.client.update(fresh, "status")
                await asyncio.sleep(self.ready_delay)
            for _ in range(5):
                fresh = await self.client.get(
                    "pods", md["name"], namespace=md["namespace"], tenant=self.tenant
                )
                if fresh["metadata"].get("deletionTimestamp"):
                    return
                fresh["status"] = running_status(fresh)
                try:
                    await self.client.update(fresh, "status")
                    return
                except ApiError as e:
                    if e.code != 409:
                        raise
        except ApiError:
            return

    async def stop(self) -> None:
        for t in [self._main, self._lease_task, *self._tasks]:
            if t is not None:
                t.cancel()
        for t in [self._main, self._lease_task, *list(self._tasks)]:
            if t is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t


@pytest.fixture()
async def kubelet(client: Client, ns: str) -> AsyncIterator[FakeKubelet]:
    k = await FakeKubelet(client, ns).start()
    try:
        yield k
    finally:
        await k.stop()


async def pods_of(
    client: Client, namespace: str, selector: str | None = None, tenant: str | None = None
) -> list[dict[str, Any]]:
    return (await client.list("pods", namespace, tenant=tenant, label_selector=selector))["items"]


def live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]
