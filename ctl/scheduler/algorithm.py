"""One scheduling decision: sample feasible nodes, score them, pick the best.

Like kube-scheduler, the search stops once it has found ``num_feasible_to_find`` nodes
(percentageOfNodesToScore; adaptive when 0: ``50 - nodes/125`` percent, at least 5%,
and never fewer than 100 nodes), starting where the previous search stopped so that
every node gets its turn. The search walks the slots that pass the cached static
filters for the pod's signature, checks resources vectorised over a window of them,
and widens the window until enough nodes fit or none are left.

When no node fits, :class:`FitError` carries kube-scheduler's message with a count per
reason over every node.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ctl.scheduler import filters, scores
from ctl.scheduler.cache import ClusterCache
from ctl.scheduler.podinfo import PodInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_PERCENTAGE = 5


def num_feasible_to_find(nodes: int, percentage: float = 0.0) -> int:
    if nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return nodes
    pct = percentage
    if pct <= 0:
        pct = 50 - nodes / 125
        if pct < MIN_FEASIBLE_PERCENTAGE:
            pct = MIN_FEASIBLE_PERCENTAGE
    n = int(nodes * pct / 100)
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


class FitError(Exception):
    def __init__(self, pod: PodInfo, total: int, reasons: dict[str, int]) -> None:
        self.pod = pod
        self.total = total
        self.reasons = reasons
        super().__init__(filters.failure_message(total, reasons))


@dataclass(slots=True)
class Decision:
    node: str
    slot: int
    evaluated: int  # nodes whose resources were checked
    feasible: int  # nodes scored


class Algorithm:
    def __init__(
        self,
        cache: ClusterCache,
        percentage: float = 0.0,
        weights: dict[str, float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cache = cache
        self.percentage = percentage
        self.weights = weights or scores.WEIGHTS
        self.next_start = 0
        self.rng = rng or random.Random()

    def feasible(self, pod: PodInfo) -> tuple[np.ndarray, int]:
        """(feasible slots, nodes examined) starting at the rotating start position."""
        c = self.cache
        entry = c.entry(pod)
        cand = entry.candidates(c.exists, c.hw)
        total = len(cand)
        if total == 0:
            return cand, 0
        need = num_feasible_to_find(c.node_count, self.percentage)
        pos = int(np.searchsorted(cand, self.next_start % max(c.hw, 1)))
        window = max(need + need // 2, 64)
        found: list[np.ndarray] = []
        count = examined = 0
        last_slot = -1
        while examined < total and count < need:
            lo = (pos + examined) % total
            hi = min(total, lo + min(window, total - examined))
            idx = cand[lo:hi]
            fit = filters.resource_fit(
                pod,
                c.alloc_cpu[idx],
                c.alloc_mem[idx],
                c.alloc_pods[idx],
                c.req_cpu[idx],
                c.req_mem[idx],
                c.req_pods[idx],
            )
            ok = idx[fit]
            if count + len(ok) > need:
                ok = ok[: need - count]
            if len(ok):
                found.append(ok)
                count += len(ok)
                last_slot = int(ok[-1])
            examined += hi - lo
        if last_slot >= 0 and count >= need:
            self.next_start = last_slot + 1
        else:
            self.next_start = int(cand[(pos + examined - 1) % total]) + 1
        feasible = (
            found[0] if len(found) == 1 else (np.concatenate(found) if found else np.zeros(0, np.int64))
        )
        return feasible, examined

    def score(self, pod: PodInfo, idx: np.ndarray) -> np.ndarray:
        c = self.cache
        entry = c.entry(pod)
        ac, am = c.alloc_cpu[idx], c.alloc_mem[idx]
        uc, um = c.nz_cpu[idx] + pod.nz_cpu, c.nz_mem[idx] + pod.nz_mem
        parts: dict[str, np.ndarray | None] = {
            "least_allocated": scores.least_allocated(ac, am, uc, um),
            "balanced": scores.balanced_allocation(ac, am, uc, um),
            "spread": scores.spread(c.owner_counts(pod.owner, idx)) if pod.owner else None,
            "affinity": scores.normalize(entry.pref[idx]) if entry.pref is not None else None,
            "taint": scores.normalize(entry.prefer_taints[idx], reverse=True)
            if entry.any_prefer_taints
            else None,
        }
        return scores.combine(parts, self.weights)

    def schedule(self, pod: PodInfo) -> Decision:
        feasible, examined = self.feasible(pod)
        if len(feasible) == 0:
            raise FitError(pod, self.cache.node_count, self.reasons(pod))
        if len(feasible) == 1:
            slot = int(feasible[0])
        else:
            total = self.score(pod, feasible)
            best = np.flatnonzero(total >= total.max() - 1e-9)
            slot = int(feasible[best[0] if len(best) == 1 else best[self.rng.randrange(len(best))]])
        node = self.cache.nodes[slot]
        assert node is not None
        return Decision(node.name, slot, examined, len(feasible))

    def reasons(self, pod: PodInfo) -> dict[str, int]:
        """Why each node rejects the pod (first failing static filter, then every resource it lacks)."""
        c = self.cache
        entry = c.entry(pod)
        hw = c.hw
        exists = c.exists[:hw]
        code = entry.code[:hw]
        out: dict[str, int] = {}
        n = int(np.count_nonzero(exists & (code == filters.UNSCHEDULABLE)))
        if n:
            out[filters.R_UNSCHEDULABLE] = n
        for slot, t in entry.taint.items():
            if slot < hw and exists[slot]:
                r = filters.r_taint(t)
                out[r] = out.get(r, 0) + 1
        n = int(np.count_nonzero(exists & (code == filters.AFFINITY)))
        if n:
            out[filters.R_AFFINITY] = n
        idx = entry.candidates(c.exists, hw)
        if len(idx):
            for r, k in filters.resource_reasons(
                pod,
                c.alloc_cpu[idx],
                c.alloc_mem[idx],
                c.alloc_pods[idx],
                c.req_cpu[idx],
                c.req_mem[idx],
                c.req_pods[idx],
            ).items():
                out[r] = out.get(r, 0) + k
        return out
