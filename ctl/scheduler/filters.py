"""Filters: which nodes can run a pod, and why the others cannot.

Two kinds of checks, as in kube-scheduler's filter plugins, in its order:

* *static* checks depend only on the node's labels/taints/cordon and the pod's
  signature, so they are evaluated once per (signature, node) and cached as boolean
  numpy masks (:func:`static_check` per node; :class:`ctl.scheduler.cache.SignatureEntry`
  keeps the masks current when a node changes):
  NodeUnschedulable (``spec.unschedulable`` unless tolerated), TaintToleration
  (NoSchedule/NoExecute taints, including the not-ready/unreachable taints derived from
  the Ready condition), NodeAffinity (``nodeSelector`` and
  ``requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`` with In, NotIn,
  Exists, DoesNotExist, Gt, Lt and ``matchFields`` on ``metadata.name``);
* *resource* checks (NodeResourcesFit: cpu, memory, pod count) change with every
  assignment and are computed vectorised over a window of nodes (:func:`resource_fit`).

:func:`failure_message` renders kube-scheduler's "0/3 nodes are available: ..." text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ctl.scheduler.nodeinfo import UNSCHEDULABLE_TAINT, NodeInfo, Taint
from ctl.scheduler.podinfo import PodInfo

OK = 0
UNSCHEDULABLE = 1
TAINT = 2
AFFINITY = 3

R_UNSCHEDULABLE = "node(s) were unschedulable"
R_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
R_CPU = "Insufficient cpu"
R_MEMORY = "Insufficient memory"
R_PODS = "Too many pods"


def r_taint(t: Taint) -> str:
    return f"node(s) had untolerated taint {t.text()}"


# ------------------------------------------------------------------ node affinity
def match_expression(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key = expr.get("key", "")
    op = expr.get("operator", "")
    values = [str(v) for v in (expr.get("values") or [])]
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False  # unknown operator: matches nothing


def match_term(term: dict[str, Any], node: NodeInfo) -> bool:
    """A nodeSelectorTerm: all matchExpressions and matchFields hold. An empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    for e in exprs:
        if not match_expression(e, node.labels):
            return False
    for f in fields:
        if f.get("key") != "metadata.name" or not match_expression({**f, "key": "name"}, {"name": node.name}):
            return False
    return True


def matches_affinity(pod: PodInfo, node: NodeInfo) -> bool:
    for k, v in pod.node_selector.items():
        if node.labels.get(k) != v:
            return False
    if pod.required_terms is not None:
        return any(match_term(t, node) for t in pod.required_terms)
    return True


# ------------------------------------------------------------------ taints
def tolerates(tol: dict[str, Any], taint: Taint) -> bool:
    effect = tol.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key = tol.get("key") or ""
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return not key or key == taint.key
    if key != taint.key:
        return False
    return op == "Equal" and str(tol.get("value") or "") == taint.value


def untolerated(
    taints: tuple[Taint, ...],
    tolerations: list[dict[str, Any]],
    effects: tuple[str, ...] = ("NoSchedule", "NoExecute"),
) -> Taint | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for t in taints:
        if t.effect in effects and not any(tolerates(tol, t) for tol in tolerations):
            return t
    return None


def count_untolerated_prefer(taints: tuple[Taint, ...], tolerations: list[dict[str, Any]]) -> int:
    prefer = [tol for tol in tolerations if (tol.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
    return sum(
        1 for t in taints if t.effect == "PreferNoSchedule" and not any(tolerates(tol, t) for tol in prefer)
    )


_UNSCHED = Taint(UNSCHEDULABLE_TAINT, "", "NoSchedule")


def static_check(pod: PodInfo, node: NodeInfo) -> tuple[int, Taint | None]:
    """(code, untolerated taint) of the label/taint/cordon filters, in kube-scheduler's order."""
    if node.unschedulable and not any(tolerates(tol, _UNSCHED) for tol in pod.tolerations):
        return UNSCHEDULABLE, None
    t = untolerated(node.taints, pod.tolerations) if node.taints else None
    if t is not None:
        return TAINT, t
    if not matches_affinity(pod, node):
        return AFFINITY, None
    return OK, None


# ------------------------------------------------------------------ resources
def resource_fit(
    pod: PodInfo,
    alloc_cpu: np.ndarray,
    alloc_mem: np.ndarray,
    alloc_pods: np.ndarray,
    req_cpu: np.ndarray,
    req_mem: np.ndarray,
    req_pods: np.ndarray,
) -> np.ndarray:
    """Boolean mask: the pod's requests fit in what is left on each node (arrays are one window)."""
    ok = req_pods + 1.0 <= alloc_pods
    if pod.cpu > 0:
        ok &= req_cpu + pod.cpu <= alloc_cpu
    if pod.mem > 0:
        ok &= req_mem + pod.mem <= alloc_mem
    return ok


def resource_reasons(
    pod: PodInfo,
    alloc_cpu: np.ndarray,
    alloc_mem: np.ndarray,
    alloc_pods: np.ndarray,
    req_cpu: np.ndarray,
    req_mem: np.ndarray,
    req_pods: np.ndarray,
) -> dict[str, int]:
    """How many of the given nodes lack cpu, memory or pod slots (a node may lack several)."""
    out = {}
    n = int(np.count_nonzero(req_pods + 1.0 > alloc_pods))
    if n:
        out[R_PODS] = n
    if pod.cpu > 0:
        n = int(np.count_nonzero(req_cpu + pod.cpu > alloc_cpu))
        if n:
            out[R_CPU] = n
    if pod.mem > 0:
        n = int(np.count_nonzero(req_mem + pod.mem > alloc_mem))
        if n:
            out[R_MEMORY] = n
    return out


def failure_message(total: int, reasons: dict[str, int]) -> str:
    """kube-scheduler's FitError text: '0/3 nodes are available: 2 Insufficient cpu, 1 ...'."""
    if total == 0:
        return "0/0 nodes are available: no nodes available to schedule pods."
    parts = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return f"0/{total} nodes are available: " + ", ".join(f"{n} {r}" for r, n in parts) + "."
