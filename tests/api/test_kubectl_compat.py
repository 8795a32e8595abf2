"""kubectl v1.32 against the API server, with the kubeconfig ``centaurusctl init`` writes
(HTTPS with the cluster CA and a bearer token): apply/create/get/delete -f, get -o json
and -w, scale, patch, delete, api-resources, version, and the imperative generators (protobuf bodies)
of kubectl's imperative generators."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.api.conftest import InitCluster

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason="kubectl is not installed")

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: kc-test}
---
apiVersion: v1
kind: Pod
metadata: {name: kc-pod, namespace: kc-test, labels: {app: kc}}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kc-deploy, namespace: kc-test, labels: {app: kc}}
spec:
  replicas: 2
  selector: {matchLabels: {app: kc-web}}
  template:
    metadata: {labels: {app: kc-web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
"""


def kubectl(
    c: InitCluster, *args: str, timeout: float = 30, check: bool = True
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [KUBECTL, "--kubeconfig", str(c.kubeconfig), *args], capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
    return r


def test_kubectl_apply_get_scale_delete(init_cluster: InitCluster, tmp_path: Path) -> None:
    c = init_cluster
    f = tmp_path / "m.yaml"
    f.write_text(MANIFEST)
    r = kubectl(c, "apply", "-f", str(f))
    assert "namespace/kc-test created" in r.stdout and "pod/kc-pod created" in r.stdout
    assert "deployment.apps/kc-deploy created" in r.stdout
    assert "unchanged" in kubectl(c, "apply", "-f", str(f)).stdout
    pods = json.loads(kubectl(c, "get", "pods", "-n", "kc-test", "-o", "json").stdout)
    assert [p["metadata"]["name"] for p in pods["items"]] == ["kc-pod"]
    assert pods["items"][0]["metadata"]["tenant"] == "system"
    assert "kc-pod" in kubectl(c, "get", "pods", "-n", "kc-test", "-l", "app=kc").stdout
    assert "kc-deploy" in kubectl(c, "get", "deploy", "-n", "kc-test").stdout
    assert "kc-test" in kubectl(c, "get", "ns").stdout
    kubectl(c, "scale", "deployment/kc-deploy", "-n", "kc-test", "--replicas=4")
    got = kubectl(c, "get", "deploy", "kc-deploy", "-n", "kc-test", "-o", "jsonpath={.spec.replicas}").stdout
    assert got == "4"
    kubectl(c, "patch", "pod", "kc-pod", "-n", "kc-test", "-p", '{"metadata":{"labels":{"patched":"yes"}}}')
    assert "patched=yes" in kubectl(c, "get", "pod", "kc-pod", "-n", "kc-test", "--show-labels").stdout
    kubectl(c, "label", "pod", "kc-pod", "-n", "kc-test", "extra=1")
    r = kubectl(c, "create", "-f", str(f), check=False)
    assert r.returncode != 0 and "AlreadyExists" in r.stderr
    # changing the manifest and re-applying configures it (strategic merge from kubectl)
    f.write_text(MANIFEST.replace("replicas: 2", "replicas: 3"))
    assert "deployment.apps/kc-deploy configured" in kubectl(c, "apply", "-f", str(f)).stdout
    assert (
        kubectl(c, "get", "deploy", "kc-deploy", "-n", "kc-test", "-o", "jsonpath={.spec.replicas}").stdout
        == "3"
    )
    # delete (namespaces stay Terminating until the namespace controller empties them: don't wait)
    r = kubectl(c, "delete", "-f", str(f), "--wait=false")
    assert 'pod "kc-pod" deleted' in r.stdout and 'deployment.apps "kc-deploy" deleted' in r.stdout
    r = kubectl(c, "get", "pod", "kc-pod", "-n", "kc-test", check=False)
    assert r.returncode != 0 and "NotFound" in r.stderr


def test_kubectl_watch(init_cluster: InitCluster) -> None:
    c = init_cluster
    p = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(c.kubeconfig),
            "get",
            "configmaps",
            "-n",
            "default",
            "-w",
            "--output-watch-events",
            "-o",
            "name",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"watched"}}'
        subprocess.run(
            [KUBECTL, "--kubeconfig", str(c.kubeconfig), "apply", "-f", "-"],
            input=body,
            text=True,
            capture_output=True,
            check=True,
            timeout=30,
        )
        kubectl(c, "delete", "configmap", "watched")
        time.sleep(1.5)
    finally:
        p.terminate()
        out, err = p.communicate(timeout=10)
    assert "configmap/watched" in out, (out, err)


def test_kubectl_discovery_commands(init_cluster: InitCluster) -> None:
    c = init_cluster
    out = kubectl(c, "api-resources").stdout
    for word in ("pods", "deployments", "tenants", "vpcs", "leases"):
        assert word in out
    assert "Server Version: v1.32" in kubectl(c, "version").stdout
    assert "v1" in kubectl(c, "api-versions").stdout
    out = kubectl(c, "explain", "pods", check=False)
    assert out.returncode == 0 or "Pod" in out.stdout + out.stderr


def test_kubectl_imperative_generators(init_cluster: InitCluster) -> None:
    """kubectl's generators send protobuf bodies; the server decodes the kinds they produce."""
    c = init_cluster
    kubectl(c, "create", "namespace", "kc-proto")
    kubectl(c, "create", "configmap", "cm", "--from-literal=a=b", "-n", "kc-proto")
    kubectl(c, "create", "secret", "generic", "s", "--from-literal=pw=xyz", "-n", "kc-proto")
    kubectl(
        c,
        "create",
        "deployment",
        "web",
        "--image=busybox:latest",
        "--replicas=2",
        "-n",
        "kc-proto",
        "--",
        "sleep",
        "9",
    )
    kubectl(c, "create", "quota", "q", "--hard=pods=5", "-n", "kc-proto")
    out = kubectl(c, "get", "deploy", "web", "-n", "kc-proto", "-o", "json")
    d = json.loads(out.stdout)
    assert d["spec"]["replicas"] == 2 and d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    ctr = d["spec"]["template"]["spec"]["containers"][0]
    assert ctr["image"] == "busybox:latest" and ctr["command"] == ["sleep", "9"]
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"  # empty protobuf strings defaulted, not stored
    cm = json.loads(kubectl(c, "get", "cm", "cm", "-n", "kc-proto", "-o", "json").stdout)
    assert cm["data"] == {"a": "b"}
    sec = json.loads(kubectl(c, "get", "secret", "s", "-n", "kc-proto", "-o", "json").stdout)
    assert base64.b64decode(sec["data"]["pw"]) == b"xyz"
    r = kubectl(c, "create", "namespace", "kc-proto", check=False)
    assert r.returncode != 0 and "AlreadyExists" in r.stderr
    # RBAC kinds come as protobuf too (kubectl create role/rolebinding)
    kubectl(c, "create", "role", "r", "--verb=get", "--resource=pods", "-n", "kc-proto")
    role = json.loads(kubectl(c, "get", "role", "r", "-n", "kc-proto", "-o", "json").stdout)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    kubectl(c, "delete", "namespace", "kc-proto", "--wait=false")


def test_kubectl_validate_modes(init_cluster: InitCluster, tmp_path: Path) -> None:
    """kubectl sends fieldValidation=Strict by default: an unknown field is refused by the server."""
    f = tmp_path / "bogus.yaml"
    f.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kc-bogus, namespace: default}\n"
        "data: {a: b}\nbogus: 1\n"
    )
    r = kubectl(init_cluster, "create", "-f", str(f), check=False)
    assert r.returncode != 0 and "strict decoding error" in r.stderr and "bogus" in r.stderr, r.stderr
    r = kubectl(init_cluster, "create", "--validate=warn", "-f", str(f))
    assert "unknown field" in r.stderr and "bogus" in r.stderr, r.stderr
    kubectl(init_cluster, "delete", "configmap", "kc-bogus", "-n", "default")
    kubectl(init_cluster, "create", "--validate=false", "-f", str(f))
    kubectl(init_cluster, "delete", "configmap", "kc-bogus", "-n", "default")
