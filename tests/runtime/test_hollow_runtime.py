"""The hollow runtime: simulated lifecycle, restarts with back-off, scale, probes. No root needed."""

from __future__ import annotations

import tracemalloc
import uuid

import pytest

from agent.node.probes import Prober
from agent.runtime.backoff import BackOff
from agent.runtime.base import PodRuntimeStatus, RuntimeError_
from agent.runtime.hollow import ANN_EXEC_EXIT_CODE, ANN_EXIT_CODE, ANN_RUN_SECONDS, HollowRuntime
from tests.helpers import eventually, spawned


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def pod(name: str, policy: str = "Always", annotations: dict | None = None, containers: int = 1) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "tenant": "system",
            "uid": str(uuid.uuid4()),
            "annotations": annotations or {},
        },
        "spec": {
            "restartPolicy": policy,
            "containers": [{"name": f"c{i}", "image": "busybox"} for i in range(containers)],
        },
    }


async def test_lifecycle_running_after_delay_and_kill_frees_ip() -> None:
    clock = Clock()
    rt = HollowRuntime("h1", "10.201.0.0/24", start_delay=0.5, clock=clock)
    p = pod("a", containers=2)
    st = await rt.sync_pod(p)
    assert [c.state for c in st.containers] == ["waiting", "waiting"]
    assert st.containers[0].reason == "ContainerCreating" and st.pod_ip == "10.201.0.2"
    clock.t += 0.6
    st = await rt.sync_pod(p)
    assert all(c.state == "running" for c in st.containers) and not st.finished
    assert [s.uid for s in await rt.list_pods()] == [p["metadata"]["uid"]]
    assert (await rt.exec(p["metadata"]["uid"], None, ["true"])).exit_code == 0
    logs = b"".join([c async for c in await rt.logs(p["metadata"]["uid"], "c1")])
    assert b"hollow container c1" in logs
    await rt.kill_pod(p["metadata"]["uid"])
    assert await rt.list_pods() == []
    q = await rt.sync_pod(pod("b"))
    assert q.pod_ip == "10.201.0.2"  # the freed address is reused
    with pytest.raises(RuntimeError_):
        await rt.exec(p["metadata"]["uid"], None, ["true"])


async def test_exit_and_restart_with_backoff() -> None:
    clock = Clock()
    rt = HollowRuntime(start_delay=0, backoff_initial=10, backoff_max=40, clock=clock)
    p = pod("crash", annotations={ANN_RUN_SECONDS: "1", ANN_EXIT_CODE: "3"})
    await rt.sync_pod(p)
    restarts_at = []
    last = 0
    for _ in range(200):
        clock.t += 0.5
        st = await rt.sync_pod(p)
        c = st.containers[0]
        if c.restart_count != last:
            restarts_at.append(clock.t)
            last = c.restart_count
    assert last >= 4
    gaps = [b - a for a, b in zip(restarts_at, restarts_at[1:], strict=False)]
    # run 1 s each time; back-off 10, 20, 40, 40 (capped)
    assert gaps[:3] == pytest.approx([11, 21, 41], abs=0.6)
    clock.t += 1.2
    st = await rt.sync_pod(p)
    c = st.containers[0]
    assert c.state == "waiting" and c.reason == "CrashLoopBackOff" and c.last_terminated["exitCode"] == 3


async def test_never_and_onfailure() -> None:
    clock = Clock()
    rt = HollowRuntime(start_delay=0, clock=clock)
    never = pod("n", "Never", {ANN_RUN_SECONDS: "2", ANN_EXIT_CODE: "1"})
    ok = pod("o", "OnFailure", {ANN_RUN_SECONDS: "2"})
    await rt.sync_pod(never)
    await rt.sync_pod(ok)
    clock.t += 3
    n = await rt.sync_pod(never)
    o = await rt.sync_pod(ok)
    assert n.finished and n.containers[0].exit_code == 1 and n.containers[0].reason == "Error"
    assert o.finished and o.containers[0].reason == "Completed" and o.containers[0].restart_count == 0


async def test_thousands_of_pods_are_cheap() -> None:
    """Cheap by what a hollow pod costs, not by a stopwatch (timings: benchmarks/runtime_costs_bench.py).

    A hollow pod starts no process and holds a small, bounded amount of memory; re-syncing a running
    pod allocates nothing that stays.
    """
    rts = [
        HollowRuntime(f"node-{i}", f"10.{100 + i // 256}.{i % 256}.0/24", start_delay=0) for i in range(20)
    ]
    pods = [[pod(f"p{j}") for j in range(100)] for _ in rts]
    tracemalloc.start()
    try:
        with spawned() as started:
            base = tracemalloc.get_traced_memory()[0]
            for rt, mine in zip(rts, pods, strict=True):
                for p in mine:
                    await rt.sync_pod(p)
            per_pod = (tracemalloc.get_traced_memory()[0] - base) / 2000
            for rt, mine in zip(rts, pods, strict=True):
                for p in mine:
                    assert (await rt.sync_pod(p)).containers[0].state == "running"
            resync = (tracemalloc.get_traced_memory()[0] - base) / 2000 - per_pod
    finally:
        tracemalloc.stop()
    listed = [await rt.list_pods() for rt in rts]
    assert sum(len(x) for x in listed) == 2000
    assert all(len({s.pod_ip for s in x}) == 100 for x in listed)  # one address per pod on each node
    assert started == [], "hollow pods must not start processes"
    assert per_pod < 4096, f"a hollow pod holds {per_pod:.0f} bytes"
    assert resync < 256, f"re-syncing a running hollow pod kept {resync:.0f} more bytes"


async def test_prober_on_hollow_pods() -> None:
    clock = Clock()
    rt = HollowRuntime(start_delay=0, clock=clock)
    p = pod("probed", annotations={ANN_EXEC_EXIT_CODE: "1"})
    p["spec"]["containers"][0]["livenessProbe"] = {
        "exec": {"command": ["check"]},
        "periodSeconds": 0.05,
        "failureThreshold": 2,
    }
    p["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": 80}, "periodSeconds": 0.05}
    prober = Prober(rt)
    st = await rt.sync_pod(p)
    prober.start(p, st)

    async def restarted() -> PodRuntimeStatus | None:
        st = prober.apply(await rt.sync_pod(p))
        return st if st.containers[0].restart_count >= 1 else None

    try:
        st = await eventually(restarted, 5, 0.05, "the failing liveness probe to restart the container")
        assert st.containers[0].last_terminated["exitCode"] == 137
    finally:
        await prober.close()


def test_backoff_kubelet_semantics() -> None:
    clock = Clock()
    b = BackOff(10, 300, clock)
    t = clock.t
    assert not b.in_backoff_since("k", t)  # first restart is immediate
    b.next("k", t)
    assert b.in_backoff_since("k", t) and b.remaining("k", t) == 10
    clock.t += 10
    assert not b.in_backoff_since("k", t)
    for _ in range(10):
        b.next("k", clock.t)
    assert b.current("k") == 300
    # an exit long after the last restart starts over
    clock.t += 700
    b.next("k", clock.t)
    assert b.current("k") == 10
    restored = BackOff(10, 300, clock)
    restored.restore(b.export())
    assert restored.current("k") == 10
