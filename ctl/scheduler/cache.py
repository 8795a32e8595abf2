"""The scheduler's cache: nodes as numpy arrays, bound and assumed pods' requests per node.

Every node gets a *slot*: an index into parallel arrays of allocatable cpu, memory and
pod count and of what pods on it request (plain and "non-zero" requests, see
:mod:`ctl.scheduler.podinfo`). Filters and scores then work on whole arrays (or a window
of them) instead of looping over nodes in Python. Slots of deleted nodes are reused.

Pods are accounted by key: a pod is *assumed* on a node as soon as the scheduler picks
it (before the binding request returns, as kube-scheduler's assume cache does), is
*confirmed* when the watch shows it bound, and is *forgotten* if binding fails. Pods
bound to a node the cache does not know yet (another resource partition still syncing)
are remembered per node name and counted when the node appears.

Per pod *signature* (nodeSelector, affinity, tolerations) a :class:`SignatureEntry`
caches the static filter result code of every node, the untolerated taint, and the
static score inputs (preferred-affinity weight, PreferNoSchedule count); a node change
re-evaluates that one slot in every cached entry instead of dropping the cache.
Per controlling owner, :class:`OwnerCounts` counts pods per slot for spreading.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctl.scheduler import filters
from ctl.scheduler.nodeinfo import NodeInfo, Taint
from ctl.scheduler.podinfo import PodInfo
from ctl.scheduler.scores import preferred_weight

MAX_SIGNATURES = 512
DENSE_OWNER_THRESHOLD = 32


@dataclass(slots=True)
class PodState:
    node: str
    cpu: float
    mem: float
    nz_cpu: float
    nz_mem: float
    owner: str
    assumed: bool


class OwnerCounts:
    """Pods of one owner per node slot: a dict while small, a dense array once large."""

    __slots__ = ("sparse", "dense", "total")

    def __init__(self) -> None:
        self.sparse: dict[int, int] | None = {}
        self.dense: np.ndarray | None = None
        self.total = 0

    def add(self, slot: int, delta: int, cap: int) -> None:
        self.total += delta
        if self.dense is not None:
            if slot >= len(self.dense):
                self.dense = np.concatenate(
                    [self.dense, np.zeros(max(cap, slot + 1) - len(self.dense), np.int32)]
                )
            self.dense[slot] += delta
            return
        assert self.sparse is not None
        v = self.sparse.get(slot, 0) + delta
        if v:
            self.sparse[slot] = v
        else:
            self.sparse.pop(slot, None)
        if len(self.sparse) > DENSE_OWNER_THRESHOLD:
            self.dense = np.zeros(max(cap, max(self.sparse) + 1), np.int32)
            for s, c in self.sparse.items():
                self.dense[s] = c
            self.sparse = None

    def take(self, idx: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            if len(self.dense) < len(scratch):
                self.dense = np.concatenate([self.dense, np.zeros(len(scratch) - len(self.dense), np.int32)])
            return self.dense[idx].astype(np.float64)
        assert self.sparse is not None
        if not self.sparse:
            return np.zeros(len(idx))
        slots = np.fromiter(self.sparse.keys(), np.int64, len(self.sparse))
        scratch[slots] = np.fromiter(self.sparse.values(), np.float64, len(self.sparse))
        out = scratch[idx].copy()
        scratch[slots] = 0.0
        return out


class SignatureEntry:
    """Static filter codes and score inputs of every node for one pod signature."""

    def __init__(self, pod: PodInfo, cap: int) -> None:
        self.pod = pod
        self.code = np.full(cap, filters.OK, np.int8)
        self.taint: dict[int, Taint] = {}
        self.pref = np.zeros(cap) if pod.preferred_terms else None
        self.prefer_taints = np.zeros(cap)
        self.any_prefer_taints = 0
        self._cand: np.ndarray | None = None

    def eval_slot(self, slot: int, node: NodeInfo | None) -> None:
        self._cand = None
        self.taint.pop(slot, None)
        if self.prefer_taints[slot]:
            self.any_prefer_taints -= 1
            self.prefer_taints[slot] = 0.0
        if node is None:
            self.code[slot] = filters.AFFINITY
            return
        code, t = filters.static_check(self.pod, node)
        self.code[slot] = code
        if t is not None:
            self.taint[slot] = t
        if self.pref is not None:
            self.pref[slot] = preferred_weight(self.pod, node)
        if node.taints:
            c = filters.count_untolerated_prefer(node.taints, self.pod.tolerations)
            if c:
                self.prefer_taints[slot] = c
                self.any_prefer_taints += 1

    def candidates(self, exists: np.ndarray, hw: int) -> np.ndarray:
        """Slots that pass every static filter (sorted)."""
        if self._cand is None:
            self._cand = np.flatnonzero((self.code[:hw] == filters.OK) & exists[:hw])
        return self._cand


class ClusterCache:
    def __init__(self, cap: int = 1024) -> None:
        self.cap = cap
        self.hw = 0  # slots in use are [0, hw)
        self.free: list[int] = []
        self.nodes: list[NodeInfo | None] = []
        self.index: dict[str, int] = {}
        self.exists = np.zeros(cap, bool)
        self.alloc_cpu = np.zeros(cap)
        self.alloc_mem = np.zeros(cap)
        self.alloc_pods = np.zeros(cap)
        self.req_cpu = np.zeros(cap)
        self.req_mem = np.zeros(cap)
        self.req_pods = np.zeros(cap)
        self.nz_cpu = np.zeros(cap)
        self.nz_mem = np.zeros(cap)
        self.scratch = np.zeros(cap)
        self.pods: dict[str, PodState] = {}
        self.by_node: dict[str, set[str]] = {}
        self.owners: dict[str, OwnerCounts] = {}
        self.sigs: OrderedDict[bytes, SignatureEntry] = OrderedDict()

    # ------------------------------------------------------------------ nodes
    @property
    def node_count(self) -> int:
        return len(self.index)

    def _grow(self) -> None:
        new = self.cap * 2
        for name in (
            "exists",
            "alloc_cpu",
            "alloc_mem",
            "alloc_pods",
            "req_cpu",
            "req_mem",
            "req_pods",
            "nz_cpu",
            "nz_mem",
            "scratch",
        ):
            old = getattr(self, name)
            arr = np.zeros(new, old.dtype)
            arr[: self.cap] = old
            setattr(self, name, arr)
        self.cap = new
        self.sigs.clear()  # entries are sized to the old capacity; rebuilt lazily

    def set_node(self, info: NodeInfo) -> str:
        """Add or update a node; returns 'added', 'changed' (filters may now pass) or 'unchanged'."""
        slot = self.index.get(info.name)
        if slot is not None:
            old = self.nodes[slot]
            assert old is not None
            if old.fingerprint() == info.fingerprint():
                self.nodes[slot] = info
                return "unchanged"
            self.nodes[slot] = info
            self.alloc_cpu[slot], self.alloc_mem[slot], self.alloc_pods[slot] = info.cpu, info.mem, info.pods
            if old.static_fingerprint() != info.static_fingerprint():
                for e in self.sigs.values():
                    e.eval_slot(slot, info)
            return "changed"
        if self.free:
            slot = self.free.pop()
        else:
            if self.hw >= self.cap:
                self._grow()
            slot = self.hw
            self.hw += 1
            self.nodes.append(None)
        self.index[info.name] = slot
        self.nodes[slot] = info
        self.exists[slot] = True
        self.alloc_cpu[slot], self.alloc_mem[slot], self.alloc_pods[slot] = info.cpu, info.mem, info.pods
        self.req_cpu[slot] = self.req_mem[slot] = self.req_pods[slot] = self.nz_cpu[slot] = self.nz_mem[
            slot
        ] = 0.0
        for key in self.by_node.get(info.name, ()):
            self._charge(slot, self.pods[key], 1)
        for e in self.sigs.values():
            e.eval_slot(slot, info)
        return "added"

    def remove_node(self, name: str, source: int | None = None) -> bool:
        slot = self.index.get(name)
        if slot is None:
            return False
        node = self.nodes[slot]
        if source is not None and node is not None and node.source != source:
            return False  # another partition owns the node of that name
        for key in self.by_node.get(name, ()):
            self._charge(slot, self.pods[key], -1)
        del self.index[name]
        self.nodes[slot] = None
        self.exists[slot] = False
        self.free.append(slot)
        for e in self.sigs.values():
            e.eval_slot(slot, None)
        return True

    def node(self, name: str) -> NodeInfo | None:
        slot = self.index.get(name)
        return None if slot is None else self.nodes[slot]

    # ------------------------------------------------------------------ pods
    def _charge(self, slot: int, p: PodState, sign: int) -> None:
        self.req_cpu[slot] += sign * p.cpu
        self.req_mem[slot] += sign * p.mem
        self.req_pods[slot] += sign
        self.nz_cpu[slot] += sign * p.nz_cpu
        self.nz_mem[slot] += sign * p.nz_mem
        if p.owner:
            oc = self.owners.get(p.owner)
            if oc is None:
                oc = self.owners[p.owner] = OwnerCounts()
            oc.add(slot, sign, self.cap)
            if oc.total <= 0:
                del self.owners[p.owner]

    def add_pod(self, key: str, node: str, info: PodInfo, assumed: bool) -> None:
        """Account a pod on ``node`` (moving it if it was accounted elsewhere)."""
        cur = self.pods.get(key)
        if cur is not None:
            if cur.node == node:
                cur.assumed = cur.assumed and assumed
                return
            self.remove_pod(key)
        p = PodState(node, info.cpu, info.mem, info.nz_cpu, info.nz_mem, info.owner, assumed)
        self.pods[key] = p
        self.by_node.setdefault(node, set()).add(key)
        slot = self.index.get(node)
        if slot is not None:
            self._charge(slot, p, 1)

    def remove_pod(self, key: str) -> bool:
        p = self.pods.pop(key, None)
        if p is None:
            return False
        keys = self.by_node.get(p.node)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.by_node[p.node]
        slot = self.index.get(p.node)
        if slot is not None:
            self._charge(slot, p, -1)
        return True

    def is_accounted(self, key: str) -> bool:
        return key in self.pods

    # ------------------------------------------------------------------ signatures
    def entry(self, pod: PodInfo) -> SignatureEntry:
        e = self.sigs.get(pod.signature)
        if e is not None:
            self.sigs.move_to_end(pod.signature)
            return e
        e = SignatureEntry(pod, self.cap)
        for slot in range(self.hw):
            e.eval_slot(slot, self.nodes[slot])
        self.sigs[pod.signature] = e
        if len(self.sigs) > MAX_SIGNATURES:
            self.sigs.popitem(last=False)
        return e

    def owner_counts(self, owner: str, idx: np.ndarray) -> np.ndarray:
        oc = self.owners.get(owner)
        if oc is None:
            return np.zeros(len(idx))
        return oc.take(idx, self.scratch)

    def summary(self) -> dict[str, Any]:
        return {
            "nodes": self.node_count,
            "pods": len(self.pods),
            "assumed": sum(1 for p in self.pods.values() if p.assumed),
            "signatures": len(self.sigs),
            "owners": len(self.owners),
        }
