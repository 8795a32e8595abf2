"""The official ``kubernetes`` Python client against the API server, configured from the
kubeconfig ``centaurusctl init`` writes: create, list, watch, patch, scale and delete
namespaces, pods and deployments; errors come back as ApiException with the Status."""

from __future__ import annotations

import json
import threading

import pytest

from tests.api.conftest import InitCluster

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402


@pytest.fixture(scope="module")
def k8s(init_cluster: InitCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(init_cluster.kubeconfig))


def test_namespaces_pods_deployments(k8s: client.ApiClient) -> None:
    v1, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-ns")))
    assert "py-ns" in [n.metadata.name for n in v1.list_namespace().items]
    p = v1.create_namespaced_pod(
        "py-ns",
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="py-pod", labels={"app": "py"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        ),
    )
    assert p.metadata.uid and p.status.phase == "Pending"
    assert [x.metadata.name for x in v1.list_namespaced_pod("py-ns", label_selector="app=py").items] == [
        "py-pod"
    ]
    assert (
        v1.list_pod_for_all_namespaces(field_selector="metadata.name=py-pod").items[0].metadata.namespace
        == "py-ns"
    )
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "py-deploy"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "pyd"}},
            "template": {
                "metadata": {"labels": {"app": "pyd"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    d = apps.create_namespaced_deployment("py-ns", dep)
    assert d.spec.replicas == 1 and d.spec.strategy.type == "RollingUpdate"
    assert (
        apps.patch_namespaced_deployment_scale("py-deploy", "py-ns", {"spec": {"replicas": 3}}).spec.replicas
        == 3
    )
    assert apps.read_namespaced_deployment_scale("py-deploy", "py-ns").spec.replicas == 3
    d = apps.patch_namespaced_deployment("py-deploy", "py-ns", {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.labels == {"x": "y"}
    apps.delete_namespaced_deployment("py-deploy", "py-ns")
    v1.delete_namespaced_pod("py-pod", "py-ns")
    with pytest.raises(ApiException) as ei:
        v1.read_namespaced_pod("py-pod", "py-ns")
    assert ei.value.status == 404 and json.loads(ei.value.body)["reason"] == "NotFound"
    v1.delete_namespace("py-ns")
    assert v1.read_namespace("py-ns").status.phase == "Terminating"


def test_watch_with_resource_version(k8s: client.ApiClient) -> None:
    v1 = client.CoreV1Api(k8s)
    rv = v1.list_namespaced_config_map("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            if len(seen) == 3:
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-w"}, "data": {"a": "1"}}
    v1.create_namespaced_config_map("default", body)
    v1.patch_namespaced_config_map("py-w", "default", {"data": {"a": "2"}})
    v1.delete_namespaced_config_map("py-w", "default")
    t.join(15)
    assert seen == [("ADDED", "py-w"), ("MODIFIED", "py-w"), ("DELETED", "py-w")]


def test_errors_are_api_exceptions_with_status(k8s: client.ApiClient) -> None:
    v1 = client.CoreV1Api(k8s)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-dup"}}
    v1.create_namespaced_config_map("default", body)
    with pytest.raises(ApiException) as ei:
        v1.create_namespaced_config_map("default", body)
    assert ei.value.status == 409 and json.loads(ei.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as ei:
        v1.create_namespaced_config_map(
            "default", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad!"}}
        )
    assert ei.value.status == 422
    cm = v1.read_namespaced_config_map("py-dup", "default")
    cm.metadata.resource_version = "1"
    with pytest.raises(ApiException) as ei:
        v1.replace_namespaced_config_map("py-dup", "default", cm)
    assert ei.value.status == 409 and json.loads(ei.value.body)["reason"] == "Conflict"
    v1.delete_namespaced_config_map("py-dup", "default")
