"""The README's main job: ``./setup.sh demo`` starts a cluster with the demo workload running.

This is that path without the installation step: ``centaurusctl init --demo --detach`` on a fresh
data directory must come back with the three ``manifests/demo.yaml`` pods Running on real runc
containers, say so in its output, serve their logs, and ``down`` must leave nothing behind once
the demo namespace is deleted.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import E2ECluster, is_ready, require_root_runc, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root]


def test_init_demo_runs_the_demo_pods_then_down_cleans_up(cluster_factory: Any) -> None:
    require_root_runc()
    c: E2ECluster = cluster_factory(["--runtime", "runc"], ["--demo"])
    out = c.init_output
    print(f"\ninit --demo: {c.startup_seconds:.1f}s")
    assert "Centaurus is running" in out, out
    assert "deployment/hello created" in out, out
    assert "not all running" not in out, out
    rows = [line for line in out.splitlines() if re.match(r"demo\s+hello-\S+\s+1/1\s+Running", line)]
    assert len(rows) == 3, out
    pods = c.pods("demo", "app=demo")
    assert len(pods) == 3 and all(is_ready(p) for p in pods), c.describe_pods("demo")
    running = c.runc_containers()
    for p in pods:
        cid = p["status"]["containerStatuses"][0]["containerID"].split("://", 1)[-1]
        assert running.get(cid) == "running", (cid, running)
    name = pods[0]["metadata"]["name"]
    logs = wait_for(
        lambda: (o := c.ctl("logs", name, "-n", "demo").stdout) and "hello from" in o and o, 15, "demo logs"
    )
    assert f"hello from {name}" in logs
    status = c.ctl("status", "--data-dir", str(c.data_dir))
    assert "1/1 ready" in status.stdout, status.stdout
    # The demo's shell loop ignores SIGTERM (PID 1 without a handler), so its pods are force-deleted
    # instead of waiting out their 30 s grace period: owners first (orphaning the pods, or the
    # ReplicaSet would replace them, and a graceful cascade would start the 30 s kill), then the pods.
    c.ctl("delete", "deployment", "hello", "-n", "demo", "--cascade", "orphan")
    c.ctl("delete", "replicasets", "--all", "-n", "demo", "--cascade", "orphan")
    c.ctl("delete", "pods", "--all", "-n", "demo", "--force")
    c.teardown()
