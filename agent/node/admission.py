"""Node admission: the agent refuses a pod its node cannot hold, as kubelet does.

The scheduler only binds pods that fit, but a pod can also arrive with ``spec.nodeName``
already set (created directly on a node, or bound while the scheduler's view was stale).
Before the agent runs a pod for the first time it checks it against the pods it already
admitted on the node, in the order they arrive:

* ``pods``: no more than the node's pod capacity (``--max-pods``);
* ``cpu`` and ``memory``: the requests of the admitted pods plus this one stay within the
  node's allocatable, counted as the scheduler counts them (:mod:`ctl.types.resources`).

A refused pod goes to phase ``Failed`` with kubelet's reason (``OutOfpods``, ``OutOfcpu``,
``OutOfmemory``) and message, and a Warning Event; nothing of it is started. Pods that have
already run on the node (adopted after an agent restart) are admitted without a check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.node.nodeinfo import NodeSpec
from ctl.types.quantity import quantity_float
from ctl.types.resources import pod_requests


def has_run(pod: dict[str, Any]) -> bool:
    """Whether the pod already ran on its node (so it was admitted before)."""
    st = pod.get("status") or {}
    return st.get("phase") not in (None, "", "Pending") or bool(st.get("containerStatuses"))


def refusal(
    pod: dict[str, Any], admitted: Iterable[dict[str, Any]], node: NodeSpec
) -> tuple[str, str] | None:
    """(reason, message) when ``pod`` does not fit next to the ``admitted`` pods, else None."""
    others = list(admitted)
    if len(others) + 1 > node.pods:
        return _out_of("pods", 1, len(others), node.pods)
    cpu, mem, _, _ = pod_requests(pod.get("spec") or {})
    used_cpu = used_mem = 0.0
    for o in others:
        ocpu, omem, _, _ = pod_requests(o.get("spec") or {})
        used_cpu += ocpu
        used_mem += omem
    cap_cpu = _quantity(node.cpu) * 1000.0
    cap_mem = _quantity(node.memory)
    if cpu and used_cpu + cpu > cap_cpu:
        return _out_of("cpu", cpu, used_cpu, cap_cpu)
    if mem and used_mem + mem > cap_mem:
        return _out_of("memory", mem, used_mem, cap_mem)
    return None


def _quantity(text: str) -> float:
    try:
        return quantity_float(text)
    except ValueError:
        return float("inf")  # an unreadable capacity refuses nothing


def _out_of(resource: str, requested: float, used: float, capacity: float) -> tuple[str, str]:
    return (
        f"OutOf{resource}",
        f"Pod Node didn't have enough resource: {resource}, requested: {requested:.0f}, "
        f"used: {used:.0f}, capacity: {capacity:.0f}",
    )
