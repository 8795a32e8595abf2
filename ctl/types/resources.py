"""A pod's resource requests, as kube-scheduler and kubelet's admission count them.

The sum over containers, at least the largest init container, plus ``spec.overhead``; a
container's limits stand in for missing requests (the API's defaulting does that in
Kubernetes); a VM pod asks for its virtual machine's requests, with the same fallback to its
limits (1 CPU and 128 MiB when it states neither). Besides the requests, the "non-zero"
requests used for scoring: 100m CPU and 200 MiB for a container that asks for nothing.

The scheduler (:mod:`ctl.scheduler.podinfo`) and the node agent's admission
(:mod:`agent.node.admission`) both count with :func:`pod_requests`, so a pod the scheduler
placed is one the node admits.
"""

from __future__ import annotations

from typing import Any

from ctl.types.validation import parse_quantity

DEFAULT_MILLI_CPU = 100.0  # kube-scheduler's non-zero defaults for scoring
DEFAULT_MEMORY = 200.0 * 1024 * 1024


def _q(v: Any) -> float:
    try:
        return parse_quantity(v)
    except ValueError:
        return 0.0


def _container_requests(c: dict[str, Any]) -> tuple[float, float, bool, bool]:
    """(milli-cpu, memory bytes, cpu given, memory given) of one container."""
    res = c.get("resources") or {}
    req = res.get("requests") or {}
    lim = res.get("limits") or {}
    cpu_q = req.get("cpu", lim.get("cpu"))
    mem_q = req.get("memory", lim.get("memory"))
    cpu = _q(cpu_q) * 1000.0 if cpu_q is not None else 0.0
    mem = _q(mem_q) if mem_q is not None else 0.0
    return cpu, mem, cpu_q is not None, mem_q is not None


def pod_requests(spec: dict[str, Any]) -> tuple[float, float, float, float]:
    """(cpu, memory, non-zero cpu, non-zero memory): cpu in millicores, memory in bytes."""
    vm = spec.get("virtualMachine")
    if isinstance(vm, dict):
        # As for containers, requests are what the pod is scheduled by; limits stand in for missing
        # requests. (The runtime sizes the guest from limits: vCPUs and memory it may use.)
        try:
            res = vm.get("resources") or {}
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            cpu_q, mem_q = req.get("cpu", lim.get("cpu")), req.get("memory", lim.get("memory"))
            cpu = _q(cpu_q) * 1000.0 if cpu_q is not None else 1000.0
            mem = _q(mem_q) if mem_q is not None else 128.0 * 1024 * 1024
        except (ValueError, TypeError, AttributeError):
            cpu, mem = 1000.0, 128.0 * 1024 * 1024
        return cpu, mem, cpu, mem
    cpu = mem = nz_cpu = nz_mem = 0.0
    for c in spec.get("containers") or []:
        if not isinstance(c, dict):
            continue
        ccpu, cmem, has_cpu, has_mem = _container_requests(c)
        cpu += ccpu
        mem += cmem
        nz_cpu += ccpu if has_cpu and ccpu else DEFAULT_MILLI_CPU
        nz_mem += cmem if has_mem and cmem else DEFAULT_MEMORY
    for c in spec.get("initContainers") or []:
        if not isinstance(c, dict):
            continue
        ccpu, cmem, _, _ = _container_requests(c)
        cpu = max(cpu, ccpu)
        mem = max(mem, cmem)
        nz_cpu = max(nz_cpu, ccpu)
        nz_mem = max(nz_mem, cmem)
    overhead = spec.get("overhead") or {}
    if overhead:
        ocpu = _q(overhead.get("cpu", 0)) * 1000.0
        omem = _q(overhead.get("memory", 0))
        cpu, mem, nz_cpu, nz_mem = cpu + ocpu, mem + omem, nz_cpu + ocpu, nz_mem + omem
    return cpu, mem, nz_cpu, nz_mem
