"""Scores: rank feasible nodes, vectorised over numpy arrays (0..100 each, then weighted).

The plugins and default weights follow kube-scheduler's defaults:

* NodeResourcesFit / LeastAllocated (weight 1): the mean over cpu and memory of
  ``(allocatable - requested_after) / allocatable``, with "non-zero" requests (100m CPU,
  200 MiB for a container that asks for nothing) so empty pods still spread load;
* NodeResourcesBalancedAllocation (weight 1): ``100 * (1 - |cpu fraction - memory fraction|)``;
* spreading replicas of one owner (weight 2, SelectorSpread's formula):
  ``100 * (max - count) / max`` over the pods of the pod's controlling owner already on
  each node (assumed pods included);
* NodeAffinity preferred terms (weight 2): the sum of matching terms' weights,
  normalised to the best node;
* TaintToleration (weight 3): fewer untolerated ``PreferNoSchedule`` taints is better,
  normalised reversed.

:func:`preferred_weight` is the per-node part of the affinity score; it and the
PreferNoSchedule count are static per (pod signature, node) and cached with the masks.
"""

from __future__ import annotations

import numpy as np

from ctl.scheduler.filters import match_term
from ctl.scheduler.nodeinfo import NodeInfo
from ctl.scheduler.podinfo import PodInfo

MAX_SCORE = 100.0
WEIGHTS = {"least_allocated": 1.0, "balanced": 1.0, "spread": 2.0, "affinity": 2.0, "taint": 3.0}


def preferred_weight(pod: PodInfo, node: NodeInfo) -> float:
    w = 0.0
    for p in pod.preferred_terms:
        term = p.get("preference") or {}
        if isinstance(term, dict) and match_term(term, node):
            try:
                w += float(p.get("weight", 0))
            except (TypeError, ValueError):
                pass
    return w


def least_allocated(
    alloc_cpu: np.ndarray, alloc_mem: np.ndarray, used_cpu: np.ndarray, used_mem: np.ndarray
) -> np.ndarray:
    """``used_*`` already include the pod being scheduled."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(alloc_cpu > 0, (alloc_cpu - used_cpu) / alloc_cpu, 0.0)
        m = np.where(alloc_mem > 0, (alloc_mem - used_mem) / alloc_mem, 0.0)
    return np.clip((c + m) * (MAX_SCORE / 2.0), 0.0, MAX_SCORE)


def balanced_allocation(
    alloc_cpu: np.ndarray, alloc_mem: np.ndarray, used_cpu: np.ndarray, used_mem: np.ndarray
) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(alloc_cpu > 0, np.minimum(used_cpu / alloc_cpu, 1.0), 1.0)
        m = np.where(alloc_mem > 0, np.minimum(used_mem / alloc_mem, 1.0), 1.0)
    return (1.0 - np.abs(c - m)) * MAX_SCORE


def spread(counts: np.ndarray) -> np.ndarray:
    mx = float(counts.max()) if counts.size else 0.0
    if mx <= 0:
        return np.full(counts.shape, MAX_SCORE)
    return (mx - counts) * (MAX_SCORE / mx)


def normalize(raw: np.ndarray, reverse: bool = False) -> np.ndarray:
    """kube-scheduler's DefaultNormalizeScore: scale to the maximum (reversed: best = fewest)."""
    mx = float(raw.max()) if raw.size else 0.0
    if mx <= 0:
        return np.full(raw.shape, MAX_SCORE if reverse else 0.0)
    s = raw * (MAX_SCORE / mx)
    return MAX_SCORE - s if reverse else s


def combine(parts: dict[str, np.ndarray | None], weights: dict[str, float] | None = None) -> np.ndarray:
    w = weights or WEIGHTS
    total: np.ndarray | None = None
    for name, arr in parts.items():
        if arr is None:
            continue
        term = arr * w.get(name, 1.0)
        total = term if total is None else total + term
    assert total is not None
    return total
