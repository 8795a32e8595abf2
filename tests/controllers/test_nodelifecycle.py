"""Node lifecycle controller with a 3 s grace period and a 2 s eviction timeout: NotReady, taints, eviction, pod GC."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.client import ApiError, Client
from tests.cluster import ApiServerProcess, RoleProcess
from tests.controllers.conftest import (
    FakeKubelet,
    ensure_node,
    eventually,
    live,
    pods_of,
    renew_lease,
    replicaset,
)

UNREACHABLE = "node.kubernetes.io/unreachable"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, RoleProcess]]:
    d: Path = tmp_path_factory.mktemp("nlc")
    api = ApiServerProcess(d).start()
    ctrl = RoleProcess(
        "controllers",
        ["--server", api.url, "--node-monitor-grace-period", "3s", "--pod-eviction-timeout", "2s"],
        d / "controllers.log",
    ).start()
    try:
        yield api, ctrl
    finally:
        ctrl.stop()
        api.stop()


def ready_of(node: dict) -> dict:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


def taints_of(node: dict) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node.get("spec", {}).get("taints") or []}


async def test_unreachable_node_is_tainted_pods_evicted_and_recovered(client: Client, ns: str) -> None:
    k = await FakeKubelet(client, ns, node="node-x").start()
    tolerant = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tolerant"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1"}],
            "tolerations": [
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 120}
            ],
        },
    }
    try:
        await client.create(replicaset("web", 2, {"app": "web"}), namespace=ns)
        await client.create(tolerant, namespace=ns)

        async def running() -> bool:
            pods = await pods_of(client, ns)
            return len(pods) == 3 and all(
                p["spec"].get("nodeName") == "node-x" and p["status"]["phase"] == "Running" for p in pods
            )

        await eventually(running, what="pods running on node-x")
        await asyncio.sleep(4.0)  # leases keep coming: the node stays Ready past the grace period
        node = await client.get("nodes", "node-x")
        assert ready_of(node)["status"] == "True" and not taints_of(node)
        old = {p["metadata"]["name"] for p in await pods_of(client, ns, "app=web")}
    finally:
        await k.stop()  # the agent dies: no more lease renewals, nobody removes pods

    async def unknown() -> dict | None:
        n = await client.get("nodes", "node-x")
        return n if ready_of(n)["status"] == "Unknown" else None

    node = await eventually(unknown, timeout=10, what="node Ready=Unknown")
    assert ready_of(node)["reason"] == "NodeStatusUnknown"

    async def tainted() -> bool:
        return {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")} <= taints_of(
            await client.get("nodes", "node-x")
        )

    await eventually(tainted, timeout=5, what="unreachable taints")

    async def replaced() -> bool:
        pods = await pods_of(client, ns, "app=web")
        names = {p["metadata"]["name"] for p in pods}
        return len(pods) == 2 and not (names & old)

    await eventually(replaced, timeout=10, what="evicted pods replaced")
    for p in await pods_of(client, ns, "app=web"):
        assert (
            not p["spec"].get("nodeName") and p["status"]["phase"] == "Pending"
        )  # waiting for the scheduler
    t = await client.get("pods", "tolerant", namespace=ns)
    assert not t["metadata"].get("deletionTimestamp")  # tolerates the taint for 120 s
    evs = (await client.list("events", tenant="system"))["items"]
    assert any(e["reason"] == "NodeNotReady" and e["involvedObject"]["name"] == "node-x" for e in evs)
    evs = (await client.list("events", ns))["items"]
    assert any(e["reason"] == "TaintManagerEviction" for e in evs)

    # The lease resumes: Ready again, taints gone.
    await renew_lease(client, "node-x")

    async def recovered() -> bool:
        n = await client.get("nodes", "node-x")
        return ready_of(n)["status"] == "True" and not taints_of(n)

    await eventually(recovered, timeout=5, what="node Ready again")


async def test_pod_gc_for_deleted_node(client: Client, ns: str) -> None:
    await ensure_node(client, "node-gone")
    await renew_lease(client, "node-gone")
    pod = await client.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "lost"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
        },
        namespace=ns,
    )
    await client.bind(pod, "node-gone")
    await client.delete("nodes", "node-gone")

    async def gone() -> bool:
        try:
            await client.get("pods", "lost", namespace=ns)
            return False
        except ApiError as e:
            return e.code == 404

    await eventually(gone, timeout=10, what="pod of a deleted node force-deleted")
    assert live(await pods_of(client, ns)) == []
