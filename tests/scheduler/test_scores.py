"""Unit tests of the scores, the node sampling (percentageOfNodesToScore) and the choice of node."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from ctl.scheduler import scores
from ctl.scheduler.algorithm import Algorithm, num_feasible_to_find
from ctl.scheduler.cache import DENSE_OWNER_THRESHOLD, ClusterCache
from ctl.scheduler.nodeinfo import NodeInfo
from ctl.scheduler.podinfo import PodInfo
from tests.scheduler.helpers import affinity, node, pod


def cache_of(*nodes: dict) -> ClusterCache:
    c = ClusterCache(cap=4)  # small, so that growth is exercised too
    for n in nodes:
        c.set_node(NodeInfo.from_node(n))
    return c


def place(c: ClusterCache, p: dict, on: str) -> None:
    info = PodInfo.from_pod(p)
    c.add_pod(info.key, on, info, assumed=False)


def test_least_allocated_formula() -> None:
    s = scores.least_allocated(
        np.array([1000.0, 4000.0]), np.array([1e9, 1e9]), np.array([500.0, 1000.0]), np.array([0.5e9, 0.0])
    )
    assert s.tolist() == pytest.approx([50.0, 87.5])


def test_balanced_allocation_formula() -> None:
    s = scores.balanced_allocation(
        np.array([1000.0, 1000.0]), np.array([1e9, 1e9]), np.array([500.0, 900.0]), np.array([0.5e9, 0.1e9])
    )
    assert s.tolist() == pytest.approx([100.0, 20.0])


def test_spread_and_normalize_formulas() -> None:
    assert scores.spread(np.array([0.0, 1.0, 2.0])).tolist() == [100.0, 50.0, 0.0]
    assert scores.spread(np.zeros(3)).tolist() == [100.0] * 3
    assert scores.normalize(np.array([0.0, 5.0, 10.0])).tolist() == [0.0, 50.0, 100.0]
    assert scores.normalize(np.array([0.0, 1.0]), reverse=True).tolist() == [100.0, 0.0]
    assert scores.normalize(np.zeros(2), reverse=True).tolist() == [100.0, 100.0]


def test_least_allocated_prefers_the_emptier_node() -> None:
    c = cache_of(node("busy"), node("idle"))
    place(c, pod("x", cpu="3"), "busy")
    assert Algorithm(c).schedule(PodInfo.from_pod(pod("p"))).node == "idle"


def test_balanced_allocation_breaks_ties_of_least_allocated() -> None:
    c = cache_of(node("cpu-heavy", cpu="4", memory="4Gi"), node("balanced", cpu="4", memory="4Gi"))
    place(c, pod("x", cpu="2", memory=None), "cpu-heavy")  # 50% cpu, ~5% memory (non-zero default)
    place(c, pod("y", cpu="1", memory="1Gi"), "balanced")  # 25% cpu, 25% memory
    # least allocated: both about equal; balanced prefers the node with equal fractions
    algo = Algorithm(c, weights={"least_allocated": 0.0, "balanced": 1.0})
    assert algo.schedule(PodInfo.from_pod(pod("p", cpu="100m", memory="100Mi"))).node == "balanced"


def test_replicas_of_one_owner_spread_over_nodes() -> None:
    c = cache_of(*(node(f"n{i}") for i in range(5)))
    algo = Algorithm(c, rng=random.Random(1))
    placed = Counter()
    for i in range(10):
        info = PodInfo.from_pod(pod(f"web-{i}", owner="web"))
        d = algo.schedule(info)
        c.add_pod(info.key, d.node, info, assumed=True)
        placed[d.node] += 1
    assert sorted(placed.values()) == [2, 2, 2, 2, 2]


def test_spread_beats_least_allocated_for_a_loaded_owner() -> None:
    c = cache_of(node("a"), node("b"))
    place(c, pod("other", cpu="2"), "a")
    place(c, pod("web-0", owner="web"), "b")
    # a is more loaded, but b already runs a replica of the same owner
    assert Algorithm(c).schedule(PodInfo.from_pod(pod("web-1", owner="web"))).node == "a"


def test_owner_counts_turn_dense_and_back() -> None:
    nodes = [node(f"n{i}") for i in range(DENSE_OWNER_THRESHOLD + 8)]
    c = cache_of(*nodes)
    for i, n in enumerate(nodes):
        place(c, pod(f"w{i}", owner="w"), n["metadata"]["name"])
    oc = c.owners["uid-w"]
    assert oc.dense is not None and oc.total == len(nodes)
    idx = np.array([c.index["n0"], c.index["n3"]])
    assert c.owner_counts("uid-w", idx).tolist() == [1.0, 1.0]
    for i in range(len(nodes)):
        c.remove_pod(PodInfo.from_pod(pod(f"w{i}")).key)
    assert "uid-w" not in c.owners


def test_preferred_affinity_score() -> None:
    c = cache_of(
        node("plain"), node("ssd", labels={"disk": "ssd"}), node("both", labels={"disk": "ssd", "zone": "a"})
    )
    pref = [
        {
            "weight": 10,
            "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
        },
        {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}},
    ]
    algo = Algorithm(c)
    info = PodInfo.from_pod(pod("p", affinity=affinity(preferred=pref)))
    assert algo.schedule(info).node == "both"
    idx = np.array([c.index[n] for n in ("plain", "ssd", "both")])
    assert c.entry(info).pref[idx].tolist() == [0.0, 10.0, 15.0]


def test_prefer_no_schedule_taints_are_avoided_unless_tolerated() -> None:
    t = [{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]
    c = cache_of(node("spot", taints=t), node("ondemand"))
    place(c, pod("x", cpu="2"), "ondemand")  # least allocated alone would pick spot
    algo = Algorithm(c)
    assert algo.schedule(PodInfo.from_pod(pod("p"))).node == "ondemand"
    tolerant = pod("p", tolerations=[{"key": "spot", "operator": "Exists"}])
    assert algo.schedule(PodInfo.from_pod(tolerant)).node == "spot"


def test_adaptive_percentage_of_nodes_to_score() -> None:
    assert num_feasible_to_find(50) == 50  # fewer than 100 nodes: all
    assert num_feasible_to_find(1000) == 420  # 50 - 1000/125 = 42%
    assert num_feasible_to_find(5000) == 500  # 10%
    assert num_feasible_to_find(20000) == 1000  # 5% floor
    assert num_feasible_to_find(150) == 100  # at least 100 nodes
    assert num_feasible_to_find(5000, 100) == 5000
    assert num_feasible_to_find(5000, 1) == 100


def test_sampling_stops_early_and_rotates_through_all_nodes() -> None:
    c = cache_of(*(node(f"n{i:04d}") for i in range(1000)))
    algo = Algorithm(c, percentage=10)  # 100 nodes per decision
    seen: set[int] = set()
    for _ in range(10):
        idx, examined = algo.feasible(PodInfo.from_pod(pod("p")))
        assert len(idx) == 100 and examined <= 160
        seen.update(int(i) for i in idx)
    assert len(seen) == 1000  # every node was considered once in ten decisions


def test_sampling_skips_nodes_that_do_not_fit() -> None:
    nodes = [node(f"n{i:04d}", cpu="1" if i % 10 else "8") for i in range(2000)]
    c = cache_of(*nodes)
    algo = Algorithm(c, percentage=5)
    idx, examined = algo.feasible(PodInfo.from_pod(pod("p", cpu="4")))
    assert len(idx) == 100
    assert examined >= 990  # only every tenth node fits: about 1,000 examined to find 100
    assert all(c.nodes[int(i)].cpu == 8000 for i in idx)
