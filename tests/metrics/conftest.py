"""Fixtures for the metrics tests: one ``init``-started runc cluster with pods in two tenants.

``top`` is an :class:`~tests.e2e.conftest.E2ECluster` (real API server, scheduler,
controllers and the runc node agent) with, in the system tenant's ``default``: ``burn`` (a
busybox container spinning the CPU, plus an idle ``side`` container) and ``idle``; and in
tenant ``tm-b`` (created here, its administrator's kubeconfig at ``top.tenant_kubeconfig``):
``secret-b``. :func:`kubectl` runs the real kubectl with a kubeconfig. The controller tests'
``client``, ``ns`` and ``kubelet`` fixtures serve the disruption controller's tests (over the
``cluster`` those define).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctl.client import ApiError
from tests.controllers.conftest import client, kubelet, ns  # noqa: F401 - fixtures of the PDB tests
from tests.e2e.conftest import E2ECluster, cluster_factory, is_ready, require_root_runc, wait_for

__all__ = ["cluster_factory"]

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
needs_kubectl = pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason="kubectl is not installed")
TENANT_B = "tm-b"
LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"
BURN = "trap 'exit 0' TERM; while :; do :; done"


def pod(name: str, *containers: tuple[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": name}},
        "spec": {
            "containers": [
                {"name": n, "image": "busybox:latest", "command": ["sh", "-c", script]}
                for n, script in containers
            ],
            "terminationGracePeriodSeconds": 1,
        },
    }


PODS = [pod("burn", ("spin", BURN), ("side", LOOP)), pod("idle", ("c", LOOP))]
TENANT_PODS = [pod("secret-b", ("c", LOOP))]


def delete_tenant_pods(c: E2ECluster) -> None:
    """Remove tenant B's pods (the cluster's own teardown only empties the system tenant)."""
    for p in TENANT_PODS:
        c.api.delete("pods", p["metadata"]["name"], "default", tenant=TENANT_B)
    wait_for(
        lambda: not c.api.list("pods", "default", tenant=TENANT_B)["items"], 60, f"{TENANT_B}'s pods deleted"
    )


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=timeout
    )


def _tenant_kubeconfig(c: E2ECluster, tenant: str) -> Path:
    c.api.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": tenant}})

    def token() -> str | None:
        try:
            s = c.api.get("secrets", "tenant-admin-token", "kube-system", tenant=tenant)
        except ApiError:
            return None
        return base64.b64decode(s["data"]["token"]).decode()

    tok = wait_for(token, 30, f"the tenant controller to issue an admin token for {tenant}")
    cfg = yaml.safe_load(c.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": tok}
    p = c.data_dir / f"{tenant}.kubeconfig"
    p.write_text(yaml.safe_dump(cfg))
    p.chmod(0o600)
    return p


@pytest.fixture(scope="module")
def top(cluster_factory: Callable[..., E2ECluster]) -> Iterator[E2ECluster]:
    require_root_runc()
    c = cluster_factory(["--runtime", "runc"])
    c.tenant_kubeconfig = _tenant_kubeconfig(c, TENANT_B)  # type: ignore[attr-defined]
    c.apply(*PODS)

    def default_ns() -> bool:
        try:
            c.api.get("namespaces", "default", tenant=TENANT_B)
            return True
        except ApiError:
            return False

    wait_for(default_ns, 30, f"namespace default in tenant {TENANT_B}")
    for p in TENANT_PODS:
        c.api.create(p, "default", tenant=TENANT_B)
    for t, p in [("", p) for p in PODS] + [(TENANT_B, p) for p in TENANT_PODS]:
        name = p["metadata"]["name"]

        def ready(n: str = name, tenant: str = t) -> bool:
            try:
                return is_ready(c.api.get("pods", n, "default", tenant=tenant or None))
            except ApiError:
                return False

        wait_for(ready, 90, f"pod {t or 'system'}/{name} Ready", diag=lambda: c.describe_pods("default"))
    yield c
