"""Unit tests of the scheduler's filters on crafted node and pod dicts: every rule and its reason."""

from __future__ import annotations

import pytest

from ctl.scheduler import filters
from ctl.scheduler.algorithm import Algorithm, FitError
from ctl.scheduler.cache import ClusterCache
from ctl.scheduler.nodeinfo import NodeInfo, Taint
from ctl.scheduler.podinfo import PodInfo, pod_requests, wants_scheduling
from tests.scheduler.helpers import affinity, node, pod


def check(p: dict, n: dict) -> int:
    return filters.static_check(PodInfo.from_pod(p), NodeInfo.from_node(n))[0]


def feasible_names(nodes: list[dict], p: dict) -> set[str]:
    c = ClusterCache()
    for n in nodes:
        c.set_node(NodeInfo.from_node(n))
    algo = Algorithm(c, percentage=100)
    idx, _ = algo.feasible(PodInfo.from_pod(p))
    return {c.nodes[int(i)].name for i in idx}


# ------------------------------------------------------------------ requests
def test_pod_requests_sum_containers_max_init_overhead_and_limits_default() -> None:
    spec = {
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},  # limits stand in
        ],
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
        "overhead": {"cpu": "10m"},
    }
    cpu, mem, nz_cpu, nz_mem = pod_requests(spec)
    assert cpu == pytest.approx(2010)  # max(1250, 2000) + 10
    assert mem == pytest.approx(64 * 2**20 + 2**30)
    # empty containers get kube-scheduler's non-zero defaults for scoring only
    cpu, mem, nz_cpu, nz_mem = pod_requests({"containers": [{"name": "a"}]})
    assert (cpu, mem) == (0, 0)
    assert nz_cpu == 100 and nz_mem == 200 * 2**20


def test_vm_pod_requests_come_from_the_virtual_machine() -> None:
    cpu, mem, _, _ = pod_requests(
        {"virtualMachine": {"resources": {"limits": {"cpu": "2", "memory": "512Mi"}}}}
    )
    assert cpu == 2000 and mem == 512 * 2**20


def test_vm_pod_is_scheduled_by_its_requests_not_its_limits() -> None:
    res = {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}}
    cpu, mem, _, _ = pod_requests({"virtualMachine": {"resources": res}})
    assert cpu == 250 and mem == 64 * 2**20
    cpu, mem, _, _ = pod_requests({"virtualMachine": {}})
    assert cpu == 1000 and mem == 128 * 2**20


def test_wants_scheduling() -> None:
    assert wants_scheduling(pod("a"))
    assert not wants_scheduling(pod("a", nodeName="n1"))
    assert not wants_scheduling(pod("a", schedulerName="other"))
    assert wants_scheduling(pod("a", schedulerName="other"), "other")
    p = pod("a")
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not wants_scheduling(p)


# ------------------------------------------------------------------ resources
def test_resource_fit_cpu_memory_pods() -> None:
    nodes = [
        node("small", cpu="1", memory="1Gi"),
        node("big", cpu="8", memory="16Gi"),
        node("full", pods="0"),
    ]
    assert feasible_names(nodes, pod("p", cpu="500m")) == {"small", "big"}
    assert feasible_names(nodes, pod("p", cpu="2")) == {"big"}
    assert feasible_names(nodes, pod("p", cpu=None, memory="2Gi")) == {"big"}
    assert feasible_names(nodes, pod("p", cpu="100", memory="100Gi")) == set()


def test_requests_of_accounted_pods_reduce_what_is_left() -> None:
    c = ClusterCache()
    c.set_node(NodeInfo.from_node(node("n", cpu="1")))
    algo = Algorithm(c, percentage=100)
    first = PodInfo.from_pod(pod("a", cpu="600m"))
    c.add_pod(first.key, "n", first, assumed=True)
    with pytest.raises(FitError) as e:
        algo.schedule(PodInfo.from_pod(pod("b", cpu="600m")))
    assert str(e.value) == "0/1 nodes are available: 1 Insufficient cpu."
    c.remove_pod(first.key)  # forget: resources come back
    assert algo.schedule(PodInfo.from_pod(pod("b", cpu="600m"))).node == "n"


def test_pods_on_an_unknown_node_count_once_it_appears() -> None:
    c = ClusterCache()
    p = PodInfo.from_pod(pod("a", cpu="900m"))
    c.add_pod(p.key, "later", p, assumed=False)
    c.set_node(NodeInfo.from_node(node("later", cpu="1")))
    assert c.req_cpu[c.index["later"]] == pytest.approx(900)
    c.remove_node("later")
    c.set_node(NodeInfo.from_node(node("later", cpu="1")))
    assert c.req_cpu[c.index["later"]] == pytest.approx(900)


# ------------------------------------------------------------------ nodeSelector and affinity
def test_node_selector() -> None:
    n = node("n", labels={"disk": "ssd", "zone": "a"})
    assert check(pod("p", nodeSelector={"disk": "ssd"}), n) == filters.OK
    assert check(pod("p", nodeSelector={"disk": "hdd"}), n) == filters.AFFINITY
    assert check(pod("p", nodeSelector={"gpu": "yes"}), n) == filters.AFFINITY


@pytest.mark.parametrize(
    "expr,ok",
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "zone", "operator": "In", "values": ["c"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["c"]}, True),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
        ({"key": "missing", "operator": "NotIn", "values": ["a"]}, True),
        ({"key": "zone", "operator": "Exists"}, True),
        ({"key": "missing", "operator": "Exists"}, False),
        ({"key": "missing", "operator": "DoesNotExist"}, True),
        ({"key": "zone", "operator": "DoesNotExist"}, False),
        ({"key": "cores", "operator": "Gt", "values": ["8"]}, True),
        ({"key": "cores", "operator": "Gt", "values": ["16"]}, False),
        ({"key": "cores", "operator": "Lt", "values": ["32"]}, True),
        ({"key": "cores", "operator": "Lt", "values": ["16"]}, False),
        ({"key": "zone", "operator": "Gt", "values": ["1"]}, False),  # not an integer
        ({"key": "missing", "operator": "Lt", "values": ["1"]}, False),
        ({"key": "zone", "operator": "Bogus", "values": ["a"]}, False),
    ],
)
def test_node_affinity_operators(expr: dict, ok: bool) -> None:
    n = node("n", labels={"zone": "a", "cores": "16"})
    p = pod("p", affinity=affinity([{"matchExpressions": [expr]}]))
    assert (check(p, n) == filters.OK) is ok


def test_node_affinity_terms_are_ored_expressions_anded_and_fields() -> None:
    n = node("n1", labels={"zone": "a", "disk": "hdd"})
    zone_a_ssd = {
        "matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a"]},
            {"key": "disk", "operator": "In", "values": ["ssd"]},
        ]
    }
    zone_a = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    assert check(pod("p", affinity=affinity([zone_a_ssd])), n) == filters.AFFINITY
    assert check(pod("p", affinity=affinity([zone_a_ssd, zone_a])), n) == filters.OK
    assert check(pod("p", affinity=affinity([by_name])), n) == filters.OK
    assert check(pod("p", affinity=affinity([by_name])), node("n2")) == filters.AFFINITY
    assert check(pod("p", affinity=affinity([{}])), n) == filters.AFFINITY  # an empty term matches nothing
    # nodeSelector and affinity must both hold
    assert check(pod("p", nodeSelector={"disk": "ssd"}, affinity=affinity([zone_a])), n) == filters.AFFINITY


# ------------------------------------------------------------------ taints and tolerations
def test_taints_and_tolerations() -> None:
    n = node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    assert check(pod("p"), n) == filters.TAINT
    tol = lambda **t: pod("p", tolerations=[t])  # noqa: E731
    assert check(tol(key="dedicated", operator="Equal", value="gpu", effect="NoSchedule"), n) == filters.OK
    assert check(tol(key="dedicated", value="gpu"), n) == filters.OK  # Equal is the default, any effect
    assert check(tol(key="dedicated", operator="Exists"), n) == filters.OK
    assert check(tol(operator="Exists"), n) == filters.OK  # empty key + Exists tolerates everything
    assert check(tol(key="dedicated", value="cpu"), n) == filters.TAINT
    assert check(tol(key="dedicated", operator="Exists", effect="NoExecute"), n) == filters.TAINT
    # NoExecute taints also filter; PreferNoSchedule taints do not
    assert (
        check(pod("p"), node("x", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]))
        == filters.TAINT
    )
    assert (
        check(pod("p"), node("y", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]))
        == filters.OK
    )
    info = NodeInfo.from_node(n)
    assert filters.untolerated(info.taints, []) == Taint("dedicated", "gpu", "NoSchedule")


def test_not_ready_and_unreachable_nodes_are_tainted() -> None:
    assert check(pod("p"), node("n", ready="False")) == filters.TAINT
    assert check(pod("p"), node("n", ready=None)) == filters.TAINT  # no Ready condition yet
    assert check(pod("p"), node("n", ready="Unknown")) == filters.TAINT
    tolerant = pod("p", tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    assert check(tolerant, node("n", ready="False")) == filters.OK
    assert NodeInfo.from_node(node("n", ready="Unknown")).taints[0].key == "node.kubernetes.io/unreachable"


def test_unschedulable_nodes() -> None:
    assert check(pod("p"), node("n", unschedulable=True)) == filters.UNSCHEDULABLE
    tolerant = pod(
        "p",
        tolerations=[
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}
        ],
    )
    assert check(tolerant, node("n", unschedulable=True)) == filters.OK


# ------------------------------------------------------------------ failure messages
def test_failure_message_counts_each_reason() -> None:
    nodes = [
        node("a", cpu="1"),
        node("b", cpu="1"),
        node("c", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
        node("d", unschedulable=True),
        node("e", labels={"disk": "hdd"}, ready="True"),
        node("f", ready="False"),
    ]
    c = ClusterCache()
    for n in nodes:
        c.set_node(NodeInfo.from_node(n))
    algo = Algorithm(c)
    p = pod(
        "p", cpu="2", affinity=affinity([{"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}])
    )
    with pytest.raises(FitError) as e:
        algo.schedule(PodInfo.from_pod(p))
    assert str(e.value) == (
        "0/6 nodes are available: 2 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {k: v}, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
        "1 node(s) were unschedulable."
    )
    assert filters.failure_message(0, {}) == "0/0 nodes are available: no nodes available to schedule pods."


def test_node_changes_update_cached_masks() -> None:
    c = ClusterCache()
    c.set_node(NodeInfo.from_node(node("n", labels={"disk": "hdd"})))
    algo = Algorithm(c)
    p = PodInfo.from_pod(pod("p", nodeSelector={"disk": "ssd"}))
    with pytest.raises(FitError):
        algo.schedule(p)
    assert c.set_node(NodeInfo.from_node(node("n", labels={"disk": "hdd"}))) == "unchanged"
    assert c.set_node(NodeInfo.from_node(node("n", labels={"disk": "ssd"}))) == "changed"
    assert algo.schedule(p).node == "n"
    c.set_node(NodeInfo.from_node(node("n", labels={"disk": "ssd"}, ready="False")))
    with pytest.raises(FitError) as e:
        algo.schedule(p)
    assert "not-ready" in str(e.value)
    c.remove_node("n")
    with pytest.raises(FitError) as e:
        algo.schedule(p)
    assert str(e.value) == "0/0 nodes are available: no nodes available to schedule pods."
