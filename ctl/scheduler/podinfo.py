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

from ctl.types.meta import object_key
from ctl.types.resources import pod_requests

DEFAULT_SCHEDULER = "default-scheduler"


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
            key=object_key(pod),
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
