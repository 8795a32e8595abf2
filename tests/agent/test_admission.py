"""Node admission rules (``agent/node/admission.py``) on their own: pods, cpu and memory."""

from __future__ import annotations

from typing import Any

from agent.node.admission import has_run, refusal
from agent.node.nodeinfo import NodeSpec


def node(pods: int = 3, cpu: str = "2", memory: str = "1Gi") -> NodeSpec:
    return NodeSpec(
        name="n",
        internal_ip="10.0.0.1",
        hostname="n",
        cpu=cpu,
        memory=memory,
        pods=pods,
        runtime="hollow",
        runtime_version="0",
        os_image="",
        kernel="",
        architecture="amd64",
        labels={},
        taints=[],
        pod_cidr="",
        endpoint_port=0,
        endpoint_url="",
        instance_type="",
    )


def pod(cpu: str | None = None, memory: str | None = None, limits: bool = False) -> dict[str, Any]:
    res = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    c: dict[str, Any] = {"name": "c", "image": "busybox"}
    if res:
        c["resources"] = {"limits" if limits else "requests": res}
    return {"spec": {"containers": [c]}}


def test_pod_count() -> None:
    assert refusal(pod(), [pod(), pod()], node(pods=3)) is None
    r = refusal(pod(), [pod(), pod(), pod()], node(pods=3))
    assert r == (
        "OutOfpods",
        "Pod Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3",
    )


def test_cpu_and_memory_requests_as_the_scheduler_counts_them() -> None:
    assert refusal(pod(cpu="1500m"), [pod(cpu="500m")], node(cpu="2")) is None
    r = refusal(pod(cpu="1501m"), [pod(cpu="500m")], node(cpu="2"))
    assert r is not None and r[0] == "OutOfcpu" and "requested: 1501, used: 500, capacity: 2000" in r[1]
    # limits stand in for missing requests, as in the scheduler
    r = refusal(pod(memory="800Mi", limits=True), [pod(memory="300Mi")], node(memory="1Gi"))
    assert r is not None and r[0] == "OutOfmemory"
    # a pod that asks for nothing always fits what is left
    assert refusal(pod(), [pod(cpu="2", memory="1Gi")], node(cpu="2", memory="1Gi")) is None


def test_pods_that_already_ran_skip_admission() -> None:
    assert not has_run({"status": {"phase": "Pending"}})
    assert has_run({"status": {"phase": "Running"}})
    assert has_run({"status": {"phase": "Pending", "containerStatuses": [{"name": "c"}]}})
