"""``kubectl top`` against a real runc cluster: the metrics API, its tenant scoping and ``/metrics``.

The figures are real cgroup numbers: ``burn``'s ``spin`` container runs a busy loop, so it must
show CPU above zero (and above its idle sibling), the node must show the machine's usage, and
a tenant sees only its own pods. The last test tears the cluster down and checks nothing is left.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import E2ECluster
from tests.metrics.conftest import TENANT_B, delete_tenant_pods, kubectl, needs_kubectl


def _rows(out: str) -> list[list[str]]:
    lines = [line.split() for line in out.strip().splitlines()]
    return lines[1:]


def _millicores(v: str) -> int:
    m = re.fullmatch(r"(\d+)m", v)
    assert m, f"not a millicore figure: {v!r}"
    return int(m.group(1))


def _mebibytes(v: str) -> int:
    m = re.fullmatch(r"(\d+)Mi", v)
    assert m, f"not a MiB figure: {v!r}"
    return int(m.group(1))


@needs_kubectl
def test_top_node_shows_the_machine(top: E2ECluster) -> None:
    r = kubectl(top.kubeconfig, "top", "node")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:5] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    rows = {row[0]: row for row in _rows(r.stdout)}
    assert top.node in rows, r.stdout
    row = rows[top.node]
    assert _millicores(row[1]) > 0  # a container is spinning on this machine
    assert _mebibytes(row[3]) > 0
    assert row[2].endswith("%") and row[4].endswith("%"), row  # capacity known from the Node
    one = json.loads(
        kubectl(top.kubeconfig, "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{top.node}").stdout
    )
    assert one["kind"] == "NodeMetrics" and one["metadata"]["name"] == top.node
    assert set(one["usage"]) == {"cpu", "memory"}


@needs_kubectl
def test_top_pod_real_cgroup_figures(top: E2ECluster) -> None:
    r = kubectl(top.kubeconfig, "top", "pod")
    assert r.returncode == 0, r.stderr
    rows = {row[0]: row for row in _rows(r.stdout)}
    assert set(rows) == {"burn", "idle"}, r.stdout
    burn, idle = _millicores(rows["burn"][1]), _millicores(rows["idle"][1])
    assert burn > 0 and burn > idle, r.stdout
    assert _mebibytes(rows["burn"][2]) >= 0

    r = kubectl(top.kubeconfig, "top", "pod", "--containers")
    assert r.returncode == 0, r.stderr
    per = {(row[0], row[1]): _millicores(row[2]) for row in _rows(r.stdout)}
    assert set(per) == {("burn", "spin"), ("burn", "side"), ("idle", "c")}, r.stdout
    assert per[("burn", "spin")] > per[("burn", "side")]

    r = kubectl(top.kubeconfig, "top", "pod", "-l", "app=idle")
    assert r.returncode == 0, r.stderr
    assert [row[0] for row in _rows(r.stdout)] == ["idle"]


@needs_kubectl
def test_top_pod_all_namespaces_and_single_pod(top: E2ECluster) -> None:
    r = kubectl(top.kubeconfig, "top", "pod", "-A")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "NAMESPACE"
    names = {(row[0], row[1]) for row in _rows(r.stdout)}
    assert {("default", "burn"), ("default", "idle")} <= names
    assert not any(n == "secret-b" for _, n in names), "another tenant's pod in the system tenant's top"

    r = kubectl(top.kubeconfig, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burn")
    assert r.returncode == 0, r.stderr
    pm = json.loads(r.stdout)
    assert pm["kind"] == "PodMetrics" and {c["name"] for c in pm["containers"]} == {"spin", "side"}
    r = kubectl(top.kubeconfig, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope")
    assert r.returncode != 0 and "not found" in (r.stderr + r.stdout).lower(), r.stdout + r.stderr

    # the system admin may look across tenants explicitly
    r = kubectl(top.kubeconfig, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/tenants/all/pods")
    assert r.returncode == 0, r.stderr
    everyone = {(i["metadata"]["tenant"], i["metadata"]["name"]) for i in json.loads(r.stdout)["items"]}
    assert {("system", "burn"), (TENANT_B, "secret-b")} <= everyone


@needs_kubectl
def test_tenant_sees_only_its_own_pods(top: E2ECluster) -> None:
    cfg = top.tenant_kubeconfig  # type: ignore[attr-defined]
    for args in (("top", "pod"), ("top", "pod", "-A")):
        r = kubectl(cfg, *args)
        assert r.returncode == 0, r.stderr
        names = {row[-3] for row in _rows(r.stdout)}
        assert names == {"secret-b"}, r.stdout
    r = kubectl(cfg, "top", "node")
    assert r.returncode != 0 and "forbidden" in r.stderr.lower(), r.stdout + r.stderr
    for path in (
        "/apis/metrics.k8s.io/v1beta1/tenants/system/namespaces/default/pods",
        "/apis/metrics.k8s.io/v1beta1/tenants/all/pods",
        "/apis/metrics.k8s.io/v1beta1/nodes",
    ):
        r = kubectl(cfg, "get", "--raw", path)
        assert r.returncode != 0 and "forbidden" in r.stderr.lower(), f"{path}: {r.stdout}{r.stderr}"
    # the other tenant's pod name is simply not there for tenant B
    r = kubectl(cfg, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burn")
    assert r.returncode != 0 and "not found" in r.stderr.lower()


@needs_kubectl
def test_prometheus_metrics_carry_the_same_figures(top: E2ECluster) -> None:
    r = kubectl(top.kubeconfig, "get", "--raw", "/metrics")
    assert r.returncode == 0, r.stderr
    spin = re.search(
        r'^centaurus_container_cpu_usage_cores\{[^}]*namespace="default",pod="burn",container="spin"\} (\S+)$',
        r.stdout,
        re.M,
    )
    assert spin and float(spin.group(1)) > 0, r.stdout[-3000:]
    node = re.search(
        rf'^centaurus_node_memory_working_set_bytes\{{node="{top.node}"\}} (\d+)$', r.stdout, re.M
    )
    assert node and int(node.group(1)) > 0
    assert 'pod="secret-b"' in r.stdout  # the cluster's own view covers every tenant
    r = kubectl(top.tenant_kubeconfig, "get", "--raw", "/metrics")  # type: ignore[attr-defined]
    assert r.returncode != 0  # but a tenant may not read it


def test_python_client_reads_the_metrics_api(top: E2ECluster) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    api_client = kubernetes.config.new_client_from_config(str(top.kubeconfig))
    try:
        custom = kubernetes.client.CustomObjectsApi(api_client)
        pods = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default", "pods")
        assert pods["kind"] == "PodMetricsList"
        assert {i["metadata"]["name"] for i in pods["items"]} == {"burn", "idle"}
        nodes = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
        assert [i["metadata"]["name"] for i in nodes["items"]] == [top.node]
    finally:
        api_client.close()


def test_teardown_leaves_nothing(top: E2ECluster) -> None:
    delete_tenant_pods(top)
    top.teardown()
