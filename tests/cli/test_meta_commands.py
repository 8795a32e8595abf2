"""label, annotate, cordon and uncordon from the CLI against a real API server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster import ROOT, ApiServerProcess


@pytest.fixture(scope="module")
def ctl(apiserver: ApiServerProcess, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    kc: Path = tmp_path_factory.mktemp("kc") / "kubeconfig"
    kc.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": apiserver.url}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": str(kc)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ctl", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def test_label_add_overwrite_remove(ctl, apiserver: ApiServerProcess) -> None:  # type: ignore[no-untyped-def]
    assert ctl("create", "namespace", "lbl").returncode == 0
    r = ctl("label", "ns", "lbl", "team=a", "tier=web")
    assert r.returncode == 0 and "namespace/lbl labeled" in r.stdout
    r = ctl("label", "ns/lbl", "team=b")
    assert r.returncode == 1 and "--overwrite" in r.stderr and "Traceback" not in r.stderr
    assert ctl("label", "ns/lbl", "team=b", "--overwrite", "tier-").returncode == 0
    with apiserver.sync_client() as c:
        labels = c.get("namespaces", "lbl")["metadata"]["labels"]
    assert labels == {"team": "b"}


def test_annotate_and_bad_update(ctl, apiserver: ApiServerProcess) -> None:  # type: ignore[no-untyped-def]
    ctl("create", "namespace", "ann")
    assert ctl("annotate", "ns", "ann", "note=hello world").returncode == 0
    with apiserver.sync_client() as c:
        assert c.get("namespaces", "ann")["metadata"]["annotations"]["note"] == "hello world"
    r = ctl("annotate", "ns", "ann", "justakey")
    assert r.returncode == 1 and r.stderr.count("\n") == 1


def test_cordon_uncordon(ctl, apiserver: ApiServerProcess) -> None:  # type: ignore[no-untyped-def]
    with apiserver.sync_client() as c:
        c.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-cordon"}})
    assert ctl("cordon", "n-cordon").returncode == 0
    with apiserver.sync_client() as c:
        assert c.get("nodes", "n-cordon")["spec"]["unschedulable"] is True
    assert ctl("uncordon", "n-cordon").returncode == 0
    with apiserver.sync_client() as c:
        assert not c.get("nodes", "n-cordon").get("spec", {}).get("unschedulable")
    r = ctl("cordon", "no-such-node")
    assert r.returncode == 1 and "not found" in r.stderr
