"""The CLI end to end on a real cluster started by ``centaurusctl init --detach``:

init -> apply -f manifests/ (and every example in manifests/examples/) -> get in every
output format -> describe -> delete by name, by file and by label -> status -> down ->
init again on the same data directory resumes with the data intact. Plus config
view/get-contexts/use-context, api-resources, version, every CLI error path (one line on
stderr, exit 1, no traceback) and ``init --store etcd`` once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ctl.cluster.etcd_process import ETCD_BINARY
from ctl.types import kinds
from tests.cluster import ROOT

INIT = ["init", "--detach", "--port", "0", "--disable", "scheduler,controllers,agent"]


class Ctl:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "KUBECONFIG": str(data_dir / "kubeconfig"),
            "CENTAURUS_DATA_DIR": str(data_dir),
        }

    def __call__(
        self, *args: str, ok: bool = True, timeout: float = 90, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "ctl", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=self.env,
            input=stdin,
        )
        if ok:
            assert r.returncode == 0, (
                f"centaurusctl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
            )
        return r

    def fails(self, *args: str, expect: str) -> str:
        """Run a command that must fail: exit 1, one line on stderr, no traceback."""
        r = self(*args, ok=False)
        assert r.returncode == 1, f"{args}: rc {r.returncode}\n{r.stderr}"
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, f"{args}: stderr is not one line:\n{r.stderr}"
        assert "Traceback" not in r.stderr and expect in lines[0], f"{args}: {lines[0]!r} lacks {expect!r}"
        return lines[0]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctl]:
    c = Ctl(tmp_path_factory.mktemp("cli") / "data")
    c(*INIT, "--data-dir", str(c.data_dir))
    try:
        yield c
    finally:
        c("down", "--data-dir", str(c.data_dir), ok=False)


def test_apply_get_describe_delete(cluster: Ctl) -> None:
    c = cluster
    out = c("apply", "-f", str(ROOT / "manifests")).stdout
    assert "namespace/demo created" in out and "deployment.apps/hello created" in out
    out = c("apply", "-f", str(ROOT / "manifests" / "examples")).stdout
    applied = {line.split()[0].split("/")[0].split(".")[0] for line in out.splitlines()}
    assert {k.singular for k in kinds.KINDS} <= applied | {"namespace"}, out
    assert all(line.endswith("created") for line in out.splitlines()), out
    assert all(
        line.endswith("unchanged")
        for line in c("apply", "-f", str(ROOT / "manifests" / "examples")).stdout.splitlines()
    )
    # get in every output format
    table = c("get", "pods", "-n", "examples").stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"] and "example-pod" in table
    assert "NODE" in c("get", "pods", "-n", "examples", "-o", "wide").stdout
    doc = yaml.safe_load(c("get", "pod", "example-pod", "-n", "examples", "-o", "yaml").stdout)
    assert doc["metadata"]["name"] == "example-pod" and doc["metadata"]["tenant"] == "system"
    lst = json.loads(c("get", "configmaps", "-n", "examples", "-o", "json").stdout)
    assert "example-config" in [o["metadata"]["name"] for o in lst["items"]]
    assert c("get", "deploy", "-n", "examples", "-o", "name").stdout.split() == [
        "deployment.apps/example-web"
    ]
    assert "example-rs" in c("get", "all", "-n", "examples").stdout
    assert "example-vpc" in c("get", "vpcs").stdout and "example-tenant" in c("get", "tenants").stdout
    assert "example-node" in c("get", "nodes", "-l", "example=true").stdout
    assert "example-pod" in c("get", "pods", "-A").stdout
    desc = c("describe", "pod", "example-pod", "-n", "examples").stdout
    assert (
        "Name:         example-pod" in desc and "Namespace:    examples" in desc and "Example" in desc
    )  # its event
    # delete by name, by label, by file
    assert (
        'configmap "example-config" deleted'
        in c("delete", "configmap", "example-config", "-n", "examples").stdout
    )
    c.fails("get", "configmap", "example-config", "-n", "examples", expect="NotFound")
    c("apply", "-f", str(ROOT / "manifests" / "examples" / "config.yaml"))
    c(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lab1, namespace: examples, labels: {del: me}}\n",
    )
    out = c("delete", "configmaps", "-l", "del=me", "-n", "examples").stdout
    assert 'configmap "lab1" deleted' in out and "example-config" not in out
    out = c("delete", "-f", str(ROOT / "manifests" / "examples" / "rbac.yaml")).stdout
    assert out.count("deleted") == 4
    assert "example-viewer" not in c("get", "clusterroles").stdout
    c("delete", "-f", str(ROOT / "manifests" / "examples" / "rbac.yaml"), "--ignore-not-found")
    r = c("delete", "-f", str(ROOT / "manifests" / "examples" / "rbac.yaml"), ok=False)
    assert (
        r.returncode == 1 and r.stderr.count("(NotFound)") == 4 and "Traceback" not in r.stderr
    )  # one line each
    c.fails("delete", "configmap", "nope", "-n", "examples", expect="NotFound")


def test_status_config_api_resources_version(cluster: Ctl) -> None:
    c = cluster
    out = c("status", "--data-dir", str(c.data_dir)).stdout
    assert "apiserver" in out and "ready" in out
    st = json.loads(c("status", "--data-dir", str(c.data_dir), "-o", "json").stdout)
    assert st["healthy"] is True
    # without --data-dir or $CENTAURUS_DATA_DIR, the kubeconfig init wrote leads to the cluster
    env = {k: v for k, v in c.env.items() if k != "CENTAURUS_DATA_DIR"}
    r = subprocess.run(
        [sys.executable, "-m", "ctl", "status", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert r.returncode == 0 and json.loads(r.stdout)["dataDir"] == str(c.data_dir.resolve()), r.stderr
    view = c("config", "view").stdout
    assert "REDACTED" in view and "https://127.0.0.1:" in view
    assert "centaurus" in c("config", "get-contexts").stdout
    kc = c.data_dir / "kubeconfig"
    doc = yaml.safe_load(kc.read_text())
    doc["contexts"].append(
        {"name": "other", "context": dict(doc["contexts"][0]["context"], namespace="examples")}
    )
    kc.write_text(yaml.safe_dump(doc))
    assert 'Switched to context "other"' in c("config", "use-context", "other").stdout
    assert "example-pod" in c("get", "pods").stdout  # the context's namespace applies
    c("config", "use-context", "centaurus")
    c.fails("config", "use-context", "nope", expect="no context exists")
    res = c("api-resources").stdout
    for k in kinds.KINDS:
        assert k.plural in res
    out = c("version").stdout
    assert "Client Version" in out and "Server Version: v1.32" in out


def test_cli_error_paths(cluster: Ctl, tmp_path: Path) -> None:
    c = cluster
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n")
    c.fails("apply", "-f", str(bad), expect="error parsing")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n")
    c.fails("apply", "-f", str(unknown), expect='no kind "Widget"')
    c.fails("apply", "-f", str(tmp_path / "missing.yaml"), expect="does not exist")
    c.fails("get", "widgets", expect='resource type "widgets"')
    c.fails("get", "pods", "-o", "xml", expect="output format 'xml'")
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: x}]}\n"
    )
    c.fails("apply", "-f", str(invalid), expect="Invalid")
    # unreachable server
    kc = tmp_path / "kc"
    port = 1  # nothing listens on port 1 of loopback
    kc.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "x", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
            }
        )
    )
    c.fails("get", "pods", "--kubeconfig", str(kc), expect="cannot reach the API server")
    c.fails("get", "pods", "--kubeconfig", str(tmp_path / "nokc"), expect="no client config")
    c.fails("status", "--data-dir", str(tmp_path / "nothing"), expect="no cluster")
    c.fails("down", "--data-dir", str(tmp_path / "nothing"), expect="no running cluster")
    c.fails(*INIT, "--data-dir", str(c.data_dir), expect="already running")
    # rollout status takes kubectl's durations; no controllers run here, so the rollout never ends
    stuck = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "stuck"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "stuck"}},
            "template": {
                "metadata": {"labels": {"app": "stuck"}},
                "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
            },
        },
    }
    c("apply", "-f", "-", stdin=json.dumps(stuck))
    c.fails("rollout", "status", "deployment/stuck", "--timeout", "soon", expect="invalid duration 'soon'")
    line = c.fails("rollout", "status", "deployment/stuck", "--timeout", "1500ms", expect="timed out waiting")
    assert "(1.5s)" in line, line
    c("delete", "deployment", "stuck")


def test_down_and_init_again_resumes(cluster: Ctl) -> None:
    c = cluster
    c(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep-me, namespace: default}\ndata: {k: v}\n",
    )
    uid = json.loads(c("get", "configmap", "keep-me", "-o", "json").stdout)["metadata"]["uid"]
    c("down", "--data-dir", str(c.data_dir))
    assert c("status", "--data-dir", str(c.data_dir), ok=False).returncode == 1
    c.fails("get", "pods", expect="cannot reach the API server")
    c(*INIT, "--data-dir", str(c.data_dir))
    got = json.loads(c("get", "configmap", "keep-me", "-o", "json").stdout)
    assert got["metadata"]["uid"] == uid and got["data"] == {"k": "v"}
    assert "example-pod" in c("get", "pods", "-n", "examples").stdout


@pytest.mark.slow
@pytest.mark.skipif(not os.access(ETCD_BINARY, os.X_OK), reason="etcd is not installed")
def test_init_with_etcd(tmp_path: Path) -> None:
    c = Ctl(tmp_path / "etcd-cluster")
    c(*INIT, "--store", "etcd", "--data-dir", str(c.data_dir), timeout=120)
    try:
        assert "etcd" in c("status", "--data-dir", str(c.data_dir)).stdout
        assert (
            "deployment.apps/hello created" in c("apply", "-f", str(ROOT / "manifests" / "demo.yaml")).stdout
        )
        assert "hello" in c("get", "deploy", "-n", "demo").stdout
        assert 'deployment.apps "hello" deleted' in c("delete", "deploy", "hello", "-n", "demo").stdout
    finally:
        c("down", "--data-dir", str(c.data_dir), ok=False)
