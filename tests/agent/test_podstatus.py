"""Unit tests of the agent's pod status computation and minimal merge patches (pure functions)."""

from __future__ import annotations

from agent.node.podstatus import compute_status, merge_patch, qos_class
from agent.runtime.base import ContainerState, PodRuntimeStatus


def _pod(policy: str = "Always", status: dict | None = None, **spec: object) -> dict:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "restartPolicy": policy, **spec},
        "status": status or {},
    }


def _rs(*cs: ContainerState, finished: bool = False, ip: str | None = "10.1.0.2") -> PodRuntimeStatus:
    return PodRuntimeStatus(
        uid="u1",
        name="p",
        namespace="default",
        tenant="system",
        runtime="runc",
        containers=list(cs),
        pod_ip=ip,
        finished=finished,
    )


def test_phases() -> None:
    run = ContainerState("a", state="running", ready=True)
    wait = ContainerState("b", state="waiting", reason="ContainerCreating")
    assert compute_status(_pod(), _rs(run, wait), "1.2.3.4")["phase"] == "Pending"
    crash = ContainerState("b", state="waiting", reason="CrashLoopBackOff", restart_count=2)
    st = compute_status(_pod(), _rs(run, crash), "1.2.3.4")
    assert st["phase"] == "Running"
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "False" and "[b]" in conds["Ready"]["message"]
    ok = ContainerState("a", state="terminated", exit_code=0)
    bad = ContainerState("b", state="terminated", exit_code=1)
    assert compute_status(_pod("Never"), _rs(ok, bad, finished=True), "h")["phase"] == "Failed"
    ok2 = ContainerState("b", state="terminated", exit_code=0)
    st = compute_status(_pod("OnFailure"), _rs(ok, ok2, finished=True), "h")
    assert st["phase"] == "Succeeded"
    assert {c["type"]: c.get("reason") for c in st["conditions"]}["Ready"] == "PodCompleted"


def test_terminal_phase_never_goes_back_and_times_are_kept() -> None:
    run = ContainerState("a", state="running", ready=True)
    run2 = ContainerState("b", state="running", ready=True)
    assert compute_status(_pod(status={"phase": "Failed"}), _rs(run, run2), "h")["phase"] == "Failed"
    first = compute_status(_pod(), _rs(run, run2), "h")
    first["startTime"] = "2020-01-01T00:00:00Z"
    for c in first["conditions"]:
        c["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    again = compute_status(_pod(status=first), _rs(run, run2), "h")
    assert again == first and merge_patch(first, again) == {}


def test_runtime_error_and_failure() -> None:
    st = compute_status(_pod(), None, "h", error=("ErrImageNeverPull", "image x is not in the store"))
    assert st["phase"] == "Pending"
    assert st["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImageNeverPull"
    st = compute_status(_pod(), None, "h", fail=("VirtualMachineRuntimeUnavailable", "no VMs here"))
    assert st["phase"] == "Failed" and st["reason"] == "VirtualMachineRuntimeUnavailable"


def test_merge_patch() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "gone": True}
    new = {"a": 1, "b": {"c": 2, "d": 4}, "l": [1, 2, 3]}
    assert merge_patch(old, new) == {"b": {"d": 4}, "l": [1, 2, 3], "gone": None}
    assert merge_patch(new, new) == {}


def test_qos() -> None:
    assert qos_class({"containers": [{}]}) == "BestEffort"
    g = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class({"containers": [{"resources": g}]}) == "Guaranteed"
    assert qos_class({"containers": [{"resources": {"requests": {"cpu": "1"}}}]}) == "Burstable"
