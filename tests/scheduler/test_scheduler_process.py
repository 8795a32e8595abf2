"""Integration: the scheduler as a real process against a real API server process.

Nodes are plain Node objects created through the API (allocatable/capacity and a Ready
condition; no agent). One scheduler process serves the whole module; every test starts
by deleting the previous test's nodes and uses its own namespace.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctl.client import ApiError, Client
from tests.cluster import ApiServerProcess, RoleProcess, free_port
from tests.helpers import eventually as _eventually
from tests.scheduler.helpers import affinity, node, pod

pytestmark = pytest.mark.slow  # starts API server / role / etcd processes

SCHED_ARGS = [
    "--pod-initial-backoff-seconds",
    "0.2",
    "--pod-max-backoff-seconds",
    "1",
    "--log-level",
    "DEBUG",
]


def start_scheduler(args: list[str], log: Path) -> RoleProcess:
    port = free_port()
    proc = RoleProcess("scheduler", [*args, *SCHED_ARGS, "--health-port", str(port)], log).start()
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/healthz", 20)
    except BaseException:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="module")
def scheduler(apiserver: ApiServerProcess) -> Iterator[RoleProcess]:
    proc = start_scheduler(["--server", apiserver.url], apiserver.data_dir / "scheduler.log")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture()
async def api(
    apiserver: ApiServerProcess, scheduler: RoleProcess, request: pytest.FixtureRequest
) -> AsyncIterator[Client]:
    c = apiserver.client()
    for n in (await c.list("nodes"))["items"]:
        await c.delete("nodes", n["metadata"]["name"])
    ns = request.node.name.replace("_", "-").lower()[:50].strip("-")
    await c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    c.config.namespace = ns
    try:
        yield c
    finally:
        await c.close()
        assert scheduler.proc is not None and scheduler.proc.poll() is None, scheduler.log()[-3000:]


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition"
) -> Any:
    return await _eventually(check, timeout, 0.05, what)


async def node_of(c: Client, name: str) -> str | None:
    return (await c.get("pods", name)).get("spec", {}).get("nodeName")


async def all_bound(c: Client, names: list[str], timeout: float = 10.0) -> dict[str, str]:
    async def check() -> dict[str, str] | None:
        out = {n: await node_of(c, n) for n in names}
        return out if all(out.values()) else None

    return await eventually(check, timeout, f"pods {names} bound")  # type: ignore[no-any-return]


async def events_of(c: Client, pod_name: str, reason: str) -> list[dict[str, Any]]:
    items = (await c.list("events", c.namespace))["items"]
    return [e for e in items if e["involvedObject"]["name"] == pod_name and e["reason"] == reason]


async def test_pods_are_bound_to_fitting_nodes_with_scheduled_events(api: Client) -> None:
    await api.create(node("small", cpu="1"))
    await api.create(node("big", cpu="8"))
    for i in range(3):
        await api.create(pod(f"heavy-{i}", cpu="2", namespace=api.namespace))
    placed = await all_bound(api, [f"heavy-{i}" for i in range(3)])
    assert set(placed.values()) == {"big"}
    p = await api.get("pods", "heavy-0")
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    evs = await eventually(lambda: events_of(api, "heavy-0", "Scheduled"), what="Scheduled event")
    e = evs[0]
    assert e["type"] == "Normal" and e["message"] == f"Successfully assigned {api.namespace}/heavy-0 to big"
    assert (
        e["involvedObject"]["uid"] == p["metadata"]["uid"] and e["source"]["component"] == "default-scheduler"
    )


async def test_node_selector_affinity_and_taints_are_respected(api: Client) -> None:
    gpu_taint = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    await api.create(node("plain", labels={"zone": "a"}))
    await api.create(node("ssd", labels={"disk": "ssd", "zone": "b", "cores": "32"}))
    await api.create(node("gpu", labels={"disk": "ssd", "zone": "c"}, taints=gpu_taint))
    ns = api.namespace
    await api.create(pod("wants-ssd", nodeSelector={"disk": "ssd"}, namespace=ns))
    tol = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    await api.create(
        pod(
            "gpu-job",
            namespace=ns,
            tolerations=tol,
            affinity=affinity([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["c"]}]}]),
        )
    )
    await api.create(
        pod(
            "not-zone-b",
            namespace=ns,
            affinity=affinity(
                [
                    {
                        "matchExpressions": [
                            {"key": "zone", "operator": "NotIn", "values": ["b"]},
                            {"key": "disk", "operator": "DoesNotExist"},
                        ]
                    }
                ]
            ),
        )
    )
    await api.create(
        pod(
            "many-cores",
            namespace=ns,
            affinity=affinity([{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["16"]}]}]),
        )
    )
    placed = await all_bound(api, ["wants-ssd", "gpu-job", "not-zone-b", "many-cores"])
    assert placed == {"wants-ssd": "ssd", "gpu-job": "gpu", "not-zone-b": "plain", "many-cores": "ssd"}
    # without a toleration the tainted node is out of reach
    await api.create(pod("only-zone-c", namespace=ns, nodeSelector={"zone": "c"}))
    evs = await eventually(lambda: events_of(api, "only-zone-c", "FailedScheduling"), what="FailedScheduling")
    assert evs[0]["message"] == (
        "0/3 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {dedicated: gpu}."
    )
    assert await node_of(api, "only-zone-c") is None


async def test_unschedulable_pod_gets_an_event_then_is_scheduled_when_a_node_fits(api: Client) -> None:
    await api.create(node("a", cpu="1"))
    await api.create(node("b", cpu="1"))
    await api.create(pod("large", cpu="4", namespace=api.namespace))
    evs = await eventually(lambda: events_of(api, "large", "FailedScheduling"), what="FailedScheduling event")
    e = evs[0]
    assert e["type"] == "Warning" and e["count"] >= 1
    assert e["message"] == "0/2 nodes are available: 2 Insufficient cpu."
    assert e["involvedObject"]["kind"] == "Pod" and e["firstTimestamp"] and e["lastTimestamp"]
    await asyncio.sleep(0.5)
    assert await node_of(api, "large") is None
    conds = (await api.get("pods", "large"))["status"].get("conditions") or []
    sched = [c for c in conds if c["type"] == "PodScheduled"]
    assert sched and sched[0]["status"] == "False" and sched[0]["reason"] == "Unschedulable"
    assert sched[0]["message"] == "0/2 nodes are available: 2 Insufficient cpu."
    # the same message again is aggregated into one Event
    assert len(await events_of(api, "large", "FailedScheduling")) == 1
    await api.create(node("huge", cpu="16"))
    placed = await all_bound(api, ["large"], timeout=10)
    assert placed["large"] == "huge"


async def test_deleting_a_bound_pod_frees_room_for_a_waiting_one(api: Client) -> None:
    await api.create(node("only", cpu="1"))
    await api.create(pod("first", cpu="800m", namespace=api.namespace))
    await all_bound(api, ["first"])
    await api.create(pod("second", cpu="800m", namespace=api.namespace))
    await eventually(lambda: events_of(api, "second", "FailedScheduling"), what="FailedScheduling event")
    await api.delete("pods", "first", grace_period_seconds=0)
    assert (await all_bound(api, ["second"]))["second"] == "only"


async def test_replicas_of_one_owner_spread_across_nodes(api: Client) -> None:
    for i in range(4):
        await api.create(node(f"spread-{i}"))
    names = [f"web-{i}" for i in range(8)]
    await asyncio.gather(*(api.create(pod(n, owner="web", namespace=api.namespace)) for n in names))
    placed = await all_bound(api, names)
    assert sorted(Counter(placed.values()).values()) == [2, 2, 2, 2]


async def test_not_ready_and_cordoned_nodes_are_avoided(api: Client) -> None:
    await api.create(node("down", cpu="64", ready="False"))
    await api.create(node("cordoned", cpu="64", unschedulable=True))
    await api.create(node("fine", cpu="2"))
    names = [f"p-{i}" for i in range(5)]
    for n in names:
        await api.create(pod(n, namespace=api.namespace))
    placed = await all_bound(api, names)
    assert set(placed.values()) == {"fine"}
    await api.create(pod("too-big", cpu="8", namespace=api.namespace))
    evs = await eventually(
        lambda: events_of(api, "too-big", "FailedScheduling"), what="FailedScheduling event"
    )
    assert evs[0]["message"] == (
        "0/3 nodes are available: 1 Insufficient cpu, "
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable."
    )
    # the node becomes Ready: the waiting pod goes there
    n = await api.get("nodes", "down")
    n["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    await api.update_status(n)
    assert (await all_bound(api, ["too-big"]))["too-big"] == "down"


async def test_other_tenants_pods_are_scheduled_and_foreign_schedulers_ignored(api: Client) -> None:
    await api.create(node("shared"))
    try:
        await api.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": "acme"}})
    except ApiError as e:
        if e.code != 409:
            raise
    try:
        await api.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}, tenant="acme"
        )
    except ApiError as e:
        if e.code != 409:
            raise
    await api.create(pod("tenant-pod", namespace="shop"), tenant="acme")
    await api.create(pod("foreign", namespace=api.namespace, schedulerName="someone-else"))

    async def bound() -> str | None:
        return (await api.get("pods", "tenant-pod", "shop", tenant="acme")).get("spec", {}).get("nodeName")

    assert await eventually(bound, what="tenant pod bound") == "shared"
    await asyncio.sleep(0.5)
    assert await node_of(api, "foreign") is None


async def test_unbound_pod_watch_by_field_selector(apiserver: ApiServerProcess) -> None:
    """The API server delivers spec.nodeName= watches (unbound pods), which a nodeName index once missed."""
    async with apiserver.client() as c:
        await c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watch-unbound"}})
        got: list[tuple[str, str]] = []

        async def watch() -> None:
            async for typ, obj in c.watch("pods", tenant="all", field_selector="spec.nodeName="):
                if obj["metadata"]["namespace"] == "watch-unbound":
                    got.append((typ, obj["metadata"]["name"]))

        task = asyncio.create_task(watch())
        try:
            await asyncio.sleep(0.3)
            await c.create(pod("w", namespace="watch-unbound", schedulerName="nobody"))
            await eventually(lambda: asyncio.sleep(0, got[:]), what="ADDED")
            await c.bind(await c.get("pods", "w", "watch-unbound"), "somewhere")
            await eventually(lambda: asyncio.sleep(0, len(got) >= 2), what="DELETED")
            assert got == [("ADDED", "w"), ("DELETED", "w")]
        finally:
            task.cancel()


async def test_nodes_from_another_partition(apiserver: ApiServerProcess, tmp_path: Path) -> None:
    """--node-source: pods from this API server, nodes from a resource partition's API server."""
    rp = ApiServerProcess(tmp_path / "rp").start()
    sched = None
    try:
        async with rp.client() as rpc, apiserver.client() as tp:
            await rpc.create(node("rp-node-1", labels={"partition": "rp"}))
            kubeconfig = tmp_path / "kubeconfig"
            kubeconfig.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [{"name": "tp", "cluster": {"server": apiserver.url}}],
                        "users": [{"name": "sched", "user": {}}],
                        "contexts": [{"name": "tp", "context": {"cluster": "tp", "user": "sched"}}],
                        "current-context": "tp",
                    }
                )
            )
            sched = start_scheduler(
                ["--kubeconfig", str(kubeconfig), "--node-source", rp.url, "--scheduler-name", "rp-sched"],
                tmp_path / "sched.log",
            )
            await tp.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "partitioned"}})
            await tp.create(pod("p1", namespace="partitioned", schedulerName="rp-sched"))

            async def bound() -> str | None:
                return (await tp.get("pods", "p1", "partitioned")).get("spec", {}).get("nodeName")

            assert await eventually(bound, what="pod bound to the partition's node") == "rp-node-1"
    finally:
        if sched is not None:
            sched.stop()
        rp.stop()


def test_bad_flags_fail_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctl",
            "serve",
            "scheduler",
            "--server",
            "ftp://x",
            "--percentage-of-nodes-to-score",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "invalid API server URL" in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctl",
            "serve",
            "scheduler",
            "--server",
            "http://127.0.0.1:1",
            "--percentage-of-nodes-to-score",
            "150",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "between 0 and 100" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "ctl", "serve", "scheduler", "--kubeconfig", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        r.returncode == 1 and r.stderr.startswith("error: scheduler:") and r.stderr.strip().count("\n") == 0
    )
