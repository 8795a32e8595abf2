"""Server-side apply with the real clients against an ``init``-started cluster (HTTPS, token):
kubectl v1.32 (``apply --server-side``, ``--field-manager``, ``--force-conflicts``,
``--show-managed-fields``, the migration from client-side apply) and the official Python
client (typed ``patch`` with ``application/apply-patch+yaml``, the dynamic client's
``server_side_apply``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import InitCluster

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
HAVE_KUBECTL = os.access(KUBECTL, os.X_OK)

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}, labels: {{app: web}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: web, image: "nginx:1.27", ports: [{{containerPort: 80}}]}}
{extra}
"""
SIDECAR = '      - {name: side, image: "busybox", command: [sleep, "3600"]}'


def kubectl(c: InitCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [KUBECTL, "--kubeconfig", str(c.kubeconfig), *args], capture_output=True, text=True, timeout=60
    )
    if check:
        assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
    return r


def managers(obj: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields") or []}


@pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed")
def test_kubectl_server_side_apply(init_cluster: InitCluster, tmp_path: Path) -> None:
    c, ns, f = init_cluster, "ssa-kubectl", tmp_path / "m.yaml"
    f.write_text(MANIFEST.format(ns=ns, replicas=2, extra=SIDECAR))
    r = kubectl(c, "apply", "--server-side", "-f", str(f))
    assert "deployment.apps/web serverside-applied" in r.stdout, r.stdout
    obj = json.loads(
        kubectl(c, "get", "deploy", "web", "-n", ns, "-o", "json", "--show-managed-fields").stdout
    )
    assert ("kubectl", "Apply") in managers(obj)
    assert [x["name"] for x in obj["spec"]["template"]["spec"]["containers"]] == ["web", "side"]
    # kubectl hides managedFields unless asked (the server returns them: kubectl strips them)
    assert "managedFields" not in kubectl(c, "get", "deploy", "web", "-n", ns, "-o", "yaml").stdout
    shown = kubectl(c, "get", "deploy", "web", "-n", ns, "-o", "yaml", "--show-managed-fields").stdout
    assert "managedFields" in shown and "manager: kubectl" in shown and "operation: Apply" in shown
    # another manager changes replicas imperatively; the next apply conflicts with it, naming it
    kubectl(c, "patch", "deploy", "web", "-n", ns, "--field-manager=tuner", "-p", '{"spec":{"replicas":5}}')
    f.write_text(MANIFEST.format(ns=ns, replicas=3, extra=""))
    r = kubectl(c, "apply", "--server-side", "-f", str(f), check=False)
    assert r.returncode != 0
    assert 'conflict with "tuner"' in r.stderr and ".spec.replicas" in r.stderr, r.stderr
    assert (
        json.loads(
            kubectl(c, "get", "deploy", "web", "-n", ns, "-o", "json", "--show-managed-fields").stdout
        )["spec"]["replicas"]
        == 5
    )
    r = kubectl(c, "apply", "--server-side", "--force-conflicts", "-f", str(f))
    obj = json.loads(
        kubectl(c, "get", "deploy", "web", "-n", ns, "-o", "json", "--show-managed-fields").stdout
    )
    assert obj["spec"]["replicas"] == 3
    # the sidecar was dropped from the applied manifest and nobody else owns it: removed
    assert [x["name"] for x in obj["spec"]["template"]["spec"]["containers"]] == ["web"]
    tuner = [e for e in obj["metadata"]["managedFields"] if e["manager"] == "tuner"]
    assert all("f:replicas" not in e["fieldsV1"].get("f:spec", {}) for e in tuner)  # ownership moved
    # a second field manager co-owns what it applies with the same values
    cm = tmp_path / "cm.yaml"
    cm.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg, namespace: {ns}}}\ndata: {{a: '1'}}\n"
    )
    kubectl(c, "apply", "--server-side", "--field-manager=team-a", "-f", str(cm))
    kubectl(c, "apply", "--server-side", "--field-manager=team-b", "-f", str(cm))
    obj = json.loads(kubectl(c, "get", "cm", "cfg", "-n", ns, "-o", "json", "--show-managed-fields").stdout)
    assert {("team-a", "Apply"), ("team-b", "Apply")} <= managers(obj)
    kubectl(c, "delete", "ns", ns, "--wait=false")


@pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed")
def test_kubectl_client_side_then_server_side_apply(init_cluster: InitCluster, tmp_path: Path) -> None:
    c, ns, f = init_cluster, "ssa-upgrade", tmp_path / "m.yaml"
    f.write_text(MANIFEST.format(ns=ns, replicas=1, extra=""))
    kubectl(c, "apply", "-f", str(f))  # client-side apply: an Update by kubectl-client-side-apply
    obj = json.loads(
        kubectl(c, "get", "deploy", "web", "-n", ns, "-o", "json", "--show-managed-fields").stdout
    )
    assert ("kubectl-client-side-apply", "Update") in managers(obj)
    # kubectl migrates the ownership (a JSON patch of managedFields), then applies without conflict
    f.write_text(MANIFEST.format(ns=ns, replicas=2, extra=""))
    r = kubectl(c, "apply", "--server-side", "-f", str(f))
    assert "serverside-applied" in r.stdout
    obj = json.loads(
        kubectl(c, "get", "deploy", "web", "-n", ns, "-o", "json", "--show-managed-fields").stdout
    )
    assert obj["spec"]["replicas"] == 2 and ("kubectl", "Apply") in managers(obj)
    kubectl(c, "delete", "ns", ns, "--wait=false")


kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, dynamic  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402


@pytest.fixture(scope="module")
def k8s(init_cluster: InitCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(init_cluster.kubeconfig))


def test_python_client_apply(k8s: client.ApiClient) -> None:
    v1, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    ns = "ssa-python"
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "py", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "py"}},
            "template": {
                "metadata": {"labels": {"app": "py"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    apply = "application/apply-patch+yaml"
    d = apps.patch_namespaced_deployment("py", ns, body, field_manager="py-a", _content_type=apply)
    assert d.spec.replicas == 1
    assert [(m.manager, m.operation) for m in d.metadata.managed_fields] == [("py-a", "Apply")]
    body["spec"]["replicas"] = 4
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment("py", ns, body, field_manager="py-b", _content_type=apply)
    assert e.value.status == 409
    st = json.loads(e.value.body)
    assert st["details"]["causes"][0] == {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "py-a"',
        "field": ".spec.replicas",
    }
    d = apps.patch_namespaced_deployment(
        "py", ns, body, field_manager="py-b", force=True, _content_type=apply
    )
    assert d.spec.replicas == 4
    # the dynamic client's server_side_apply, on a ConfigMap
    dyn = dynamic.DynamicClient(k8s)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"}, "data": {"k": "v"}}
    out = cms.server_side_apply(body=cm, namespace=ns, field_manager="dyn")
    assert out.data.k == "v" and out.metadata.managedFields[0].manager == "dyn"
    cm["data"] = {"k": "w"}
    with pytest.raises(dynamic.exceptions.ConflictError):
        cms.server_side_apply(body=cm, namespace=ns, field_manager="other")
    out = cms.server_side_apply(body=cm, namespace=ns, field_manager="other", force_conflicts=True)
    assert out.data.k == "w"
    v1.delete_namespace(ns)
