"""What the scheduler needs to know about a pod, read once per pod.

:class:`PodInfo` carries the pod's effective resource requests (as kube-scheduler
computes them: the sum over containers, at least the largest init container, plus
``spec.overhead``; a container's limits stand in for missing requests; a VM pod asks
for its virtual machine's requests, with the same fallback to its limits), the "non-zero"
requests used for scoring (100m CPU and 200 MiB for a container that asks for nothing), the
controlling owner's uid (for spreading replicas), priority, and the *signature* of its placement
constraints (nodeSelector, node affinity, tolerations). Pods with the same signature
share cached per-node masks and static scores (see :mod:`ctl.scheduler.cache`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ctl.types.validation import parse_quantity

DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_MILLI_CPU = 100.0  # kube-scheduler's non-zero defaults for scoring
DEFAULT_MEMORY = 200.0 * 1024 * 1024


def pod_key(pod: dict[str, Any]) -> str:
    md = pod.get("metadata") or {}
    return f"{md.get('tenant', '')}/{md.get('namespace', '')}/{md.get('name', '')}"


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


def controller_uid(md: dict[str, Any]) -> str:
    """The uid of the pod's controlling owner (or first owner); '' for a bare pod."""
    refs = md.get("ownerReferences") or []
    for r in refs:
        if isinstance(r, dict) and r.get("controller"):
            return str(r.get("uid", ""))
    if refs and isinstance(refs[0], dict):
        return str(refs[0].get("uid", ""))
    return ""


@dataclass(slots=True)
class PodInfo:
    key: str
    uid: str
    pod: dict[str, Any]
    cpu: float
    mem: float
    nz_cpu: float
    nz_mem: float
    owner: str
    priority: int
    node_selector: dict[str, str]
    required_terms: list[dict[str, Any]] | None  # requiredDuringScheduling...nodeSelectorTerms
    preferred_terms: list[dict[str, Any]]
    tolerations: list[dict[str, Any]]
    signature: bytes = b""
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_pod(cls, pod: dict[str, Any]) -> PodInfo:
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        cpu, mem, nz_cpu, nz_mem = pod_requests(spec)
        aff = ((spec.get("affinity") or {}).get("nodeAffinity")) or {}
        req = aff.get("requiredDuringSchedulingIgnoredDuringExecution")
        required = None
        if isinstance(req, dict):
            required = [t for t in (req.get("nodeSelectorTerms") or []) if isinstance(t, dict)]
        preferred = [
            p
            for p in (aff.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
            if isinstance(p, dict)
        ]
        ns = {str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()}
        tols = [t for t in (spec.get("tolerations") or []) if isinstance(t, dict)]
        prio = spec.get("priority")
        info = cls(
            key=pod_key(pod),
            uid=str(md.get("uid", "")),
            pod=pod,
            cpu=cpu,
            mem=mem,
            nz_cpu=nz_cpu,
            nz_mem=nz_mem,
            owner=controller_uid(md),
            priority=prio if isinstance(prio, int) else 0,
            node_selector=ns,
            required_terms=required,
            preferred_terms=preferred,
            tolerations=tols,
        )
        info.signature = orjson.dumps([ns, required, preferred, tols], option=orjson.OPT_SORT_KEYS)
        return info


def wants_scheduling(pod: dict[str, Any], scheduler_name: str = DEFAULT_SCHEDULER) -> bool:
    """Unbound, not being deleted, not finished, and addressed to this scheduler."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return False
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if (spec.get("schedulerName") or DEFAULT_SCHEDULER) != scheduler_name:
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def occupies_node(pod: dict[str, Any]) -> bool:
    """A bound pod counts against its node until it has finished."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
